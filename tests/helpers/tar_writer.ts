/**
 * A small streaming tar writer for test fixtures.
 *
 * Writes ustar headers, PAX (`x`) or GNU (`L`/`K`) headers for names over 100
 * bytes, PAX `size` for files of 8 GiB and more, and the two zero blocks that
 * end an archive. Data is streamed to the sink, so multi-gigabyte fixtures never
 * sit in memory.
 *
 * @example
 * ```ts
 * await using tar = await TarWriter.create("/tmp/x.tar");
 * await tar.addDirectory("etc/");
 * await tar.addFile("etc/hello", new TextEncoder().encode("hi\n"));
 * await tar.close();
 * ```
 *
 * @module
 */

const BLOCK = 512;
/** Largest size an 11-digit octal field holds (8 GiB - 1). */
const MAX_OCTAL_SIZE = 0o77777777777;
const encoder = new TextEncoder();

/** Where a {@linkcode TarWriter} writes. `Deno.FsFile` is one. */
export interface TarSink {
  /** Writes some of `p`, returning how many bytes were written. */
  write(p: Uint8Array): Promise<number>;
}

/** Data for {@linkcode TarWriter.addFile} that is streamed, not held in memory. */
export interface TarStreamSource {
  /** Exact number of bytes `stream` yields. */
  size: number;
  /** The file's content. Chunks are passed to the sink as they are. */
  stream: AsyncIterable<Uint8Array>;
}

/** Header fields for one entry. */
export interface TarEntryOptions {
  /** Permission bits. Default: 0o644 for files, 0o755 for directories, 0o777 for symlinks. */
  mode?: number;
  /** Modification time in seconds since the epoch. Default: 0 (deterministic output). */
  mtime?: number;
  /** Default: 0. */
  uid?: number;
  /** Default: 0. */
  gid?: number;
  /** Default: "". */
  uname?: string;
  /** Default: "". */
  gname?: string;
}

/** Options for {@linkcode TarWriter}. */
export interface TarWriterOptions {
  /**
   * How names and link targets over 100 bytes are stored: PAX extended
   * headers (`x`, what Go's archive/tar and Docker write) or GNU `L`/`K`
   * entries (what GNU tar writes by default). Default: "pax".
   */
  longNames?: "pax" | "gnu";
}

/** Writes a tar archive entry by entry to a {@linkcode TarSink}. */
export class TarWriter implements AsyncDisposable {
  #sink: TarSink;
  #file: Deno.FsFile | undefined;
  #longNames: "pax" | "gnu";
  #bytesWritten = 0;
  #closed = false;
  #busy = false;

  /** Writes to `sink`; the caller closes the sink after {@linkcode close}. */
  constructor(sink: TarSink, options: TarWriterOptions = {}) {
    this.#sink = sink;
    this.#longNames = options.longNames ?? "pax";
  }

  /** Creates (or truncates) the file at `path` and writes the archive to it; {@linkcode close} closes it. */
  static async create(path: string, options: TarWriterOptions = {}): Promise<TarWriter> {
    const file = await Deno.open(path, { write: true, create: true, truncate: true });
    const writer = new TarWriter(file, options);
    writer.#file = file;
    return writer;
  }

  /** Bytes written so far, headers and padding included. */
  get bytesWritten(): number {
    return this.#bytesWritten;
  }

  /** Adds a regular file, from bytes or streamed with a known size. */
  async addFile(
    name: string,
    data: Uint8Array | TarStreamSource,
    options: TarEntryOptions = {},
  ): Promise<void> {
    await this.#exclusive(async () => {
      const size = data instanceof Uint8Array ? data.byteLength : data.size;
      if (!Number.isSafeInteger(size) || size < 0) {
        throw new RangeError(`Cannot add tar entry "${name}": invalid size ${size}`);
      }
      await this.#writeHeaders(name, "0", size, "", { mode: 0o644, ...options });
      if (data instanceof Uint8Array) {
        await this.#write(data);
      } else {
        let written = 0;
        for await (const chunk of data.stream) {
          if (written + chunk.byteLength > size) {
            throw new RangeError(
              `Cannot add tar entry "${name}": stream yields more than the declared ${size} bytes`,
            );
          }
          await this.#write(chunk);
          written += chunk.byteLength;
        }
        if (written !== size) {
          throw new RangeError(
            `Cannot add tar entry "${name}": stream yielded ${written} of the declared ${size} bytes`,
          );
        }
      }
      await this.#pad(size);
    });
  }

  /** Adds a directory entry; a trailing "/" is added to `name` if missing. */
  async addDirectory(name: string, options: TarEntryOptions = {}): Promise<void> {
    const dirName = name.endsWith("/") ? name : `${name}/`;
    await this.#exclusive(() =>
      this.#writeHeaders(dirName, "5", 0, "", { mode: 0o755, ...options })
    );
  }

  /** Adds a symbolic link `name` pointing to `target` (relative to the link's directory). */
  async addSymlink(name: string, target: string, options: TarEntryOptions = {}): Promise<void> {
    await this.#exclusive(() =>
      this.#writeHeaders(name, "2", 0, target, { mode: 0o777, ...options })
    );
  }

  /** Adds a hard link `name` to the earlier entry `target` (an archive path). */
  async addHardlink(name: string, target: string, options: TarEntryOptions = {}): Promise<void> {
    await this.#exclusive(() =>
      this.#writeHeaders(name, "1", 0, target, { mode: 0o644, ...options })
    );
  }

  /**
   * Adds an entry with any type flag and raw data, for fixtures of unusual
   * archives (e.g. a GNU sparse file, a FIFO). The data is padded to a block.
   */
  async addRaw(
    name: string,
    typeflag: string,
    data: Uint8Array,
    linkname = "",
    options: TarEntryOptions = {},
  ): Promise<void> {
    await this.#exclusive(async () => {
      await this.#writeHeaders(name, typeflag, data.byteLength, linkname, options);
      await this.#write(data);
      await this.#pad(data.byteLength);
    });
  }

  /** Writes the two zero blocks that end the archive and closes the file if {@linkcode create} opened it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#exclusive(() => this.#write(new Uint8Array(2 * BLOCK)));
    } finally {
      this.#closed = true;
      this.#file?.close();
      this.#file = undefined;
    }
  }

  /** Closes the file opened by {@linkcode create} without finishing the archive (for error paths). */
  abort(): void {
    this.#closed = true;
    this.#file?.close();
    this.#file = undefined;
  }

  /** Aborts if {@linkcode close} was not called, so `await using` never leaks the file. */
  [Symbol.asyncDispose](): Promise<void> {
    if (!this.#closed) this.abort();
    return Promise.resolve();
  }

  async #exclusive<T>(action: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new TypeError("Cannot write to a closed tar writer");
    if (this.#busy) {
      throw new TypeError("Cannot write tar entries concurrently: await each add* call");
    }
    this.#busy = true;
    try {
      return await action();
    } finally {
      this.#busy = false;
    }
  }

  async #writeHeaders(
    name: string,
    typeflag: string,
    size: number,
    linkname: string,
    options: TarEntryOptions,
  ): Promise<void> {
    const nameBytes = encoder.encode(name);
    const linkBytes = encoder.encode(linkname);
    const longName = nameBytes.byteLength > 100;
    const longLink = linkBytes.byteLength > 100;
    const hugeSize = size > MAX_OCTAL_SIZE;
    if (this.#longNames === "pax" || hugeSize) {
      const records: [string, string][] = [];
      if (longName) records.push(["path", name]);
      if (longLink) records.push(["linkpath", linkname]);
      if (hugeSize) records.push(["size", String(size)]);
      if (records.length > 0) {
        const body = encoder.encode(records.map(([k, v]) => paxRecord(k, v)).join(""));
        await this.#write(header(paxHeaderName(name), "x", body.byteLength, "", {}, "ustar"));
        await this.#write(body);
        await this.#pad(body.byteLength);
      }
    }
    if (this.#longNames === "gnu") {
      if (longLink) await this.#writeGnuLong("K", linkBytes);
      if (longName) await this.#writeGnuLong("L", nameBytes);
    }
    const format = this.#longNames === "gnu" && (longName || longLink) ? "gnu" : "ustar";
    await this.#write(
      header(
        truncateUtf8(name, 100),
        typeflag,
        hugeSize ? 0 : size,
        truncateUtf8(linkname, 100),
        options,
        format,
      ),
    );
  }

  async #writeGnuLong(typeflag: "L" | "K", value: Uint8Array): Promise<void> {
    const body = new Uint8Array(value.byteLength + 1); // NUL-terminated, as GNU tar writes it
    body.set(value);
    await this.#write(header("././@LongLink", typeflag, body.byteLength, "", {}, "gnu"));
    await this.#write(body);
    await this.#pad(body.byteLength);
  }

  async #pad(size: number): Promise<void> {
    const rest = size % BLOCK;
    if (rest !== 0) await this.#write(new Uint8Array(BLOCK - rest));
  }

  async #write(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < bytes.byteLength) {
      const n = await this.#sink.write(offset === 0 ? bytes : bytes.subarray(offset));
      if (n <= 0) throw new Error("Failed to write tar data: the sink accepted no bytes");
      offset += n;
    }
    this.#bytesWritten += bytes.byteLength;
  }
}

/** A {@linkcode TarSink} that keeps everything in memory; see {@linkcode tarBytes}. */
export class MemorySink implements TarSink {
  #chunks: Uint8Array[] = [];
  #length = 0;

  write(p: Uint8Array): Promise<number> {
    this.#chunks.push(p.slice());
    this.#length += p.byteLength;
    return Promise.resolve(p.byteLength);
  }

  /** Everything written so far, as one array. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let offset = 0;
    for (const chunk of this.#chunks) {
      out.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return out;
  }
}

/**
 * Builds a small archive in memory (e.g. for parser tests that corrupt bytes).
 *
 * @example
 * ```ts
 * const bytes = await tarBytes(async (tar) => {
 *   await tar.addFile("a.txt", new TextEncoder().encode("a"));
 * });
 * ```
 */
export async function tarBytes(
  build: (tar: TarWriter) => Promise<void>,
  options: TarWriterOptions = {},
): Promise<Uint8Array> {
  const sink = new MemorySink();
  const tar = new TarWriter(sink, options);
  await build(tar);
  await tar.close();
  return sink.bytes();
}

/**
 * A readable stream of the archive that `build` writes, produced as it is
 * read (back-pressured), for nesting a large tar inside another one without a
 * temporary file. Chunks handed to the writer must not be modified afterwards.
 */
export function tarStream(
  build: (tar: TarWriter) => Promise<void>,
  options: TarWriterOptions = {},
): ReadableStream<Uint8Array> {
  const pipe = new TransformStream<Uint8Array, Uint8Array>();
  const writer = pipe.writable.getWriter();
  const sink: TarSink = {
    async write(p) {
      await writer.write(p);
      return p.byteLength;
    },
  };
  (async () => {
    try {
      const tar = new TarWriter(sink, options);
      await build(tar);
      await tar.close();
      await writer.close();
    } catch (error) {
      await writer.abort(error).catch(() => {});
    }
  })();
  return pipe.readable;
}

function paxRecord(key: string, value: string): string {
  // "<length> <key>=<value>\n" where <length> counts its own digits.
  const rest = encoder.encode(` ${key}=${value}\n`).byteLength;
  let length = rest + String(rest).length;
  if (String(length).length !== String(rest).length) length = rest + String(length).length;
  return `${length} ${key}=${value}\n`;
}

function paxHeaderName(name: string): string {
  const trimmed = name.replace(/\/+$/, "");
  const slash = trimmed.lastIndexOf("/");
  const dir = slash < 0 ? "." : trimmed.slice(0, slash);
  const base = slash < 0 ? trimmed : trimmed.slice(slash + 1);
  return truncateUtf8(`${dir}/PaxHeaders.0/${base}`, 100);
}

function truncateUtf8(value: string, maxBytes: number): string {
  const bytes = encoder.encode(value);
  if (bytes.byteLength <= maxBytes) return value;
  // Cut on a character boundary so the header field stays valid UTF-8.
  let end = maxBytes;
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return new TextDecoder().decode(bytes.subarray(0, end));
}

function header(
  name: string,
  typeflag: string,
  size: number,
  linkname: string,
  options: TarEntryOptions,
  format: "ustar" | "gnu",
): Uint8Array {
  const block = new Uint8Array(BLOCK);
  putString(block, 0, 100, name);
  putOctal(block, 100, 8, options.mode ?? 0o644);
  putOctal(block, 108, 8, options.uid ?? 0);
  putOctal(block, 116, 8, options.gid ?? 0);
  putOctal(block, 124, 12, size);
  putOctal(block, 136, 12, Math.max(0, Math.floor(options.mtime ?? 0)));
  block.fill(0x20, 148, 156); // checksum is computed with this field as spaces
  putString(block, 156, 1, typeflag);
  putString(block, 157, 100, linkname);
  if (format === "gnu") {
    putString(block, 257, 8, "ustar  "); // "ustar  \0": GNU magic + version
  } else {
    putString(block, 257, 6, "ustar"); // "ustar\0"
    putString(block, 263, 2, "00");
  }
  putString(block, 265, 32, options.uname ?? "");
  putString(block, 297, 32, options.gname ?? "");
  if (format === "ustar") {
    putOctal(block, 329, 8, 0);
    putOctal(block, 337, 8, 0);
  }
  let sum = 0;
  for (const byte of block) sum += byte;
  putString(block, 148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  return block;
}

function putString(block: Uint8Array, offset: number, length: number, value: string): void {
  const bytes = encoder.encode(value);
  if (bytes.byteLength > length) {
    throw new RangeError(`Cannot write tar header field: "${value}" exceeds ${length} bytes`);
  }
  block.set(bytes, offset);
}

function putOctal(block: Uint8Array, offset: number, length: number, value: number): void {
  const digits = value.toString(8);
  if (digits.length > length - 1) {
    throw new RangeError(`Cannot write tar header field: ${value} does not fit ${length} bytes`);
  }
  putString(block, offset, length, `${digits.padStart(length - 1, "0")}\0`);
}

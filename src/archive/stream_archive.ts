/**
 * Reading an image archive that can be read only front to back, once (a pipe, or a gzip-, zstd-
 * or xz-compressed file) into a {@linkcode StreamedIndex}, with no registry involved: the stream
 * is decompressed and its tar entries read in order; small entries (manifests, configs,
 * `index.json`) are kept whole, and each large one is handed to a `pass` function as it goes
 * past. By default a large entry is only hashed (what `inspect` needs); `push` passes its own
 * function, which also sends the entry to the registry (`push/stream_blobs.ts`).
 */
import { Sha256 } from "../digest.ts";
import { readFull } from "./byte_range.ts";
import { checkLayoutFile } from "./layout_files.ts";
import { type ArchiveStreamFormat, openDecompressed } from "./decompress.ts";
import { SNIFF_BYTES, sniffStreamFormat } from "./stream_format.ts";
import { HEAD_BYTES, type KeptData, StreamedIndex } from "./streamed_index.ts";
import { readTarStream, type StreamedTarEntry } from "./tar_stream.ts";

/** Entries up to this size are kept in memory (every JSON file of an image archive fits). */
export const HOLD_BYTES = 1024 * 1024;
/** JSON entries (configs with long histories) are kept up to this size, whatever `pass` does. */
export const HOLD_JSON_BYTES = 64 * 1024 * 1024;

/** A stream to read an archive from. */
export interface ArchiveStreamSource {
  /** Names the stream in messages: the file's path, or "standard input". */
  label: string;
  /** Owned from here on: read to its end, or cancelled on failure. */
  stream: ReadableStream<Uint8Array>;
}

/**
 * Handles one large entry as it goes past: `head` is its first bytes (up to
 * {@linkcode HEAD_BYTES}), which `body` yields again before the rest. Read `body` to its end
 * (or throw); return what the index keeps of the entry.
 */
export type PassEntry = (
  entry: StreamedTarEntry,
  label: string,
  head: Uint8Array,
  body: AsyncIterable<Uint8Array>,
) => Promise<KeptData>;

/**
 * The archive at `path` as a stream to read once, when it can only be read that way: a pipe
 * given by name (`-f <(docker save app)`, a FIFO, a character device) or a gzip-, zstd- or
 * xz-compressed file. Undefined for anything else: a tar file or an image directory is indexed
 * in place, and indexing says what is wrong with a missing, unreadable or non-tar file.
 */
export async function openArchiveStream(path: string): Promise<ArchiveStreamSource | undefined> {
  const info = await Deno.stat(path).catch(() => undefined);
  if (info?.isDirectory) return undefined;
  if (info?.isFifo || info?.isCharDevice) {
    return { label: path, stream: (await Deno.open(path)).readable };
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch {
    return undefined;
  }
  try {
    const head = new Uint8Array(SNIFF_BYTES);
    const format = sniffStreamFormat(head.subarray(0, await readFull(file, head)));
    if (format === "gzip" || format === "zstd" || format === "xz") {
      await file.seek(0, Deno.SeekMode.Start);
      return { label: path, stream: file.readable }; // the stream closes the file
    }
  } catch {
    // a directory, or unreadable: indexing says so
  }
  file.close();
  return undefined;
}

/** Options for {@linkcode readArchiveStream}. */
export interface ReadArchiveStreamOptions {
  /** Stops reading; the source is cancelled. Default: none. */
  signal?: AbortSignal;
  /** What to do with each large entry. Default: {@linkcode hashPassingEntry}. */
  pass?: PassEntry;
}

/** What {@linkcode readArchiveStream} returns. */
export interface ArchiveStream {
  /** The whole archive's entries, what was kept of them, and the digests of large ones. */
  index: StreamedIndex;
  /** The stream's compression: `tar` when it was none. */
  format: ArchiveStreamFormat;
}

/**
 * Reads `source` to its end and returns what it kept, as an index the image loaders read
 * (`loadImages` in `image_archive.ts`). The index's label is the source's, with the compression
 * when there was one: `app.tar.gz (gzip)`.
 *
 * @example
 * ```ts
 * import { loadImages } from "./image_archive.ts";
 * import { readArchiveStream } from "./stream_archive.ts";
 *
 * using file = await Deno.open("app.tar.gz");
 * const { index } = await readArchiveStream({ label: "app.tar.gz", stream: file.readable });
 * const archive = await loadImages(index);
 * ```
 * @throws {ArchiveError} when the stream is not a (compressed) tar, or is cut short or corrupt.
 */
export async function readArchiveStream(
  source: ArchiveStreamSource,
  options: ReadArchiveStreamOptions = {},
): Promise<ArchiveStream> {
  const { signal } = options;
  const pass = options.pass ?? hashPassingEntry;
  const { format, stream } = await openDecompressed(
    source.stream,
    source.label,
    signal ? { signal } : {},
  );
  const label = format === "tar" ? source.label : `${source.label} (${format})`;
  const tar = readTarStream(stream, label, signal ? { signal } : {});
  const kept = new Map<string, KeptData>();
  for await (const entry of tar) {
    if (entry.type !== "file") continue;
    if (entry.size <= HOLD_BYTES) {
      const bytes = await entry.bytes();
      // A malformed table of contents stops the stream before more layers go past.
      checkLayoutFile(label, entry.name, bytes);
      kept.set(entry.name, { kind: "held", bytes });
      continue;
    }
    const { head, body } = await peekBody(entry);
    // A config with a long history can be large; it is read at the end, so it is kept whole.
    if (entry.size <= HOLD_JSON_BYTES && head[0] === 0x7b /* { */) {
      const bytes = await collect(body, entry.size);
      checkLayoutFile(label, entry.name, bytes);
      kept.set(entry.name, { kind: "held", bytes });
      continue;
    }
    kept.set(entry.name, await pass(entry, label, head, body));
  }
  return { index: new StreamedIndex(label, tar.position, tar.names, kept), format };
}

/** The default {@linkcode PassEntry}: keeps the entry's sha256 and first bytes, nothing else. */
export async function hashPassingEntry(
  _entry: StreamedTarEntry,
  _label: string,
  head: Uint8Array,
  body: AsyncIterable<Uint8Array>,
): Promise<KeptData> {
  const hash = new Sha256();
  for await (const chunk of body) hash.update(chunk);
  return { kind: "passed", digest: hash.digest(), head };
}

/**
 * The first {@linkcode HEAD_BYTES} of an entry's body (fewer for a shorter entry), and the rest
 * of the body to go on with: the head's bytes are yielded again first.
 */
export async function peekBody(
  entry: StreamedTarEntry,
): Promise<{ head: Uint8Array; body: AsyncIterable<Uint8Array> }> {
  const iterator = entry.body[Symbol.asyncIterator]();
  const taken: Uint8Array[] = [];
  let length = 0;
  while (length < Math.min(HEAD_BYTES, entry.size)) {
    const next = await iterator.next();
    if (next.done) break;
    taken.push(next.value);
    length += next.value.length;
  }
  const head = new Uint8Array(Math.min(HEAD_BYTES, length));
  let at = 0;
  for (const chunk of taken) {
    if (at >= head.length) break;
    const part = chunk.subarray(0, head.length - at);
    head.set(part, at);
    at += part.length;
  }
  async function* body(): AsyncGenerator<Uint8Array> {
    yield* taken;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return { head, body: body() };
}

/** The whole of a body of `size` bytes, in one buffer. */
async function collect(body: AsyncIterable<Uint8Array>, size: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(size);
  let at = 0;
  for await (const chunk of body) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

/**
 * Indexing a tar archive in place: read every header, seek past every file's data.
 *
 * Image archives keep `manifest.json` / `index.json` at the end, after gigabytes of layers, so
 * the index is built from headers alone (512 bytes per entry) and entries are then read by
 * byte range (`byte_range.ts`). Nothing is extracted.
 */
import { ArchiveError } from "../errors.ts";
import { readFull } from "./byte_range.ts";
import {
  BLOCK_SIZE,
  hasValidChecksum,
  type HeaderKind,
  isZeroBlock,
  parseGnuLongName,
  parseHeader,
  parsePaxRecords,
} from "./tar_header.ts";

/** One file, link or directory of the archive. */
export interface TarEntry {
  /** Normalized archive path: no leading "./", no "//" or "/./", no trailing "/". */
  name: string;
  type: "file" | "hardlink" | "symlink" | "directory" | "other";
  /** Bytes of data (from a PAX `size` record when there is one). Usually 0 for links. */
  size: number;
  /** Offset of the entry's own header block (after any PAX or GNU long-name headers). */
  headerOffset: number;
  /** Offset of the first data byte. */
  dataOffset: number;
  /** Link target as written in the archive (hard links: an archive path; symlinks: relative). */
  linkName?: string;
}

/** Options for {@linkcode indexTar}. */
export interface IndexTarOptions {
  /** Stops indexing between headers. */
  signal?: AbortSignal;
}

/** The entries of a tar archive, by normalized name. */
export interface TarIndex {
  /** The archive file. */
  readonly path: string;
  /** The archive's size in bytes. */
  readonly size: number;
  /** Every entry except the root directory, in archive order. */
  readonly entries: ReadonlyMap<string, TarEntry>;
  /** Whether the archive ended with an end-of-archive marker (false hints at truncation). */
  readonly endMarker: boolean;
  /** The entry with this name (normalized first, so "./a//b/" finds "a/b"), if any. */
  get(name: string): TarEntry | undefined;
  /**
   * The regular file this name refers to, following hard links and symlinks (in the name's
   * directories too). Symlink targets are relative to the link's directory; absolute targets
   * start at the archive root.
   *
   * @throws {ArchiveError} for a missing name, a directory, a broken link or a link loop.
   */
  resolve(name: string): TarEntry;
}

/** PAX and GNU long-name payloads are small; a bigger one means a corrupt or hostile archive. */
const MAX_EXTENDED_HEADER = 1024 * 1024;
/** Like Linux's MAXSYMLINKS: more hops than this is a loop or an attack. */
const MAX_LINK_HOPS = 40;

const COMPRESSIONS = [
  { magic: [0x1f, 0x8b], name: "gzip", tool: "gunzip -k" },
  { magic: [0x28, 0xb5, 0x2f, 0xfd], name: "zstd", tool: "zstd -d" },
  { magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], name: "xz", tool: "unxz -k" },
  { magic: [0x42, 0x5a, 0x68], name: "bzip2", tool: "bunzip2 -k" },
];

/** What PAX and GNU long-name headers say about the entry that follows them. */
interface Overrides {
  /** Offset of the first extended header, for errors. */
  at?: number;
  path?: string;
  linkPath?: string;
  size?: number;
  /** GNU sparse data is a map plus fragments, not the file's bytes. */
  sparse?: boolean;
}

/**
 * Indexes the tar archive at `path` by reading its headers and seeking past file data, so a
 * multi-gigabyte archive takes milliseconds.
 *
 * @example
 * ```ts
 * const index = await indexTar("image.tar");
 * const manifest = index.resolve("manifest.json");
 * const bytes = await readRangeBytes(index.path, manifest.dataOffset, manifest.size, 1 << 20);
 * ```
 * @throws {ArchiveError} when the file cannot be opened or is not a well-formed tar archive.
 */
export async function indexTar(path: string, options?: IndexTarOptions): Promise<TarIndex> {
  const signal = options?.signal;
  signal?.throwIfAborted();
  using file = await openArchive(path);
  const size = (await file.stat()).size;
  if (size === 0) throw new ArchiveError(path, "empty file, not a tar archive");

  const entries = new Map<string, TarEntry>();
  const block = new Uint8Array(BLOCK_SIZE);
  let position = 0; // the file's current position, to skip needless seeks
  const readAt = async (offset: number, buffer: Uint8Array): Promise<number> => {
    if (position !== offset) await file.seek(offset, Deno.SeekMode.Start);
    const n = await readFull(file, buffer);
    position = offset + n;
    return n;
  };
  const truncated = (what: string, declared: number) =>
    new ArchiveError(
      path,
      `${what} declares ${declared} bytes but the archive ends at byte ${size} (truncated?)`,
    );

  let overrides: Overrides = {};
  let offset = 0;
  let endMarker = false;
  // A clean end of file exactly at a header boundary is accepted as the end of the archive.
  while (offset < size) {
    signal?.throwIfAborted();
    const got = await readAt(offset, block);
    if (got === BLOCK_SIZE && isZeroBlock(block)) {
      // The end marker is two zero blocks; accept one followed by end of file. Anything after
      // the marker (tar pads to a 10 KiB record) is ignored.
      if (await readAt(offset + BLOCK_SIZE, block) < BLOCK_SIZE || isZeroBlock(block)) {
        endMarker = true;
        break;
      }
      throw new ArchiveError(
        path,
        `unexpected header after an end-of-archive block at offset ${offset}`,
      );
    }
    if (offset === 0 && (got < BLOCK_SIZE || !hasValidChecksum(block))) {
      throw notTar(path, block.subarray(0, got));
    }
    if (got < BLOCK_SIZE) {
      throw new ArchiveError(
        path,
        `incomplete header at offset ${offset}: the archive ends at byte ${size} (truncated?)`,
      );
    }

    const header = parseHeader(block, offset, path);
    let dataOffset = offset + BLOCK_SIZE;
    if (header.sparseExtended) dataOffset = await skipSparseExtensions(dataOffset);
    const kind = header.kind;

    if (isMetaKind(kind)) {
      const what = `${META_NAMES[kind]} at offset ${offset}`;
      if (dataOffset + header.size > size) throw truncated(what, header.size);
      if (header.size > MAX_EXTENDED_HEADER) {
        throw new ArchiveError(path, `${what} is ${header.size} bytes, over the 1 MiB limit`);
      }
      const payload = new Uint8Array(header.size);
      await readAt(dataOffset, payload);
      if (kind !== "pax-global") overrides.at ??= offset;
      if (kind === "pax") {
        overrides = applyPax(overrides, parsePaxRecords(payload, path, what), path, what);
      } else if (kind === "pax-global") {
        parsePaxRecords(payload, path, what); // validated, but globals don't affect indexing
      } else if (kind === "gnu-long-name") {
        overrides.path = parseGnuLongName(payload);
      } else {
        overrides.linkPath = parseGnuLongName(payload);
      }
      offset = dataOffset + padded(header.size);
      continue;
    }

    const rawName = overrides.path ?? header.name;
    const entrySize = overrides.size ?? header.size;
    if (dataOffset + entrySize > size) throw truncated(`entry "${rawName}"`, entrySize);
    let type: TarEntry["type"] = kind;
    // Old tars mark directories only by a trailing slash on a regular-file header.
    if (type === "file" && rawName.endsWith("/")) type = "directory";
    if (overrides.sparse) type = "other";
    const linkName = overrides.linkPath ?? header.linkName;
    addEntry(entries, path, rawName, {
      type,
      size: entrySize,
      headerOffset: offset,
      dataOffset,
      ...((type === "hardlink" || type === "symlink") ? { linkName } : {}),
    });
    overrides = {};
    offset = dataOffset + padded(entrySize);
  }
  if (overrides.at !== undefined) {
    throw new ArchiveError(
      path,
      `extended header at offset ${overrides.at} is not followed by an entry (truncated?)`,
    );
  }
  return new Index(path, size, entries, endMarker);

  /** Old GNU sparse headers chain extension blocks, each flagging another at byte 504. */
  async function skipSparseExtensions(at: number): Promise<number> {
    for (;;) {
      if (await readAt(at, block) < BLOCK_SIZE) {
        throw new ArchiveError(path, `incomplete sparse header at offset ${at} (truncated?)`);
      }
      at += BLOCK_SIZE;
      if (block[504] === 0) return at;
    }
  }
}

type MetaKind = Exclude<HeaderKind, TarEntry["type"]>;

function isMetaKind(kind: HeaderKind): kind is MetaKind {
  return kind in META_NAMES;
}

const META_NAMES: Record<MetaKind, string> = {
  "pax": "PAX header",
  "pax-global": "PAX global header",
  "gnu-long-name": "GNU long name header",
  "gnu-long-link": "GNU long link header",
};

function padded(size: number): number {
  return Math.ceil(size / BLOCK_SIZE) * BLOCK_SIZE;
}

function addEntry(
  entries: Map<string, TarEntry>,
  archive: string,
  rawName: string,
  entry: Omit<TarEntry, "name">,
): void {
  const name = normalizeName(rawName);
  if (name === undefined) {
    const why = rawName.startsWith("/") ? "absolute" : 'contains ".."';
    throw new ArchiveError(
      archive,
      `unsafe path "${rawName}" at offset ${entry.headerOffset} (${why})`,
    );
  }
  if (name === "") {
    if (entry.type === "directory") return; // "./": the root directory
    throw new ArchiveError(archive, `entry at offset ${entry.headerOffset} has an empty name`);
  }
  const first = entries.get(name);
  if (first === undefined) {
    entries.set(name, { name, ...entry });
  } else if (first.type !== "directory" || entry.type !== "directory") {
    throw new ArchiveError(
      archive,
      `duplicate entry "${name}" at offset ${entry.headerOffset} (first at offset ${first.headerOffset})`,
    );
  }
}

/** Normalizes an archive path; undefined when it is absolute or has a ".." segment. */
function normalizeName(raw: string): string | undefined {
  if (raw.startsWith("/")) return undefined;
  const segments = raw.split("/").filter((s) => s !== "" && s !== ".");
  return segments.includes("..") ? undefined : segments.join("/");
}

/** Joins a link target onto a base directory lexically; undefined when it climbs above root. */
function joinPath(base: readonly string[], target: string): string[] | undefined {
  const parts = target.startsWith("/") ? [] : [...base];
  for (const segment of target.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment !== "..") parts.push(segment);
    else if (parts.pop() === undefined) return undefined;
  }
  return parts;
}

function applyPax(
  overrides: Overrides,
  records: Map<string, string>,
  archive: string,
  what: string,
): Overrides {
  const next = { ...overrides };
  for (const [key, value] of records) {
    // An empty value removes the key: the header field applies again.
    if (key === "path") {
      if (value === "") delete next.path;
      else next.path = value;
    } else if (key === "linkpath") {
      if (value === "") delete next.linkPath;
      else next.linkPath = value;
    } else if (key === "size") {
      const size = Number(value);
      if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(size)) {
        throw new ArchiveError(archive, `invalid size "${value}" in the ${what}`);
      }
      next.size = size;
    } else if (key.startsWith("GNU.sparse.")) {
      next.sparse = true;
      if (key === "GNU.sparse.name") next.path = value;
    }
  }
  return next;
}

function notTar(archive: string, start: Uint8Array): ArchiveError {
  for (const { magic, name, tool } of COMPRESSIONS) {
    if (magic.every((byte, i) => start[i] === byte)) {
      return new ArchiveError(
        archive,
        `the archive is ${name}-compressed; decompress it first (e.g. \`${tool}\`)`,
      );
    }
  }
  if (start.length < BLOCK_SIZE) {
    return new ArchiveError(
      archive,
      `not a tar archive (${start.length} bytes, shorter than one ${BLOCK_SIZE}-byte header)`,
    );
  }
  return new ArchiveError(archive, "not a tar archive (bad header checksum at offset 0)");
}

/** Opens the archive, refusing directories and pipes (indexing needs to seek). */
async function openArchive(path: string): Promise<Deno.FsFile> {
  try {
    const info = await Deno.stat(path);
    if (info.isDirectory) throw new ArchiveError(path, "is a directory, not a file");
    if (!info.isFile) {
      throw new ArchiveError(path, "is not a regular file (pipes and devices cannot be indexed)");
    }
    return await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof ArchiveError) throw error;
    const problem = error instanceof Deno.errors.NotFound ||
        error instanceof Deno.errors.NotADirectory
      ? "no such file"
      : error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotCapable
      ? "permission denied"
      : error instanceof Deno.errors.IsADirectory
      ? "is a directory, not a file"
      : `cannot open: ${error instanceof Error ? error.message : String(error)}`;
    throw new ArchiveError(path, problem, { cause: error });
  }
}

class Index implements TarIndex {
  constructor(
    readonly path: string,
    readonly size: number,
    readonly entries: ReadonlyMap<string, TarEntry>,
    readonly endMarker: boolean,
  ) {}

  get(name: string): TarEntry | undefined {
    const normalized = normalizeName(name);
    return normalized === undefined ? undefined : this.entries.get(normalized);
  }

  resolve(name: string): TarEntry {
    const fail = (problem: string) => new ArchiveError(this.path, problem);
    // A missing entry in an archive without its end marker is most likely cut off.
    const missing = `"${name}" not found in archive` +
      (this.endMarker ? "" : " (the archive has no end-of-archive marker: truncated?)");
    let parts = joinPath([], name);
    if (parts === undefined) throw fail(missing);
    const chain: string[] = [];
    let symlinks = false;
    for (let hop = 0; hop <= MAX_LINK_HOPS; hop++) {
      // Resolution is deterministic, so reaching a path seen before is a loop. (One link may
      // be passed twice without a loop, when different paths go through it.)
      const path = parts.join("/");
      const looped = chain.includes(path);
      chain.push(path);
      if (looped) throw fail(`${symlinks ? "symlink" : "hard link"} loop: ${chain.join(" -> ")}`);
      const [current, entry, rest] = this.#lookup(parts);
      if (entry === undefined) {
        // Directories need no entries of their own: "a/b/c" alone implies "a" and "a/b".
        const prefix = `${current}/`;
        if ([...this.entries.keys()].some((key) => key.startsWith(prefix))) {
          throw fail(`"${name}" is a directory, not a file`);
        }
        throw fail(
          hop === 0 ? missing : `"${name}" links to "${current}", which is not in the archive`,
        );
      }
      if (entry.type === "file") return entry;
      if (entry.type === "directory") throw fail(`"${name}" is a directory, not a file`);
      if (entry.type === "other") throw fail(`"${current}" is not a regular file`);
      symlinks ||= entry.type === "symlink";
      // Hard link targets are archive paths; symlinks are relative to their own directory.
      const base = entry.type === "symlink" ? current.split("/").slice(0, -1) : [];
      const target = joinPath(base, entry.linkName ?? "");
      if (target === undefined) {
        throw fail(`link "${current}" -> "${entry.linkName}" points outside the archive`);
      }
      parts = [...target, ...rest];
    }
    throw fail(
      `more than ${MAX_LINK_HOPS} links resolving "${name}" (a loop?): ` +
        `${chain.slice(0, 4).join(" -> ")} -> …`,
    );
  }

  /**
   * Finds the entry for a path, stopping early at a directory component that is a symlink:
   * returns that component's name and entry plus the components after it.
   */
  #lookup(parts: string[]): [string, TarEntry | undefined, string[]] {
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join("/");
      const entry = this.entries.get(prefix);
      if (entry?.type === "symlink") return [prefix, entry, parts.slice(i)];
    }
    const name = parts.join("/");
    return [name, this.entries.get(name), []];
  }
}

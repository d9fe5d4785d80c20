/**
 * Indexing a tar archive in place: read every header, seek past every file's data.
 *
 * Image archives keep `manifest.json` / `index.json` at the end, after gigabytes of layers, so
 * the index is built from headers alone (512 bytes per entry) and entries are then read by
 * byte range (`byte_range.ts`). Nothing is extracted.
 */
import { ArchiveError } from "../errors.ts";
import { readFull, readRange } from "./byte_range.ts";
import { BLOCK_SIZE, hasValidChecksum, isZeroBlock, parseHeader } from "./tar_header.ts";
import { IndexedNames, type TarEntry, TarNames } from "./tar_names.ts";
import { describeMeta, ExtendedHeaders, isMetaKind, notTar, padded } from "./tar_sequence.ts";

/** Options for {@linkcode indexTar}. */
export interface IndexTarOptions {
  /** Stops indexing between headers. */
  signal?: AbortSignal;
}

/**
 * The entries of a tar archive, by normalized name, and the way to read their data: in place
 * from a file ({@linkcode indexTar}), or what a stream kept of them as it went past.
 */
export interface TarIndex {
  /** Names the archive in messages: its path, or how a stream was named (`-`, `app.tar.gz`). */
  readonly label: string;
  /** The archive's size in bytes (for a stream: the bytes read). */
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
  /**
   * Streams `length` bytes of `entry`'s data from `offset` on; every chunk is the consumer's.
   *
   * @throws {ArchiveError} when the data cannot be read again (a stream went past it).
   */
  read(
    entry: TarEntry,
    offset: number,
    length: number,
    signal?: AbortSignal,
  ): AsyncIterable<Uint8Array>;
  /** The sha256 of `entry`'s data, when it is known without reading it (a stream hashed it). */
  knownDigest?(entry: TarEntry): string | undefined;
}

/** An index of a tar file, read in place. */
export interface FileTarIndex extends TarIndex {
  /** The archive file. */
  readonly path: string;
}

/**
 * Indexes the tar archive at `path` by reading its headers and seeking past file data, so a
 * multi-gigabyte archive takes milliseconds.
 *
 * @example
 * ```ts
 * import { readRangeBytes } from "./byte_range.ts";
 *
 * const index = await indexTar("image.tar");
 * const manifest = index.resolve("manifest.json");
 * const bytes = await readRangeBytes(index.path, manifest.dataOffset, manifest.size, 1 << 20);
 * ```
 * @throws {ArchiveError} when the file cannot be opened or is not a well-formed tar archive.
 */
export async function indexTar(
  path: string,
  options?: IndexTarOptions,
): Promise<FileTarIndex> {
  const signal = options?.signal;
  signal?.throwIfAborted();
  using file = await openArchive(path);
  const size = (await file.stat()).size;
  if (size === 0) throw new ArchiveError(path, "empty file, not a tar archive");

  const names = new TarNames(path);
  const extended = new ExtendedHeaders(path);
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
      if (dataOffset + header.size > size) throw truncated(describeMeta(kind, offset), header.size);
      extended.checkSize(kind, offset, header.size);
      const payload = new Uint8Array(header.size);
      await readAt(dataOffset, payload);
      extended.apply(kind, offset, payload);
      offset = dataOffset + padded(header.size);
      continue;
    }

    const entry = extended.take(header, kind);
    if (dataOffset + entry.size > size) throw truncated(`entry "${entry.rawName}"`, entry.size);
    names.add(entry.rawName, {
      type: entry.type,
      size: entry.size,
      headerOffset: offset,
      dataOffset,
      ...(entry.linkName === undefined ? {} : { linkName: entry.linkName }),
    });
    offset = dataOffset + padded(entry.size);
  }
  extended.finish();
  names.endMarker = endMarker;
  return new Index(path, size, names);

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

class Index extends IndexedNames implements FileTarIndex {
  constructor(readonly path: string, readonly size: number, names: TarNames) {
    super(names);
  }

  get label(): string {
    return this.path;
  }

  read(
    entry: TarEntry,
    offset: number,
    length: number,
    signal?: AbortSignal,
  ): AsyncIterable<Uint8Array> {
    return readRange(this.path, entry.dataOffset + offset, length, signal ? { signal } : {});
  }
}

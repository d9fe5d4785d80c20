/**
 * Reading byte ranges of an archive file: entries are read in place, never extracted.
 */
import { allocate, POOLED_SIZE } from "../release.ts";

/** Options for {@linkcode readRange}. */
export interface ReadRangeOptions {
  /** Largest chunk yielded, in bytes. Default 1 MiB. */
  chunkSize?: number;
  /** Stops the read between chunks. */
  signal?: AbortSignal;
}

const DEFAULT_CHUNK_SIZE = POOLED_SIZE;

/** Synchronous reads in a row before one goes async, giving the event loop a turn. */
const SYNC_RUN = 8;

/**
 * Streams exactly `length` bytes starting at `offset` of the file at `path`.
 *
 * Each call opens its own file handle, so several ranges of one archive can be read at once,
 * and closes it when the range is done, fails, or the consumer stops early. Every chunk is a
 * Uint8Array of its own that the consumer may keep, or hand back with `release` (release.ts)
 * once done with it, for a later chunk to reuse.
 *
 * @example
 * ```ts
 * for await (const chunk of readRange("image.tar", entry.dataOffset, entry.size)) {
 *   hash.update(chunk);
 * }
 * ```
 * @throws {Error} when the file ends before `offset + length`.
 */
export async function* readRange(
  path: string,
  offset: number,
  length: number,
  options?: ReadRangeOptions,
): AsyncGenerator<Uint8Array> {
  checkRange(offset, length);
  const chunkSize = options?.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) {
    throw new RangeError(`Invalid chunk size ${chunkSize}: expected a positive integer`);
  }
  const signal = options?.signal;
  signal?.throwIfAborted();
  using file = await Deno.open(path, { read: true });
  await file.seek(offset, Deno.SeekMode.Start);
  // A regular file is read synchronously, mostly: the async read hands every chunk to a thread
  // and back, which for a push as stored of 1.4 GB cost 0.08 of 0.75 client CPU-s (issue 21,
  // against reading it all synchronously). Every SYNC_RUN-th read still goes async, so that a
  // consumer that never waits itself (a hash) lets timers, I/O and Ctrl-C in. (Counted, not
  // timed: the time a consumer spends waiting for its socket says nothing about whether the
  // event loop has had a turn.) A file that blocks for long, on a hung network file system,
  // holds the event loop for as long.
  const sync = (await file.stat()).isFile;
  let run = 0;
  let position = offset;
  const end = offset + length;
  while (position < end) {
    signal?.throwIfAborted();
    // A buffer per chunk (the consumer may still hold the previous one): a released one if
    // there is one, or else a new one.
    const chunk = allocate(Math.min(chunkSize, end - position));
    run = sync ? (run + 1) % SYNC_RUN : 0;
    const got = run === 0 ? await readFull(file, chunk) : readFullSync(file, chunk);
    if (got < chunk.length) throw endOfFile(path, position + got);
    position += got;
    yield chunk;
  }
}

/**
 * Reads `length` bytes at `offset` into memory: for small entries such as JSON manifests.
 *
 * @throws {RangeError} when `length` exceeds `maxBytes`.
 * @throws {Error} when the file ends before `offset + length`.
 */
export async function readRangeBytes(
  path: string,
  offset: number,
  length: number,
  maxBytes: number,
): Promise<Uint8Array> {
  checkRange(offset, length);
  if (length > maxBytes) {
    throw new RangeError(
      `Cannot read ${length} bytes at offset ${offset} of ${path}: the limit is ${maxBytes} bytes`,
    );
  }
  using file = await Deno.open(path, { read: true });
  await file.seek(offset, Deno.SeekMode.Start);
  const bytes = new Uint8Array(length);
  const got = await readFull(file, bytes);
  if (got < length) throw endOfFile(path, offset + got);
  return bytes;
}

/**
 * Fills `buffer` from the file's current position, looping over short reads.
 * Returns the number of bytes read: less than `buffer.length` only at end of file.
 */
export async function readFull(file: Deno.FsFile, buffer: Uint8Array): Promise<number> {
  let filled = 0;
  while (filled < buffer.length) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled;
}

/** {@linkcode readFull}, blocking: for a regular file, whose reads don't wait for long. */
function readFullSync(file: Deno.FsFile, buffer: Uint8Array): number {
  let filled = 0;
  while (filled < buffer.length) {
    const n = file.readSync(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled;
}

function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new RangeError(`Invalid offset ${offset}: expected a non-negative integer`);
  }
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`Invalid length ${length}: expected a non-negative integer`);
  }
}

function endOfFile(path: string, position: number): Error {
  return new Error(`Unexpected end of file at byte ${position} of ${path}`);
}

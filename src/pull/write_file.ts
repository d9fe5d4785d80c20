/**
 * Writing a laid-out archive to a file, resumably. The whole archive is laid out in
 * `OUTPUT.partial` at once (headers and small files written, layers' space left as holes);
 * layers then download in parallel, each through its own file handle straight to its offset.
 * Progress is saved in `OUTPUT.partial.json` (see `partial_state.ts`) whenever a layer has
 * {@linkcode SAVE_EVERY_BYTES} more in place than its last save took, at least every second
 * while bytes move, and when the run stops. Only a complete archive, every digest checked, is
 * renamed to `OUTPUT`.
 */
import type { ProgressSink } from "../progress/events.ts";
import { runBounded } from "../pool.ts";
import type { RegistryClient } from "../registry/client.ts";
import { BlobTally, downloadBlob } from "./blob_download.ts";
import {
  layoutFingerprint,
  loadPartialState,
  partialPaths,
  type SavedBlob,
  savePartialState,
  StateSaver,
} from "./partial_state.ts";
import { DiskFullError, isNoSpace, OutputWriteError } from "./pull_errors.ts";
import { localHash, type RunningHash } from "./running_hash.ts";
import { type LaidOutEntry, padded, tarHeader, type TarLayout } from "./tar_layout.ts";

export interface WriteFileOptions {
  /** The client to download each layer from, by digest. */
  clientFor: (digest: string) => RegistryClient;
  /** Layers downloaded at once. */
  maxConcurrent: number;
  /** Where each layer's running sha256 is kept. Default: this thread ({@linkcode localHash}). */
  newHash?: () => RunningHash;
  sink: ProgressSink;
  signal?: AbortSignal;
  /** Continue a saved partial archive (default true); false starts again. */
  resume?: boolean;
  /** How often progress is saved while downloads run. Default 1000 ms. */
  saveIntervalMs?: number;
  /**
   * Bytes a layer gets in place between saves of progress, whatever the time; a layer waits for
   * a save once it has 2.5 times this much in place that no written state holds. Default
   * {@linkcode SAVE_EVERY_BYTES}.
   */
  saveEveryBytes?: number;
  /**
   * Bytes a layer's download writes between flushes to disk, made while it goes on (0: only
   * the one before the rename). Default {@linkcode FLUSH_EVERY_BYTES}.
   */
  flushEveryBytes?: number;
}

/**
 * The archive is flushed to disk (`fdatasync`) before it is renamed into place. Flushed only
 * then, 1.5 GB took 0.4–0.6 s after the last byte arrived; flushed every 256 MiB of each layer
 * as it downloads, the disk works while the network does and the last flush has little left.
 */
export const FLUSH_EVERY_BYTES = 256 * 1024 * 1024;

/**
 * A layer's progress is saved each time it has this many more bytes in place than its last save
 * took. Saved only every second, a pull over loopback (200–400 MB/s) killed at 25, 50 and 90 %
 * of a 1 GiB layer made its rerun fetch 69 to 230 MiB it had received already, and a kill
 * before the first second kept nothing. A save (the prefix's sha256 from the hashing worker, the
 * state file overwritten in place) takes milliseconds, so 16 MiB makes a few dozen a second at
 * most.
 *
 * A save can still be slow: created and renamed each time, the state file waited up to 0.5 s
 * for ext4 while the archive was flushed (`EarlyFlush`), and the saved state fell 98 MiB behind
 * what had been received. So, whatever holds a save up, a layer with 2.5 times this much
 * (40 MiB) in place that no written state holds waits for the save under way before it writes
 * more. A kill then loses at most those 40 MiB, one batch, and what the kernel and the
 * transport hold for the download (~10 MiB): within 64 MiB of what had been received. Measured
 * (scripts/bench_resume.ts), the saved state trailed the bytes received by 19–28 MiB at most.
 */
export const SAVE_EVERY_BYTES = 16 * 1024 * 1024;

/** The sha256 of no bytes: a layer with nothing in place. */
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** What a file pull did. */
export interface WriteFileResult {
  /** Layer bytes downloaded by this run. */
  downloaded: number;
  /** Layer bytes kept from an earlier, interrupted run. */
  reused: number;
  /** Whether a saved partial archive was continued. */
  resumed: boolean;
}

type BlobEntry = LaidOutEntry & { kind: "blob"; digest: string };

/** Writes `layout` to `output` through `OUTPUT.partial`, continuing a saved partial archive. */
export async function writeArchiveFile(
  output: string,
  layout: TarLayout,
  options: WriteFileOptions,
): Promise<WriteFileResult> {
  const paths = partialPaths(output);
  const fingerprint = layoutFingerprint(layout);
  let saved = options.resume === false
    ? undefined
    : await loadPartialState(paths.state, fingerprint);
  const blobs = layout.entries.filter((e): e is BlobEntry => e.kind === "blob");
  const layersEnd = blobs.reduce((end, b) => Math.max(end, b.dataOffset + padded(b.size)), 0);
  if (saved !== undefined) {
    const size = await Deno.stat(paths.data).then((s) => s.size, () => -1);
    if (size < layersEnd) saved = undefined;
  } else if (options.resume !== false && await exists(paths.state)) {
    options.sink({
      type: "notice",
      kind: "partial-replaced",
      message: `${paths.data} belongs to another pull (the images changed); starting again`,
    });
  }
  const newHash = options.newHash ?? localHash;
  const tallies = new Map(
    blobs.map((b) => [b.digest, new BlobTally(b.digest, b.size, newHash())]),
  );
  // Per layer, the count the latest save took.
  const takenDone = new Map<string, number>();
  // Prefixes kept from an earlier run and not yet re-hashed: saved as they were, or a kill
  // before a layer's turn (or during its re-hash) would lose them.
  const unchecked = new Map(Object.entries(saved?.blobs ?? {}).filter(([d]) => tallies.has(d)));
  const state = async () => {
    // Every layer, so every save has the same length (see partial_state.ts). Each count is
    // taken with its hash's request, so the two describe the same bytes.
    const taken = [...tallies.values()].map((t) => {
      const kept = unchecked.get(t.digest);
      if (kept !== undefined) return { digest: t.digest, ...kept };
      takenDone.set(t.digest, t.done);
      return {
        digest: t.digest,
        done: t.done,
        sha256: t.done === 0 ? EMPTY_SHA256 : t.prefixHex(),
      };
    });
    const blobs: Record<string, SavedBlob> = {};
    for (const { digest, done, sha256 } of taken) blobs[digest] = { done, sha256: await sha256 };
    return { version: 1 as const, layout: fingerprint, blobs };
  };
  // A failed write to the archive file names it (the download's own errors pass as they are).
  const writeError = (error: unknown) =>
    error instanceof OutputWriteError
      ? error
      : isNoSpace(error)
      ? new DiskFullError(paths.data, layout.totalSize, error)
      : new OutputWriteError(paths.data, error);

  // A `.partial` this run makes is removed if it fails before its first state is saved: a
  // full-size file with no state beside it continues nothing, and the next run would say it
  // "belongs to another pull". One an earlier run left is never removed.
  const made = !(await lexists(paths.data));
  try {
    try {
      await layOutFile(paths.data, layout, saved === undefined ? 0 : layersEnd);
    } catch (error) {
      throw writeError(error);
    }
    if (saved === undefined) await savePartialState(paths.state, await state());
  } catch (error) {
    if (made) await Deno.remove(paths.data).catch(() => {});
    throw error;
  }

  let reused = 0;
  let downloaded = 0;
  await using saver = new StateSaver(paths.state, state);
  let dirty = false;
  const save = () => {
    dirty = false;
    saver.request();
  };
  const saveEvery = options.saveEveryBytes ?? SAVE_EVERY_BYTES;
  const holdAt = saveEvery * 2.5;
  const timer = setInterval(() => {
    if (dirty) save();
  }, options.saveIntervalMs ?? 1000);
  const bytes = blobs.reduce((sum, b) => sum + b.size, 0);
  options.sink({ type: "plan", image: output, blobs: blobs.length, bytes });
  try {
    await runBounded(blobs, options.maxConcurrent, async (entry) => {
      options.signal?.throwIfAborted();
      const tally = tallies.get(entry.digest)!;
      using file = await Deno.open(paths.data, { write: true, read: true }).catch((error) => {
        throw writeError(error);
      });
      const kept = saved?.blobs[entry.digest];
      if (kept !== undefined) {
        const matches = await prefixMatches(file, entry, kept, tally).finally(() => {
          unchecked.delete(entry.digest);
        });
        if (matches) {
          reused += tally.done;
        } else {
          tally.reset();
          options.sink({
            type: "notice",
            kind: "resume-mismatch",
            digest: entry.digest,
            message: `The saved part of ${entry.digest} did not match; downloading it again`,
          });
        }
      }
      if (tally.done === entry.size && `sha256:${await tally.prefixHex()}` === entry.digest) {
        options.sink({
          type: "blob-done",
          digest: entry.digest,
          size: entry.size,
          outcome: "skipped",
        });
        return;
      }
      const client = options.clientFor(entry.digest);
      const start = tally.done;
      options.sink({
        type: "blob-start",
        digest: entry.digest,
        size: entry.size,
        attempt: 1,
        ...(start > 0 ? { from: start } : {}),
      });
      let position = -1;
      const flusher = new EarlyFlush(file, options.flushEveryBytes ?? FLUSH_EVERY_BYTES);
      try {
        await downloadBlob(client, tally, {
          rewritable: true,
          write: async (chunk, at) => {
            if (at - (saver.saved?.blobs[entry.digest]?.done ?? 0) >= holdAt) {
              save();
              await saver.settled();
            }
            try {
              if (position !== at) await file.seek(entry.dataOffset + at, Deno.SeekMode.Start);
              writeAllSync(file, chunk);
            } catch (error) {
              throw writeError(error);
            }
            position = at + chunk.length;
            flusher.wrote(chunk.length);
          },
        }, {
          resumed: start > 0,
          onProgress: (t) => {
            dirty = true;
            if (t.done - (takenDone.get(t.digest) ?? 0) >= saveEvery) save();
            options.sink({
              type: "blob-progress",
              digest: entry.digest,
              done: t.done,
              size: t.size,
            });
          },
          onRestart: (reason) => {
            // The saved prefix is being written over: stop claiming it now, and save by bytes
            // from 0 again (not from the count the last save took).
            takenDone.set(entry.digest, 0);
            save();
            options.sink({
              type: "notice",
              kind: "download-restarted",
              digest: entry.digest,
              message: `Downloading ${entry.digest} again: ${reason}`,
            });
          },
        });
        await flusher.done().catch((error) => {
          throw writeError(error);
        });
      } catch (error) {
        await flusher.done().catch(() => {});
        throw error;
      } finally {
        downloaded += Math.max(0, tally.done - start);
      }
      options.sink({
        type: "blob-done",
        digest: entry.digest,
        size: entry.size,
        outcome: "uploaded",
      });
    });
    {
      using file = await Deno.open(paths.data, { write: true }).catch((error) => {
        throw writeError(error);
      });
      await file.syncData().catch((error) => {
        throw writeError(error);
      });
    }
  } catch (error) {
    clearInterval(timer);
    await saver.flush();
    throw error;
  }
  clearInterval(timer);
  await saver.settled();
  await Deno.rename(paths.data, output).catch((error) => {
    throw new OutputWriteError(output, error);
  });
  await Deno.remove(paths.state).catch(() => {});
  return { downloaded, reused, resumed: saved !== undefined };
}

/**
 * Writes every header and every small file's data. The file is sized to the whole archive; its
 * holes read as zeros (padding, the end marker, layers not yet downloaded). `keep` bytes at its
 * start (the layers of a resumed run) are kept; everything after them is written afresh.
 */
async function layOutFile(path: string, layout: TarLayout, keep: number): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true, truncate: keep === 0 });
  await file.truncate(keep);
  await file.truncate(layout.totalSize);
  for (const entry of layout.entries) {
    await file.seek(entry.headerOffset, Deno.SeekMode.Start);
    await writeAll(file, tarHeader(entry));
    if (entry.kind === "bytes") await writeAll(file, entry.data);
  }
}

/** Bytes of a saved prefix read from the file at a time to re-hash it. */
const REHASH_BYTES = 1024 * 1024;

/**
 * Re-hashes a saved prefix from the file; on a match the tally holds it. Two buffers in shared
 * memory: one is read into while the hashing worker reads the other where it is. With a plain
 * buffer each hash request carried a copy, and the copies, made and freed on two threads, took
 * the rerun of a 1 GiB pull killed half-way to 158 MB peak RSS, against 101 MB for a whole pull.
 */
async function prefixMatches(
  file: Deno.FsFile,
  entry: BlobEntry,
  kept: SavedBlob,
  tally: BlobTally,
): Promise<boolean> {
  if (kept.done > entry.size) return false;
  await file.seek(entry.dataOffset, Deno.SeekMode.Start);
  const size = Math.min(REHASH_BYTES, Math.max(kept.done, 1));
  const buffers = [0, 1].map(() => new Uint8Array(new SharedArrayBuffer(size)));
  let hashing: Promise<void> = Promise.resolve();
  try {
    for (let at = 0, turn = 0; at < kept.done; turn++) {
      // The other buffer may still be hashed; this one's earlier hash ended before that began.
      const buffer = buffers[turn % 2]!.subarray(0, Math.min(size, kept.done - at));
      const read = await file.read(buffer);
      if (read === null || read === 0) return false;
      await hashing;
      hashing = tally.add(buffer.subarray(0, read));
      at += read;
    }
  } finally {
    // Never leave a hash reading a buffer, nor its failure unheard, past this function.
    await hashing.catch(() => {});
  }
  await hashing;
  return await tally.prefixHex() === kept.sha256;
}

/** Flushes a file to disk in the background every `every` bytes written through it. */
class EarlyFlush {
  readonly #file: Deno.FsFile;
  readonly #every: number;
  #pending = 0;
  #flushing: Promise<void> = Promise.resolve();

  constructor(file: Deno.FsFile, every: number) {
    this.#file = file;
    this.#every = every;
  }

  wrote(bytes: number): void {
    this.#pending += bytes;
    if (this.#every <= 0 || this.#pending < this.#every) return;
    this.#pending = 0;
    this.#flushing = this.#flushing.then(() => this.#file.syncData());
    // Awaited in `done`; until then a failure is not "unhandled".
    this.#flushing.catch(() => {});
  }

  /** Waits for the flushes started; throws the first that failed. */
  done(): Promise<void> {
    return this.#flushing;
  }
}

/**
 * Writes a downloaded batch into the page cache synchronously: a 1 MiB write blocks the event
 * loop for a fraction of a millisecond, while Deno's asynchronous write (a hop to another
 * thread and back for each batch) made the 1.5 GB benchmark pull 0.3 s slower (median of six
 * runs each, 2.55 s against 2.21 s). The flushes to disk (`EarlyFlush`, the last `syncData`)
 * stay asynchronous.
 */
function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length;) at += file.writeSync(bytes.subarray(at));
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Whether anything is at `path`, a dangling symbolic link included. */
async function lexists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

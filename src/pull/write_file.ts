/**
 * Writing a laid-out archive to a file, resumably. The whole archive is laid out in
 * `OUTPUT.partial` at once (headers and small files written, layers' space left as holes);
 * layers then download in parallel, each through its own file handle straight to its offset.
 * Progress is saved in `OUTPUT.partial.json` (see `partial_state.ts`) every second and when the
 * run stops. Only a complete archive, every digest checked, is renamed to `OUTPUT`.
 */
import type { ProgressSink } from "../progress/events.ts";
import { runBounded } from "../push/pool.ts";
import type { RegistryClient } from "../registry/client.ts";
import { BlobTally, downloadBlob } from "./blob_download.ts";
import {
  layoutFingerprint,
  loadPartialState,
  partialPaths,
  type SavedBlob,
  savePartialState,
} from "./partial_state.ts";
import { DiskFullError, isNoSpace } from "./pull_errors.ts";
import { type LaidOutEntry, padded, tarHeader, type TarLayout } from "./tar_layout.ts";

export interface WriteFileOptions {
  /** The client to download each layer from, by digest. */
  clientFor: (digest: string) => RegistryClient;
  /** Layers downloaded at once. */
  maxConcurrent: number;
  sink: ProgressSink;
  signal?: AbortSignal;
  /** Continue a saved partial archive (default true); false starts again. */
  resume?: boolean;
  /** How often progress is saved while downloads run. Default 1000 ms. */
  saveIntervalMs?: number;
}

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
      message: `${paths.data} belongs to another pull (the images changed); starting again`,
    });
  }
  const tallies = new Map(blobs.map((b) => [b.digest, new BlobTally(b.digest, b.size)]));
  const state = () => ({
    version: 1 as const,
    layout: fingerprint,
    blobs: Object.fromEntries(
      [...tallies.values()].filter((t) => t.done > 0).map((
        t,
      ): [string, SavedBlob] => [t.digest, { done: t.done, sha256: t.prefixHex() }]),
    ),
  });
  const noSpace = (error: unknown) =>
    isNoSpace(error) ? new DiskFullError(paths.data, layout.totalSize, error) : error;

  try {
    await layOutFile(paths.data, layout, saved === undefined ? 0 : layersEnd);
  } catch (error) {
    throw noSpace(error);
  }
  if (saved === undefined) await savePartialState(paths.state, state());

  let reused = 0;
  let downloaded = 0;
  let saving: Promise<void> = Promise.resolve();
  let dirty = false;
  const save = () => {
    dirty = false;
    saving = saving.then(() => savePartialState(paths.state, state())).catch(() => {
      // A state file that could not be written only costs a rerun some bytes.
    });
    return saving;
  };
  const timer = setInterval(() => {
    if (dirty) save();
  }, options.saveIntervalMs ?? 1000);
  const bytes = blobs.reduce((sum, b) => sum + b.size, 0);
  options.sink({ type: "plan", image: output, blobs: blobs.length, bytes });
  try {
    await runBounded(blobs, options.maxConcurrent, async (entry) => {
      options.signal?.throwIfAborted();
      const tally = tallies.get(entry.digest)!;
      using file = await Deno.open(paths.data, { write: true, read: true });
      const kept = saved?.blobs[entry.digest];
      if (kept !== undefined) {
        if (await prefixMatches(file, entry, kept, tally)) {
          reused += tally.done;
        } else {
          tally.reset();
          options.sink({
            type: "notice",
            message: `The saved part of ${entry.digest} did not match; downloading it again`,
          });
        }
      }
      if (tally.done === entry.size && `sha256:${tally.prefixHex()}` === entry.digest) {
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
      options.sink({ type: "blob-start", digest: entry.digest, size: entry.size, attempt: 1 });
      let position = -1;
      try {
        await downloadBlob(client, tally, {
          rewritable: true,
          write: async (chunk, at) => {
            if (position !== at) await file.seek(entry.dataOffset + at, Deno.SeekMode.Start);
            await writeAll(file, chunk);
            position = at + chunk.length;
          },
        }, {
          resumed: start > 0,
          onProgress: (t) => {
            dirty = true;
            options.sink({
              type: "blob-progress",
              digest: entry.digest,
              done: t.done,
              size: t.size,
            });
          },
          onRestart: (reason) => {
            dirty = true;
            options.sink({
              type: "notice",
              message: `Downloading ${entry.digest} again: ${reason}`,
            });
          },
        });
      } catch (error) {
        throw noSpace(error);
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
      using file = await Deno.open(paths.data, { write: true });
      await file.syncData().catch((error) => {
        throw noSpace(error);
      });
    }
  } catch (error) {
    clearInterval(timer);
    await save();
    throw error;
  }
  clearInterval(timer);
  await saving;
  await Deno.rename(paths.data, output);
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

/** Re-hashes a saved prefix from the file; on a match the tally holds it. */
async function prefixMatches(
  file: Deno.FsFile,
  entry: BlobEntry,
  kept: SavedBlob,
  tally: BlobTally,
): Promise<boolean> {
  if (kept.done > entry.size) return false;
  await file.seek(entry.dataOffset, Deno.SeekMode.Start);
  const buffer = new Uint8Array(Math.min(1024 * 1024, Math.max(kept.done, 1)));
  while (tally.done < kept.done) {
    const want = Math.min(buffer.length, kept.done - tally.done);
    const read = await file.read(buffer.subarray(0, want));
    if (read === null || read === 0) return false;
    tally.add(buffer.slice(0, read));
  }
  return tally.prefixHex() === kept.sha256;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

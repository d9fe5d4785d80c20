/**
 * Writing a laid-out archive to a stream (`-o -`): entries in archive order, layers first and
 * the JSON files last, so `push -f -` at the other end of a pipe can send each layer as it
 * arrives. Up to `maxConcurrent` layers download at once: the one being written goes straight
 * into the stream (its backpressure paces the download), and the next ones download into memory
 * meanwhile, each up to its share of `aheadBytes`, then wait for their turn with their
 * connections paused. Memory stays bounded whatever the layers' sizes. A cut download continues
 * with a Range request (skipping bytes already taken if the registry ignores the range); there
 * is no resume across runs.
 */
import type { ProgressSink } from "../progress/events.ts";
import { runBounded } from "../pool.ts";
import type { RegistryClient } from "../registry/client.ts";
import { BlobTally, downloadBlob } from "./blob_download.ts";
import type { RunningHash } from "./running_hash.ts";
import {
  endOfArchive,
  type LaidOutEntry,
  paddingFor,
  tarHeader,
  type TarLayout,
} from "./tar_layout.ts";

export interface WriteStreamOptions {
  clientFor: (digest: string) => RegistryClient;
  sink: ProgressSink;
  signal?: AbortSignal;
  /** Layers downloading at once, the one being written included. Default 1. */
  maxConcurrent?: number;
  /**
   * Bytes of the layers after the one being written held in memory at most, shared evenly among
   * them. Default 32 MiB.
   */
  aheadBytes?: number;
  /** Where each layer's running sha256 is kept. Default: this thread. */
  newHash?: () => RunningHash;
  /** What progress calls the stream (a device's path, say). Default: "standard output". */
  label?: string;
}

const DEFAULT_AHEAD_BYTES = 32 * 1024 * 1024;

type BlobEntry = LaidOutEntry & { kind: "blob"; digest: string };

/** Writes `layout` into `stream`, closing it at the end (aborting it on failure). */
export async function writeArchiveStream(
  stream: WritableStream<Uint8Array>,
  layout: TarLayout,
  options: WriteStreamOptions,
): Promise<{ downloaded: number }> {
  const writer = stream.getWriter();
  const blobs = layout.entries.filter((e): e is BlobEntry => e.kind === "blob");
  const concurrent = Math.max(1, Math.min(options.maxConcurrent ?? 1, blobs.length));
  const share = concurrent > 1
    ? Math.floor((options.aheadBytes ?? DEFAULT_AHEAD_BYTES) / (concurrent - 1))
    : 0;
  const lanes = new Map(blobs.map((b) => [b.digest, new Lane(share)]));
  options.sink({
    type: "plan",
    image: options.label ?? "standard output",
    blobs: blobs.length,
    bytes: blobs.reduce((sum, b) => sum + b.size, 0),
  });
  const downloads = runBounded(blobs, concurrent, async (entry) => {
    const lane = lanes.get(entry.digest)!;
    try {
      options.signal?.throwIfAborted();
      options.sink({ type: "blob-start", digest: entry.digest, size: entry.size, attempt: 1 });
      const tally = new BlobTally(entry.digest, entry.size, options.newHash?.());
      await downloadBlob(options.clientFor(entry.digest), tally, {
        rewritable: false,
        write: (chunk) => lane.write(chunk),
      }, {
        onProgress: (t) =>
          options.sink({
            type: "blob-progress",
            digest: entry.digest,
            done: t.done,
            size: t.size,
          }),
      });
      lane.finish();
    } catch (error) {
      lane.fail(error);
      throw error;
    }
  });
  // A failure stops new downloads: the lanes that never start fail with it.
  downloads.catch((error) => {
    for (const lane of lanes.values()) lane.fail(error);
  });

  let downloaded = 0;
  try {
    for (const entry of layout.entries) {
      options.signal?.throwIfAborted();
      await writer.write(tarHeader(entry));
      if (entry.kind === "bytes") {
        await writer.write(entry.data);
      } else if (entry.kind === "blob") {
        await lanes.get(entry.digest)!.writeTo(writer);
        downloaded += entry.size;
        options.sink({
          type: "blob-done",
          digest: entry.digest,
          size: entry.size,
          outcome: "uploaded",
        });
      }
      if (entry.size % 512 !== 0) await writer.write(paddingFor(entry.size));
    }
    await writer.write(endOfArchive());
    await writer.close();
  } catch (error) {
    // Downloads still running (or waiting for their turn) stop at their next write.
    for (const lane of lanes.values()) lane.fail(error);
    await downloads.catch(() => {});
    await writer.abort(error).catch(() => {});
    throw error;
  } finally {
    writer.releaseLock();
  }
  await downloads;
  return { downloaded };
}

/**
 * One layer's way into the stream. Until its turn comes its bytes are held in memory, up to
 * `cap` (a write that would pass it waits); on its turn what is held goes out, then every write
 * goes straight into the stream.
 */
class Lane {
  readonly #cap: number;
  #held: Uint8Array[] = [];
  #heldBytes = 0;
  #out: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #failure: { error: unknown } | undefined;
  /** Wakes a write waiting for room, on the lane's turn or its failure. */
  #wake: (() => void) | undefined;
  readonly #done = Promise.withResolvers<void>();

  constructor(cap: number) {
    this.#cap = cap;
    // Awaited on the lane's turn; a lane whose turn never comes must not fail "unhandled".
    this.#done.promise.catch(() => {});
  }

  /** Takes a chunk of the layer (lent: copied if held). */
  async write(chunk: Uint8Array): Promise<void> {
    while (
      this.#out === undefined && this.#failure === undefined &&
      this.#heldBytes > 0 && this.#heldBytes + chunk.length > this.#cap
    ) {
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    if (this.#failure !== undefined) throw this.#failure.error;
    if (this.#out !== undefined) return await this.#out.write(chunk);
    this.#held.push(chunk.slice());
    this.#heldBytes += chunk.length;
  }

  /** All of the layer was written to the lane. */
  finish(): void {
    this.#done.resolve();
  }

  /** The lane fails (its download, or the stream): waiting and later writes throw `error`. */
  fail(error: unknown): void {
    this.#failure ??= { error };
    this.#held = [];
    this.#heldBytes = 0;
    this.#done.reject(error);
    this.#wakeWriter();
  }

  /** The lane's turn: writes what is held, then the rest as it comes; resolves at its end. */
  async writeTo(out: WritableStreamDefaultWriter<Uint8Array>): Promise<void> {
    for (let chunk = this.#held.shift(); chunk !== undefined; chunk = this.#held.shift()) {
      if (this.#failure !== undefined) break;
      await out.write(chunk);
      this.#heldBytes -= chunk.length;
    }
    // Nothing is held now, and nothing is awaited before writes switch to the stream.
    this.#out = out;
    this.#wakeWriter();
    await this.#done.promise;
  }

  #wakeWriter(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

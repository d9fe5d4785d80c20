/**
 * What one image's push did, and the tally that adds it up as blobs are placed: each blob is
 * counted once, as uploaded, found (skipped) or mounted, with its size as the registry holds it
 * and as the archive holds it, and its `blob-done` event is emitted here.
 */
import type { ArchiveBlob } from "../archive/image.ts";
import { declaredCompression } from "../image/media_types.ts";
import type { ProgressSink } from "../progress/events.ts";
import type { Descriptor } from "../image/descriptor.ts";
import type { PushedReferrer } from "./graph_referrers.ts";
import type { Placement } from "./writer.ts";

export interface BlobTally {
  count: number;
  /** As the registry holds them: a layer compressed on the way counts its compressed size. */
  bytes: number;
  /** The same blobs as the archive holds them (more than `bytes` where layers were compressed). */
  archiveBytes: number;
}

export interface PushResult {
  /** Digest of the root manifest. */
  digest: string;
  /** The root manifest as pushed (or as a push would push it). */
  manifest: { mediaType: string; digest: string; size: number };
  uploaded: BlobTally;
  /** Blobs the registry already had. */
  skipped: BlobTally;
  /**
   * Blobs mounted from another repository (`mountFrom`, or one the cache knows) instead of
   * uploaded; in a dry run, those that repository holds, so a push would mount them.
   */
  mounted: BlobTally;
  /** Layers compressed on the way up: their size in the archive, and compressed. */
  compressed: { count: number; bytes: number; size: number };
  /** The same layers by digest (a run that sends one layer to two registries counts it once). */
  compressedLayers: ReadonlyMap<string, { bytes: number; size: number }>;
  /**
   * True when nothing was sent (a dry run); `uploaded`, `skipped` and `mounted` then count
   * what a push would do, found with the same lookups (`HEAD`s only).
   */
  dryRun: boolean;
  /**
   * False in a dry run that would compress layers it has never compressed before: `digest` is
   * then the manifest's as far as known, not what a real push would produce.
   */
  manifestFinal: boolean;
  /** What refers to the image and went with it (or would, in a dry run), in push order. */
  referrers: PushedReferrer[];
  /**
   * The manifest whose referrers kept the image's layers as stored (compressing them would have
   * changed its digest); absent when layers went as asked.
   */
  keptAsStoredFor?: string;
}

/** An empty tally. */
export function noBlobs(): BlobTally {
  return { count: 0, bytes: 0, archiveBytes: 0 };
}

/** Adds up the placements of one image's blobs. */
export class PushTally {
  readonly uploaded = noBlobs();
  readonly skipped = noBlobs();
  readonly mounted = noBlobs();
  readonly compressed = { count: 0, bytes: 0, size: 0 };
  readonly compressedLayers = new Map<string, { bytes: number; size: number }>();
  /** Layers whose manifest entry changes: original digest → the form the registry holds. */
  readonly replaced = new Map<string, Descriptor>();
  readonly #sink: ProgressSink;
  /** Blobs whose progress was reported as an archive streamed past. */
  readonly #reported: (digest: string) => boolean;
  /** Remembers where a blob now is (a dry run remembers nothing). */
  readonly #learn: (digest: string) => void;

  constructor(
    sink: ProgressSink,
    reported: (digest: string) => boolean,
    learn: (digest: string) => void,
  ) {
    this.#sink = sink;
    this.#reported = reported;
    this.#learn = learn;
  }

  /** Counts `blob` as placed. */
  count(blob: ArchiveBlob, placement: Placement): void {
    const { outcome, stored } = placement;
    if (stored !== undefined && placement.replaces !== false) {
      this.replaced.set(blob.digest, stored);
    }
    if (placement.compressedHere && stored !== undefined) {
      this.compressed.count++;
      this.compressed.bytes += blob.size;
      this.compressed.size += stored.size;
      this.compressedLayers.set(blob.digest, { bytes: blob.size, size: stored.size });
    }
    const into = outcome === "skipped"
      ? this.skipped
      : outcome === "mounted" || outcome === "would-mount"
      ? this.mounted
      : this.uploaded;
    into.count++;
    into.bytes += stored?.size ?? blob.size;
    into.archiveBytes += blob.size;
    if (outcome === "would-upload" || outcome === "would-mount") return;
    this.#learn(stored?.digest ?? blob.digest);
    if (this.#reported(blob.digest)) return;
    // The form the registry holds says what was sent: the renderers give both sizes.
    const codec = stored === undefined ? undefined : declaredCompression(stored.mediaType);
    const compressed = stored !== undefined && (codec === "gzip" || codec === "zstd")
      ? { compressed: { size: stored.size, codec } }
      : {};
    this.#sink({ type: "blob-done", digest: blob.digest, size: blob.size, outcome, ...compressed });
  }
}

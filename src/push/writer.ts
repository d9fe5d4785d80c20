/**
 * The seam between a push's walk over the image graph and the registry: what the walk asks of
 * a destination (is this blob there, mount it, upload it, commit this manifest). Two writers
 * answer: `registry_writer.ts` sends, `dry_run_writer.ts` only looks (`HEAD`s, and hashing
 * what it would upload, to prove the archive sound). The walk (`push_image.ts`) and the blob
 * sources (`blob_sources.ts`) are the same for both: for an image, this is where a dry run
 * differs. Around it, a stream's pass hashes its large entries instead of sending them
 * (`stream_blobs.ts`), and a dry run keeps no cache or resume state (`api/push_run.ts`).
 *
 * Modelled on go-containerregistry's `remote.writer` (`uploadOne`, `commitManifest`).
 */
import type { ArchiveBlob } from "../archive/image.ts";
import type { BlobOutcome } from "../progress/events.ts";
import type { ReferrerDescriptor } from "../image/referrer.ts";
import type { RegistryClient } from "../registry/client.ts";
import type { ManifestPutAnswer } from "../registry/manifests.ts";
import type { LayerCompressor } from "./layer_compressor.ts";
import type { Descriptor } from "../image/descriptor.ts";

/** What became of a blob: done (`BlobOutcome`), or, in a dry run, what a push would do. */
export type Outcome = BlobOutcome | "would-upload" | "would-mount";

/** Where a blob ended up, and in what form. */
export interface Placement {
  outcome: Outcome;
  /** The form the registry holds, when not the archive's: a layer compressed on the way. */
  stored?: Descriptor;
  /** False when the manifest keeps naming the archive's form (default: it names `stored`). */
  replaces?: boolean;
  /** This push compressed the layer and sent it (so it counts among the compressed). */
  compressedHere?: boolean;
}

/** A manifest to commit: its exact bytes (so its digest is the one the graph says). */
export interface ManifestBytes {
  mediaType: string;
  digest: string;
  bytes: Uint8Array;
}

/** How a referrer is listed for its subject once committed. */
export type ReferrerListing =
  /** The registry has the referrers API: it lists the referrer by itself. */
  | "api"
  /** The subject's fallback tag (`sha256-<hex>`) lists it, merged with what was there. */
  | "fallback-tag"
  /** A dry run: it would be listed one way or the other. */
  | "planned";

/** A destination repository, as the push's walk sees it. */
export interface Writer {
  /** The repository written to. */
  readonly client: RegistryClient;
  /** True for the writer that only looks. */
  readonly dryRun: boolean;
  /** Whether the repository has the blob `digest` (a `HEAD`; both writers ask). */
  has(digest: string): Promise<boolean>;
  /** The repository had `blob` already: its saved upload progress is dropped. */
  found(blob: ArchiveBlob): Promise<void>;
  /**
   * Mounts `digest` from repository `from` of the same registry: `mounted` (a dry run:
   * `would-mount`, when `from` holds it), or undefined when it can't be.
   */
  mount(
    digest: string,
    from: string,
    describe: string,
  ): Promise<"mounted" | "would-mount" | undefined>;
  /** Uploads `blob` as stored (mounting it from `from` first, when given). */
  upload(blob: ArchiveBlob, from: string | undefined): Promise<Outcome>;
  /**
   * The compressed form of `blob` that another registry's push of this run already sent here,
   * compressing it once for all of them (see `fan_out.ts`).
   */
  fannedOut(blob: ArchiveBlob): Descriptor | undefined;
  /**
   * Compresses `blob` on the way and uploads it; where a registry refuses the stream, it goes
   * as stored (mounted first from where `from` says, if anywhere).
   */
  compress(
    blob: ArchiveBlob,
    compressor: LayerCompressor,
    from: () => string | undefined,
  ): Promise<Placement>;
  /**
   * Puts a blob that went into repository `from` as an archive streamed past (and cannot be
   * read again) into this one, by mounting it.
   */
  mountStreamed(digest: string, from: string, describe: string): Promise<"mounted" | "would-mount">;
  /** Remembers that the repository now holds `digest` (a dry run remembers nothing). */
  learn(digest: string): void;
  /**
   * Commits a manifest under `reference` (a tag, or its digest); `shown` names it in the
   * `manifest-done` event. Returns the registry's answer (a dry run has none).
   */
  commitManifest(
    manifest: ManifestBytes,
    reference: string,
    shown?: string,
  ): Promise<ManifestPutAnswer | undefined>;
  /**
   * Lists a committed OCI 1.1 referrer for `subject`: nothing more where the registry has the
   * referrers API (it answered the PUT with `OCI-Subject`, or answers the API), else through the
   * subject's fallback tag, never dropping another tool's entries.
   */
  listReferrer(
    subject: string,
    referrer: ReferrerDescriptor,
    answer: ManifestPutAnswer | undefined,
  ): Promise<ReferrerListing>;
}

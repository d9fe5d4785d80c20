/**
 * Pushing one image: every blob (de-duplicated, bounded concurrency, skipped when the registry
 * has it), then child manifests by digest, then the root manifest under the tag. A manifest is
 * pushed only after every blob it names is in the registry.
 */
import {
  type ArchiveBlob,
  type ArchiveImage,
  type ManifestNode,
  uniqueBlobs,
} from "../archive/image.ts";
import { UsageError } from "../errors.ts";
import type { BlobOutcome, ProgressSink } from "../progress/events.ts";
import { blobExists } from "../registry/blobs.ts";
import type { RegistryClient } from "../registry/client.ts";
import { putManifest } from "../registry/manifests.ts";
import type { ChunkedMode } from "./upload_policy.ts";
import { UploadPolicy } from "./upload_policy.ts";
import type { ResumeStore } from "./resume_store.ts";
import { runBounded } from "./pool.ts";
import { verifyBlob } from "./verify.ts";

export interface PushOptions {
  /** Upload blobs even when the registry has them (`--force-upload`). */
  forceUpload: boolean;
  /** Blobs of at least this many bytes go up in chunks. */
  largeLayerThreshold: number;
  chunkSize: number;
  /** `auto`, `always` (`--chunked`) or `never` (`--no-chunked`); see {@linkcode ChunkedMode}. */
  chunked: ChunkedMode;
  /** Repository on the same registry to mount blobs from before uploading. */
  mountFrom?: string;
  /** Saved progress of chunked uploads; absent with `--no-resume`. */
  resume?: ResumeStore;
  /** Hash every blob locally before uploading anything (`--verify`). */
  verify?: boolean;
  maxConcurrent: number;
  /** Check and report, but send no POST, PATCH or PUT. */
  dryRun: boolean;
  sink: ProgressSink;
}

/** Where the image goes: a tag, or the digest the root manifest must have. */
export interface PushTarget {
  tag?: string;
  digest?: string;
}

export interface BlobTally {
  count: number;
  bytes: number;
}

export interface PushResult {
  /** Digest of the root manifest. */
  digest: string;
  uploaded: BlobTally;
  /** Blobs the registry already had. */
  skipped: BlobTally;
  /** Blobs mounted from `--mount-from` instead of uploaded. */
  mounted: BlobTally;
  /** True when nothing was sent (`--dry-run`); `uploaded` then counts what would be sent. */
  dryRun: boolean;
}

/** Pushes `image` into the client's repository. */
export async function pushImage(
  client: RegistryClient,
  image: ArchiveImage,
  target: PushTarget,
  options: PushOptions,
): Promise<PushResult> {
  const { root } = image;
  if (target.digest !== undefined && target.digest !== root.digest) {
    throw new UsageError(
      `The archive's manifest is ${root.digest}, not ${target.digest} as the reference says`,
      { hint: "Push by tag, or name the digest the archive holds" },
    );
  }
  await client.ping();
  const blobs = uniqueBlobs(root);
  const sink = options.sink;
  sink({
    type: "plan",
    image: image.names[0] ?? root.digest,
    blobs: blobs.length,
    bytes: blobs.reduce((sum, b) => sum + b.size, 0),
  });
  const uploaded: BlobTally = { count: 0, bytes: 0 };
  const skipped: BlobTally = { count: 0, bytes: 0 };
  const mounted: BlobTally = { count: 0, bytes: 0 };
  const tally = (blob: ArchiveBlob, outcome: BlobOutcome | "would-upload") => {
    const into = outcome === "skipped" ? skipped : outcome === "mounted" ? mounted : uploaded;
    into.count++;
    into.bytes += blob.size;
    if (outcome !== "would-upload") {
      sink({ type: "blob-done", digest: blob.digest, size: blob.size, outcome });
    }
  };

  if (options.verify) {
    // Every blob is proven intact before the registry sees a byte of any of them.
    sink({ type: "notice", message: `Verifying ${blobs.length} blob(s) against their digests` });
    await runBounded(blobs, options.maxConcurrent, (blob) => verifyBlob(blob, client.signal));
  }
  const policy = new UploadPolicy(client, options);
  await runBounded(blobs, options.maxConcurrent, async (blob) => {
    if (!options.forceUpload && await blobExists(client, blob.digest)) {
      if (!options.dryRun) await policy.forget(blob);
      tally(blob, "skipped");
      return;
    }
    if (options.dryRun) {
      // A dry run still proves the archive is sound: every blob is hashed locally.
      if (!options.verify) await verifyBlob(blob, client.signal);
      tally(blob, "would-upload");
      return;
    }
    tally(blob, await policy.upload(blob));
  });

  if (!options.dryRun) {
    await pushChildren(client, root, sink);
    const reference = target.tag ?? root.digest;
    await putManifest(client, reference, root.mediaType, root.bytes);
    sink({ type: "manifest-done", reference, digest: root.digest });
  }
  return { digest: root.digest, uploaded, skipped, mounted, dryRun: options.dryRun };
}

/** Child manifests (an index's platforms), deepest first, by digest. */
async function pushChildren(
  client: RegistryClient,
  node: ManifestNode,
  sink: ProgressSink,
): Promise<void> {
  for (const child of node.children) {
    await pushChildren(client, child, sink);
    await putManifest(client, child.digest, child.mediaType, child.bytes);
    sink({ type: "manifest-done", reference: child.digest, digest: child.digest });
  }
}

/**
 * Pushing one image is one walk over its graph, in the order the registry needs: every blob
 * (de-duplicated, bounded concurrency, skipped when the registry has it), then the manifests
 * that name them, children before parents (an index's platforms by digest, then the root under
 * its tags), and what refers to each manifest after it (signatures, SBOMs, attestations).
 * Each step is its own function below; how a blob goes up is `blob_sources.ts`, where its
 * digest changes is `manifest_rewrite.ts`, the order of the manifests is `commit_graph.ts`,
 * when layers stay as stored for their referrers' sake is `referrer_guard.ts`, and what a dry
 * run does instead is `dry_run_writer.ts`.
 */
import type { ArchiveBlob, ArchiveImage } from "../archive/image.ts";
import { type ManifestNode, uniqueBlobs } from "../image/graph.ts";
import type { Compression } from "../compress/codec.ts";
import { familiarName } from "../image/reference.ts";
import { KeyedLocks, Limiter, runBounded, runShared } from "../pool.ts";
import type { ProgressSink } from "../progress/events.ts";
import type { RegistryClient } from "../registry/client.ts";
import type { BlobInfoCache } from "./blob_info_cache.ts";
import { type BlobSources, compressible, placeBlob } from "./blob_sources.ts";
import { DryRunWriter } from "./dry_run_writer.ts";
import type { CompressedFanOut } from "./fan_out.ts";
import { type LayerCompressor, layerCompressor } from "./layer_compressor.ts";
import { isUncompressedLayer, rewriteTree } from "./manifest_rewrite.ts";
import { type PushResult, PushTally } from "./push_result.ts";
import { RegistryWriter } from "./registry_writer.ts";
import type { ResumeStore } from "./resume_store.ts";
import type { PassedBlob } from "./stream_blobs.ts";
import { checkTarget, type PushTarget } from "./target_check.ts";
import { type ChunkedMode, UploadPolicy } from "./upload_policy.ts";
import { verifyBlob } from "./verify.ts";
import type { Writer } from "./writer.ts";
import { commitGraph, type CommitReference } from "./commit_graph.ts";
import { type PushedReferrer, referrerBlobs, withoutReferrers } from "./graph_referrers.ts";
import { keepLayersFor, namesOf, type ReferrerPolicy } from "./referrer_guard.ts";

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
  /** How layers the archive holds uncompressed go up (`--compression`, `--compression-level`). */
  compression: Compression;
  /** What earlier pushes learnt (compressed forms, repositories holding blobs). */
  cache?: BlobInfoCache;
  /** Compression workers (default: one per core). */
  workers?: number;
  /**
   * Blobs already sent (or found) as an archive streamed past, by the digest of their bytes in
   * the archive (see `push_stream.ts`): counted, not sent again.
   */
  streamed?: ReadonlyMap<string, PassedBlob>;
  /**
   * The repository the stream's blobs went into, when it is not this image's (`--all` from a
   * stream: the prefix repository): they are mounted from there.
   */
  streamedInto?: string;
  /** The compressor to use, when the caller has one already (it stays open). */
  compressor?: LayerCompressor;
  /**
   * What a run of several images shares: one concurrency budget, and a lock per blob so a
   * blob two images hold goes up once (the second finds it, or mounts it from the first's
   * repository). Without it the push has a budget of its own, `maxConcurrent`, and pings the
   * registry first (a run pings each registry once).
   */
  shared?: {
    limiter: Limiter;
    locks: KeyedLocks;
    fanOut?: CompressedFanOut;
    /** Dry run: where the run would place each blob (`registry digest` → repositories). */
    planned?: Map<string, Set<string>>;
    /** Streamed blobs an image of the run already counted as its upload. */
    claimed?: Set<string>;
  };
  /**
   * Push what refers to the image's manifests (signatures, SBOMs, attestations) after them
   * (default true); false pushes the image alone.
   */
  referrers?: boolean;
  /**
   * The caller asked for `compression` explicitly (default false): where compressing would
   * break a referrer, the push is refused rather than keeping the layers as stored.
   */
  compressionExplicit?: boolean;
  /** Announce the image with a `plan` event (default true; a run announces its own). */
  announce?: boolean;
  /**
   * What was decided about the image before the run sent anything (a run decides for all its
   * images at once, checks each target, and says what it decided). Without it the push checks
   * its target and decides itself, and says so.
   */
  prepared?: PreparedImage;
  sink: ProgressSink;
}

/** What is decided about an image before anything is sent. */
export interface PreparedImage {
  /**
   * The manifest whose referrers keep the image's layers as stored (see `referrer_guard.ts`),
   * or undefined when they go as `compression` says.
   */
  keptAsStoredFor: ManifestNode | undefined;
}

/** Pushes `image` into the client's repository (see the module's description). */
export async function pushImage(
  client: RegistryClient,
  image: ArchiveImage,
  target: PushTarget,
  options: PushOptions,
): Promise<PushResult> {
  const root = options.referrers === false ? withoutReferrers(image.root) : image.root;
  const policy: ReferrerPolicy = {
    compression: options.compression,
    compressionExplicit: options.compressionExplicit === true,
    referrers: options.referrers !== false,
  };
  const pinned = (options.prepared ?? prepareImage(image, target, { policy })).keptAsStoredFor;
  const compression = pinned === undefined ? options.compression : AS_STORED;
  const blobs = uniqueBlobs(root);
  const extra = referrerBlobs(root, blobs);
  // A run pings each registry once, before it announces anything.
  if (options.shared === undefined) await client.ping();
  if (options.announce !== false) {
    announce(client, image, target, [...blobs, ...extra], options.sink);
  }
  // A run said it once for every image it pushes (the same image may go to several targets).
  if (pinned !== undefined && options.prepared === undefined) {
    keptAsStored(image, pinned, options.sink);
  }
  if (options.verify) await verifyAll(client, [...blobs, ...extra], options);
  const writer = writerFor(client, options);
  const { tally, compressible } = await placeAll(
    writer,
    blobs,
    extra,
    pinned === undefined,
    options,
  );
  const tree = tally.replaced.size > 0
    ? rewriteTree(root, tally.replaced, compression.codec === "zstd")
    : root;
  const referrers: PushedReferrer[] = [];
  await commitGraph(tree, references(client, tree, target), {
    writer,
    sink: options.sink,
    referrers,
  });
  return {
    digest: tree.digest,
    manifest: { mediaType: tree.mediaType, digest: tree.digest, size: tree.bytes.length },
    uploaded: tally.uploaded,
    skipped: tally.skipped,
    mounted: tally.mounted,
    compressed: tally.compressed,
    compressedLayers: tally.compressedLayers,
    dryRun: writer.dryRun,
    // A dry run cannot know the digest of a layer it has never compressed.
    manifestFinal: !blobs.some((b) => compressible(b) && !tally.replaced.has(b.digest)),
    referrers,
    ...(pinned !== undefined ? { keptAsStoredFor: pinned.digest } : {}),
  };
}

/**
 * Every blob of the image (`blobs`) and of its referrers (`extra`, always as stored) placed
 * through `writer`; layers stored uncompressed go compressed when `compress` and the options
 * say so. Returns the tally, and which blobs went (or would go) compressed.
 */
async function placeAll(
  writer: Writer,
  blobs: readonly ArchiveBlob[],
  extra: readonly ArchiveBlob[],
  compress: boolean,
  options: PushOptions,
): Promise<{ tally: PushTally; compressible: (blob: ArchiveBlob) => boolean }> {
  const client = writer.client;
  const compressor = compress ? options.compressor ?? ownCompressor(blobs, options) : undefined;
  const sources: BlobSources = {
    writer,
    forceUpload: options.forceUpload,
    ...(compressor ? { compressor } : {}),
    mountSource: (digest) => mountSource(client, digest, options),
    ...(options.streamed ? { streamed: options.streamed } : {}),
    ...(options.streamedInto !== undefined ? { streamedInto: options.streamedInto } : {}),
    ...(options.shared?.claimed ? { claimed: options.shared.claimed } : {}),
  };
  const tally = new PushTally(
    options.sink,
    (digest) => options.streamed?.has(digest) ?? false,
    (digest) => writer.learn(digest),
  );
  try {
    await placeBlobs([...blobs, ...extra], sourcesFor(sources, extra), tally, options);
  } finally {
    if (compressor !== options.compressor) compressor?.close();
  }
  return { tally, compressible: (blob) => compressible(blob, sources) };
}

/** Layers as stored: what an image whose referrers name its digests gets. */
const AS_STORED: Compression = { codec: "none" };

/** What {@linkcode prepareImage} decides with. */
export interface PrepareImageOptions {
  /** How the push treats referrers and compression. */
  policy: ReferrerPolicy;
  /** The image as messages name it (default: its first name, else its digest). */
  label?: string;
  /**
   * What was decided already for the same root (a run decides each image once, however many
   * targets it goes to): only the target is checked.
   */
  decided?: PreparedImage;
}

/**
 * Decides for an image what must be known before anything is sent: whether its referrers keep
 * its layers as stored, and whether `target` can be met with the compression that follows
 * (usage errors otherwise). A push of its own calls it for its image; a run, for each image
 * job's target.
 */
export function prepareImage(
  image: ArchiveImage,
  target: PushTarget,
  options: PrepareImageOptions,
): PreparedImage {
  const prepared = options.decided ??
    { keptAsStoredFor: keepLayersFor(image, options.policy, options.label ?? labelOf(image)) };
  // Layers kept as stored for the referrers' sake leave the digest as the archive has it.
  const kept = prepared.keptAsStoredFor !== undefined;
  checkTarget(image, target, kept ? AS_STORED : options.policy.compression);
  return prepared;
}

/** The image as messages name it: its first name, else its digest. */
function labelOf(image: ArchiveImage): string {
  return image.names[0] === undefined ? image.root.digest : familiarName(image.names[0]);
}

/** One notice: the image's layers go as stored, and why (`pinned`, of its graph, says so). */
export function keptAsStored(image: ArchiveImage, pinned: ManifestNode, sink: ProgressSink): void {
  const count = namesOf(image.root, pinned);
  sink({
    type: "notice",
    kind: "kept-as-stored-for-referrers",
    digest: pinned.digest,
    message: `Pushing the layers of ${labelOf(image)} as stored, not compressed: ${count} ` +
      `referrer(s) (signatures, SBOMs or attestations) name manifest ${pinned.digest}, and ` +
      `compressing would change its digest`,
  });
}

/**
 * Blob sources per blob: a referrer's blobs go as stored (byte for byte, so the referrer's
 * digest stays), the image's as `sources` says.
 */
function sourcesFor(
  sources: BlobSources,
  referrerBlobs: readonly ArchiveBlob[],
): (blob: ArchiveBlob) => BlobSources {
  if (referrerBlobs.length === 0) return () => sources;
  const { compressor: _, ...asStored } = sources;
  const theirs = new Set(referrerBlobs.map((b) => b.digest));
  return (blob) => theirs.has(blob.digest) ? asStored : sources;
}

/** What the root is committed under: each tag, or its digest when there are none. */
function references(
  client: RegistryClient,
  tree: ManifestNode,
  target: PushTarget,
): CommitReference[] {
  const tags = target.tags.length > 0 ? target.tags : [tree.digest];
  return tags.map((reference) => ({ reference, shown: tagged(client, reference) }));
}

/** The writer that sends, or for a dry run the one that only looks. */
function writerFor(client: RegistryClient, options: PushOptions): Writer {
  if (options.dryRun) {
    return new DryRunWriter(client, {
      planned: options.shared?.planned ?? new Map(),
      verified: options.verify === true,
    });
  }
  return new RegistryWriter(client, {
    policy: new UploadPolicy(client, options),
    chunked: options.chunked,
    ...(options.cache ? { cache: options.cache } : {}),
    ...(options.shared?.fanOut ? { fanOut: options.shared.fanOut } : {}),
    sink: options.sink,
  });
}

/** A compressor of the push's own, when it has uncompressed layers to compress and none given. */
function ownCompressor(
  blobs: readonly ArchiveBlob[],
  options: PushOptions,
): LayerCompressor | undefined {
  if (!blobs.some((b) => isUncompressedLayer(b.mediaType))) return undefined;
  return layerCompressor(options);
}

/** The image's `plan` event (a run announces itself instead). */
function announce(
  client: RegistryClient,
  image: ArchiveImage,
  target: PushTarget,
  blobs: readonly ArchiveBlob[],
  sink: ProgressSink,
): void {
  const where = target.tags[0] !== undefined
    ? `:${target.tags.join(",")}`
    : target.digest !== undefined
    ? `@${target.digest}`
    : "";
  sink({
    type: "plan",
    image: labelOf(image),
    target: `${client.registryName}/${client.repository}${where}`,
    blobs: blobs.length,
    bytes: blobs.reduce((sum, b) => sum + b.size, 0),
  });
}

/** Every blob proven intact before the registry sees a byte of any of them (`verify`). */
async function verifyAll(
  client: RegistryClient,
  blobs: readonly ArchiveBlob[],
  options: PushOptions,
): Promise<void> {
  options.sink({
    type: "notice",
    kind: "verifying",
    message: `Verifying ${blobs.length} blob(s) against their digests`,
  });
  // Streamed blobs were hashed as they went past.
  const toVerify = blobs.filter((blob) => !options.streamed?.has(blob.digest));
  await runBounded(toVerify, options.maxConcurrent, (blob) => verifyBlob(blob, client.signal));
}

/**
 * Every blob placed, within the run's concurrency budget. One blob at a time per registry (one
 * per run for a layer compressed on the way: a second registry gets the same stream,
 * compressed at the same levels).
 */
async function placeBlobs(
  blobs: readonly ArchiveBlob[],
  sourcesOf: (blob: ArchiveBlob) => BlobSources,
  tally: PushTally,
  options: PushOptions,
): Promise<void> {
  const { limiter, locks } = options.shared ??
    { limiter: new Limiter(options.maxConcurrent), locks: new KeyedLocks() };
  const keyOf = (blob: ArchiveBlob) => {
    const sources = sourcesOf(blob);
    return compressible(blob, sources)
      ? `compress ${blob.digest}`
      : `${sources.writer.client.baseUrl.host} ${blob.digest}`;
  };
  await runShared([...blobs], limiter, async (blob) => {
    tally.count(blob, await placeBlob(blob, sourcesOf(blob)));
  }, { locks, keyOf });
}

/** Where to try mounting a blob from: `mountFrom`, else a sibling repository we pushed to. */
function mountSource(
  client: RegistryClient,
  digest: string,
  options: PushOptions,
): string | undefined {
  if (options.mountFrom !== undefined) return options.mountFrom;
  const from = options.cache?.repositoriesWith(digest, client.baseUrl.host)
    .find((r) => r !== client.repository);
  if (from !== undefined) client.addPullScope(from);
  return from;
}

/** `registry/repository:tag` (or `@digest`) for progress: a run pushes to many repositories. */
export function tagged(client: RegistryClient, reference: string): string {
  const separator = reference.startsWith("sha256:") ? "@" : ":";
  return `${client.registryName}/${client.repository}${separator}${reference}`;
}

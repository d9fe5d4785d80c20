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
import { declaredCompression } from "../image/media_types.ts";
import { InvalidOptionError } from "../errors.ts";
import type { BlobOutcome, ProgressSink } from "../progress/events.ts";
import { blobExists } from "../registry/blobs.ts";
import { cancelSession, startSession } from "../registry/uploads.ts";
import type { RegistryClient } from "../registry/client.ts";
import { putManifest } from "../registry/manifests.ts";
import { familiarName } from "../image/reference.ts";
import { RegistryError } from "../registry/registry_error.ts";
import type { ChunkedMode } from "./upload_policy.ts";
import { UploadPolicy } from "./upload_policy.ts";
import type { ResumeStore } from "./resume_store.ts";
import { KeyedLocks, Limiter, runBounded, runShared } from "../pool.ts";
import type { CompressedFanOut } from "./fan_out.ts";
import { verifyBlob } from "./verify.ts";
import type { Compression } from "../compress/codec.ts";
import type { BlobInfoCache } from "./blob_info_cache.ts";
import { LayerCompressor } from "./layer_compressor.ts";
import type { PassedBlob } from "./stream_blobs.ts";
import { isUncompressedLayer, rewriteTree } from "./manifest_rewrite.ts";
import type { Descriptor } from "../image/descriptor.ts";
import { describePlatform, findListed } from "./multi_arch.ts";

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
  /** Announce the image with a `plan` event (default true; a run announces its own). */
  announce?: boolean;
  sink: ProgressSink;
}

/**
 * Where the image goes: under each of `tags`, or by digest when there are none (`digest`, when
 * given, is the one the root manifest must have).
 */
export interface PushTarget {
  tags: readonly string[];
  digest?: string;
}

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
   * Blobs mounted from another repository (`--mount-from`, or one the cache knows) instead of
   * uploaded; in a dry run, those that repository holds, so a push would mount them.
   */
  mounted: BlobTally;
  /** Layers compressed on the way up: their size in the archive, and compressed. */
  compressed: { count: number; bytes: number; size: number };
  /** The same layers by digest (a run that sends one layer to two registries counts it once). */
  compressedLayers: ReadonlyMap<string, { bytes: number; size: number }>;
  /**
   * True when nothing was sent (`--dry-run`); `uploaded`, `skipped` and `mounted` then count
   * what a push would do, found with the same lookups (`HEAD`s only).
   */
  dryRun: boolean;
  /**
   * False in a dry run that would compress layers it has never compressed before: `digest` is
   * then the manifest's as far as known, not what a real push would produce.
   */
  manifestFinal: boolean;
}

/** Pushes `image` into the client's repository. */
export async function pushImage(
  client: RegistryClient,
  image: ArchiveImage,
  target: PushTarget,
  options: PushOptions,
): Promise<PushResult> {
  const { root } = image;
  const blobs = uniqueBlobs(root);
  const compression = options.compression.codec === "none" ? undefined : options.compression;
  const compressible = (blob: ArchiveBlob) =>
    compression !== undefined && isUncompressedLayer(blob.mediaType);
  checkTarget(image, target, options.compression);
  // A run pings each registry once, before it announces anything.
  if (options.shared === undefined) await client.ping();
  const sink = options.sink;
  const where = target.tags[0] !== undefined
    ? `:${target.tags.join(",")}`
    : target.digest !== undefined
    ? `@${target.digest}`
    : "";
  if (options.announce !== false) {
    sink({
      type: "plan",
      image: image.names[0] === undefined ? root.digest : familiarName(image.names[0]),
      target: `${client.registryName}/${client.repository}${where}`,
      blobs: blobs.length,
      bytes: blobs.reduce((sum, b) => sum + b.size, 0),
    });
  }
  const uploaded: BlobTally = { count: 0, bytes: 0, archiveBytes: 0 };
  const skipped: BlobTally = { count: 0, bytes: 0, archiveBytes: 0 };
  const mounted: BlobTally = { count: 0, bytes: 0, archiveBytes: 0 };
  const compressed = { count: 0, bytes: 0, size: 0 };
  const compressedLayers = new Map<string, { bytes: number; size: number }>();
  // A dry run looks things up in the cache as a push would, so it predicts the same outcome
  // for every blob, but teaches the cache nothing: nothing went anywhere.
  const cache = options.cache;
  const learn = options.dryRun ? undefined : cache;
  const registry = client.baseUrl.host;
  /** Counts a blob; `stored` is the form the registry holds it in, when compressed on the way. */
  const tally = (
    blob: ArchiveBlob,
    outcome: BlobOutcome | "would-upload" | "would-mount",
    stored?: Descriptor,
  ) => {
    const into = outcome === "skipped"
      ? skipped
      : outcome === "mounted" || outcome === "would-mount"
      ? mounted
      : uploaded;
    into.count++;
    into.bytes += stored?.size ?? blob.size;
    into.archiveBytes += blob.size;
    if (outcome !== "would-upload" && outcome !== "would-mount") {
      learn?.recordLocation(stored?.digest ?? blob.digest, registry, client.repository);
      // A streamed blob's progress was reported as it went past.
      if (!options.streamed?.has(blob.digest)) {
        // The form the registry holds says what was sent: the renderers give both sizes.
        const codec = stored === undefined ? undefined : declaredCompression(stored.mediaType);
        const compressed = stored !== undefined && (codec === "gzip" || codec === "zstd")
          ? { compressed: { size: stored.size, codec } }
          : {};
        sink({ type: "blob-done", digest: blob.digest, size: blob.size, outcome, ...compressed });
      }
    }
  };

  if (options.verify) {
    // Every blob is proven intact before the registry sees a byte of any of them.
    sink({
      type: "notice",
      kind: "verifying",
      message: `Verifying ${blobs.length} blob(s) against their digests`,
    });
    // Streamed blobs were hashed as they went past.
    const toVerify = blobs.filter((blob) => !options.streamed?.has(blob.digest));
    await runBounded(toVerify, options.maxConcurrent, (blob) => verifyBlob(blob, client.signal));
  }
  const policy = new UploadPolicy(client, options);
  const compressor = options.compressor ??
    (compression && blobs.some(compressible)
      ? new LayerCompressor({
        ...compression,
        ...(cache ? { cache } : {}),
        ...(options.mountFrom !== undefined ? { mountFrom: options.mountFrom } : {}),
        ...(options.resume ? { resume: options.resume } : {}),
        ...(options.workers !== undefined ? { workers: options.workers } : {}),
      })
      : undefined);
  /** A dry run still proves the archive is sound: every blob it would send is hashed. */
  const wouldUpload = async (blob: ArchiveBlob) => {
    // Another image of the run would upload it first: this repository would find or mount it.
    const key = `${registry} ${blob.digest}`;
    const placed = options.shared?.planned?.get(key);
    if (placed !== undefined) {
      if (placed.has(client.repository)) return tally(blob, "skipped");
      placed.add(client.repository);
      return tally(blob, "would-mount");
    }
    options.shared?.planned?.set(key, new Set([client.repository]));
    if (!options.verify) await verifyBlob(blob, client.signal);
    tally(blob, "would-upload");
  };
  /**
   * Dry run: whether a push would mount `digest` from one of `sources`, asked the only way a
   * dry run may, with a `HEAD` in each (a mount needs the blob there, and pull access to it).
   */
  const wouldMount = async (digest: string, sources: string[]) => {
    for (const from of sources) {
      client.addPullScope(from);
      if (await blobExists(client, digest, from)) return true;
    }
    return false;
  };
  /** Compressed layers: original digest → what the manifest names now. */
  const replaced = new Map<string, Descriptor>();

  /** A compressed layer this push sent (the bytes went up, whoever compressed them). */
  const sentCompressed = (blob: ArchiveBlob, descriptor: Descriptor) => {
    replaced.set(blob.digest, descriptor);
    compressed.count++;
    compressed.bytes += blob.size;
    compressed.size += descriptor.size;
    compressedLayers.set(blob.digest, { bytes: blob.size, size: descriptor.size });
    tally(blob, "uploaded", descriptor);
  };
  const fanOut = options.dryRun ? undefined : options.shared?.fanOut;

  const pushCompressed = async (blob: ArchiveBlob, compressor: LayerCompressor) => {
    const sent = fanOut?.sent(client, blob.digest);
    if (sent !== undefined) return sentCompressed(blob, sent);
    if (!options.forceUpload) {
      const found = await compressor.findExisting(client, blob, !options.dryRun);
      if (found !== undefined) {
        replaced.set(blob.digest, found.descriptor);
        tally(blob, found.outcome, found.descriptor);
        return;
      }
      // Where findExisting would have tried a mount from, had this not been a dry run.
      const known = options.dryRun ? compressor.known(blob) : undefined;
      if (
        known !== undefined &&
        await wouldMount(known.digest, compressor.mountSources(client, known))
      ) {
        replaced.set(blob.digest, known);
        return tally(blob, "would-mount", known);
      }
    }
    if (options.dryRun) return await wouldUpload(blob);
    // Other registries of the run want it too: one compression goes to all of them at once.
    const others = await lacking(fanOut?.others(blob.digest, client) ?? [], blob, compressor);
    if (others.length > 0) {
      const results = await compressor.uploadToAll([client, ...others], blob);
      others.forEach((other, i) => {
        const result = results[i + 1];
        if (result !== undefined && "descriptor" in result) {
          fanOut?.record(other, blob.digest, result.descriptor);
        }
      });
      const own = results[0];
      if (own !== undefined && "descriptor" in own) return sentCompressed(blob, own.descriptor);
      // Sent elsewhere but not here: this registry gets it on its own, with retries.
    }
    let descriptor: Descriptor;
    try {
      // Blobs that would go in chunks go in resumable segments of about a chunk.
      descriptor = await compressor.upload(client, blob, policy);
    } catch (error) {
      // The registry, or a proxy in front of it, won't take a stream of unknown length that
      // way: a body-size cap (413) on one request, or streamed PATCHes refused outright. The
      // layer goes as stored instead: in chunks that shrink to fit a cap, or as the registry
      // takes blobs.
      const status = error instanceof RegistryError && !error.hasCode("DIGEST_INVALID")
        ? error.status
        : 0;
      const tooLarge = status === 413;
      if (!(tooLarge || STREAM_REFUSED.has(status)) || options.chunked !== "auto") throw error;
      sink({
        type: "notice",
        kind: "compressed-refused",
        digest: blob.digest,
        message:
          `${client.registryName} refused ${blob.digest}, compressed on the fly (${status}); ` +
          `sending it as stored${tooLarge ? ", in chunks" : ""}`,
      });
      tally(blob, await policy.upload(blob, mountSource(blob.digest), { inChunks: tooLarge }));
      return;
    }
    sentCompressed(blob, descriptor);
  };

  const { limiter, locks } = options.shared ??
    { limiter: new Limiter(options.maxConcurrent), locks: new KeyedLocks() };
  // One blob at a time per registry (one per run for a layer compressed on the way: a second
  // registry gets the same stream, compressed at the same levels).
  const keyOf = (blob: ArchiveBlob) =>
    compressor !== undefined && compressible(blob)
      ? `compress ${blob.digest}`
      : `${registry} ${blob.digest}`;
  try {
    await runShared(blobs, limiter, async (blob) => {
      const passed = options.streamed?.get(blob.digest);
      if (passed !== undefined) return await pushStreamed(blob, passed);
      if (compressor !== undefined && compressible(blob)) {
        await pushCompressed(blob, compressor);
        return;
      }
      if (!options.forceUpload && await blobExists(client, blob.digest)) {
        if (!options.dryRun) await policy.forget(blob);
        tally(blob, "skipped");
        return;
      }
      if (options.dryRun) {
        const from = mountSource(blob.digest);
        if (from !== undefined && await wouldMount(blob.digest, [from])) {
          return tally(blob, "would-mount");
        }
        return await wouldUpload(blob);
      }
      tally(blob, await policy.upload(blob, mountSource(blob.digest)));
    }, { locks, keyOf });
  } finally {
    if (options.compressor === undefined) compressor?.close();
  }

  /**
   * A blob sent (or found in the registry) as the archive streamed past: in this repository,
   * or in `streamedInto`, from which it is mounted. The first image to take a blob the stream
   * uploaded counts the upload; the others, what they did.
   */
  async function pushStreamed(blob: ArchiveBlob, passed: PassedBlob): Promise<void> {
    let outcome: BlobOutcome | "would-upload" | "would-mount" = passed.outcome;
    const stored = passed.compressed?.digest ?? blob.digest;
    const from = options.streamedInto;
    const first = !options.shared?.claimed?.has(passed.digest);
    options.shared?.claimed?.add(passed.digest);
    if (from !== undefined && from !== client.repository) {
      const placed = await placeFrom(from, stored, blob);
      outcome = placed === "skipped" || !first ? placed : passed.outcome;
    }
    const form = passed.compressed === undefined ? undefined : {
      mediaType: compressor?.compressedType(blob.mediaType) ?? blob.mediaType,
      ...passed.compressed,
    };
    if (form !== undefined && compressor !== undefined && compressible(blob)) {
      replaced.set(blob.digest, form);
      if (outcome === "uploaded") {
        compressed.count++;
        compressed.bytes += blob.size;
        compressed.size += form.size;
        compressedLayers.set(blob.digest, { bytes: blob.size, size: form.size });
      }
    }
    tally(blob, outcome, form);
  }

  /** Puts a blob the stream sent into repository `from` into this one: found, or mounted. */
  async function placeFrom(
    from: string,
    digest: string,
    blob: ArchiveBlob,
  ): Promise<"skipped" | "mounted" | "would-mount"> {
    if (await blobExists(client, digest)) return "skipped";
    if (options.dryRun) return "would-mount";
    client.addPullScope(from);
    const session = await startSession(client, { digest, describe: blob.describe }, from);
    if (session === "mounted") return "mounted";
    await cancelSession(client, session.url);
    throw new Error(
      `${client.registryName} did not mount ${digest} from ${from} into ${client.repository}; ` +
        `a stream's layers went into ${from} as they passed and cannot be read again: push ` +
        `the archive from a tar file, or one image per run`,
    );
  }

  /** Where to try mounting a blob from: --mount-from, else a sibling repository we pushed to. */
  function mountSource(digest: string): string | undefined {
    if (options.mountFrom !== undefined) return options.mountFrom;
    const from = cache?.repositoriesWith(digest, registry).find((r) => r !== client.repository);
    if (from !== undefined) client.addPullScope(from);
    return from;
  }

  const tree = replaced.size > 0
    ? rewriteTree(root, replaced, compression?.codec === "zstd")
    : root;
  if (!options.dryRun) {
    await pushChildren(client, tree, sink);
    for (const reference of target.tags.length > 0 ? target.tags : [tree.digest]) {
      await putManifest(client, reference, tree.mediaType, tree.bytes);
      sink({ type: "manifest-done", reference: tagged(client, reference), digest: tree.digest });
    }
  }
  const manifestFinal = !blobs.some((b) =>
    compressor !== undefined && compressible(b) &&
    !replaced.has(b.digest)
  );
  return {
    digest: tree.digest,
    manifest: { mediaType: tree.mediaType, digest: tree.digest, size: tree.bytes.length },
    uploaded,
    skipped,
    mounted,
    compressed,
    compressedLayers,
    dryRun: options.dryRun,
    manifestFinal,
  };
}

/**
 * Refuses a push the user cannot mean, before anything is sent: to a digest the manifest
 * will not have (another image's, one that compressing its layers changes, or a platform
 * manifest inside the archive's index, which is pushed only with the whole index). The hint
 * names a push that works: its digest is the archive's, and its layers go as stored.
 */
export function checkTarget(
  image: ArchiveImage,
  target: PushTarget,
  compression: Compression,
): void {
  if (target.digest === undefined) return;
  const { root } = image;
  const compressible = compression.codec !== "none" &&
    uniqueBlobs(root).some((blob) => isUncompressedLayer(blob.mediaType));
  const asStored = compressible ? ' with compression: "none"' : "";
  if (target.digest !== root.digest) {
    const listed = findListed(root, target.digest);
    if (listed !== undefined) {
      // Pushing the index by its digest pushes every manifest below it by digest too.
      const platform = listed.platform === undefined
        ? "a platform manifest"
        : `the ${describePlatform(listed.platform)} manifest`;
      const where = listed.index === root
        ? `the archive's index ${root.digest}`
        : `index ${listed.index.digest}, inside the archive's index ${root.digest}`;
      throw new InvalidOptionError(
        `${target.digest} is ${platform} of ${where}, and cannot be pushed without it`,
        {
          option: "targets",
          reason: "digest-in-index",
          value: target.digest,
          hint: compressible
            ? `Push the index by its digest, @${root.digest}, with compression: "none" (the ` +
              `layers as stored): the registry then has ${target.digest} too`
            : `Push the index by its digest, @${root.digest}, or by a tag: either way the ` +
              `registry then has ${target.digest} too`,
        },
      );
    }
    throw new InvalidOptionError(
      `The archive's manifest is ${root.digest}, not ${target.digest} as the reference says`,
      {
        option: "targets",
        reason: "digest-mismatch",
        value: target.digest,
        hint: `Push by tag, or by the digest the archive holds: @${root.digest}${asStored}`,
      },
    );
  }
  if (compressible) {
    throw new InvalidOptionError(
      `Compressing the archive's uncompressed layers changes its manifest, so it cannot be ` +
        `pushed as ${target.digest}`,
      {
        option: "compression",
        reason: "digest-compressed",
        value: target.digest,
        hint: 'Set compression: "none" to push the layers as stored',
      },
    );
  }
}

/**
 * Of `clients`, those whose repository lacks `blob`'s compressed form (as far as the cache
 * knows it: a form it does not know, no registry can be asked for).
 */
async function lacking(
  clients: readonly RegistryClient[],
  blob: ArchiveBlob,
  compressor: LayerCompressor,
): Promise<RegistryClient[]> {
  const known = compressor.known(blob);
  if (known === undefined) return [...clients];
  const has = await Promise.all(clients.map((c) => blobExists(c, known.digest)));
  return clients.filter((_, i) => !has[i]);
}

/** Statuses with which registries turn streamed (unknown-length) PATCHes away. */
const STREAM_REFUSED = new Set([400, 405, 411, 415, 501]);

/** `registry/repository:tag` (or `@digest`) for progress: a run pushes to many repositories. */
export function tagged(client: RegistryClient, reference: string): string {
  const separator = reference.startsWith("sha256:") ? "@" : ":";
  return `${client.registryName}/${client.repository}${separator}${reference}`;
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

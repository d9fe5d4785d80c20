/**
 * A pull: resolve every source to its manifests and configs, find what refers to them
 * (signatures, SBOMs, attestations), lay the whole archive out, then download the layers (and
 * the referrers' blobs) into it, to a file (resumable, parallel) or a stream (in order, the
 * next layers downloading ahead into bounded memory).
 *
 * @example
 * ```ts ignore
 * const result = await pullImages([{ reference, client }], {
 *   output: { kind: "file", path: "app.tar" },
 *   platform: { kind: "one", platform: hostPlatform() },
 *   defaultPlatform: hostPlatform(),
 *   maxConcurrent: 3,
 *   sink: silentSink,
 * });
 * ```
 */
import { Limiter } from "../pool.ts";
import type { ProgressSink } from "../progress/events.ts";
import type { RegistryClient } from "../registry/client.ts";
import type { ImageReference } from "../image/reference.ts";
import { bundleEntries, type BundleImage, storedPlatforms } from "./archive_files.ts";
import type { Platform, PlatformChoice } from "../image/platform.ts";
import {
  countReferrers,
  findReferrers,
  type FoundReferrers,
  type ReferrerLookup,
} from "./find_referrers.ts";
import type { ReferrerKind } from "../image/referrer.ts";
import { type ResolvedImage, resolveImage } from "./resolve.ts";
import { HashWorker } from "./running_hash.ts";
import { openOutputStream, outputWritable, resolveOutputTarget } from "./output_target.ts";
import { layOut } from "./tar_layout.ts";
import { writeArchiveFile } from "./write_file.ts";
import { writeArchiveStream } from "./write_stream.ts";
import { zstdLayerWarning } from "./zstd_warning.ts";

/** One image to pull, with a client for its repository (pull scope is enough). */
export interface PullSource {
  reference: ImageReference;
  client: RegistryClient;
}

export interface PullOptions {
  output:
    /**
     * A path, checked before the first request (see `output_target.ts`): a regular file is
     * written through `.partial` and renamed into place, anything else (a device, a FIFO) is
     * streamed into. `resume: false` ignores a partial archive left by an earlier run.
     */
    | { kind: "file"; path: string; resume?: boolean }
    | {
      kind: "stream";
      stream: WritableStream<Uint8Array>;
      /** What progress calls the stream. Default: "standard output". */
      label?: string;
    };
  platform: PlatformChoice;
  /** The platform `manifest.json` describes when a whole index is kept (the host's). */
  defaultPlatform: Platform;
  maxConcurrent: number;
  /**
   * How to find what refers to each manifest kept (signatures, SBOMs, attestations), which is
   * then stored with it; absent: referrers are left out.
   */
  referrers?: ReferrerLookup;
  sink: ProgressSink;
  signal?: AbortSignal;
}

/** A referrer stored in the archive. */
export interface PulledReferrerInfo {
  digest: string;
  mediaType: string;
  /** Bytes of its manifest. */
  size: number;
  kind: ReferrerKind;
  artifactType: string;
  /** The manifest it refers to. */
  subject: string;
  /** The cosign-style tag it was found under; absent for an OCI 1.1 referrer. */
  tag?: string;
}

/** What was pulled. */
export interface PullResult {
  images: {
    name: string;
    digest: string;
    platforms: string[];
    /** What refers to its manifests and came along, referrers of referrers included. */
    referrers: PulledReferrerInfo[];
  }[];
  /** Layer bytes downloaded by this run. */
  downloaded: number;
  /** Layer bytes kept from an earlier run. */
  reused: number;
  /** Bytes of the archive written. */
  archiveSize: number;
}

/** `registry/repository:tag`, or `registry/repository@digest` when no tag was named. */
export function imageName(reference: ImageReference): string {
  const base = `${reference.registry}/${reference.repository}`;
  return reference.tag !== undefined ? `${base}:${reference.tag}` : `${base}@${reference.digest}`;
}

/** Pulls `sources` into one archive. */
export async function pullImages(
  sources: readonly PullSource[],
  options: PullOptions,
): Promise<PullResult> {
  if (options.output.kind === "stream") return await pull(sources, options, options.output);
  // Before the first request: a path that cannot take the archive must not cost a download.
  const target = await resolveOutputTarget(options.output.path);
  if (target.kind === "file") {
    return await pull(sources, options, { ...options.output, path: target.path });
  }
  const file = await openOutputStream(target, options.signal);
  try {
    return await pull(sources, options, {
      kind: "stream",
      stream: outputWritable(file, target.path),
      label: options.output.path,
    });
  } finally {
    try {
      file.close();
    } catch {
      // Already closed with its stream.
    }
  }
}

/** The pull itself, into an output already checked. */
async function pull(
  sources: readonly PullSource[],
  options: PullOptions,
  output: PullOptions["output"],
): Promise<PullResult> {
  const images: BundleImage[] = [];
  const clients = new Map<string, RegistryClient>();
  const owners = new Map<BundleImage, RegistryClient>();
  for (const { reference, client } of sources) {
    options.signal?.throwIfAborted();
    const name = imageName(reference);
    const resolved = await resolveImage(client, {
      reference: reference.digest ?? reference.tag ?? "latest",
      name,
      platform: options.platform,
      defaultPlatform: options.defaultPlatform,
    });
    // `pull A A` (or two spellings of one name): one entry, since skopeo refuses an index.json
    // naming the same image twice.
    const same = (i: BundleImage) =>
      i.name === name && i.resolved.root.digest === resolved.root.digest;
    if (images.some(same)) continue;
    const image: BundleImage = { name, tag: reference.tag, resolved };
    images.push(image);
    owners.set(image, client);
    for (const manifest of resolved.manifests) {
      for (const layer of manifest.manifest.layers) {
        if (!clients.has(layer.digest)) clients.set(layer.digest, client);
      }
    }
  }
  if (options.referrers !== undefined) {
    await addReferrers(images, owners, clients, { ...options, referrers: options.referrers });
  }
  const warning = zstdLayerWarning(images);
  if (warning !== undefined) options.sink(warning);
  const layout = layOut(bundleEntries(images));
  const clientFor = (digest: string) => clients.get(digest)!;
  // Layers are hashed on a worker thread, so the main thread only moves bytes.
  using hashing = new HashWorker();
  const common = {
    clientFor,
    sink: options.sink,
    newHash: () => hashing.newHash(),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  let downloaded: number;
  let reused = 0;
  if (output.kind === "file") {
    const result = await writeArchiveFile(output.path, layout, {
      ...common,
      maxConcurrent: options.maxConcurrent,
      ...(output.resume === false ? { resume: false } : {}),
    });
    downloaded = result.downloaded;
    reused = result.reused;
  } else {
    downloaded = (await writeArchiveStream(output.stream, layout, {
      ...common,
      maxConcurrent: options.maxConcurrent,
      ...(output.label !== undefined ? { label: output.label } : {}),
    })).downloaded;
  }
  return {
    images: images.map((image) => ({
      name: image.name,
      digest: image.resolved.root.digest,
      platforms: storedPlatforms(image),
      referrers: referrerInfo(image.referrers),
    })),
    downloaded,
    reused,
    archiveSize: layout.totalSize,
  };
}

/**
 * Lookups for referrers at once, in a run: each manifest costs up to five (the API or the
 * fallback tag, and three cosign tags), all small.
 */
const PROBES_AT_ONCE = 8;

/**
 * Finds what refers to each image's manifests (`image.referrers`), and notes each referrer
 * blob's client. With one platform picked from an index, the index's own referrers cannot
 * come along: a warning says how many stay behind.
 */
async function addReferrers(
  images: readonly BundleImage[],
  owners: ReadonlyMap<BundleImage, RegistryClient>,
  clients: Map<string, RegistryClient>,
  options: PullOptions & { referrers: ReferrerLookup },
): Promise<void> {
  const lookup = options.referrers;
  const limiter = new Limiter(Math.max(PROBES_AT_ONCE, options.maxConcurrent));
  await Promise.all(images.map(async (image) => {
    const client = owners.get(image)!;
    const index = image.resolved.pickedFrom;
    const [found, left] = await Promise.all([
      findReferrers(client, subjectsOf(image.resolved), {
        lookup,
        name: image.name,
        known: new Map([[image.resolved.root.digest, image.resolved.attestations]]),
        limiter,
        sink: options.sink,
        ...(options.signal ? { signal: options.signal } : {}),
      }),
      // cosign signs the digest a tag names: for a multi-platform tag, the index's.
      index === undefined ? 0 : countReferrers(client, index, lookup, limiter),
    ]);
    image.referrers = found;
    for (const referrer of found.referrers) {
      for (const blob of referrer.blobs) {
        if (!clients.has(blob.digest)) clients.set(blob.digest, client);
      }
    }
    if (index === undefined || left === 0) return;
    options.sink({
      type: "notice",
      kind: "referrers-left-behind",
      level: "warning",
      digest: index,
      message: `${left} referrer(s) of the index ${index} (${image.name}) stay behind with ` +
        "it: only one platform's manifest is stored; keep the whole index to bring them",
    });
  }));
}

/** The manifests whose referrers come along: the root, and each platform's manifest. */
function subjectsOf(resolved: ResolvedImage): string[] {
  const subjects = [resolved.root.digest];
  for (const manifest of resolved.manifests) {
    if (!manifest.attestation && !subjects.includes(manifest.digest)) {
      subjects.push(manifest.digest);
    }
  }
  return subjects;
}

function referrerInfo(found: FoundReferrers | undefined): PulledReferrerInfo[] {
  return (found?.referrers ?? []).map((r) => ({
    digest: r.digest,
    mediaType: r.mediaType,
    size: r.bytes.length,
    kind: r.kind,
    artifactType: r.artifactType,
    subject: r.subject,
    ...(r.attached.by === "tag" ? { tag: r.attached.tag } : {}),
  }));
}

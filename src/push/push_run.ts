/**
 * A run: every job of a {@linkcode RunPlan} pushed with one set of shared machinery, as
 * go-containerregistry's `remote` pusher owns a run. All jobs share the transport, one auth
 * session per target (each repository a view of it), one compressor pool, one concurrency
 * budget (`--max-concurrent` across every image) and one lock per blob, so a blob held by
 * several images or archives goes up once per registry: later repositories find or mount it.
 * A job that fails does not stop the others; each reports on its own.
 */
import type { ArchiveImage } from "../archive/image.ts";
import { type ManifestNode, uniqueBlobs } from "../image/graph.ts";
import { isIndexMediaType } from "../image/media_types.ts";
import type { ProgressSink } from "../progress/events.ts";
import type { RegistryClient } from "../registry/client.ts";
import { formatReference } from "../image/reference.ts";
import {
  buildIndex,
  checkDistinctPlatforms,
  describePlatform,
  indexChildren,
  platformEntries,
  type PlatformEntry,
  type PushedManifest,
  readPlatform,
} from "./multi_arch.ts";
import { KeyedLocks, Limiter } from "../pool.ts";
import { CompressedFanOut } from "./fan_out.ts";
import { isUncompressedLayer } from "./manifest_rewrite.ts";
import {
  keptAsStored,
  type PreparedImage,
  prepareImage,
  pushImage,
  type PushOptions,
} from "./push_image.ts";
import { type BlobTally, noBlobs, type PushResult } from "./push_result.ts";
import { type PushedReferrer, referrerBlobs } from "./graph_referrers.ts";
import { keepLayersFor, type ReferrerPolicy } from "./referrer_guard.ts";
import type { Compression } from "../compress/codec.ts";
import type { PushJob } from "./run_plan.ts";

/** What a job did. */
export interface JobReport {
  job: PushJob;
  /** `pushed`; `planned` in a dry run (nothing sent); `failed`, with `error`. */
  status: "pushed" | "planned" | "failed";
  /** The root manifest pushed (or that a dry run would push): an index for `multi-arch`. */
  manifest?: PushedManifest;
  /** False in a dry run that cannot know the manifest (layers never compressed before). */
  manifestFinal: boolean;
  /** `os/arch[/variant]` of each image, read from the archive. */
  platforms: string[];
  uploaded: BlobTally;
  skipped: BlobTally;
  mounted: BlobTally;
  compressed: PushResult["compressed"];
  compressedLayers: Map<string, { bytes: number; size: number }>;
  /** What refers to the images and went with them (or would, in a dry run). */
  referrers: PushedReferrer[];
  /** Manifests whose referrers kept their image's layers as stored (not compressed). */
  keptAsStoredFor: string[];
  durationMs: number;
  error?: unknown;
}

export interface RunOptions {
  /** The client for a job's registry and repository (one auth session per target). */
  clientFor: (job: PushJob) => RegistryClient;
  /** Settings every image is pushed with. */
  push: Omit<PushOptions, "shared" | "announce" | "prepared" | "sink">;
  sink: ProgressSink;
  signal?: AbortSignal;
}

/** What {@linkcode prepareRun} found and decided, for {@linkcode runJobs}. */
export interface PreparedRun {
  /** Each `multi-arch` job's platform entries. */
  entries: ReadonlyMap<PushJob, PlatformEntry[]>;
  /**
   * Each image the run pushes, by its root manifest (a job's image, or a platform entry's):
   * decided once, however many targets it goes to.
   */
  images: ReadonlyMap<ManifestNode, PreparedImage>;
}

/**
 * Checks what can be checked before a byte is sent: a digest target must be the manifest's,
 * compression asked for explicitly must not break a referrer (see `referrer_guard.ts`), and
 * the platforms `--multi-arch` joins must be distinct (usage errors otherwise). Returns each
 * `multi-arch` job's platform entries, and for each image whether its referrers keep its
 * layers as stored.
 */
export async function prepareRun(
  jobs: readonly PushJob[],
  compression: Compression,
  signal?: AbortSignal,
  referrers: Omit<ReferrerPolicy, "compression"> = { compressionExplicit: false, referrers: true },
): Promise<PreparedRun> {
  const entries = new Map<PushJob, PlatformEntry[]>();
  const images = new Map<ManifestNode, PreparedImage>();
  const policy = { ...referrers, compression };
  /** An image pushed to several targets (or joined into several indexes) is decided once. */
  const decide = (root: ManifestNode, label: string): PreparedImage => {
    let prepared = images.get(root);
    if (prepared === undefined) {
      prepared = { keptAsStoredFor: keepLayersFor({ names: [], root, notes: [] }, policy, label) };
      images.set(root, prepared);
    }
    return prepared;
  };
  /** Every target joins the same sources: read them once. */
  const bySources = new Map<string, PlatformEntry[]>();
  for (const job of jobs) {
    if (job.kind === "image") {
      const { image, label } = job.sources[0]!;
      const decided = images.get(image.root);
      images.set(
        image.root,
        prepareImage(image, {
          tags: job.tags,
          ...(job.digest !== undefined ? { digest: job.digest } : {}),
        }, { policy, label, ...(decided ? { decided } : {}) }),
      );
      continue;
    }
    const key = job.sources.map((s) => `${s.archive} ${s.image.root.digest}`).join("\n");
    let found = bySources.get(key);
    if (found === undefined) {
      found = [];
      for (const source of job.sources) {
        const label = `${source.archive} (${source.label})`;
        found.push(
          ...await platformEntries(source.image.root, label, signal ? { signal } : {}),
        );
      }
      checkDistinctPlatforms(found);
      for (const entry of found) decide(entry.node, entry.label);
      bySources.set(key, found);
    }
    entries.set(job, found);
  }
  return { entries, images };
}

/** Runs every job; never throws for a job's failure (see {@linkcode JobReport.error}). */
export async function runJobs(
  jobs: readonly PushJob[],
  prepared: PreparedRun,
  options: RunOptions,
): Promise<JobReport[]> {
  const reachable = pingEach(jobs, options);
  const refusals = await Promise.all(jobs.map((job) => reachable.get(job)));
  const going = jobs.filter((_, i) => refusals[i] === undefined);
  // Only registries that answered get layers compressed for them: a fan-out that counted a
  // refused one would send it every layer (and retry each) after its ping had failed.
  const fanOut = fanOutOf(going, prepared, options);
  const shared = {
    limiter: new Limiter(options.push.maxConcurrent),
    locks: new KeyedLocks(),
    ...(fanOut ? { fanOut } : {}),
    planned: new Map<string, Set<string>>(),
    claimed: new Set<string>(),
  };
  /** An image pushed to several targets has its platforms read once. */
  const read = new Map<ArchiveImage, Promise<string[]>>();
  const platforms = (image: ArchiveImage, archive: string) => {
    let found = read.get(image);
    if (found === undefined) {
      found = platformsOf(image, archive, options.signal);
      read.set(image, found);
    }
    return found;
  };
  if (going.length > 0) {
    announce(going, options.sink, options.push.referrers !== false);
    sayKeptAsStored(going, prepared, options.sink);
  }
  return await Promise.all(jobs.map(async (job): Promise<JobReport> => {
    const started = performance.now();
    const refused = await reachable.get(job);
    const report = emptyReport(job);
    try {
      // What the job was meant to push, said even when its registry refused it.
      report.platforms = job.kind === "multi-arch"
        ? entriesOf(prepared, job).filter((e) => !e.attestation).map((e) =>
          describePlatform(e.platform)
        )
        : await platforms(job.sources[0]!.image, job.sources[0]!.archive);
      if (refused !== undefined) throw refused.error;
      const client = options.clientFor(job);
      // An image is pushed as decided before the run (the index it builds says its own).
      const push: PushOne = (image, tags, digest, decided = decidedFor(prepared, image.root)) =>
        pushImage(client, image, { tags, ...(digest !== undefined ? { digest } : {}) }, {
          ...options.push,
          shared,
          announce: false,
          prepared: decided,
          // The client's: in a run to several registries it names the registry.
          sink: client.sink,
        });
      if (job.kind === "multi-arch") {
        await pushJoined(push, entriesOf(prepared, job), job.tags, report);
      } else {
        const source = job.sources[0]!;
        const result = await push(source.image, job.tags, job.digest);
        add(report, result);
        report.manifest = result.manifest;
      }
      report.status = options.push.dryRun ? "planned" : "pushed";
    } catch (error) {
      report.error = error;
    }
    report.durationMs = Math.round(performance.now() - started);
    return report;
  }));
}

/**
 * One image of a job pushed to the job's repository, under `tags` (or by digest), as decided
 * before the run (`prepared`; by default what {@linkcode prepareRun} decided for the image).
 */
type PushOne = (
  image: ArchiveImage,
  tags: readonly string[],
  digest?: string,
  prepared?: PreparedImage,
) => Promise<PushResult>;

/**
 * Each registry is asked once whether it speaks v2 and takes our credentials, before the run
 * is announced: a registry that refuses us fails its jobs, and only those. Resolves, per job,
 * to undefined or to the refusal.
 */
function pingEach(
  jobs: readonly PushJob[],
  options: RunOptions,
): Map<PushJob, Promise<{ error: unknown } | undefined>> {
  const pings = new Map<RegistryClient, Promise<{ error: unknown } | undefined>>();
  const reachable = new Map<PushJob, Promise<{ error: unknown } | undefined>>();
  for (const job of jobs) {
    const client = options.clientFor(job);
    let ping = pings.get(client);
    if (ping === undefined) {
      ping = client.ping().then(() => undefined, (error) => ({ error }));
      pings.set(client, ping);
    }
    reachable.set(job, ping);
  }
  return reachable;
}

/** A job's report before it has done anything (a failure, until it succeeds). */
function emptyReport(job: PushJob): JobReport {
  return {
    job,
    status: "failed",
    manifestFinal: true,
    platforms: [],
    uploaded: noBlobs(),
    skipped: noBlobs(),
    mounted: noBlobs(),
    compressed: { count: 0, bytes: 0, size: 0 },
    compressedLayers: new Map(),
    referrers: [],
    keptAsStoredFor: [],
    durationMs: 0,
  };
}

/**
 * A multi-platform index joined from `entries`: each image by digest (every one settles before
 * the job does, so none is left running when one fails), then the index built from what they
 * were pushed as, under `tags`.
 */
async function pushJoined(
  push: PushOne,
  entries: readonly PlatformEntry[],
  tags: readonly string[],
  report: JobReport,
): Promise<void> {
  const pushed = new Map<string, PushedManifest>();
  const settled = await Promise.allSettled(entries.map(async (entry) => {
    const result = await push({ names: [], root: entry.node, notes: [] }, []);
    add(report, result);
    pushed.set(entry.node.digest, result.manifest);
  }));
  const failure = settled.find((s) => s.status === "rejected");
  if (failure !== undefined) throw failure.reason;
  const index = buildIndex(indexChildren(entries, pushed));
  report.manifest = { mediaType: index.mediaType, digest: index.digest, size: index.bytes.length };
  // The index, its platforms in place: a graph of one manifest, under the tags.
  const root = { ...index, blobs: [], children: [] };
  await push({ names: [], root, notes: [] }, tags, undefined, NOTHING_KEPT);
}

/** What an index the run builds is pushed as: it has no layers of its own to keep as stored. */
const NOTHING_KEPT: PreparedImage = { keptAsStoredFor: undefined };

/**
 * Which registries want each layer compressed on the way: with more than one, a layer is
 * compressed once for all of them (see {@linkcode CompressedFanOut}).
 */
function fanOutOf(
  jobs: readonly PushJob[],
  prepared: PreparedRun,
  options: RunOptions,
): CompressedFanOut | undefined {
  if (options.push.compression.codec === "none" || options.push.dryRun) return undefined;
  const fanOut = new CompressedFanOut();
  const registries = new Set<string>();
  for (const job of jobs) {
    const client = options.clientFor(job);
    registries.add(client.baseUrl.href);
    for (const root of rootsOf(job, prepared)) {
      // An image whose referrers keep its layers as stored wants none compressed.
      if (decidedFor(prepared, root).keptAsStoredFor !== undefined) continue;
      for (const blob of uniqueBlobs(root)) {
        if (isUncompressedLayer(blob.mediaType)) fanOut.want(blob.digest, client);
      }
    }
  }
  return registries.size > 1 ? fanOut : undefined;
}

/** The images a job pushes, by their root manifests: its image, or the platforms it joins. */
function rootsOf(job: PushJob, prepared: PreparedRun): ManifestNode[] {
  return job.kind === "multi-arch"
    ? entriesOf(prepared, job).map((e) => e.node)
    : job.sources.map((s) => s.image.root);
}

/**
 * What {@linkcode prepareRun} decided for the image at `root`. A miss is a caller's bug
 * (`runJobs` given jobs `prepareRun` never saw), never the user's: taking it for "not kept as
 * stored" would compress layers whose referrers need them as the archive has them.
 */
function decidedFor(prepared: PreparedRun, root: ManifestNode): PreparedImage {
  const decided = prepared.images.get(root);
  if (decided === undefined) throw notPrepared(`image ${root.digest}`);
  return decided;
}

/** The platforms {@linkcode prepareRun} read for a `multi-arch` job (a miss: as above). */
function entriesOf(prepared: PreparedRun, job: PushJob): PlatformEntry[] {
  const entries = prepared.entries.get(job);
  if (entries === undefined) throw notPrepared(`multi-arch push to ${formatReference(job.target)}`);
  return entries;
}

function notPrepared(what: string): Error {
  return new Error(
    `Internal error: the run was not prepared for the ${what} (runJobs needs what prepareRun ` +
      "made of the same jobs)",
  );
}

/**
 * One notice for each image whose layers go as stored for its referrers' sake, however many
 * targets it goes to: said by the run, after its plan, rather than by each push.
 */
function sayKeptAsStored(
  jobs: readonly PushJob[],
  prepared: PreparedRun,
  sink: ProgressSink,
): void {
  const said = new Set<ManifestNode>();
  for (const job of jobs) {
    for (const root of rootsOf(job, prepared)) {
      const pinned = decidedFor(prepared, root).keptAsStoredFor;
      if (pinned === undefined || said.has(root)) continue;
      said.add(root);
      // Named as its push would name it: a job's image by its name, a platform by its digest.
      const image = job.kind === "image" ? job.sources[0]!.image : { names: [], root, notes: [] };
      keptAsStored(image, pinned, sink);
    }
  }
}

/** One `plan` event for the run: every blob it may send, each digest once. */
function announce(jobs: readonly PushJob[], sink: ProgressSink, withReferrers: boolean): void {
  const blobs = new Map<string, number>();
  for (const job of jobs) {
    for (const source of job.sources) {
      const root = source.image.root;
      const held = uniqueBlobs(root);
      const theirs = withReferrers ? referrerBlobs(root, held) : [];
      for (const blob of [...held, ...theirs]) blobs.set(blob.digest, blob.size);
    }
  }
  const first = jobs[0];
  const images = new Set(jobs.flatMap((job) => job.sources.map((s) => s.image.root.digest)));
  sink({
    type: "plan",
    image: jobs.length === 1 && first !== undefined
      ? first.sources.map((s) => s.label).join(" + ")
      : `${images.size} image(s)`,
    target: jobs.length === 1 && first !== undefined
      ? formatReference({ ...first.target, ...tagOf(first) })
      : `${jobs.length} targets`,
    blobs: blobs.size,
    bytes: [...blobs.values()].reduce((sum, size) => sum + size, 0),
  });
}

function tagOf(job: PushJob): { tag?: string; digest?: string } {
  const tag = job.tags.join(",");
  if (tag !== "") return { tag };
  return job.digest !== undefined ? { digest: job.digest } : {};
}

function add(report: JobReport, result: PushResult): void {
  for (const key of ["uploaded", "skipped", "mounted"] as const) {
    report[key].count += result[key].count;
    report[key].bytes += result[key].bytes;
    report[key].archiveBytes += result[key].archiveBytes;
  }
  report.compressed.count += result.compressed.count;
  report.compressed.bytes += result.compressed.bytes;
  report.compressed.size += result.compressed.size;
  for (const [digest, layer] of result.compressedLayers) report.compressedLayers.set(digest, layer);
  report.manifestFinal &&= result.manifestFinal;
  report.referrers.push(...result.referrers);
  if (result.keptAsStoredFor !== undefined) report.keptAsStoredFor.push(result.keptAsStoredFor);
}

/** The platforms of an image, for the report: nothing when the archive does not say. */
async function platformsOf(
  image: ArchiveImage,
  archive: string,
  signal?: AbortSignal,
): Promise<string[]> {
  try {
    if (isIndexMediaType(image.root.mediaType)) {
      const entries = await platformEntries(image.root, archive, signal ? { signal } : {});
      return entries.filter((e) => !e.attestation).map((e) => describePlatform(e.platform));
    }
    return [describePlatform(await readPlatform(image.root, archive, signal ? { signal } : {}))];
  } catch {
    return [];
  }
}

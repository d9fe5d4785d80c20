/**
 * One push run assembled from settings: archives opened, one transport, a client per target,
 * the compressor, the blob-info cache and resume store, then the plan and its jobs. The public
 * `push` and the CLI's `push` command both run through here, so neither copies the other.
 */
import type { ArchiveImage, ImageArchive } from "../archive/image.ts";
import { openImageArchive } from "../archive/image_archive.ts";
import type { Compression } from "../compress/codec.ts";
import { InvalidOptionError } from "../errors.ts";
import { forTarget } from "../progress/events.ts";
import { BlobInfoCache, defaultCacheDir } from "../push/blob_info_cache.ts";
import { type LayerCompressor, layerCompressor } from "../push/layer_compressor.ts";
import { type JobReport, prepareRun, runJobs } from "../push/push_run.ts";
import {
  readStreamedArchive,
  type StreamedArchive,
  type StreamSource,
} from "../push/push_stream.ts";
import { defaultStateDir, ResumeStore } from "../push/resume_store.ts";
import { planRun, type PushJob, type RunPlan, type SkippedImage } from "../push/run_plan.ts";
import type { ChunkedMode } from "../push/upload_policy.ts";
import { uniqueBlobs } from "../image/graph.ts";
import type { CredentialLookup, Credentials } from "../registry/credentials.ts";
import { RegistryClient, type RegistryClientOptions } from "../registry/client.ts";
import { type ImageReference, registryBaseUrl, registryEndpoint } from "../image/reference.ts";
import { createTransport, type Transport } from "../registry/transport.ts";
import { type RunSettings, transportOptions } from "./run_context.ts";

/** An archive to push: a tar file or image directory read in place, or a stream read once. */
export type RunSource =
  | { kind: "file"; path: string }
  | ({ kind: "stream" } & StreamSource);

/** Something the run learnt that a caller may want to say; the caller words it. */
export type RunNote =
  /** A remark of the archive reader about an image (its own words). */
  | { kind: "archive-note"; text: string }
  /** Blobs of other images in a stream that went up too. */
  | { kind: "unused-stream-blobs"; count: number; bytes: number }
  /** The blob-info cache could not be saved (the push itself is done). */
  | { kind: "cache-not-saved"; path: string | undefined; error: unknown };

/** Everything one run needs, validated by the caller. */
export interface PushRunSettings extends RunSettings {
  sources: readonly RunSource[];
  targets: readonly ImageReference[];
  /** Credentials for target number `index`, asked once per target. */
  credentialsFor: (index: number) => Promise<Credentials | CredentialLookup | undefined>;
  tags: readonly string[];
  images: readonly string[];
  all: boolean;
  multiArch: boolean;
  dryRun: boolean;
  forceUpload: boolean;
  compression: Compression;
  largeLayerThreshold: number;
  chunkSize: number;
  chunked: ChunkedMode;
  mountFrom: string | undefined;
  resume: boolean;
  verify: boolean;
  /** Push what refers to the images after them (see the library's `referrers` option). */
  referrers: boolean;
  /** The caller asked for `compression` (a referrer it would break refuses the push). */
  compressionExplicit: boolean;
  note: (note: RunNote) => void;
}

/** What a run did: a report per job, and the images `all` left out. */
export interface RunOutcome {
  reports: JobReport[];
  skipped: SkippedImage[];
}

/** Largest request a layer read from a stream goes up in (it is held until confirmed). */
const STREAM_SEGMENT_BYTES = 16 * 1024 * 1024;

/**
 * Plans and runs every job; throws only for what stops the whole run (a job's failure is in
 * its report). Everything it opens is closed before it returns.
 */
export async function runPushSettings(settings: PushRunSettings): Promise<RunOutcome> {
  const stream = checkSources(settings);
  const fileArchives = await openFiles(settings);
  const stores = await openStores(settings);
  const transport = createTransport(transportOptions(settings));
  const compressor = layerCompressor({
    compression: settings.compression,
    cache: stores.cache,
    ...(settings.mountFrom !== undefined ? { mountFrom: settings.mountFrom } : {}),
    ...(stores.resume ? { resume: stores.resume } : {}),
  });
  try {
    const clients = await targetClients(settings, transport);
    // A stream goes to one target, which names a repository (checkSources): its blobs go there.
    const into = settings.targets[0]!.repository;
    const streamed = stream === undefined
      ? undefined
      : await readStream(stream, clients[0]!(into), settings, stores.cache, compressor);
    const archives = streamed === undefined ? fileArchives : [streamed.archive];
    const plan = planJobs(archives, settings, streamed);
    const prepared = await prepareRun(plan.jobs, settings.compression, settings.signal, {
      compressionExplicit: settings.compressionExplicit,
      referrers: settings.referrers,
    });
    const reports = await runJobs(plan.jobs, prepared, {
      clientFor: jobClients(clients),
      push: {
        forceUpload: settings.forceUpload,
        largeLayerThreshold: settings.largeLayerThreshold,
        chunkSize: settings.chunkSize,
        chunked: settings.chunked,
        ...(settings.mountFrom !== undefined ? { mountFrom: settings.mountFrom } : {}),
        ...(stores.resume ? { resume: stores.resume } : {}),
        verify: settings.verify,
        maxConcurrent: settings.maxConcurrent,
        dryRun: settings.dryRun,
        compression: settings.compression,
        compressionExplicit: settings.compressionExplicit,
        referrers: settings.referrers,
        cache: stores.cache,
        ...(streamed ? { streamed: streamed.passed, streamedInto: into } : {}),
        ...(compressor ? { compressor } : {}),
      },
      sink: settings.sink,
      ...(settings.signal ? { signal: settings.signal } : {}),
    });
    return { reports, skipped: plan.skipped };
  } finally {
    compressor?.close();
    await stores.save();
    transport.close();
  }
}

/**
 * The stream among the sources, if any, once it is known to be pushable: read once, it must
 * be the only archive, pushed to one target (with a prefix, for every image of it).
 */
function checkSources(settings: PushRunSettings): StreamSource | undefined {
  const { sources, targets } = settings;
  const stream = sources.find((s) => s.kind === "stream");
  if (stream === undefined) return undefined;
  if (sources.length > 1 || targets.length > 1) {
    throw new InvalidOptionError(
      `${stream.label} is read as a stream (a pipe or a compressed archive), once: it must be ` +
        `the only archive, pushed to one target`,
      { option: "archive", reason: "stream-not-alone", value: stream.label },
    );
  }
  if (settings.all && targets[0]!.repository === "") {
    throw new InvalidOptionError(
      `Pushing every image of a stream needs a prefix in the target: the layers go into it as ` +
        `they pass, and each image's repository mounts them from there`,
      { option: "targets", reason: "stream-all-no-prefix", value: targets[0]!.registry },
    );
  }
  return stream;
}

/** The archives read in place (files and directories), opened. */
async function openFiles(settings: PushRunSettings): Promise<ImageArchive[]> {
  const { signal } = settings;
  const archives: ImageArchive[] = [];
  for (const source of settings.sources) {
    if (source.kind === "file") {
      archives.push(await openImageArchive(source.path, signal ? { signal } : {}));
    }
  }
  return archives;
}

/** What the run remembers across runs: upload sessions to resume, and the blob-info cache. */
interface Stores {
  resume: ResumeStore | undefined;
  cache: BlobInfoCache;
  /** Saves what this run learnt (it holds even if the run failed part-way). */
  save(): Promise<void>;
}

async function openStores(settings: PushRunSettings): Promise<Stores> {
  const stateDir = settings.resume && !settings.dryRun ? defaultStateDir(settings.env) : undefined;
  const cacheDir = defaultCacheDir(settings.env);
  const cache = cacheDir === undefined
    ? BlobInfoCache.inMemory()
    : await BlobInfoCache.open(cacheDir);
  return {
    resume: stateDir === undefined ? undefined : new ResumeStore(stateDir),
    cache,
    save: async () => {
      if (settings.dryRun) return;
      await cache.save().catch((error) =>
        settings.note({ kind: "cache-not-saved", path: cache.path, error })
      );
    },
  };
}

/**
 * A target's client for one of its repositories: the target's own, or with `all` one of the
 * repositories its images go into (under the prefix, or with no prefix under their own names).
 * The same repository always gets the same client.
 */
type TargetClients = (repository: string) => RegistryClient;

/**
 * The clients of each target, in the targets' order, each target's asked for its credentials
 * once. A target's first client is made for the first repository asked for, and the others are
 * views of it: one transport, one auth session (one login, one token cache) per target. A
 * target with no repository (`all` with no prefix) has no client of its own: only the
 * repositories its images go into are ever named to the registry.
 */
async function targetClients(
  settings: PushRunSettings,
  transport: Transport,
): Promise<TargetClients[]> {
  const { targets, signal } = settings;
  const registries = new Set(targets.map((t) => registryBaseUrl(t).href));
  const clients: TargetClients[] = [];
  for (let index = 0; index < targets.length; index++) {
    const target = targets[index]!;
    const credentials = await settings.credentialsFor(index);
    clients.push(repositoryClients({
      ...registryEndpoint(target),
      registryName: target.registry,
      transport,
      retries: settings.retryAttempts,
      // Pushing to several registries, each transfer of a blob says where it goes.
      sink: registries.size > 1 ? forTarget(settings.sink, target.registry) : settings.sink,
      ...(signal ? { signal } : {}),
      ...(credentials !== undefined ? { credentials } : {}),
      ...(settings.mountFrom !== undefined ? { pullFrom: [settings.mountFrom] } : {}),
    }));
  }
  return clients;
}

/** One client per repository of a registry, made as asked for, sharing the first one's session. */
function repositoryClients(options: Omit<RegistryClientOptions, "repository">): TargetClients {
  const clients = new Map<string, RegistryClient>();
  let first: RegistryClient | undefined;
  return (repository) => {
    let client = clients.get(repository);
    if (client === undefined) {
      client = first?.forRepository(repository) ?? new RegistryClient({ ...options, repository });
      first ??= client;
      clients.set(repository, client);
    }
    return client;
  };
}

/** A job's client: its target's, for the job's repository. */
function jobClients(clients: readonly TargetClients[]): (job: PushJob) => RegistryClient {
  return (job) => clients[job.targetIndex]!(job.target.repository);
}

/** Reads a stream to its end, its large entries going up into `client`'s repository. */
async function readStream(
  stream: StreamSource,
  client: RegistryClient,
  settings: PushRunSettings,
  cache: BlobInfoCache,
  compressor: LayerCompressor | undefined,
): Promise<StreamedArchive> {
  await client.ping();
  return await readStreamedArchive(client, stream, {
    ...(compressor ? { compressor } : {}),
    cache,
    forceUpload: settings.forceUpload,
    dryRun: settings.dryRun,
    // What the registry has not confirmed is held in memory: at most this much.
    segmentSize: Math.min(settings.chunkSize, STREAM_SEGMENT_BYTES),
    sink: settings.sink,
  });
}

/**
 * The run's jobs, with the archive readers' notes and the stream's unused blobs said once;
 * nothing to push is an error.
 */
function planJobs(
  archives: ImageArchive[],
  settings: PushRunSettings,
  streamed: StreamedArchive | undefined,
): RunPlan {
  const plan = planRun(archives, {
    targets: [...settings.targets],
    tags: [...settings.tags],
    all: settings.all,
    multiArch: settings.multiArch,
    images: [...settings.images],
  });
  const noted = new Set<ArchiveImage>();
  for (const job of plan.jobs) {
    for (const { image } of job.sources) {
      if (noted.has(image)) continue;
      noted.add(image);
      for (const text of image.notes) settings.note({ kind: "archive-note", text });
    }
  }
  if (streamed !== undefined && plan.jobs.length === 1 && plan.jobs[0]!.kind === "image") {
    const unused = unusedBlobs(streamed, plan.jobs[0]!.sources[0]!.image);
    if (unused.count > 0) settings.note({ kind: "unused-stream-blobs", ...unused });
  }
  if (plan.jobs.length === 0) {
    const names = archives.map((a) => a.path).join(", ");
    throw new InvalidOptionError(`Nothing to push: every image of ${names} is untagged`, {
      option: "images",
      reason: "nothing-to-push",
      value: names,
    });
  }
  return plan;
}

/** Blobs of the stream that the pushed image does not name (they went up all the same). */
function unusedBlobs(
  streamed: StreamedArchive,
  image: ArchiveImage,
): { count: number; bytes: number } {
  const used = new Set(uniqueBlobs(image.root).map((blob) => blob.digest));
  let count = 0;
  let bytes = 0;
  for (const blob of streamed.passed.values()) {
    if (blob.outcome === "uploaded" && !used.has(blob.digest)) {
      count++;
      bytes += blob.size;
    }
  }
  return { count, bytes };
}

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
import { LayerCompressor } from "../push/layer_compressor.ts";
import { type JobReport, prepareRun, runJobs } from "../push/push_run.ts";
import {
  readStreamedArchive,
  type StreamedArchive,
  type StreamSource,
} from "../push/push_stream.ts";
import { defaultStateDir, ResumeStore } from "../push/resume_store.ts";
import { planRun, type SkippedImage } from "../push/run_plan.ts";
import type { ChunkedMode } from "../push/upload_policy.ts";
import { uniqueBlobs } from "../archive/image.ts";
import type { CredentialLookup, Credentials } from "../registry/auth.ts";
import { RegistryClient } from "../registry/client.ts";
import { type ImageReference, registryBaseUrl, registryEndpoint } from "../image/reference.ts";
import { createTransport } from "../registry/transport.ts";
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
  const { targets, sources, signal } = settings;
  const stream = sources.find((s) => s.kind === "stream");
  if (stream !== undefined && (sources.length > 1 || targets.length > 1)) {
    throw new InvalidOptionError(
      `${stream.label} is read as a stream (a pipe or a compressed archive), once: it must be ` +
        `the only archive, pushed to one target`,
      { option: "archive", reason: "stream-not-alone", value: stream.label },
    );
  }
  if (stream !== undefined && settings.all && targets[0]!.repository === "") {
    throw new InvalidOptionError(
      `Pushing every image of a stream needs a prefix in the target: the layers go into it as ` +
        `they pass, and each image's repository mounts them from there`,
      { option: "targets", reason: "stream-all-no-prefix", value: targets[0]!.registry },
    );
  }
  const fileArchives: ImageArchive[] = [];
  for (const source of sources) {
    if (source.kind === "file") {
      fileArchives.push(await openImageArchive(source.path, signal ? { signal } : {}));
    }
  }

  const clients = new Map<number, RegistryClient>();
  const views = new Map<string, RegistryClient>();
  const stateDir = settings.resume && !settings.dryRun ? defaultStateDir(settings.env) : undefined;
  const resume = stateDir === undefined ? undefined : new ResumeStore(stateDir);
  const cacheDir = defaultCacheDir(settings.env);
  const cache = cacheDir === undefined
    ? BlobInfoCache.inMemory()
    : await BlobInfoCache.open(cacheDir);
  const transport = createTransport(transportOptions(settings));
  /** What this run learnt holds even if it failed part-way. */
  const saveCache = async () => {
    if (settings.dryRun) return;
    await cache.save().catch((error) =>
      settings.note({ kind: "cache-not-saved", path: cache.path, error })
    );
  };
  const compressor = settings.compression.codec === "none" ? undefined : new LayerCompressor({
    ...settings.compression,
    cache,
    ...(settings.mountFrom !== undefined ? { mountFrom: settings.mountFrom } : {}),
    ...(resume ? { resume } : {}),
  });
  try {
    const registries = new Set(targets.map((t) => registryBaseUrl(t).href));
    for (let index = 0; index < targets.length; index++) {
      const target = targets[index]!;
      const credentials = await settings.credentialsFor(index);
      clients.set(
        index,
        new RegistryClient({
          ...registryEndpoint(target),
          registryName: target.registry,
          // Every image under its own name with no prefix: only views of it send requests.
          repository: target.repository === "" ? "_" : target.repository,
          transport,
          retries: settings.retryAttempts,
          // Pushing to several registries, each transfer of a blob says where it goes.
          sink: registries.size > 1 ? forTarget(settings.sink, target.registry) : settings.sink,
          ...(signal ? { signal } : {}),
          ...(credentials !== undefined ? { credentials } : {}),
          ...(settings.mountFrom !== undefined ? { pullFrom: [settings.mountFrom] } : {}),
        }),
      );
    }

    let streamed: StreamedArchive | undefined;
    if (stream !== undefined) {
      const client = clients.get(0)!;
      await client.ping();
      streamed = await readStreamedArchive(client, stream, {
        ...(compressor ? { compressor } : {}),
        cache,
        forceUpload: settings.forceUpload,
        dryRun: settings.dryRun,
        // What the registry has not confirmed is held in memory: at most this much.
        segmentSize: Math.min(settings.chunkSize, STREAM_SEGMENT_BYTES),
        sink: settings.sink,
      });
    }
    const archives = streamed === undefined ? fileArchives : [streamed.archive];
    const plan = planRun(archives, {
      targets: [...targets],
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
    const prepared = await prepareRun(plan.jobs, settings.compression, signal);
    const reports = await runJobs(plan.jobs, prepared, {
      clientFor: (job) => {
        const base = clients.get(job.targetIndex)!;
        if (base.repository === job.target.repository) return base;
        const key = `${job.targetIndex} ${job.target.repository}`;
        let view = views.get(key);
        if (view === undefined) {
          view = base.forRepository(job.target.repository);
          views.set(key, view);
        }
        return view;
      },
      push: {
        forceUpload: settings.forceUpload,
        largeLayerThreshold: settings.largeLayerThreshold,
        chunkSize: settings.chunkSize,
        chunked: settings.chunked,
        ...(settings.mountFrom !== undefined ? { mountFrom: settings.mountFrom } : {}),
        ...(resume ? { resume } : {}),
        verify: settings.verify,
        maxConcurrent: settings.maxConcurrent,
        dryRun: settings.dryRun,
        compression: settings.compression,
        cache,
        ...(streamed
          ? { streamed: streamed.passed, streamedInto: clients.get(0)!.repository }
          : {}),
        ...(compressor ? { compressor } : {}),
      },
      sink: settings.sink,
      ...(signal ? { signal } : {}),
    });
    return { reports, skipped: plan.skipped };
  } finally {
    compressor?.close();
    await saveCache();
    transport.close();
  }
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

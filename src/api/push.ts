/**
 * `push`: images from archives (files, directories or streams) into registries.
 *
 * @module
 */
import { openArchiveStream } from "../archive/stream_archive.ts";
import { formatBytes } from "../byte_size.ts";
import type { JobReport } from "../push/push_run.ts";
import type { BlobTally } from "../push/push_result.ts";
import {
  compressionOption,
  integerOption,
  MIN_CHUNK,
  mountFromOption,
  nonEmptyList,
  pushTargets,
  registryLimits,
  tagsOption,
} from "./checks.ts";
import { credentialsFor } from "./credentials.ts";
import { DEFAULTS, type PushOptions } from "./options.ts";
import { type RunNote, runPushSettings, type RunSource } from "./push_run.ts";
import type { BlobCount, PushedImage, PushResult } from "./results.ts";
import { abortable, defaultEnv, progressSink } from "./run_context.ts";

/**
 * Pushes the image an archive holds to each target (or, with `all`, every image under its own
 * name; with `multiArch`, the images joined into one index). Blobs the registry has are
 * skipped; uncompressed layers go up gzip-compressed unless `compression` says otherwise.
 *
 * Rejects with an `InvalidOptionError` (before anything is sent) for options it cannot act
 * on, an `ArchiveError` for an archive it cannot read, an `AuthError` or a `RegistryError`
 * (status, codes) for a registry's refusal, a `TokenServiceError` when the registry's token
 * service still fails after the retries, and the signal's reason when `signal` aborts. A
 * run of several pushes (targets, or images with `all`) with failures rejects with a
 * {@linkcode PushError} holding each failure and what was pushed.
 *
 * @example Push an archive and print the manifest's digest
 * ```ts
 * import { push } from "@docker-image-pusher/cli";
 *
 * const result = await push({
 *   archive: "app.tar",
 *   targets: ["registry.example.com/team/app:1.0"],
 *   credentials: { username: "ci", password: Deno.env.get("REGISTRY_PASSWORD")! },
 * });
 * console.log(result.images[0]?.manifest.digest);
 * ```
 */
export async function push(options: PushOptions): Promise<PushResult> {
  const { signal } = options;
  signal?.throwIfAborted();
  const env = options.env ?? defaultEnv;
  const inputs = nonEmptyList("archive", options.archive);
  const targetTexts = nonEmptyList("targets", options.targets);
  const all = options.all ?? false;
  const multiArch = options.multiArch ?? false;
  const targets = pushTargets(targetTexts, { archives: inputs.length, all, multiArch });
  const mountFrom = mountFromOption(options.mountFrom, targets);
  const settings = {
    tags: tagsOption(options.tags),
    images: [...options.images ?? []],
    compression: compressionOption(options.compression),
    ...registryLimits(options),
    largeLayerThreshold: integerOption(
      "largeLayerThreshold",
      options.largeLayerThreshold,
      DEFAULTS.largeLayerThreshold,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    chunkSize: integerOption(
      "chunkSize",
      options.chunkSize,
      DEFAULTS.chunkSize,
      MIN_CHUNK,
      Number.MAX_SAFE_INTEGER,
    ),
  };
  const sink = progressSink(options.onProgress);
  return await abortable(signal, async () => {
    const sources: RunSource[] = [];
    try {
      for (const [index, input] of inputs.entries()) {
        if (typeof input !== "string") {
          sources.push({ kind: "stream", label: `archive stream ${index + 1}`, stream: input });
          continue;
        }
        // A compressed file (or a pipe given by name) is read front to back, once.
        const stream = await openArchiveStream(input);
        sources.push(
          stream === undefined ? { kind: "file", path: input } : { kind: "stream", ...stream },
        );
      }
      const outcome = await runPushSettings({
        ...settings,
        sources,
        targets,
        credentialsFor: (index) => credentialsFor(options.credentials, targets[index]!, env),
        all,
        multiArch,
        dryRun: options.dryRun ?? false,
        forceUpload: options.forceUpload ?? false,
        chunked: options.chunked === undefined ? "auto" : options.chunked ? "always" : "never",
        mountFrom,
        resume: options.resume ?? true,
        verify: options.verify ?? false,
        referrers: options.referrers ?? true,
        compressionExplicit: options.compression !== undefined,
        insecureHosts: options.skipTls
          ? [...new Set(targets.filter((t) => t.scheme === "https").map((t) => t.apiHost))]
          : [],
        caCerts: options.caCerts === undefined ? undefined : [...options.caCerts],
        env,
        sink,
        note: (note) => sink({ type: "notice", kind: note.kind, message: noteText(note) }),
        signal,
      });
      const result: PushResult = {
        dryRun: options.dryRun ?? false,
        images: outcome.reports.filter((r) => r.status !== "failed").map(pushedImage),
        skipped: outcome.skipped.map((s) => ({ ...s })),
      };
      const failed = outcome.reports.filter((r) => r.status === "failed");
      if (failed.length === 0) return result;
      if (outcome.reports.length === 1) throw failed[0]!.error;
      throw new PushError(
        failed.map((r) => r.error),
        result,
        failed.length,
        outcome.reports.length,
      );
    } finally {
      // A stream the run never read (it stopped before) is cancelled, so nothing stays open.
      for (const source of sources) {
        if (source.kind === "stream" && !source.stream.locked) {
          await source.stream.cancel().catch(() => {});
        }
      }
    }
  });
}

/**
 * Pushes of a run of several failed: `errors` holds each failure (typed as `push` says),
 * `result` what was pushed all the same.
 */
export class PushError extends AggregateError {
  /** Always "PushError". */
  override name = "PushError";
  /** The images that were pushed despite the failures. */
  readonly result: PushResult;
  /** @internal */
  constructor(errors: unknown[], result: PushResult, failed: number, total: number) {
    const first = errors[0] instanceof Error ? errors[0].message : String(errors[0]);
    super(errors, `${failed} of ${total} pushes failed: ${first}`);
    this.result = result;
  }
}

function pushedImage(report: JobReport): PushedImage {
  return {
    repository: `${report.job.target.registry}/${report.job.target.repository}`,
    tags: [...report.job.tags],
    manifest: { ...report.manifest! },
    manifestFinal: report.manifestFinal,
    platforms: [...report.platforms],
    uploaded: count(report.uploaded),
    existing: count(report.skipped),
    mounted: count(report.mounted),
    durationMs: Math.round(report.durationMs),
    referrers: report.referrers.map((r) => ({
      digest: r.digest,
      kind: r.kind,
      artifactType: r.artifactType,
      subject: r.subject,
      ...(r.tag !== undefined ? { tag: r.tag } : {}),
    })),
    ...(report.keptAsStoredFor.length > 0 ? { keptAsStoredFor: [...report.keptAsStoredFor] } : {}),
  };
}

function count(tally: BlobTally): BlobCount {
  return { count: tally.count, bytes: tally.bytes, archiveBytes: tally.archiveBytes };
}

/** A note of the run, worded as the command line words it. */
function noteText(note: RunNote): string {
  switch (note.kind) {
    case "archive-note":
      return note.text;
    case "unused-stream-blobs":
      return `${note.count} blob(s), ${formatBytes(note.bytes)}, of other images in the stream ` +
        `went up too (an image's blobs are known only at the stream's end)`;
    case "cache-not-saved":
      return `could not save the blob-info cache ${note.path}: ${note.error}`;
  }
}

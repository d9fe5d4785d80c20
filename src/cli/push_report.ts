/**
 * The end of a push run, for people and for programs: the lines stdout carries (one per tag
 * pushed), the summary stderr carries when a run pushed several images or something failed,
 * and the `--output json` document. The JSON fields are documented in the README; a test
 * holds them to it, so their names stay stable.
 */
import { describeError } from "./core_advice.ts";
import { registryErrorIn } from "../registry/registry_error.ts";
import { formatBytes } from "../byte_size.ts";
import type { JobReport } from "../push/push_run.ts";
import type { BlobTally } from "../push/push_result.ts";
import type { PushJob, SkippedImage } from "../push/run_plan.ts";
import type { Compression } from "../compress/codec.ts";
import { referrerCounts } from "./referrer_counts.ts";

/** Version of the JSON document's layout; bumped only when a field changes meaning or goes. */
export const REPORT_SCHEMA_VERSION = 1;

/** `registry/repository:tag@digest` for each tag (or `registry/repository@digest`). */
export function pushedLines(report: JobReport): string[] {
  const { job, manifest } = report;
  if (manifest === undefined) return [];
  const base = `${job.target.registry}/${job.target.repository}`;
  if (job.tags.length === 0) return [`${base}@${manifest.digest}`];
  return job.tags.map((tag) => `${base}:${tag}@${manifest.digest}`);
}

/** Where a job goes, as people read it: `registry/repository:1,latest`. */
export function targetText(job: PushJob): string {
  const base = `${job.target.registry}/${job.target.repository}`;
  if (job.tags.length > 0) return `${base}:${job.tags.join(",")}`;
  return job.digest !== undefined ? `${base}@${job.digest}` : `${base} (by digest)`;
}

/** What a job pushes, as people read it: `app:1 (app.tar)`, or `a + b` joined. */
export function sourceText(job: PushJob): string {
  return job.sources.map((s) => `${s.label} (${s.archive})`).join(" + ");
}

/**
 * The blob counts of a job, in a few words: `2 blob(s) (10.2 KiB) uploaded, 1 (4.0 KiB)
 * mounted and 3 (8.0 KiB) already there`. Counts of none are left out, but for uploads:
 * `nothing uploaded and 3 blob(s) (8.0 KiB) already there`. `codec` names the compression of
 * layers that went compressed: their size is then said twice (sent, and before `codec`).
 */
export function tallyText(report: JobReport, dryRun: boolean, codec: string): string {
  const verb = dryRun ? "would be " : "";
  const parts = [{ tally: report.uploaded, what: `${verb}uploaded` }];
  if (report.mounted.count > 0) parts.push({ tally: report.mounted, what: `${verb}mounted` });
  if (report.skipped.count > 0) parts.push({ tally: report.skipped, what: "already there" });
  return joinList(countedParts(parts, codec));
}

/** One line per job for stderr: what went where, or why not. */
export function summaryLines(
  reports: readonly JobReport[],
  skipped: readonly SkippedImage[],
  options: { dryRun: boolean; codec: string },
): SummaryLine[] {
  const lines = reports.map((report): SummaryLine => {
    const where = `${sourceText(report.job)} → ${targetText(report.job)}`;
    if (report.status === "failed") {
      return { kind: "failed", text: `✗ ${where}: ${describeError(report.error)}` };
    }
    const digest = report.manifest === undefined
      ? ""
      : report.manifestFinal
      ? ` ${report.manifest.digest}`
      : " (digest known once its layers are compressed)";
    const tally = tallyText(report, options.dryRun, options.codec);
    return {
      kind: "done",
      text: `${options.dryRun ? "would push" : "✓"} ${where}${digest}: ${tally}`,
    };
  });
  for (const image of skipped) {
    lines.push({
      kind: "skipped",
      text: `- skipped ${image.digest} (${image.archive}): ${image.reason}; name it with ` +
        `--image to push it by digest`,
    });
  }
  return lines;
}

/** A line of the summary, and what it reports. */
export interface SummaryLine {
  kind: "done" | "failed" | "skipped";
  text: string;
}

export interface TextOptions {
  dryRun: boolean;
  quiet: boolean;
  codec: string;
}

/**
 * What stderr says at the end of a text run: what compression did; for one image in a dry run,
 * what a push would do; for a run of several pushes (or with failures or images left out), a
 * line for each. `--quiet` keeps the failures (they say what the exit code means) and the
 * images `--all` left out (nothing else says they were not pushed).
 */
export function textSummary(
  reports: readonly JobReport[],
  skipped: readonly SkippedImage[],
  options: TextOptions,
): string[] {
  const out: string[] = [];
  const failed = reports.filter((r) => r.status === "failed");
  const compression = compressionSummary(reports, options.codec);
  if (compression !== undefined && !options.quiet) out.push(compression);
  const along = referrersLine(reports, options.dryRun);
  if (along !== undefined && !options.quiet) out.push(along);
  if (options.dryRun && reports.length === 1 && skipped.length === 0) {
    if (failed.length === 0) out.push(dryRunLine(reports[0]!, options.codec));
    return out;
  }
  if (reports.length + skipped.length <= 1) return out;
  const lines = summaryLines(reports, skipped, options);
  const shown = options.quiet ? lines.filter((l) => l.kind !== "done") : lines;
  if (shown.length === 0) return out;
  out.push(
    `${options.dryRun ? "Dry run" : "Summary"}: ${reports.length} push(es)` +
      (skipped.length > 0 ? `, ${skipped.length} image(s) skipped` : ""),
  );
  for (const line of shown) out.push(`  ${line.text}`);
  return out;
}

/**
 * What came along with the images: `Pushed with the image: 2 signatures, 1 SBOM, 2
 * attestations` (a dry run: `Would push …`); undefined when nothing did.
 */
function referrersLine(reports: readonly JobReport[], dryRun: boolean): string | undefined {
  const done = reports.filter((r) => r.status !== "failed");
  const along = referrerCounts(done.flatMap((r) => r.referrers));
  if (along === undefined) return undefined;
  const images = done.length === 1 ? "the image" : "the images";
  return `${dryRun ? "Would push" : "Pushed"} with ${images}: ${along}`;
}

/**
 * What a dry run of one image would do, on one line (stderr): `Dry run: 3 blob(s) (12.0 KiB)
 * would be uploaded; 1 blob(s) (2.0 KiB) already in the registry; manifest sha256:… would be
 * pushed as registry/app:1`.
 */
function dryRunLine(report: JobReport, codec: string): string {
  const parts = [{ tally: report.uploaded, what: "would be uploaded" }];
  if (report.mounted.count > 0) {
    parts.push({ tally: report.mounted, what: "would be mounted from another repository" });
  }
  if (report.skipped.count > 0) {
    parts.push({ tally: report.skipped, what: "already in the registry" });
  }
  const manifest = report.manifestFinal && report.manifest !== undefined
    ? `manifest ${report.manifest.digest}`
    : "the manifest (its digest depends on the compressed layers)";
  return `Dry run: ${countedParts(parts, codec, true).join("; ")}; ` +
    `${manifest} would be pushed as ${targetText(report.job)}`;
}

/**
 * Each tally as `3 blob(s) (12.0 KiB) <what>`; after the first count, `blob(s)` goes without
 * saying (`1 (4.0 KiB) mounted`) unless `nounEach`. A first tally of none says
 * `nothing <what>`.
 */
function countedParts(
  parts: readonly { tally: BlobTally; what: string }[],
  codec: string,
  nounEach = false,
): string[] {
  let counted = false;
  return parts.map(({ tally, what }) => {
    if (tally.count === 0) return `nothing ${what}`;
    const noun = counted && !nounEach ? "" : " blob(s)";
    counted = true;
    return `${tally.count}${noun} (${sizeText(tally, codec)}) ${what}`;
  });
}

/** `12.0 KiB`, or `3.1 MiB, 10.0 MiB before gzip` where layers went compressed. */
function sizeText(tally: BlobTally, codec: string): string {
  if (tally.bytes === tally.archiveBytes) return formatBytes(tally.bytes);
  return `${formatBytes(tally.bytes)}, ${formatBytes(tally.archiveBytes)} before ${codec}`;
}

/** `a`, `a and b`, `a, b and c`. */
function joinList(items: readonly string[]): string {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}

/**
 * One line on what compression did, or nothing when no layer was compressed. Layers that did
 * not shrink (by 1 % at least: tar padding always shrinks a little) went up as stored blocks:
 * not a warning, just the fact.
 */
function compressionSummary(
  reports: readonly JobReport[],
  codec: string,
): string | undefined {
  // A layer sent to several repositories or registries was compressed once: count it once.
  const layers = new Map<string, { bytes: number; size: number }>();
  for (const report of reports) {
    for (const [digest, layer] of report.compressedLayers) layers.set(digest, layer);
  }
  const compressed = { count: layers.size, bytes: 0, size: 0 };
  for (const layer of layers.values()) {
    compressed.bytes += layer.bytes;
    compressed.size += layer.size;
  }
  if (compressed.count === 0) return undefined;
  if (compressed.size >= compressed.bytes * 0.99) {
    return `${compressed.count} layer(s) did not compress with ${codec}; sent as stored ` +
      `(${formatBytes(compressed.bytes)})`;
  }
  return `Compressed ${compressed.count} layer(s) with ${codec}: ` +
    `${formatBytes(compressed.bytes)} → ${formatBytes(compressed.size)}`;
}

export interface JsonReportInput {
  reports: readonly JobReport[];
  skipped: readonly SkippedImage[];
  dryRun: boolean;
  /** Absent only for a run that failed before its settings were read (it has no images). */
  compression?: Compression;
  durationMs: number;
  /** A failure before any job ran (a usage error, an unreadable archive, a refusal). */
  error?: unknown;
  /**
   * Each archive as the command line named it, by the label messages use: `-` for the one
   * read from standard input (as `inspect`'s document names it). Default: the label.
   */
  archiveNames?: ReadonlyMap<string, string>;
}

/** The `--output json` document (see the README for every field). */
export function jsonReport(input: JsonReportInput): Record<string, unknown> {
  const { reports } = input;
  const failed = reports.filter((r) => r.status === "failed");
  const named = (archive: string) => input.archiveNames?.get(archive) ?? archive;
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    success: input.error === undefined && failed.length === 0,
    dryRun: input.dryRun,
    durationMs: input.durationMs,
    images: reports.map((report) => jobJson(report, input.compression ?? NO_COMPRESSION, named)),
    skipped: input.skipped.map((s) => ({
      archive: named(s.archive),
      digest: s.digest,
      reason: s.reason,
    })),
    errors: [
      ...(input.error === undefined
        ? []
        : [{ target: null, image: null, ...errorJson(input.error) }]),
      ...failed.map((report) => ({
        target: targetText(report.job),
        image: sourceText(report.job),
        ...errorJson(report.error),
      })),
    ],
  };
}

const NO_COMPRESSION: Compression = { codec: "none" };

function jobJson(
  report: JobReport,
  compression: Compression,
  named: (archive: string) => string,
): Record<string, unknown> {
  const { job, manifest } = report;
  const tally = (t: BlobTally) => ({
    count: t.count,
    bytes: t.bytes,
    archiveBytes: t.archiveBytes,
  });
  return {
    sources: job.sources.map((s) => ({
      archive: named(s.archive),
      name: s.label === s.image.root.digest ? null : s.label,
      names: s.image.names,
      digest: s.image.root.digest,
    })),
    target: {
      registry: job.target.registry,
      repository: job.target.repository,
      tags: job.tags,
      references: pushedLines(report),
    },
    status: report.status,
    kind: job.kind,
    digest: manifest === undefined || !report.manifestFinal ? null : manifest.digest,
    mediaType: manifest?.mediaType ?? null,
    platforms: report.platforms,
    blobs: {
      uploaded: tally(report.uploaded),
      skipped: tally(report.skipped),
      mounted: tally(report.mounted),
    },
    compression: {
      codec: compression.codec,
      level: compression.codec === "none" ? null : compression.level,
      layers: report.compressed.count,
      bytes: report.compressed.bytes,
      compressedBytes: report.compressed.size,
    },
    referrers: report.referrers.map((r) => ({
      digest: r.digest,
      kind: r.kind,
      artifactType: r.artifactType,
      subject: r.subject,
      tag: r.tag ?? null,
    })),
    keptAsStoredFor: report.keptAsStoredFor,
    durationMs: report.durationMs,
    error: report.status === "failed" ? errorJson(report.error) : null,
  };
}

function errorJson(error: unknown): { message: string; status: number | null; codes: string[] } {
  // An auth refusal is explained in our words; the registry's answer is its cause.
  const answer = registryErrorIn(error);
  return {
    message: describeError(error),
    status: answer?.status ?? null,
    codes: answer?.codes.map((c) => c.code) ?? [],
  };
}

/**
 * Progress as plain log lines, for stderr that is not a terminal (CI logs, files): no escape
 * codes, no redraws, and a bounded number of lines however many progress events arrive.
 */
import type { ProgressEvent, ProgressSink } from "../../progress/events.ts";
import { retryText } from "./retry_text.ts";
import { formatBytes } from "../../byte_size.ts";
import {
  formatDuration,
  formatManifest,
  formatMillis,
  formatPercent,
  formatRate,
  formatSentSize,
  shortDigest,
} from "./format.ts";
import { type BlobState, ProgressState } from "./state.ts";

/** Options for {@linkcode createLineRenderer}. */
export interface LineRendererOptions {
  /** Receives each line, without a trailing newline. */
  writeLine: (line: string) => void;
  /** Clock in milliseconds. Default `performance.now`. */
  now?: () => number;
  /** Least time between two "Progress:" lines. Default 10000 ms. */
  intervalMs?: number;
}

/** A running line renderer. */
export interface LineRenderer {
  /** Feed progress events here. */
  readonly sink: ProgressSink;
  /** Stops printing. Holds no timer or handle; provided so all renderers stop alike. */
  stop(): void;
}

/**
 * Creates a line renderer. It prints the plan, each blob's start and finish, retries, notices
 * and manifests as they happen, plus at most one overall "Progress:" line per `intervalMs`.
 * The throttle is checked on `blob-progress` events rather than by a timer, so there is
 * nothing to leak and nothing is printed while nothing moves. The interval counts from the
 * first event. `http` events are left to the verbose logger.
 *
 * @example
 * ```ts
 * const lines = createLineRenderer({ writeLine: (line) => writeStderr(line + "\n") });
 * ```
 */
export function createLineRenderer(options: LineRendererOptions): LineRenderer {
  const { writeLine } = options;
  const state = new ProgressState(options.now === undefined ? {} : { now: options.now });
  const intervalMs = options.intervalMs ?? 10_000;
  let lastProgressAt: number | undefined;
  let stopped = false;

  const sink: ProgressSink = (event) => {
    if (stopped) return;
    state.apply(event);
    const now = state.now();
    lastProgressAt ??= now;
    if (event.type === "blob-progress") {
      if (now - lastProgressAt < intervalMs) return;
      lastProgressAt = now;
      writeLine(progressLine(state));
      return;
    }
    const line = eventLine(event, state);
    if (line !== undefined) writeLine(line);
  };

  return {
    sink,
    stop: () => {
      stopped = true;
    },
  };
}

/** "Progress: 1.20 GiB / 3.00 GiB (40%), 55.1 MiB/s, ETA 0:33" */
function progressLine(state: ProgressState): string {
  const t = state.totals();
  return `Progress: ${formatBytes(t.bytesDone)} / ${formatBytes(t.bytesTotal)} ` +
    `(${formatPercent(t.fraction)}), ${formatRate(t.rate)}, ETA ${formatDuration(t.etaMs)}`;
}

function eventLine(event: ProgressEvent, state: ProgressState): string | undefined {
  switch (event.type) {
    case "plan":
      return `Pushing ${event.image}${event.target === undefined ? "" : ` → ${event.target}`}: ` +
        `${event.blobs} ${event.blobs === 1 ? "blob" : "blobs"}, ` +
        formatBytes(event.bytes);
    case "blob-start": {
      const retry = event.attempt > 1 ? `, attempt ${event.attempt}` : "";
      return `Uploading ${shortDigest(event.digest)} (${formatBytes(event.size)})` +
        `${to(event.target)}${retry}`;
    }
    case "blob-done": {
      const size = formatSentSize(event.size, event.compressed);
      const what = `${shortDigest(event.digest)} (${size})${to(event.target)}`;
      // A blob this run uploaded and then mounted elsewhere: the time was the upload's.
      const blob = state.blob(event.digest, event.target);
      const took = blob?.status === event.outcome ? elapsed(blob) : "";
      if (event.outcome === "skipped") return `Skipped ${what}: already exists${took}`;
      if (event.outcome === "mounted") return `Mounted ${what} from another repository${took}`;
      return `Uploaded ${what}${took}`;
    }
    case "retry":
      return `Retrying ${retryText(event.subject)} in ${formatMillis(event.delayMs)} ` +
        `(attempt ${event.attempt}): ${event.reason}`;
    case "notice":
      return `${event.level === "warning" ? "Warning" : "Notice"}: ${event.message}`;
    case "manifest-done":
      return `Pushed manifest ${formatManifest(event.reference, event.digest)}`;
    case "referrer-done":
      return `${event.dryRun ? "Would push" : "Pushed"} ${event.kind} ${
        shortDigest(event.digest)
      } of ${shortDigest(event.subject)}${event.tag === undefined ? "" : ` as ${event.tag}`}`;
    case "blob-progress":
    case "http":
      return undefined;
  }
}

/** " to registry.example.com", in a run to several registries. */
function to(target: string | undefined): string {
  return target === undefined ? "" : ` to ${target}`;
}

/** " in 5.2 s" for a blob whose start was reported; skipped blobs usually have none. */
function elapsed(blob: BlobState | undefined): string {
  if (blob?.startedAt === undefined || blob.finishedAt === undefined) return "";
  return ` in ${formatMillis(blob.finishedAt - blob.startedAt)}`;
}

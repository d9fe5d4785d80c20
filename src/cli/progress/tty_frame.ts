/**
 * What the TTY renderer draws, as pure functions of the progress model: the live block (one
 * row per blob in flight plus the total) and the permanent lines printed above it.
 *
 * ```
 * ✓ 0123456789ab uploaded 12.0 MiB in 3.1 s                       <- permanent lines
 * abcdef012345 [███████████████░░░░░░░░░░░░░░░]  50% 32.0 MiB / 64.0 MiB
 * fedcba987654 retrying (attempt 2)
 * 9876543210fe [█████████████████████████████░]  99% 8.0 MiB sent, finishing
 * total        [██████░░░░░░░░░░░░░░░░░░░░░░░░]  20% 44.0 MiB / 200.0 MiB
 *              1/4 blobs, 10.5 MiB/s, ETA 0:15
 * ```
 */
import type { ProgressEvent } from "../../progress/events.ts";
import { retryText } from "./retry_text.ts";
import type { Palette } from "./ansi.ts";
import { formatBytes } from "../../byte_size.ts";
import {
  formatDuration,
  formatManifest,
  formatMillis,
  formatPercent,
  formatRate,
  shortDigest,
} from "./format.ts";
import { ALMOST_DONE, type BlobState, type ProgressState } from "./state.ts";

/** The words that say which way the bytes go: a push uploads, a pull downloads. */
export interface Wording {
  /** A blob moved: "uploaded". */
  readonly moved: string;
  /** Its last bytes are through, the other side is checking them: "sent, finishing". */
  readonly finishing: string;
  /** A blob that needed no transfer: "exists, skipped". */
  readonly skipped: string;
  /** Bytes an earlier run had already moved: "kept from the earlier run". */
  readonly kept: string;
}

export const PUSH_WORDS: Wording = {
  moved: "uploaded",
  finishing: "sent, finishing",
  skipped: "exists, skipped",
  kept: "sent by an earlier run",
};

export const PULL_WORDS: Wording = {
  moved: "downloaded",
  finishing: "received, checking",
  skipped: "complete from the earlier run, kept",
  kept: "kept from the earlier run",
};

/** Layout knobs for {@linkcode renderLiveBlock}. */
export interface FrameOptions {
  readonly palette: Palette;
  /** Default {@linkcode PUSH_WORDS}. */
  readonly words?: Wording;
  /** Terminal columns. */
  readonly width: number;
  /** Most blob rows to show; the rest are summarised in one line. */
  readonly maxRows: number;
}

/** Width of the label column: a short digest, or "total". */
const LABEL = 12;
const MAX_BAR = 30;
/** Narrower than this and a bar says nothing; rows drop it. */
const MIN_BAR = 5;
/**
 * A row besides its bar: label, spaces, brackets, "100%", "1023.99 GiB / 1023.99 GiB" (as long
 * as "99.99 GiB sent, finishing"; a bigger finishing blob's row is cut at the edge instead).
 */
const ROW_TEXT = LABEL + 1 + 2 + 1 + 4 + 1 + 25;

/**
 * The live block for the current state: one row per blob in flight, then two total lines.
 * Empty before anything is known. Lines are joined with "\n", without a trailing newline.
 */
export function renderLiveBlock(state: ProgressState, options: FrameOptions): string {
  const totals = state.totals();
  if (!totals.planned && state.blobs().length === 0) return "";
  const { palette: c } = options;
  // One column short of the width: some terminals wrap a line that fills the last column.
  const barWidth = Math.min(MAX_BAR, options.width - 1 - ROW_TEXT);
  const lines: string[] = [];

  const inFlight = state.inFlight();
  const maxRows = Math.max(0, Math.floor(options.maxRows));
  // Showing "… 1 more" would take the row the blob itself needs.
  const shown = inFlight.length <= maxRows ? inFlight : inFlight.slice(0, Math.max(0, maxRows - 1));
  const words = options.words ?? PUSH_WORDS;
  for (const blob of shown) lines.push(blobRow(blob, barWidth, c, words));
  if (shown.length < inFlight.length) {
    lines.push(c.dim(`… ${inFlight.length - shown.length} more in flight`));
  }

  const bytes = `${formatBytes(totals.bytesDone)} / ${formatBytes(totals.bytesTotal)}`;
  lines.push(row(c.bold("total".padEnd(LABEL)), totals.fraction, bytes, barWidth, c));
  const stats = `${totals.blobsFinished}/${totals.blobsTotal} blobs, ` +
    `${formatRate(totals.rate)}, ETA ${formatDuration(totals.etaMs)}`;
  // Aligned under the bar when there is room; a wrapped line would cost a row.
  const indent = LABEL + 1 + stats.length < options.width ? " ".repeat(LABEL + 1) : "";
  lines.push(indent + stats);
  return lines.join("\n");
}

function blobRow(blob: BlobState, barWidth: number, c: Palette, words: Wording): string {
  const label = shortDigest(blob.digest).padEnd(LABEL);
  if (blob.status === "retrying") {
    return `${label} ${c.yellow(`retrying (attempt ${blob.attempt})`)}`;
  }
  if (blob.status === "finishing") {
    // Every byte is with the connection, but a slow link may take seconds to deliver what its
    // buffers hold, and the registry must still answer: short of done, and saying so.
    return row(label, ALMOST_DONE, `${formatBytes(blob.size)} ${words.finishing}`, barWidth, c);
  }
  const fraction = blob.size > 0 ? blob.done / blob.size : 0;
  return row(label, fraction, `${formatBytes(blob.done)} / ${formatBytes(blob.size)}`, barWidth, c);
}

function row(label: string, fraction: number, bytes: string, barWidth: number, c: Palette): string {
  const percent = formatPercent(fraction).padStart(4);
  if (barWidth < MIN_BAR) return `${label} ${percent} ${bytes}`;
  return `${label} ${bar(fraction, barWidth, c)} ${percent} ${bytes}`;
}

function bar(fraction: number, width: number, c: Palette): string {
  const clamped = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  // Round down so a full bar means done, like the percentage.
  const filled = Math.floor(clamped * width);
  return `[${c.cyan("█".repeat(filled))}${c.dim("░".repeat(width - filled))}]`;
}

/**
 * The permanent line an event leaves above the live block, if any. Call after the state has
 * applied the event, so a finished blob's start time is known.
 */
export function permanentLine(
  event: ProgressEvent,
  state: ProgressState,
  c: Palette,
  words: Wording = PUSH_WORDS,
): string | undefined {
  switch (event.type) {
    case "blob-done": {
      // In a run to several registries, which one.
      const digest = shortDigest(event.digest) +
        (event.target === undefined ? "" : ` (${event.target})`);
      if (event.outcome === "skipped") return c.dim(`= ${digest} ${words.skipped}`);
      if (event.outcome === "mounted") {
        return c.dim(`= ${digest} mounted from another repository`);
      }
      const blob = state.blob(event.digest, event.target);
      const took = blob?.startedAt !== undefined && blob.finishedAt !== undefined
        ? ` in ${formatMillis(blob.finishedAt - blob.startedAt)}`
        : "";
      // A layer compressed on the way: what was sent, and what the archive holds.
      const size = event.compressed === undefined
        ? formatBytes(event.size)
        : `${formatBytes(event.compressed.size)} (${formatBytes(event.size)} before ` +
          `${event.compressed.codec})`;
      // A resumed download moved only what the earlier run had not kept.
      const kept = blob !== undefined && blob.kept > 0
        ? `${formatBytes(event.size - blob.kept)}${took} (${formatBytes(blob.kept)} ${words.kept})`
        : undefined;
      return `${c.green("✓")} ${digest} ${words.moved} ${kept ?? `${size}${took}`}`;
    }
    case "retry":
      return `${c.yellow("↻")} Retrying ${retryText(event.subject)} in ${
        formatMillis(event.delayMs)
      } ` +
        `(attempt ${event.attempt}): ${event.reason}`;
    case "notice":
      return `${c.yellow("!")} ${event.message}`;
    case "manifest-done":
      return `${c.green("✓")} pushed manifest ${formatManifest(event.reference, event.digest)}`;
    case "referrer-done":
      return `${c.green("✓")} ${event.dryRun ? "would push" : "pushed"} ${event.kind} ${
        shortDigest(event.digest)
      } of ${shortDigest(event.subject)}`;
    case "plan":
    case "blob-start":
    case "blob-progress":
    case "http":
      return undefined;
  }
}

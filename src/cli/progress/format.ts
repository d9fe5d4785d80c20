/**
 * Number formatting shared by every renderer, so a size reads the same in a live bar, a CI log
 * line and a summary.
 */
import type { CompressedForm } from "../../progress/events.ts";
import { formatBytes } from "../../byte_size.ts";

/**
 * Formats a transfer rate, or "-- B/s" when it is not known yet.
 *
 * @example
 * ```ts
 * formatRate(12.3 * 1024 ** 2); // "12.3 MiB/s"
 * formatRate(undefined); // "-- B/s"
 * ```
 */
export function formatRate(bytesPerSec: number | undefined): string {
  if (bytesPerSec === undefined || !Number.isFinite(bytesPerSec)) return "-- B/s";
  return `${formatBytes(bytesPerSec)}/s`;
}

/**
 * Formats a duration as a clock, "m:ss" or "h:mm:ss"; "--:--" when unknown.
 *
 * @example
 * ```ts
 * formatDuration(5_000); // "0:05"
 * formatDuration(3_723_000); // "1:02:03"
 * formatDuration(undefined); // "--:--"
 * ```
 */
export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return "--:--";
  const total = Math.round(ms / 1000);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, "0");
  if (hours === 0) return `${minutes}:${seconds}`;
  return `${hours}:${String(minutes).padStart(2, "0")}:${seconds}`;
}

/**
 * Formats a short span for humans: "850 ms", "12.3 s", and clock form from a minute up.
 * Used for retry delays and per-blob times, where "0:00" would hide everything under a second.
 *
 * @example
 * ```ts
 * formatMillis(850); // "850 ms"
 * formatMillis(2_500); // "2.5 s"
 * formatMillis(65_000); // "1:05"
 * ```
 */
export function formatMillis(ms: number): string {
  const value = Number.isFinite(ms) && ms > 0 ? ms : 0;
  if (value < 1000) return `${Math.round(value)} ms`;
  // toFixed(1) of 59.96 s is "60.0"; switch to the clock before that happens.
  if (value < 59_950) return `${(value / 1000).toFixed(1)} s`;
  return formatDuration(value);
}

/**
 * The first 12 hex characters of a digest, as `docker` shows image IDs.
 *
 * @example
 * ```ts
 * shortDigest("sha256:abcdef0123456789..."); // "abcdef012345"
 * ```
 */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(":");
  return digest.slice(colon + 1, colon + 13);
}

/**
 * Names a pushed manifest: "app:1 (sha256:…)" with the full digest, which users copy; just the
 * digest when the manifest was pushed by digest (an index's per-platform children).
 */
export function formatManifest(reference: string, digest: string): string {
  // A child pushed by digest names it already: `registry/repository@sha256:…`.
  return reference === digest || reference.endsWith(`@${digest}`)
    ? reference
    : `${reference} (${digest})`;
}

/** Percentage of `fraction` (0..1), rounded down so "100%" only appears when complete. */
export function formatPercent(fraction: number): string {
  const value = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  return `${Math.floor(value * 100)}%`;
}

/**
 * A blob's size as the registry got it: "3.1 MiB, 10.0 MiB before gzip" for a layer compressed
 * on the way (what was sent, then what the archive holds), else "10.0 KiB".
 */
export function formatSentSize(size: number, compressed?: CompressedForm): string {
  if (compressed === undefined) return formatBytes(size);
  return `${formatBytes(compressed.size)}, ${formatBytes(size)} before ${compressed.codec}`;
}

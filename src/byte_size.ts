/** Byte counts as people read them: `512 B`, `1.5 KiB`, `1.00 GiB`. */
const UNITS = ["KiB", "MiB", "GiB", "TiB", "PiB"] as const;

/**
 * Formats a byte count with binary units.
 *
 * Bytes are whole numbers; KiB and MiB get one decimal; GiB and above get two, so a counter in
 * the gigabytes still moves visibly (0.01 GiB is about 10 MiB). Negative or non-finite input
 * renders as "0 B": renderers must not throw on a bad event.
 *
 * @example
 * ```ts
 * formatBytes(512); // "512 B"
 * formatBytes(1536); // "1.5 KiB"
 * formatBytes(64 * 1024 ** 2); // "64.0 MiB"
 * formatBytes(1024 ** 3); // "1.00 GiB"
 * ```
 */
export function formatBytes(n: number): string {
  const bytes = Number.isFinite(n) && n > 0 ? n : 0;
  if (Math.round(bytes) < 1024) return `${Math.round(bytes)} B`;
  let value = bytes / 1024;
  let unit = 0;
  // Promote when rounding reaches 1024 ("1024.0 KiB" reads worse than "1.0 MiB").
  while (unit < UNITS.length - 1 && Number(value.toFixed(decimalsFor(unit))) >= 1024) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(decimalsFor(unit))} ${UNITS[unit]}`;
}

function decimalsFor(unit: number): number {
  return unit < 2 ? 1 : 2;
}

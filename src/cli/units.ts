/**
 * Parsing of the numbers users type: byte sizes and durations with optional units, counts,
 * booleans. Every refusal is a {@linkcode UsageError} with a hint saying what is accepted.
 */
import { UsageError } from "./usage_error.ts";

const UNITS = new Map<string, number>(Object.entries({
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
}));

/** `1073741824`, `512MiB`, `64M` (binary), `1GB` (decimal) → bytes. */
export function parseBytes(text: string, flag: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = UNITS.get(match?.[2]?.toLowerCase() ?? "x");
  if (!match || unit === undefined) {
    throw new UsageError(`${flag} expects a size in bytes, got "${text}"`, {
      hint: "Use a number of bytes, optionally with a unit: 1073741824, 512MiB, 64M, 1GB",
    });
  }
  const value = Math.round(Number(match[1]) * unit);
  if (!Number.isSafeInteger(value)) {
    throw new UsageError(`${flag} is too large: "${text}"`, {
      hint: "Use a size below 8 PiB, e.g. 1GiB",
    });
  }
  return value;
}

const SECONDS_PER = new Map<string, number>([["s", 1], ["m", 60], ["h", 3600]]);
const DURATION = /^(?:\d+(?:\.\d+)?[smh])+$/;

/**
 * A duration in whole seconds: plain seconds (`300`), or numbers with units `s`, `m`, `h`,
 * one or several (`30s`, `5m`, `1.5h`, `1h30m`), within [min, max] seconds. Fractions of a
 * second are rounded to the nearest second.
 */
export function parseDuration(text: string, flag: string, min: number, max: number): number {
  const trimmed = text.trim().toLowerCase();
  let seconds: number | undefined;
  if (/^\d+$/.test(trimmed)) seconds = Number(trimmed);
  else if (DURATION.test(trimmed)) {
    seconds = 0;
    for (const [, amount, unit] of trimmed.matchAll(/(\d+(?:\.\d+)?)([smh])/g)) {
      seconds += Number(amount) * SECONDS_PER.get(unit!)!;
    }
    seconds = Math.round(seconds);
  }
  if (seconds === undefined || !Number.isSafeInteger(seconds) || seconds < min || seconds > max) {
    throw new UsageError(
      `${flag} expects a duration from ${formatSeconds(min)} to ${formatSeconds(max)}, ` +
        `got "${text}"`,
      { hint: "Use seconds (300) or a number with a unit: 30s, 5m, 2h, 1h30m" },
    );
  }
  return seconds;
}

/** `1s`, `2h`, `168h`: a bound as users can type it. */
function formatSeconds(seconds: number): string {
  return seconds >= 3600 && seconds % 3600 === 0 ? `${seconds / 3600}h` : `${seconds}s`;
}

/** A whole number within [min, max]. */
export function parseInteger(text: string, flag: string, min: number, max: number): number {
  const trimmed = text.trim();
  const value = Number(trimmed);
  if (!/^\d+$/.test(trimmed) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`${flag} expects a whole number from ${min} to ${max}, got "${text}"`, {
      hint: `Use a number from ${min} to ${max}, in digits (no sign, point or exponent)`,
    });
  }
  return value;
}

const TRUE = new Set(["1", "true", "yes", "on"]);
const FALSE = new Set(["0", "false", "no", "off", ""]);

/** An environment boolean: 1/true/yes/on or 0/false/no/off (any case). */
export function parseBoolean(text: string, name: string): boolean {
  const value = text.trim().toLowerCase();
  if (TRUE.has(value)) return true;
  if (FALSE.has(value)) return false;
  throw new UsageError(`${name} expects true or false, got "${text}"`, {
    hint: "Use true or false (also 1/0, yes/no, on/off)",
  });
}

/** Parsing of the numbers users type: byte sizes with optional units, counts, booleans. */
import { UsageError } from "../errors.ts";

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
  if (!Number.isSafeInteger(value)) throw new UsageError(`${flag} is too large: "${text}"`);
  return value;
}

/** A whole number within [min, max]. */
export function parseInteger(text: string, flag: string, min: number, max: number): number {
  const trimmed = text.trim();
  const value = Number(trimmed);
  if (!/^\d+$/.test(trimmed) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`${flag} expects a whole number from ${min} to ${max}, got "${text}"`);
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
  throw new UsageError(`${name} expects true or false, got "${text}"`);
}

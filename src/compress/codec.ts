/**
 * Compression settings for layers the archive holds uncompressed: the codec, and either a fixed
 * level (reproducible output) or `auto`, which follows the link (see `level_control.ts`).
 */

export type Codec = "gzip" | "zstd";

export type Compression =
  | { codec: "none" }
  | { codec: Codec; level: number | "auto" };

/** The levels each codec accepts, and where `auto` starts (the codec's usual default). */
export const LEVELS: Record<Codec, { min: number; max: number; start: number }> = {
  gzip: { min: 1, max: 9, start: 6 },
  zstd: { min: 1, max: 19, start: 3 },
};

/** Short form for cache keys and messages: `none`, `gzip:auto`, `zstd:3`. */
export function describeCompression(compression: Compression): string {
  return compression.codec === "none" ? "none" : `${compression.codec}:${compression.level}`;
}

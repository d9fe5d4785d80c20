/**
 * Compression settings for layers the archive holds uncompressed: the codec, and either a fixed
 * level (reproducible output) or `auto`, which follows the link (see `level_control.ts`).
 */

export type Codec = "gzip" | "zstd";

export type Compression =
  | { codec: "none" }
  | { codec: Codec; level: number | "auto" };

/**
 * The levels each codec accepts; where `auto` starts (the codec's usual default) and how high
 * it goes. zstd above 9 costs several times the CPU and memory (over 200 MB at 19 with four
 * layers at once) for under 1 % smaller layers here; it stays available as a fixed level.
 */
export const LEVELS: Record<Codec, { min: number; max: number; start: number; autoMax: number }> = {
  gzip: { min: 1, max: 9, start: 6, autoMax: 9 },
  zstd: { min: 1, max: 19, start: 3, autoMax: 9 },
};

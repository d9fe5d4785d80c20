/**
 * Compression settings for layers the archive holds uncompressed: the codec, and either a fixed
 * level (reproducible output) or `auto`, which follows the link (see `level_control.ts`).
 */

export type Codec = "gzip" | "zstd";

export type Compression =
  | { codec: "none" }
  | { codec: Codec; level: number | "auto" };

/**
 * The levels each codec accepts; where `auto` starts, and the range it moves in. zstd above 9
 * costs several times the CPU and memory (over 200 MB at 19 with four layers at once) for under
 * 1 % smaller layers here; it stays available as a fixed level.
 *
 * `autoMin` is the floor: an image is pushed once and pulled many times, often over slower
 * links than the push had, so `auto` never stores more than GNU `gzip -1` would, plus 3 %.
 * zlib-ng's level 1 (deflate_quick, static Huffman codes only) misses that by far: in 2 MiB
 * blocks it stores 1.29× `gzip -1`'s bytes of base64 text (99.9 % of the input), 1.74× of `seq`
 * output and 1.19× of a /usr/bin layer; level 2 stores 0.975×, 1.009× and 0.986×
 * (`scripts/bench_levels.ts`; the figures are in docs/benchmarks.md). zstd's level 1 already
 * codes literals with Huffman tables and needs no floor of its own.
 *
 * gzip's `auto` starts at its floor, zstd's at its usual default. A level moves one step per
 * four blocks, and guessing wrong costs gzip far more one way than the other: level 6 takes
 * twice level 2's CPU for 4 % fewer bytes, so starting there held a fast link back for the
 * sixteen blocks it took to come down (a 96 MB text image pushed at loopback took 0.72 s
 * against level 2's 0.65 s), where starting at 2 costs a slow link a few percent more bytes on
 * the blocks it takes to climb.
 */
export const LEVELS: Record<
  Codec,
  { min: number; max: number; start: number; autoMin: number; autoMax: number }
> = {
  gzip: { min: 1, max: 9, start: 2, autoMin: 2, autoMax: 9 },
  zstd: { min: 1, max: 19, start: 3, autoMin: 1, autoMax: 9 },
};

/**
 * Which coder made a compressed stream: raised whenever the same block at the same level comes
 * out as other bytes (2: gzip blocks Huffman-coded only where matches buy nothing). A resumed
 * upload makes its blocks again at the levels saved and must send the bytes an earlier run
 * would have; state saved by another coder is not resumed.
 */
export const CODER = 2;

/**
 * The compression worker's source. It is a string, started from a `blob:` URL, so the same code
 * runs from `deno run`, from the single-file bundle and from a compiled binary (none of which
 * can be relied on to ship a second module file next to the first).
 *
 * Protocol: the main thread posts `{ id, input, length, codec, level, probe }` with `input` (an
 * ArrayBuffer whose first `length` bytes are the block) transferred; the worker answers
 * `{ id, output, input, level, huffmanOnly }` (the level it used, and how) transferring the
 * compressed bytes and the input buffer back (the main thread reuses it, so no block buffer
 * waits in a worker for a garbage collection), or
 * `{ id, error, input }`. Each input becomes one complete gzip member or zstd frame, so blocks
 * compress independently (on any worker, in parallel) and their concatenation is a valid
 * stream (RFC 1952 §2.2 members; RFC 8878 §3.1 frames).
 *
 * `probe` (gzip only; 0: none) is the level a sample of the block is deflated at first: four
 * 8 KiB pieces, 1.6 % of a block. When the sample doesn't shrink below 98 % (media, model
 * weights, archives inside the tar), the block is stored (level 0) instead of burning CPU for
 * nothing, and the answer's `level` says so. It is judged at the automatic level's floor (2),
 * not at zlib-ng's level 1, which codes with static Huffman tables only and keeps 99.9 % of
 * base64 text (level 2 keeps 76 %). The sample depends on the block alone, so a fixed level
 * gives the same bytes every time.
 *
 * The same pieces, Huffman-coded only (no matches: `Z_HUFFMAN_ONLY`), decide whether looking for
 * matches buys anything. Text whose bytes hardly repeat (base64 of packed data, say) loses
 * nothing without them: on base64 of random bytes, Huffman-only stores 0.7564 of the input where
 * level 2 stores 0.7566 and level 6 0.7566, and zlib-ng codes it three times as fast as level 2
 * (177 against 60 MiB/s here; level 1, with static codes only, keeps 99.9 %). So when the pieces
 * Huffman-coded come within 1 % of the pieces at the block's level, the block is Huffman-coded,
 * and the answer says `huffmanOnly`; a count of the pieces' byte entropy rules that out first
 * where it can't be so. That too depends on the block and its level alone.
 *
 * Both verdicts give up on matches, so each is confirmed on two pieces of 48 KiB, longer than
 * deflate's 32 KiB window, before it is taken (see `LONG`). Blocks under 192 KiB (a layer's
 * last) are deflated at their level unsampled.
 */
export const WORKER_SOURCE = `
import zlib from "node:zlib";
import { Buffer } from "node:buffer";
const owned = (out) => out.byteOffset === 0 && out.buffer.byteLength > Buffer.poolSize;
const free = (out) => {
  if (owned(out)) out.buffer.transfer(0);
};
/**
 * The quick sample: four evenly spaced pieces of 8 KiB, 1.6 % of a block. (It was 16 KiB; since
 * both verdicts that give up on matches are confirmed on the long sample below, the quick one only
 * has to rule them out, and half of it costs 2 % less CPU on a /usr layer at level 2.)
 */
const QUICK = { count: 4, size: 8192 };
/**
 * Deflate looks for repeats up to 32 KiB back, so a quick piece misses those further back than
 * itself, which deflating the whole block (and GNU gzip -1) finds: a block of one 20 KB base64
 * unit repeated looks like plain base64 to the quick sample, and Huffman-coded only it kept 37
 * times gzip -1's bytes. So a verdict that gives up on matches (store the block, or code it
 * Huffman-only) is taken only when pieces longer than the window agree.
 */
const LONG = { count: 2, size: 49152 };
/** Blocks shorter than this are deflated at their level, unsampled. */
const SAMPLED = 2 * LONG.count * LONG.size;
const HUFFMAN_ONLY = { strategy: zlib.constants.Z_HUFFMAN_ONLY };
/** \`sample\`'s evenly spaced pieces of \`bytes\`, first at the start and last at the end. */
const piecesOf = (bytes, sample) => {
  const step = Math.floor((bytes.length - sample.size) / (sample.count - 1));
  return Array.from({ length: sample.count }, (_, i) =>
    bytes.subarray(i * step, i * step + sample.size));
};
/** Bytes of \`sample\`'s pieces of \`bytes\` deflated with \`options\`. */
const sampleSize = (bytes, options, sample) => {
  let out = 0;
  for (const piece of piecesOf(bytes, sample)) out += zlib.deflateRawSync(piece, options).length;
  return out;
};
/** Whether \`sample\` of \`bytes\` shrinks below 98 % at \`level\`. */
const shrinks = (bytes, level, sample) =>
  sampleSize(bytes, { level }, sample) < sample.count * sample.size * 0.98;
/** Whether \`sample\` of \`bytes\` Huffman-coded only comes within 1 % of it at \`level\`. */
const huffmanKeepsUp = (bytes, level, sample, atLevel = sampleSize(bytes, { level }, sample)) =>
  sampleSize(bytes, { level, ...HUFFMAN_ONLY }, sample) <= atLevel * 1.01;
const counts = new Uint32Array(256);
/**
 * About the fewest bytes Huffman coding can take for \`sample\`'s pieces: the entropy of each
 * piece's bytes. Far cheaper than coding them, it rules Huffman-only out for most blocks (a
 * /usr layer's, or text that repeats) without a second deflate of the sample.
 */
const entropyBytes = (bytes, sample) => {
  let bits = 0;
  for (const piece of piecesOf(bytes, sample)) {
    counts.fill(0);
    for (const byte of piece) counts[byte]++;
    for (const n of counts) if (n > 0) bits -= n * Math.log2(n / piece.length);
  }
  return bits / 8;
};
/**
 * How a gzip block at \`level\` is coded: stored (level 0) when it doesn't shrink below 98 % at
 * the \`probe\` level; Huffman-only when that comes within 1 % of deflating at \`level\`. Both
 * judged on the quick sample, and confirmed on the long one.
 */
const gzipCoding = (bytes, level, probe) => {
  const coded = { level, huffmanOnly: false };
  if (bytes.length < SAMPLED) return coded;
  const atProbe = sampleSize(bytes, { level: probe }, QUICK);
  if (atProbe >= QUICK.count * QUICK.size * 0.98) {
    return shrinks(bytes, probe, LONG) ? coded : { level: 0, huffmanOnly: false };
  }
  const atLevel = level === probe ? atProbe : sampleSize(bytes, { level }, QUICK);
  // (3 %: the entropy is a bound for one table per piece; deflate may split a piece in two.)
  if (entropyBytes(bytes, QUICK) > atLevel * 1.03) return coded;
  const quick = huffmanKeepsUp(bytes, level, QUICK, atLevel);
  return { level, huffmanOnly: quick && huffmanKeepsUp(bytes, level, LONG) };
};
self.onmessage = (event) => {
  const { id, input, length, codec, probe } = event.data;
  let { level } = event.data;
  let huffmanOnly = false;
  try {
    const bytes = new Uint8Array(input, 0, length);
    if (codec === "gzip" && level > 0 && probe > 0) {
      ({ level, huffmanOnly } = gzipCoding(bytes, level, probe));
    }
    // One output buffer large enough for any result (zlib-ng's fastest level adds about 5 % to
    // random bytes; zstd's worst case is a little over the input), rather than several
    // concatenated, whose pieces would be garbage.
    const chunkSize = length + (length >> 3) + 65536;
    let out = codec === "gzip"
      ? zlib.gzipSync(bytes, { level, chunkSize, ...(huffmanOnly ? HUFFMAN_ONLY : {}) })
      : zlib.zstdCompressSync(bytes, {
        chunkSize,
        params: { [zlib.constants.ZSTD_c_compressionLevel]: level },
      });
    // Data that doesn't compress can come out larger (zlib-ng's level 1 adds about 5 % to
    // random bytes): stored deflate blocks add only a few bytes per 64 KiB. (zstd stores such
    // blocks by itself.)
    if (codec === "gzip" && level > 0 && out.length > length + 1024) {
      free(out);
      out = zlib.gzipSync(bytes, { level: 0, chunkSize });
      level = 0;
      huffmanOnly = false;
    }
    // zlib's result is a view at the start of a larger buffer of its own: move the bytes out
    // with transfer(), which also frees the rest at once. Garbage left to the collector here
    // piles up by tens of MB per worker before a collection runs. Small results may share
    // Buffer's pool slab, which must not be detached: those are copied.
    const output = owned(out)
      ? out.buffer.transfer(out.byteLength)
      : out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength);
    self.postMessage(
      { id, output, input, level, huffmanOnly },
      output === input ? [output] : [output, input],
    );
  } catch (error) {
    self.postMessage({ id, error: String(error && error.message || error), input }, [input]);
  }
};
`;

/**
 * Compression test data and checks: text-like bytes that compress the way layers do, and
 * decompression of multi-member gzip and multi-frame zstd streams.
 */
import { gunzipSync, zstdDecompressSync } from "node:zlib";
import type { Codec } from "../../src/compress/codec.ts";
import { assert, assertEquals } from "./assert.ts";

const WORDS = [
  "layer",
  "image",
  "tar",
  "usr",
  "lib",
  "bin",
  "etc",
  "share",
  "doc",
  "locale",
  "x86_64",
  "\n",
].map((w) => new TextEncoder().encode(`${w} `));

/** `size` bytes of text-like data from a seeded PRNG (mulberry32): compressible like a layer. */
export function textBytes(seed: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let state = seed >>> 0;
  let offset = 0;
  while (offset < size) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const word = WORDS[((t ^ (t >>> 14)) >>> 0) % WORDS.length]!;
    out.set(word.subarray(0, size - offset), offset);
    offset += word.length;
  }
  return out;
}

/**
 * The frames of a zstd stream (RFC 8878 §3.1.1), found by walking frame and block headers.
 * Deno's node:zlib stops after the first frame when that frame's content is not a multiple of
 * 16 KiB, so multi-frame streams are decoded frame by frame.
 */
export function zstdFrames(bytes: Uint8Array): Uint8Array[] {
  const frames: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    const start = at;
    assertEquals([...bytes.subarray(at, at + 4)], [0x28, 0xb5, 0x2f, 0xfd], `frame magic at ${at}`);
    const descriptor = bytes[at + 4]!;
    const singleSegment = (descriptor & 0x20) !== 0;
    const contentSizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6]!;
    const dictionaryBytes = [0, 1, 2, 4][descriptor & 3]!;
    at += 5 + (singleSegment ? 0 : 1) + dictionaryBytes + contentSizeBytes;
    for (let last = false; !last;) {
      const header = bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16);
      last = (header & 1) === 1;
      const type = (header >> 1) & 3;
      at += 3 + (type === 1 ? 1 : header >>> 3);
    }
    if ((descriptor & 0x04) !== 0) at += 4; // content checksum
    assert(at <= bytes.length, "truncated zstd frame");
    frames.push(bytes.subarray(start, at));
  }
  return frames;
}

export function decompress(codec: Codec, bytes: Uint8Array): Uint8Array {
  if (codec === "gzip") return new Uint8Array(gunzipSync(bytes));
  return concat(...zstdFrames(bytes).map((frame) => new Uint8Array(zstdDecompressSync(frame))));
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Deterministic, fast pseudo-random bytes for fixtures, and sha256 helpers.
 *
 * The stream is AES-256-CTR over zeros keyed by sha256(seed): incompressible,
 * reproducible from the seed, and several GB/s with AES-NI.
 *
 * @module
 */

import { createCipheriv, createHash, type Hash } from "node:crypto";

const MIB = 1024 * 1024;
const ZEROS = new Uint8Array(MIB);

/** A generator of the pseudo-random byte stream for `seed`. */
export class SeededRandom {
  #cipher;

  constructor(seed: string) {
    const key = createHash("sha256").update(seed).digest();
    this.#cipher = createCipheriv("aes-256-ctr", key, new Uint8Array(16));
  }

  /** The next `size` bytes of the stream, in a new array. */
  bytes(size: number): Uint8Array {
    if (size <= MIB) return this.#cipher.update(ZEROS.subarray(0, size));
    const out = new Uint8Array(size);
    let offset = 0;
    while (offset < size) {
      const n = Math.min(MIB, size - offset);
      out.set(this.#cipher.update(ZEROS.subarray(0, n)), offset);
      offset += n;
    }
    return out;
  }
}

/** `size` pseudo-random bytes derived from `seed`. */
export function seededBytes(seed: string, size: number): Uint8Array {
  return new SeededRandom(seed).bytes(size);
}

/** The same bytes as {@linkcode seededBytes}, yielded in fresh chunks of at most `chunkSize`. */
export async function* seededStream(
  seed: string,
  size: number,
  chunkSize: number = MIB,
): AsyncGenerator<Uint8Array> {
  const random = new SeededRandom(seed);
  for (let left = size; left > 0; left -= chunkSize) {
    yield random.bytes(Math.min(chunkSize, left));
    // Yield to the event loop now and then so a 1 GiB fixture does not starve timers.
    await Promise.resolve();
  }
}

/** Hex sha256 of `data`. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** "sha256:<hex>" of `data`. */
export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${sha256Hex(data)}`;
}

/** Passes `stream` through while feeding every chunk to `hash`. */
export async function* hashing(
  stream: AsyncIterable<Uint8Array>,
  hash: Hash,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of stream) {
    hash.update(chunk);
    yield chunk;
  }
}

/** Hex sha256 and byte count of everything `stream` yields. */
export async function sha256OfStream(
  stream: AsyncIterable<Uint8Array>,
): Promise<{ hex: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { hex: hash.digest("hex"), size };
}

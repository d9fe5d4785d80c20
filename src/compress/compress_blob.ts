/**
 * One pass over an uncompressed layer: read it in blocks, hash it (to check it against its
 * digest), compress the blocks on the worker pool, and yield the compressed stream in order
 * while hashing it (its digest names the blob in the registry). A few blocks per layer are in
 * flight at once, so memory stays flat at any layer size.
 */
import { Sha256 } from "../digest.ts";
import type { BlobSource } from "../registry/blobs.ts";
import type { LevelControl } from "./level_control.ts";
import type { CompressorPool } from "./worker_pool.ts";

/** Input bytes per block (one gzip member or zstd frame each). */
export const BLOCK_SIZE = 4 * 1024 * 1024;

export interface CompressedSummary {
  /** Digest and size of the compressed stream. */
  digest: string;
  size: number;
  /** Digest of the input as read, to compare with the layer's digest. */
  inputDigest: string;
}

export interface CompressOptions {
  pool: CompressorPool;
  control: LevelControl;
  /** Blocks of this layer in flight at once (compressing, or compressed and not yet sent). */
  window: number;
  signal?: AbortSignal;
  /** Input bytes whose compressed form has been handed on, running total. */
  onProgress?: (done: number) => void;
}

/**
 * A single-use compressed stream of `blob`; `summary()` is available once `chunks` has been
 * read to the end.
 */
export function compressBlob(blob: BlobSource, options: CompressOptions): {
  chunks: AsyncIterable<Uint8Array>;
  summary: () => CompressedSummary;
} {
  const inputHash = new Sha256();
  const outputHash = new Sha256();
  let size = 0;
  let finished: CompressedSummary | undefined;
  const { pool, control } = options;

  interface Pending {
    output: Promise<Uint8Array>;
    settled: boolean;
    inputEnd: number;
  }
  async function* generate(): AsyncGenerator<Uint8Array> {
    const pending: Pending[] = [];
    let read = 0;
    let first = true;
    async function* take(): AsyncGenerator<Uint8Array> {
      const head = pending.shift()!;
      if (!head.settled && !first) control.starved();
      first = false;
      const output = await head.output;
      outputHash.update(output);
      size += output.length;
      yield output;
      options.onProgress?.(head.inputEnd);
    }
    try {
      for await (const block of blocks(blob, options.signal)) {
        // Hash before the block is handed over: the transfer detaches its buffer.
        inputHash.update(block);
        read += block.length;
        if (pending.filter((p) => p.settled).length >= 2) control.backlogged();
        const entry: Pending = {
          output: pool.compress(block, control.codec, control.level),
          settled: false,
          inputEnd: read,
        };
        const settle = () => {
          entry.settled = true;
        };
        entry.output.then(settle, settle);
        pending.push(entry);
        while (pending.length >= options.window) yield* take();
      }
      while (pending.length > 0) yield* take();
      finished = { digest: outputHash.digest(), size, inputDigest: inputHash.digest() };
    } finally {
      // Abandoned blocks still finish in the pool; nothing waits for them.
      pending.length = 0;
    }
  }
  return {
    chunks: { [Symbol.asyncIterator]: generate },
    summary() {
      if (finished === undefined) throw new Error(`${blob.describe}: compression did not finish`);
      return finished;
    },
  };
}

/** `blob` in fresh {@linkcode BLOCK_SIZE} buffers (each can be transferred to a worker). */
async function* blocks(blob: BlobSource, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  // An empty input still makes one (empty) member: a zero-byte file is not a valid stream.
  if (blob.size === 0) {
    yield new Uint8Array(0);
    return;
  }
  let block = new Uint8Array(Math.min(BLOCK_SIZE, blob.size));
  let filled = 0;
  let left = blob.size;
  for await (let chunk of blob.read(0, blob.size, signal)) {
    while (chunk.length > 0) {
      const n = Math.min(chunk.length, block.length - filled);
      block.set(chunk.subarray(0, n), filled);
      filled += n;
      chunk = chunk.subarray(n);
      if (filled === block.length) {
        yield block;
        left -= filled;
        block = new Uint8Array(Math.min(BLOCK_SIZE, left));
        filled = 0;
      }
    }
  }
  if (filled > 0) yield block.subarray(0, filled);
}

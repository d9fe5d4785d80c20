/**
 * One pass over an uncompressed layer: read it in blocks, hash it (to check it against its
 * digest), compress the blocks on the worker pool, and yield the compressed stream in order
 * while hashing it (its digest names the blob in the registry). A few blocks per layer are in
 * flight at once, and all layers together stay within a shared budget, so memory stays flat at
 * any layer size and any number of layers.
 */
import { Sha256 } from "../digest.ts";
import { release } from "../release.ts";
import type { BlobSource } from "../registry/blobs.ts";
import type { LevelControl } from "./level_control.ts";
import type { CompressedBlock, CompressorPool } from "./worker_pool.ts";

/** Input bytes per block (one gzip member or zstd frame each). */
export const BLOCK_SIZE = 2 * 1024 * 1024;

export interface CompressedSummary {
  /** Digest and size of the compressed stream. */
  digest: string;
  size: number;
  /** Digest of the input as read, to compare with the layer's digest. */
  inputDigest: string;
}

/** Blocks in flight across every layer of a push (compressing, or compressed and unsent). */
export class BlockBudget {
  #free: number;
  #waiting: (() => void)[] = [];
  constructor(blocks: number) {
    this.#free = Math.max(1, blocks);
  }
  get available(): boolean {
    return this.#free > 0;
  }
  async acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }
  release(): void {
    const next = this.#waiting.shift();
    if (next !== undefined) next();
    else this.#free++;
  }
}

export interface CompressOptions {
  pool: CompressorPool;
  control: LevelControl;
  /** Blocks of this layer in flight at once (compressing, or compressed and not yet sent). */
  window: number;
  /** Shared by every layer; default: this layer's window alone. */
  budget?: BlockBudget;
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
  const budget = options.budget ?? new BlockBudget(options.window);
  /** Input buffers back from the workers, for the next blocks. */
  const spare: ArrayBuffer[] = [];

  /**
   * Whether the last block barely shrank (media, model weights, archives inside the tar): the
   * next ones are then stored (gzip level 0, zstd level 1, which stores such blocks itself)
   * instead of burning CPU for nothing. It depends only on the data, so fixed levels stay
   * reproducible.
   */
  let incompressible = false;
  /** Blocks left to store before trying to compress again (the data may change). */
  let storeRun = 0;
  const STORE_RUN = 4;
  const levelFor = () => {
    if (!incompressible) return control.level;
    // Probe whether the data compresses now at the cheapest real level.
    if (storeRun === 0) return 1;
    storeRun--;
    return control.codec === "gzip" ? 0 : 1;
  };

  interface Pending {
    result: Promise<CompressedBlock>;
    inputEnd: number;
    inputLength: number;
    level: number;
  }
  async function* generate(): AsyncGenerator<Uint8Array> {
    const pending: Pending[] = [];
    let read = 0;
    let first = true;
    async function* take(): AsyncGenerator<Uint8Array> {
      const head = pending.shift()!;
      const asked = performance.now();
      let block: CompressedBlock;
      try {
        block = await head.result;
      } finally {
        budget.release();
      }
      const got = performance.now();
      if (block.input.byteLength === BLOCK_SIZE) spare.push(block.input);
      // Only a block compressed at a real level says whether the data compresses.
      if (head.level > 0) {
        incompressible = block.output.length > head.inputLength * 0.98;
        if (incompressible) storeRun = STORE_RUN;
      }
      outputHash.update(block.output);
      size += block.output.length;
      yield block.output;
      // Back here once the consumer has sent the block and wants the next. A layer's first
      // block always keeps the upload waiting (the pipeline fills), and stored blocks say
      // nothing about the level: neither counts.
      if (!first && head.level > 0 && !incompressible) {
        control.observe(got - asked, performance.now() - got);
      }
      first = false;
      options.onProgress?.(head.inputEnd);
    }
    try {
      for await (const block of blocks(blob, spare, options.signal)) {
        // Hash before the block is handed over: the transfer detaches its buffer.
        inputHash.update(block);
        read += block.length;
        // Send what is ready rather than wait for budget this layer itself holds.
        while (pending.length > 0 && (pending.length >= options.window || !budget.available)) {
          yield* take();
        }
        await budget.acquire();
        const level = levelFor();
        const entry: Pending = {
          inputLength: block.length, // before the transfer below empties `block`
          inputEnd: read,
          level,
          result: pool.compress(block, control.codec, level),
        };
        // Failures surface when the block is taken; until then, don't report them as unhandled.
        entry.result.catch(() => {});
        pending.push(entry);
      }
      while (pending.length > 0) yield* take();
      finished = { digest: outputHash.digest(), size, inputDigest: inputHash.digest() };
    } finally {
      // Abandoned blocks still finish in the pool; their budget returns when they do.
      for (const entry of pending.splice(0)) {
        entry.result.then(() => budget.release(), () => budget.release());
      }
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

/**
 * `blob` in {@linkcode BLOCK_SIZE} blocks, each in a buffer of its own (it is transferred to a
 * worker), taken from `spare` when one is there.
 */
async function* blocks(
  blob: BlobSource,
  spare: ArrayBuffer[],
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  // An empty input still makes one (empty) member: a zero-byte file is not a valid stream.
  if (blob.size === 0) {
    yield new Uint8Array(0);
    return;
  }
  const fresh = (left: number) =>
    left >= BLOCK_SIZE
      ? new Uint8Array(spare.pop() ?? new ArrayBuffer(BLOCK_SIZE))
      : new Uint8Array(left);
  let left = blob.size;
  let block = fresh(left);
  let filled = 0;
  for await (const whole of blob.read(0, blob.size, signal)) {
    let chunk = whole;
    while (chunk.length > 0) {
      if (block.length === 0) throw new Error(`${blob.describe}: more bytes than its size`);
      const n = Math.min(chunk.length, block.length - filled);
      block.set(chunk.subarray(0, n), filled);
      filled += n;
      chunk = chunk.subarray(n);
      if (chunk.length === 0) release(whole);
      if (filled === block.length) {
        yield block;
        left -= filled;
        block = fresh(left);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield block.subarray(0, filled);
}

/**
 * One pass over an uncompressed layer: read it in blocks, hash it (to check it against its
 * digest), compress the blocks on the worker pool, and yield the compressed stream in order
 * while hashing it (its digest names the blob in the registry). A few blocks per layer are in
 * flight at once, and all layers together stay within a shared budget, so memory stays flat at
 * any layer size and any number of layers.
 */
import { Sha256 } from "../digest.ts";
import { release } from "../release.ts";
import type { BlobSource } from "../image/graph.ts";
import { LEVELS } from "./codec.ts";
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

/** A layer's compressed stream, which can be produced again from any offset. */
export interface CompressedStream {
  /** One pass from the start (the usual single streamed upload). */
  chunks: AsyncIterable<Uint8Array>;
  /**
   * The stream from output byte `from` on. Every pass makes the same bytes: blocks already made
   * are compressed again at the level they had (see `levels`), so an upload can continue where
   * the registry stands. Bytes already hashed, and blocks wholly before `from` whose bytes are
   * hashed, are not made again.
   */
  open(from: number): AsyncIterable<Uint8Array>;
  /** The level of each block so far: saved with a resumable upload, given back on resume. */
  readonly levels: readonly number[];
  /** Available once a pass has reached the end. */
  summary(): CompressedSummary;
}

/**
 * Compresses `blob`. `levels` replays the blocks of an earlier run (to continue its upload);
 * blocks past them get levels from `options.control`.
 */
export function compressBlob(
  blob: BlobSource,
  options: CompressOptions & { levels?: readonly number[] },
): CompressedStream {
  const inputHash = new Sha256();
  const outputHash = new Sha256();
  /** Bytes of input and output hashed so far, in order, over every pass. */
  let inputHashed = 0;
  let outputHashed = 0;
  const levels = [...(options.levels ?? [])];
  /** Compressed size of each block made so far. */
  const sizes: number[] = [];
  let finished: CompressedSummary | undefined;
  const { pool, control } = options;
  const budget = options.budget ?? new BlockBudget(options.window);
  /** Input buffers back from the workers, for the next blocks. */
  const spare: ArrayBuffer[] = [];
  const blockCount = Math.max(1, Math.ceil(blob.size / BLOCK_SIZE));

  /**
   * Whether a block is worth compressing at all (media, model weights, archives inside the tar
   * hardly shrink) the worker decides, block by block, from a sample deflated at the gzip floor's
   * level (`LEVELS.gzip.autoMin`; see worker_source.ts). That depends on the block's bytes
   * alone, so a fixed level gives the same stream however the blocks of several layers
   * interleave. It was decided here from the blocks before, which made it depend on timing when
   * layers shared the budget, and let a run of up to 64 stored blocks swallow the text after a
   * stretch of packed files (a /usr/lib layer came out 1.043× GNU gzip -1's bytes). zstd stores
   * such blocks by itself, cheaply.
   */
  const probe = control.codec === "gzip" ? LEVELS.gzip.autoMin : 0;
  const levelFor = (index: number) => {
    const replayed = levels[index];
    if (replayed !== undefined) return replayed;
    levels[index] = control.level;
    return control.level;
  };

  /** The first block a pass from `from` must make: the first not wholly sent and hashed. */
  const firstBlock = (from: number) => {
    let outputEnd = 0;
    for (let i = 0; i < blockCount; i++) {
      const size = sizes[i];
      if (size === undefined) return i;
      outputEnd += size;
      const inputEnd = Math.min(blob.size, (i + 1) * BLOCK_SIZE);
      if (outputEnd > Math.min(from, outputHashed) || inputEnd > inputHashed) return i;
    }
    return blockCount;
  };

  interface Pending {
    result: Promise<CompressedBlock>;
    index: number;
    inputEnd: number;
    inputLength: number;
    level: number;
  }
  async function* generate(from: number): AsyncGenerator<Uint8Array> {
    const pending: Pending[] = [];
    const start = firstBlock(from);
    let outputAt = sizes.slice(0, start).reduce((sum, n) => sum + n, 0);
    let read = start * BLOCK_SIZE;
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
      const output = block.output;
      sizes[head.index] = output.length;
      // 0 when the worker stored the block.
      const used = block.level ?? head.level;
      const outputEnd = outputAt + output.length;
      if (outputEnd > outputHashed) {
        outputHash.update(output.subarray(Math.max(0, outputHashed - outputAt)));
        outputHashed = outputEnd;
      }
      const wanted = output.subarray(Math.max(0, Math.min(output.length, from - outputAt)));
      outputAt = outputEnd;
      if (wanted.length === 0) return;
      yield wanted;
      // Back here once the consumer has sent the block and wants the next. A pass's first
      // block always keeps the upload waiting (the pipeline fills), and stored or
      // Huffman-only blocks (their cost hardly depends on the level) say nothing about the
      // level: none of them counts.
      if (!first && used > 0 && block.huffmanOnly !== true) {
        control.observe(got - asked, performance.now() - got);
      }
      first = false;
      options.onProgress?.(head.inputEnd);
    }
    try {
      let index = start;
      for await (const block of blocks(blob, read, spare, options.signal)) {
        // Hash before the block is handed over: the transfer detaches its buffer.
        const inputEnd = read + block.length;
        if (inputEnd > inputHashed) {
          inputHash.update(block.subarray(Math.max(0, inputHashed - read)));
          inputHashed = inputEnd;
        }
        read = inputEnd;
        // Send what is ready rather than wait for budget this layer itself holds.
        while (pending.length > 0 && (pending.length >= options.window || !budget.available)) {
          yield* take();
        }
        await budget.acquire();
        const level = levelFor(index);
        const entry: Pending = {
          inputLength: block.length, // before the transfer below empties `block`
          inputEnd: read,
          index: index++,
          level,
          result: pool.compress(block, control.codec, level, probe),
        };
        // Failures surface when the block is taken; until then, don't report them as unhandled.
        entry.result.catch(() => {});
        pending.push(entry);
      }
      while (pending.length > 0) yield* take();
      // A later pass (a resumed upload) ends where the first did: the digests stand.
      finished ??= {
        digest: outputHash.digest(),
        size: outputAt,
        inputDigest: inputHash.digest(),
      };
    } finally {
      // Abandoned blocks still finish in the pool; their budget returns when they do.
      for (const entry of pending.splice(0)) {
        entry.result.then(() => budget.release(), () => budget.release());
      }
    }
  }
  return {
    chunks: { [Symbol.asyncIterator]: () => generate(0) },
    open: (from) => ({ [Symbol.asyncIterator]: () => generate(from) }),
    levels,
    summary() {
      if (finished === undefined) throw new Error(`${blob.describe}: compression did not finish`);
      return finished;
    },
  };
}

/**
 * `blob` from byte `from` (a block boundary) in {@linkcode BLOCK_SIZE} blocks, each in a buffer
 * of its own (it is transferred to a worker), taken from `spare` when one is there.
 */
async function* blocks(
  blob: BlobSource,
  from: number,
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
  let left = blob.size - from;
  if (left <= 0) return;
  let block = fresh(left);
  let filled = 0;
  for await (const whole of blob.read(from, left, signal)) {
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

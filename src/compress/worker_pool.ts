/**
 * A pool of compression workers shared by every layer of a push, so several layers (and
 * several blocks of one layer) compress at once on all cores while the main thread reads,
 * hashes and sends. Workers start on first use and stop with {@linkcode CompressorPool.close}.
 */
import type { Codec } from "./codec.ts";
import { WORKER_SOURCE } from "./worker_source.ts";

/** A compressed block, and the input's buffer handed back for the next block. */
export interface CompressedBlock {
  output: Uint8Array;
  input: ArrayBuffer;
  /**
   * The level used: the one asked for, or 0 when the block was stored (the probe found it
   * incompressible, or deflating it came out larger).
   */
  level?: number;
  /** gzip: coded with Huffman codes only, the sample having found matches not worth looking for. */
  huffmanOnly?: boolean;
}

interface Job {
  id: number;
  input: Uint8Array;
  codec: Codec;
  level: number;
  probe: number;
  resolve: (block: CompressedBlock) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
}

export class CompressorPool {
  #size: number;
  #slots: Slot[] = [];
  #queue: Job[] = [];
  #nextId = 0;
  #url: string | undefined;
  #closed = false;

  /** `size` workers at most (default: one per core). */
  constructor(size = navigator.hardwareConcurrency || 1) {
    this.#size = Math.max(1, size);
  }

  /**
   * Compresses one block into a complete gzip member or zstd frame. A block that is a whole
   * buffer is transferred to the worker (the caller must not use it meanwhile) and comes back
   * with the result; a view into a larger buffer is copied. `probe` (gzip; 0: none): the level
   * at which a sample decides whether the block is stored instead (see worker_source.ts).
   */
  compress(
    input: Uint8Array,
    codec: Codec,
    level: number,
    probe = 0,
  ): Promise<CompressedBlock> {
    if (this.#closed) return Promise.reject(new Error("Compression pool is closed"));
    return new Promise((resolve, reject) => {
      this.#queue.push({ id: this.#nextId++, input, codec, level, probe, resolve, reject });
      this.#dispatch();
    });
  }

  /** Stops every worker; jobs not yet done fail. */
  close(): void {
    this.#closed = true;
    const error = new Error("Compression pool is closed");
    for (const slot of this.#slots) {
      slot.worker.terminate();
      slot.job?.reject(error);
    }
    for (const job of this.#queue) job.reject(error);
    this.#slots = [];
    this.#queue = [];
    if (this.#url !== undefined) URL.revokeObjectURL(this.#url);
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      const slot = this.#slots.find((s) => s.job === undefined) ?? this.#spawn();
      if (slot === undefined) return;
      const job = this.#queue.shift()!;
      slot.job = job;
      // Hand the buffer over when the block is all of it; copy a view into a larger one.
      const input = job.input.byteOffset === 0 &&
          job.input.byteLength === job.input.buffer.byteLength &&
          job.input.buffer instanceof ArrayBuffer
        ? job.input.buffer
        : job.input.slice().buffer;
      const length = job.input.byteLength;
      slot.worker.postMessage(
        { id: job.id, input, length, codec: job.codec, level: job.level, probe: job.probe },
        [input],
      );
    }
  }

  #spawn(): Slot | undefined {
    if (this.#slots.length >= this.#size) return undefined;
    this.#url ??= URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
    const slot: Slot = { worker: new Worker(this.#url, { type: "module" }), job: undefined };
    slot.worker.onmessage = (event: MessageEvent<WorkerReply>) => {
      const job = slot.job;
      if (job === undefined || job.id !== event.data.id) return;
      slot.job = undefined;
      if ("output" in event.data) {
        const { output, input, level, huffmanOnly } = event.data;
        job.resolve({ output: new Uint8Array(output), input, level, huffmanOnly });
      } else job.reject(new Error(`Compression failed: ${event.data.error}`));
      this.#dispatch();
    };
    slot.worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      const error = new Error(`Compression worker failed: ${event.message}`);
      slot.job?.reject(error);
      slot.job = undefined;
      slot.worker.terminate();
      this.#slots = this.#slots.filter((s) => s !== slot);
      for (const job of this.#queue.splice(0)) job.reject(error);
    };
    this.#slots.push(slot);
    return slot;
  }
}

type WorkerReply =
  | { id: number; output: ArrayBuffer; input: ArrayBuffer; level: number; huffmanOnly: boolean }
  | { id: number; error: string; input: ArrayBuffer };

/**
 * One stream read once, sent to several places at once: a layer compressed on the way goes to
 * every registry of a run from one compression. Each branch gets every chunk (the first branch
 * the stream's own buffers, the others copies, so each may free what it was given); the stream
 * moves on only as fast as the slowest branch takes it, with at most {@linkcode BRANCH_QUEUE}
 * chunks waiting per branch, so memory stays bounded. A branch whose consumer stops (an upload
 * that failed) is dropped and the others go on; when every branch is gone the stream stops.
 */
import { release } from "../release.ts";

/** Chunks a branch may have waiting before the stream waits for it. */
export const BRANCH_QUEUE = 2;

/** One destination's view of the stream. */
export interface Branch extends AsyncIterable<Uint8Array> {
  /** The consumer is done with it (an upload that failed): the stream stops feeding it. */
  close(): void;
}

/** Splits `source` into `count` branches (see the module's description). */
export function broadcast(source: AsyncIterable<Uint8Array>, count: number): Branch[] {
  const branches = Array.from({ length: count }, () => new QueueBranch());
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    pump(source, branches).catch(() => {});
  };
  return branches.map((branch) => ({
    [Symbol.asyncIterator]: () => {
      start();
      return branch.iterate();
    },
    close: () => branch.close(),
  }));
}

async function pump(source: AsyncIterable<Uint8Array>, branches: QueueBranch[]): Promise<void> {
  try {
    for await (const chunk of source) {
      const live = branches.filter((b) => !b.closed);
      if (live.length === 0) {
        release(chunk);
        break;
      }
      // Copies first: the first branch may free the stream's buffer once it has it.
      const copies = live.slice(1).map(() => chunk.slice());
      live.slice(1).forEach((branch, i) => branch.push(copies[i]!));
      live[0]!.push(chunk);
      await Promise.all(live.map((branch) => branch.room()));
    }
    for (const branch of branches) branch.end();
  } catch (error) {
    for (const branch of branches) branch.fail(error);
  }
}

class QueueBranch {
  #queue: Uint8Array[] = [];
  #ended = false;
  #error: { error: unknown } | undefined;
  closed = false;
  /** The consumer waiting for a chunk, or the stream waiting for room. */
  #wake: (() => void) | undefined;

  push(chunk: Uint8Array): void {
    if (this.closed) return release(chunk);
    this.#queue.push(chunk);
    this.#notify();
  }

  end(): void {
    this.#ended = true;
    this.#notify();
  }

  fail(error: unknown): void {
    this.#error = { error };
    this.#notify();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const chunk of this.#queue.splice(0)) release(chunk);
    this.#notify();
  }

  /** Resolves once the branch has room for another chunk, or is closed. */
  async room(): Promise<void> {
    while (!this.closed && this.#queue.length >= BRANCH_QUEUE) await this.#wait();
  }

  async *iterate(): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        const chunk = this.#queue.shift();
        if (chunk !== undefined) {
          this.#notify();
          yield chunk;
          continue;
        }
        if (this.#error !== undefined) throw this.#error.error;
        if (this.#ended || this.closed) return;
        await this.#wait();
      }
    } finally {
      // The consumer stopped before the end (or reached it): nothing more goes to it.
      this.close();
    }
  }

  #wait(): Promise<void> {
    return new Promise((resolve) => {
      const previous = this.#wake;
      this.#wake = () => {
        previous?.();
        resolve();
      };
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

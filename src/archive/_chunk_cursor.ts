/**
 * Reading a stream of byte chunks as one sequence of bytes, for the sequential tar reader
 * (`tar_stream.ts`): views without copies, exact reads, skips, and cancellation.
 */
import { ArchiveError } from "../errors.ts";
import { BLOCK_SIZE } from "./tar_header.ts";

/** Where a tar stream comes from: a byte stream, or anything yielding `Uint8Array` chunks. */
export type TarStreamSource = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

const EMPTY: Uint8Array = new Uint8Array(0);

/**
 * A source of chunks as a cursor over bytes. Only the current chunk is held; views of it are
 * handed out and it is never written to, so handing them out needs no copy.
 */
export class ChunkCursor {
  readonly #label: string;
  readonly #signal: AbortSignal | undefined;
  readonly #pull: () => Promise<{ done?: boolean; value?: unknown }>;
  readonly #cancel: (reason: unknown) => Promise<unknown>;
  readonly #release: () => void;
  #chunk: Uint8Array = EMPTY;
  /** Bytes of #chunk already consumed. */
  #at = 0;
  /** Stream offset of #chunk[0]. */
  #base = 0;
  #ended = false;

  /**
   * `label` names the stream in errors; `signal` is checked around every read, and cancels a
   * pending read of a `ReadableStream`.
   */
  constructor(source: TarStreamSource, label: string, signal: AbortSignal | undefined) {
    this.#label = label;
    this.#signal = signal;
    if (source instanceof ReadableStream) {
      const reader = source.getReader();
      this.#pull = () => reader.read();
      this.#cancel = (reason) => reader.cancel(reason);
      // A stalled pipe delivers no next chunk to check the signal after: cancelling the stream
      // settles the pending read at once.
      const onAbort = () => void reader.cancel(signal?.reason).catch(() => {});
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#release = () => {
        signal?.removeEventListener("abort", onAbort);
        reader.releaseLock();
      };
    } else {
      const iterator = source[Symbol.asyncIterator]();
      this.#pull = () => iterator.next();
      this.#cancel = async () => await iterator.return?.();
      this.#release = () => {};
    }
  }

  /** Stream offset of the next unread byte. */
  get position(): number {
    return this.#base + this.#at;
  }

  /** Up to `max` (> 0) bytes as a view, without copying; undefined at the end of the stream. */
  async take(max: number): Promise<Uint8Array | undefined> {
    if (this.#at === this.#chunk.length && !await this.#next()) return undefined;
    const end = Math.min(this.#chunk.length, this.#at + max);
    const view = this.#chunk.subarray(this.#at, end);
    this.#at = end;
    return view;
  }

  /** Fills `into` unless the stream ends first; returns the bytes copied. */
  async read(into: Uint8Array): Promise<number> {
    let filled = 0;
    while (filled < into.length) {
      const piece = await this.take(into.length - filled);
      if (piece === undefined) break;
      into.set(piece, filled);
      filled += piece.length;
    }
    return filled;
  }

  /**
   * The next block: a view when the current chunk holds all of it, else copied into
   * `scratch`. Shorter than a block only at the end of the stream.
   */
  async block(scratch: Uint8Array): Promise<Uint8Array> {
    if (this.#chunk.length - this.#at >= BLOCK_SIZE) {
      const view = this.#chunk.subarray(this.#at, this.#at + BLOCK_SIZE);
      this.#at += BLOCK_SIZE;
      return view;
    }
    return scratch.subarray(0, await this.read(scratch));
  }

  /** Skips `count` bytes unless the stream ends first; returns the bytes skipped. */
  async skip(count: number): Promise<number> {
    let skipped = 0;
    while (skipped < count) {
      if (this.#at === this.#chunk.length && !await this.#next()) break;
      const step = Math.min(this.#chunk.length - this.#at, count - skipped);
      this.#at += step;
      skipped += step;
    }
    return skipped;
  }

  /** Reads the rest of the stream, ignoring it. */
  async drain(): Promise<void> {
    do this.#at = this.#chunk.length; while (await this.#next());
  }

  /** Releases the source when it was read to the end, else cancels it with `reason`. */
  async close(reason: unknown): Promise<void> {
    this.#base = this.position;
    this.#chunk = EMPTY;
    this.#at = 0;
    try {
      if (!this.#ended) await this.#cancel(reason);
    } catch {
      // The source failed or was cancelled already: nothing more to release.
    } finally {
      this.#ended = true;
      this.#release();
    }
  }

  /** Moves to the next non-empty chunk; false at the end of the stream. */
  async #next(): Promise<boolean> {
    for (;;) {
      if (this.#ended) return false;
      this.#signal?.throwIfAborted();
      let result: { done?: boolean; value?: unknown };
      try {
        result = await this.#pull();
      } catch (error) {
        this.#signal?.throwIfAborted();
        if (error instanceof ArchiveError) throw error;
        const problem = error instanceof Error ? error.message : String(error);
        throw new ArchiveError(
          this.#label,
          `cannot read the stream at byte ${this.position}: ${problem}`,
          { cause: error },
        );
      }
      this.#signal?.throwIfAborted();
      if (result.done) {
        this.#ended = true;
        return false;
      }
      const chunk = result.value;
      if (!(chunk instanceof Uint8Array)) {
        throw new TypeError(
          `Cannot read the tar stream "${this.#label}": the source yielded a ${typeof chunk}, not a Uint8Array`,
        );
      }
      this.#base += this.#chunk.length;
      this.#chunk = chunk;
      this.#at = 0;
      if (chunk.length > 0) return true;
    }
  }
}

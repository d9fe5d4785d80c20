/**
 * A stream read once (a layer coming through a pipe, or compressed as it comes) that an upload
 * can still send again from any offset the registry has not confirmed yet: the bytes after the
 * last confirmed offset stay in memory until the registry confirms them, and no longer. A failed
 * segment of a resumable upload is then sent again from them; bytes the registry confirmed are
 * gone, so a session the registry lost cannot be started again.
 */
import { release } from "../release.ts";

/** The bytes wanted were confirmed and let go: the stream cannot be read from there again. */
export class StreamGoneError extends Error {
  override name = "StreamGoneError";
}

export class HeldStream {
  readonly #source: AsyncIterator<Uint8Array>;
  readonly #describe: string;
  /** Chunks from `#heldFrom` on, in order, each the stream's own buffer. */
  #held: Uint8Array[] = [];
  #heldFrom = 0;
  /** Bytes taken from the source so far. */
  #taken = 0;

  /** `source`'s chunks must be buffers of their own (see `release.ts`). */
  constructor(source: AsyncIterable<Uint8Array>, describe: string) {
    this.#source = source[Symbol.asyncIterator]();
    this.#describe = describe;
  }

  /** Bytes held now (for tests and memory checks). */
  get heldBytes(): number {
    return this.#taken - this.#heldFrom;
  }

  /**
   * The stream from byte `from` on: what is held, then the rest of the source. One pass at a
   * time; the chunks yielded stay the stream's (don't free them).
   *
   * @throws {StreamGoneError} when `from` is before the bytes still held.
   */
  async *open(from: number): AsyncGenerator<Uint8Array> {
    if (from < this.#heldFrom) {
      throw new StreamGoneError(
        `${this.#describe}: bytes from ${from} were sent and let go; a stream cannot be read again`,
      );
    }
    let at = this.#heldFrom;
    for (const chunk of [...this.#held]) {
      const end = at + chunk.length;
      if (end > from) yield chunk.subarray(Math.max(0, from - at));
      at = end;
    }
    for (;;) {
      const next = await this.#source.next();
      if (next.done) return;
      this.#held.push(next.value);
      this.#taken += next.value.length;
      if (this.#taken > from) {
        yield next.value.subarray(Math.max(0, next.value.length - (this.#taken - from)));
      }
    }
  }

  /** The registry confirmed every byte before `offset`: chunks wholly before it are freed. */
  confirm(offset: number): void {
    while (this.#held.length > 0 && this.#heldFrom + this.#held[0]!.length <= offset) {
      const chunk = this.#held.shift()!;
      this.#heldFrom += chunk.length;
      release(chunk);
    }
  }

  /** Stops reading the source. */
  async close(): Promise<void> {
    for (const chunk of this.#held.splice(0)) release(chunk);
    await this.#source.return?.();
  }
}

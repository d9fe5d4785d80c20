/**
 * A reader over a byte stream that can look at the first bytes without losing them: the format
 * of a piped archive is told from its head, then the whole stream, head included, is decoded.
 */

/** Reads chunks from a stream, after replaying the ones {@linkcode peek} looked at. */
export class PeekableReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  /** Chunks already read from the source by `peek` and not yet handed out by `read`. */
  readonly #held: Uint8Array[] = [];
  #heldBytes = 0;
  #done = false;

  constructor(source: ReadableStream<Uint8Array>) {
    this.#reader = source.getReader();
  }

  /**
   * Up to `count` first bytes not yet read: fewer only when the stream ends sooner. Reads
   * from the source as needed and keeps what it read for {@linkcode read}.
   */
  async peek(count: number): Promise<Uint8Array> {
    while (this.#heldBytes < count && !this.#done) {
      const { done, value } = await this.#reader.read();
      if (done) this.#done = true;
      else if (value.length > 0) {
        this.#held.push(value);
        this.#heldBytes += value.length;
      }
    }
    const head = new Uint8Array(Math.min(count, this.#heldBytes));
    let offset = 0;
    for (const chunk of this.#held) {
      if (offset === head.length) break;
      const part = chunk.subarray(0, head.length - offset);
      head.set(part, offset);
      offset += part.length;
    }
    return head;
  }

  /** The next chunk (never empty), or null at the end of the stream. */
  async read(): Promise<Uint8Array | null> {
    const held = this.#held.shift();
    if (held !== undefined) {
      this.#heldBytes -= held.length;
      return held;
    }
    while (!this.#done) {
      const { done, value } = await this.#reader.read();
      if (done) this.#done = true;
      else if (value.length > 0) return value;
    }
    return null;
  }

  /** Drops held chunks and cancels the source (a no-op once it has ended). */
  async cancel(reason?: unknown): Promise<void> {
    this.#held.length = 0;
    this.#heldBytes = 0;
    this.#done = true;
    await this.#reader.cancel(reason);
  }

  /**
   * The rest of the stream, held chunks first, as a new stream that reads on demand.
   * Cancelling it cancels the source.
   */
  toStream(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const chunk = await this.read();
        if (chunk === null) controller.close();
        else controller.enqueue(chunk);
      },
      cancel: (reason) => this.cancel(reason),
    }, { highWaterMark: 0 });
  }
}

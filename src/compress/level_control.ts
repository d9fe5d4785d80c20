/**
 * The compression level, fixed or following the link. With `auto`, every block asks for a
 * level: when compressed blocks pile up waiting for the network, the link is the bottleneck and
 * spare CPU buys a smaller stream (one level up); when the upload waits for a block, compression
 * is the bottleneck (one level down). On a fast link this settles at the fastest levels; on a
 * slow one at the strongest level the cores can keep the link busy with.
 */
import { type Codec, LEVELS } from "./codec.ts";

export class LevelControl {
  readonly codec: Codec;
  readonly adaptive: boolean;
  #level: number;
  #min: number;
  #max: number;

  constructor(codec: Codec, level: number | "auto") {
    this.codec = codec;
    const range = LEVELS[codec];
    this.adaptive = level === "auto";
    this.#level = level === "auto" ? range.start : level;
    this.#min = range.min;
    this.#max = range.max;
  }

  /** The level for the next block. */
  get level(): number {
    return this.#level;
  }

  /** Compressed bytes are waiting for the link: compress harder. */
  backlogged(): void {
    if (this.adaptive) this.#level = Math.min(this.#max, this.#level + 1);
  }

  /** The link waited for compressed bytes: compress faster. */
  starved(): void {
    if (this.adaptive) this.#level = Math.max(this.#min, this.#level - 1);
  }
}

/**
 * Splitting a zstd stream at its frame boundaries, without decoding it.
 *
 * A zstd stream is one or more frames (RFC 8878 §3.1): `zstd a; zstd b` concatenated, `pzstd`
 * and `zstd -T0 --rsyncable` output, or layers appended by tools all hold several. Deno's
 * `node:zlib` zstd decoder (like Node's, nodejs/node#64741) stops after the first frame when
 * one write holds the end of a frame and more bytes after it, and it ends silently, with no
 * error, when the input stops mid-frame. So the stream is walked here, header by header (one
 * 3-byte header per block of at most 128 KiB: cheap), and
 *
 * - every write to the decoder ends at or before a frame end, which it handles correctly;
 * - input cut short inside a frame is reported as truncated;
 * - bytes after the last frame that are not another frame are reported as garbage, as
 *   `zstd -d` does (it refuses even zero padding).
 *
 * Layout walked (all little-endian):
 *
 * | part            | size                                                                  |
 * |-----------------|-----------------------------------------------------------------------|
 * | magic           | 4: `28 b5 2f fd`                                                      |
 * | frame header    | 1 descriptor + window (0/1) + dictionary id (0/1/2/4) + size (0/1/2/4/8) |
 * | block header    | 3: bit 0 last block, bits 1–2 type (raw, RLE, compressed, reserved), bits 3–23 size |
 * | block body      | raw and compressed: size bytes; RLE: 1 byte                           |
 * | content checksum| 4, when the descriptor's bit 2 is set                                 |
 * | skippable frame | magic `5? 2a 4d 18`, 4-byte size, then size bytes                     |
 */
import { ArchiveError } from "../errors.ts";
import { hexPrefix, isSkippableFrameMagic } from "./stream_format.ts";

const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];
/** Block_Maximum_Size: no block holds more than 128 KiB, compressed or not. */
const MAX_BLOCK_SIZE = 128 * 1024;

type State =
  | "magic"
  | "descriptor"
  | "header"
  | "block-header"
  | "block-body"
  | "checksum"
  | "skippable-size"
  | "skippable-body";

/**
 * Cuts a zstd stream, fed chunk by chunk, into pieces that never span a frame boundary, and
 * checks its frame structure on the way.
 *
 * @example
 * ```ts
 * import { ZstdFrameSplitter } from "./zstd_frames.ts";
 * const splitter = new ZstdFrameSplitter("app.tar.zst");
 * const input = new Uint8Array(0); // chunks of the compressed stream, in order
 * for (const piece of splitter.split(input)) {
 *   // write `piece` to the decoder; a frame ends only at the end of a piece
 * }
 * splitter.finish(); // throws if the stream stopped inside a frame
 * ```
 */
export class ZstdFrameSplitter {
  readonly #label: string;
  #state: State = "magic";
  /** A fixed-size field being collected across chunks (magic, descriptor, headers, size). */
  readonly #field = new Uint8Array(4);
  #fieldLength = 0;
  #fieldNeed = 4;
  /** Bytes left of the variable-size part being passed over. */
  #skip = 0;
  #lastBlock = false;
  #hasChecksum = false;
  /** Stream offset of the first byte of the next chunk, for messages. */
  #offset = 0;
  /** Stream offset where the current frame started. */
  #frameStart = 0;
  #frames = 0;

  /** `label` names the source in errors. */
  constructor(label: string) {
    this.#label = label;
  }

  /** Frames completed so far (skippable ones included). */
  get frames(): number {
    return this.#frames;
  }

  /**
   * Splits the next chunk of the stream into pieces for the decoder, in order. A frame ends
   * only at the end of a piece. The 4 bytes of a frame's magic are held back until they are
   * complete and checked, then come out as a piece of their own.
   *
   * @throws {ArchiveError} on bytes that are not a zstd frame, or a malformed frame or block
   * header.
   */
  split(chunk: Uint8Array): Uint8Array[] {
    const pieces: Uint8Array[] = [];
    let start = 0;
    let i = 0;
    while (i < chunk.length) {
      if (this.#state === "magic") {
        const take = Math.min(this.#fieldNeed - this.#fieldLength, chunk.length - i);
        this.#field.set(chunk.subarray(i, i + take), this.#fieldLength);
        this.#fieldLength += take;
        i += take;
        start = i;
        if (this.#fieldLength < this.#fieldNeed) break;
        this.#startFrame(this.#offset + i - 4);
        pieces.push(this.#field.slice(0, 4));
        continue;
      }
      if (this.#skip > 0) {
        const take = Math.min(this.#skip, chunk.length - i);
        this.#skip -= take;
        i += take;
        if (this.#skip > 0) break;
      } else {
        const take = Math.min(this.#fieldNeed - this.#fieldLength, chunk.length - i);
        this.#field.set(chunk.subarray(i, i + take), this.#fieldLength);
        this.#fieldLength += take;
        i += take;
        if (this.#fieldLength < this.#fieldNeed) break;
      }
      if (this.#next(this.#offset + i)) {
        // A frame ended at i: the piece ends there.
        if (i > start) pieces.push(chunk.subarray(start, i));
        start = i;
      }
    }
    if (this.#state !== "magic" && start < chunk.length) pieces.push(chunk.subarray(start));
    this.#offset += chunk.length;
    return pieces;
  }

  /**
   * Checks that the stream ended between frames.
   *
   * @throws {ArchiveError} when it stopped inside a frame (truncated), or ends with a few
   * bytes that cannot start a frame.
   */
  finish(): void {
    if (this.#state === "magic" && this.#fieldLength === 0) return;
    if (this.#state === "magic") {
      const partial = this.#field.subarray(0, this.#fieldLength);
      const prefixOfFrame = partial.every((b, i) => b === ZSTD_MAGIC[i]) ||
        (partial.length < 4 && isSkippableFrameMagic(paddedMagic(partial)));
      if (!prefixOfFrame) throw this.#garbage(this.#offset - partial.length, partial);
    }
    throw new ArchiveError(this.#label, "the zstd stream ends early (truncated?)");
  }

  /** Moves past a completed field or skip; returns true when that ended a frame. */
  #next(at: number): boolean {
    const field = this.#field;
    switch (this.#state) {
      case "descriptor": {
        const descriptor = field[0]!;
        if ((descriptor & 0x08) !== 0) {
          throw this.#corrupt(`a reserved bit is set in the frame header at byte ${at - 1}`);
        }
        const singleSegment = (descriptor & 0x20) !== 0;
        const sizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6]!;
        const dictionaryBytes = [0, 1, 2, 4][descriptor & 0x03]!;
        this.#hasChecksum = (descriptor & 0x04) !== 0;
        this.#state = "header";
        this.#skip = (singleSegment ? 0 : 1) + dictionaryBytes + sizeBytes;
        if (this.#skip === 0) return this.#next(at);
        return false;
      }
      case "header":
        this.#expect("block-header", 3);
        return false;
      case "block-header": {
        const header = field[0]! | (field[1]! << 8) | (field[2]! << 16);
        const type = (header >> 1) & 0x03;
        const size = header >>> 3;
        if (type === 3) throw this.#corrupt(`reserved block type at byte ${at - 3}`);
        if (size > MAX_BLOCK_SIZE) {
          throw this.#corrupt(`a block of ${size} bytes (over 128 KiB) at byte ${at - 3}`);
        }
        this.#lastBlock = (header & 0x01) !== 0;
        this.#state = "block-body";
        this.#skip = type === 1 ? 1 : size;
        if (this.#skip === 0) return this.#next(at);
        return false;
      }
      case "block-body":
        if (!this.#lastBlock) {
          this.#expect("block-header", 3);
          return false;
        }
        if (this.#hasChecksum) {
          this.#state = "checksum";
          this.#skip = 4;
          return false;
        }
        return this.#endFrame();
      case "checksum":
        return this.#endFrame();
      case "skippable-size": {
        const size = (field[0]! | (field[1]! << 8) | (field[2]! << 16) | (field[3]! << 24)) >>> 0;
        this.#state = "skippable-body";
        this.#skip = size;
        if (size === 0) return this.#endFrame();
        return false;
      }
      case "skippable-body":
        return this.#endFrame();
      case "magic":
        // Handled in split(): the magic is checked as soon as it is complete.
        return false;
    }
  }

  #startFrame(at: number): void {
    const magic = this.#field.subarray(0, 4);
    this.#frameStart = at;
    if (magic.every((b, i) => b === ZSTD_MAGIC[i])) {
      this.#expect("descriptor", 1);
    } else if (isSkippableFrameMagic(magic)) {
      this.#expect("skippable-size", 4);
    } else {
      throw this.#garbage(at, magic);
    }
  }

  #endFrame(): true {
    this.#frames++;
    this.#expect("magic", 4);
    return true;
  }

  #expect(state: State, bytes: number): void {
    this.#state = state;
    this.#fieldLength = 0;
    this.#fieldNeed = bytes;
    this.#skip = 0;
  }

  #garbage(at: number, bytes: Uint8Array): ArchiveError {
    return new ArchiveError(
      this.#label,
      `unexpected bytes after the zstd data at byte ${at} (${hexPrefix(bytes)}), not another ` +
        `zstd frame: trailing garbage`,
    );
  }

  #corrupt(what: string): ArchiveError {
    return new ArchiveError(
      this.#label,
      `the zstd data is corrupt: ${what} (frame ${
        this.#frames + 1
      }, from byte ${this.#frameStart})`,
    );
  }
}

/** A partial magic padded with the skippable frame's fixed bytes, to test it as a prefix. */
function paddedMagic(partial: Uint8Array): Uint8Array {
  const full = new Uint8Array([0x50, 0x2a, 0x4d, 0x18]);
  full.set(partial);
  return full;
}

/**
 * What an input stream holds, told from its first bytes (magic numbers), never from its name:
 * a plain tar, or a tar compressed with gzip, zstd, xz or bzip2.
 *
 * | format | magic                                  | where                            |
 * |--------|----------------------------------------|----------------------------------|
 * | gzip   | `1f 8b`                                | offset 0 (RFC 1952)              |
 * | zstd   | `28 b5 2f fd`, or `5? 2a 4d 18`        | offset 0 (RFC 8878; the second is a skippable frame, which `pzstd` writes first) |
 * | xz     | `fd 37 7a 58 5a 00`                    | offset 0                         |
 * | bzip2  | `42 5a 68` ("BZh") + level `1`–`9`     | offset 0                         |
 * | tar    | `ustar` at 257, or a valid v7 checksum | first 512-byte header block      |
 */
import { BLOCK_SIZE, hasValidChecksum, isZeroBlock } from "./tar_header.ts";

/** What {@linkcode sniffStreamFormat} finds. `empty` is a zero-length input. */
export type StreamFormat = "tar" | "gzip" | "zstd" | "xz" | "bzip2" | "unknown" | "empty";

/** Bytes {@linkcode sniffStreamFormat} needs to decide: one tar header block. */
export const SNIFF_BYTES = BLOCK_SIZE;

const XZ_MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];

/**
 * Tells the format of a stream from its first bytes. Give it the first
 * {@linkcode SNIFF_BYTES} bytes, or all of them when the input is shorter: compressed formats
 * are told by their first 2–6 bytes, a tar needs its whole first header block.
 *
 * An all-zero first block is an empty tar (GNU tar writes one for an empty archive).
 *
 * @example
 * ```ts
 * import { sniffStreamFormat } from "./stream_format.ts";
 * sniffStreamFormat(new Uint8Array([0x1f, 0x8b, 8, 0])); // "gzip"
 * ```
 */
export function sniffStreamFormat(first: Uint8Array): StreamFormat {
  if (first.length === 0) return "empty";
  if (startsWith(first, [0x1f, 0x8b])) return "gzip";
  if (startsWith(first, [0x28, 0xb5, 0x2f, 0xfd]) || isSkippableFrameMagic(first)) return "zstd";
  if (startsWith(first, XZ_MAGIC)) return "xz";
  // "BZh" and a block size digit; the digit keeps text starting with "BZh" from matching.
  if (startsWith(first, [0x42, 0x5a, 0x68]) && first[3]! >= 0x31 && first[3]! <= 0x39) {
    return "bzip2";
  }
  if (first.length >= BLOCK_SIZE) {
    const block = first.subarray(0, BLOCK_SIZE);
    if (isZeroBlock(block)) return "tar";
    // ustar and GNU tars carry a magic; v7 tars (and a few odd writers) only a checksum.
    if (ascii(block, 257, 5) === "ustar" || hasValidChecksum(block)) return "tar";
  }
  return "unknown";
}

/** Whether the bytes start with a zstd skippable frame magic (`0x184D2A50`–`0x184D2A5F`). */
export function isSkippableFrameMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && (bytes[0]! & 0xf0) === 0x50 && bytes[1] === 0x2a &&
    bytes[2] === 0x4d && bytes[3] === 0x18;
}

/** The first bytes in hex for messages: `89 50 4e 47`. */
export function hexPrefix(bytes: Uint8Array, count = 4): string {
  return Array.from(bytes.subarray(0, count), (b) => b.toString(16).padStart(2, "0")).join(" ");
}

function startsWith(bytes: Uint8Array, magic: readonly number[]): boolean {
  return bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
}

function ascii(block: Uint8Array, offset: number, length: number): string {
  return String.fromCharCode(...block.subarray(offset, offset + length));
}

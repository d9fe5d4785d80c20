import { constants, zstdCompressSync } from "node:zlib";
import { ZstdFrameSplitter } from "../../src/archive/zstd_frames.ts";
import { ArchiveError } from "../../src/errors.ts";
import { concat, textBytes } from "../helpers/compression.ts";
import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";

const withChecksum = { params: { [constants.ZSTD_c_checksumFlag]: 1 } };

/** Frames of odd sizes: with and without checksum, empty, and a skippable frame. */
function frames(): Uint8Array[] {
  const skippable = new Uint8Array([0x53, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
  return [
    new Uint8Array(zstdCompressSync(textBytes(1, 100_001), withChecksum)),
    new Uint8Array(zstdCompressSync(new Uint8Array(0))),
    skippable,
    new Uint8Array(zstdCompressSync(textBytes(2, 16 * 1024 * 3))),
    new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]),
    new Uint8Array(zstdCompressSync(crypto.getRandomValues(new Uint8Array(5000)))),
  ];
}

/** Splits `stream` fed in chunks of `size`; returns the pieces. */
function splitInChunks(stream: Uint8Array, size: number): Uint8Array[] {
  const splitter = new ZstdFrameSplitter("x.zst");
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < stream.length; at += size) {
    pieces.push(...splitter.split(stream.subarray(at, at + size)));
  }
  splitter.finish();
  return pieces;
}

Deno.test("ZstdFrameSplitter ends a piece at every frame end, whatever the chunking", () => {
  const parts = frames();
  const stream = concat(...parts);
  const ends = new Set<number>();
  let offset = 0;
  for (const part of parts) ends.add(offset += part.length);
  for (const size of [1, 2, 3, 4, 5, 7, 100, 4096, 65536, stream.length]) {
    const pieces = splitInChunks(stream, size);
    // Nothing lost, nothing reordered, and no piece crosses a frame end.
    assertEquals(concat(...pieces), stream, `chunks of ${size}`);
    let at = 0;
    for (const piece of pieces) {
      const start = at;
      at += piece.length;
      for (const end of ends) {
        if (end > start && end < at) throw new Error(`chunks of ${size}: a piece crosses ${end}`);
      }
    }
  }
  // Deno's zstdCompressSync may append an empty frame of its own (denoland/deno#36688), so
  // the count is checked against each part's.
  const count = (bytes: Uint8Array) => {
    const splitter = new ZstdFrameSplitter("x.zst");
    splitter.split(bytes);
    splitter.finish();
    return splitter.frames;
  };
  assertEquals(count(stream), parts.map(count).reduce((a, b) => a + b));
  assert(count(stream) >= parts.length);
});

Deno.test("ZstdFrameSplitter reports truncation and garbage at the byte", () => {
  const [frame] = frames();
  const truncated = (bytes: Uint8Array, message: string) =>
    assertThrows(() => splitInChunks(bytes, 1000), ArchiveError, message);
  truncated(frame!.subarray(0, 3), "x.zst: the zstd stream ends early (truncated?)");
  truncated(frame!.subarray(0, frame!.length - 2), "ends early");
  // Cut inside a skippable frame's magic, its size and its body.
  truncated(concat(frame!, new Uint8Array([0x50, 0x2a])), "ends early");
  truncated(concat(frame!, new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 9])), "ends early");
  truncated(concat(frame!, new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 9, 0, 0, 0, 1])), "ends early");
  truncated(
    concat(frame!, new Uint8Array([0x28, 0xb5, 0x2f, 0xfe])),
    `x.zst: unexpected bytes after the zstd data at byte ${frame!.length} (28 b5 2f fe)`,
  );
  truncated(concat(frame!, new Uint8Array([0x28, 0x00])), `at byte ${frame!.length} (28 00)`);
});

Deno.test("ZstdFrameSplitter refuses malformed headers", () => {
  const magic = [0x28, 0xb5, 0x2f, 0xfd];
  const split = (bytes: number[]) => new ZstdFrameSplitter("x.zst").split(new Uint8Array(bytes));
  // Descriptor with the reserved bit (0x08) set.
  assertThrows(() => split([...magic, 0x08]), ArchiveError, "a reserved bit is set");
  // Single segment, 1-byte size, then a block header of type 3 (reserved).
  assertThrows(() => split([...magic, 0x20, 5, 0x07, 0, 0]), ArchiveError, "reserved block type");
  // A raw block of 128 KiB + 1 byte: (131073 << 3) | last.
  const size = (128 * 1024 + 1) << 3 | 1;
  assertThrows(
    () => split([...magic, 0x20, 5, size & 0xff, (size >> 8) & 0xff, size >> 16]),
    ArchiveError,
    "a block of 131073 bytes (over 128 KiB)",
  );
});

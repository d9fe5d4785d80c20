/**
 * The compression worker's source. It is a string, started from a `blob:` URL, so the same code
 * runs from `deno run`, from the single-file bundle and from a compiled binary (none of which
 * can be relied on to ship a second module file next to the first).
 *
 * Protocol: the main thread posts `{ id, input, length, codec, level }` with `input` (an
 * ArrayBuffer whose first `length` bytes are the block) transferred; the worker answers
 * `{ id, output, input }` transferring the compressed bytes and the input buffer back (the main
 * thread reuses it, so no block buffer waits in a worker for a garbage collection), or
 * `{ id, error, input }`. Each input becomes one complete gzip member or zstd frame, so blocks
 * compress independently (on any worker, in parallel) and their concatenation is a valid
 * stream (RFC 1952 §2.2 members; RFC 8878 §3.1 frames).
 */
export const WORKER_SOURCE = `
import zlib from "node:zlib";
self.onmessage = (event) => {
  const { id, input, length, codec, level } = event.data;
  try {
    const bytes = new Uint8Array(input, 0, length);
    const out = codec === "gzip"
      ? zlib.gzipSync(bytes, { level })
      : zlib.zstdCompressSync(bytes, {
        params: { [zlib.constants.ZSTD_c_compressionLevel]: level },
      });
    const output = out.byteOffset === 0 && out.byteLength === out.buffer.byteLength
      ? out.buffer
      : out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength);
    self.postMessage({ id, output, input }, output === input ? [output] : [output, input]);
  } catch (error) {
    self.postMessage({ id, error: String(error && error.message || error), input }, [input]);
  }
};
`;

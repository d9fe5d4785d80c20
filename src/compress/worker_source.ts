/**
 * The compression worker's source. It is a string, started from a `blob:` URL, so the same code
 * runs from `deno run`, from the single-file bundle and from a compiled binary (none of which
 * can be relied on to ship a second module file next to the first).
 *
 * Protocol: the main thread posts `{ id, input, codec, level }` with `input` (an ArrayBuffer)
 * transferred; the worker answers `{ id, output }` with the compressed ArrayBuffer transferred,
 * or `{ id, error }`. Each input becomes one complete gzip member or zstd frame, so blocks
 * compress independently (on any worker, in parallel) and their concatenation is a valid
 * stream (RFC 1952 §2.2 members; RFC 8878 §3.1 frames).
 */
export const WORKER_SOURCE = `
import zlib from "node:zlib";
self.onmessage = (event) => {
  const { id, input, codec, level } = event.data;
  try {
    const bytes = new Uint8Array(input);
    const out = codec === "gzip"
      ? zlib.gzipSync(bytes, { level })
      : zlib.zstdCompressSync(bytes, {
        params: { [zlib.constants.ZSTD_c_compressionLevel]: level },
      });
    const output = out.byteOffset === 0 && out.byteLength === out.buffer.byteLength
      ? out.buffer
      : out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength);
    self.postMessage({ id, output }, [output]);
  } catch (error) {
    self.postMessage({ id, error: String(error && error.message || error) });
  }
};
`;

/**
 * Freeing buffers as soon as they are done with. V8 lets dead ArrayBuffers pile up by tens of MB
 * per isolate before it collects them; a push streams gigabytes through short-lived 1 MiB
 * buffers on the main thread and every compression worker, so memory would grow with the number
 * of threads. Detaching a buffer (`transfer(0)`) frees its memory at once.
 */

/**
 * Frees `chunk`'s memory now. Only a chunk that is a whole buffer of its own, larger than
 * Buffer's 8 KiB pool slabs, is freed; a view into part of a buffer is left alone. The caller
 * must own the chunk: anything else still holding it sees an empty, detached buffer.
 */
export function release(chunk: Uint8Array): void {
  const buffer = chunk.buffer;
  if (
    buffer instanceof ArrayBuffer && !buffer.detached && chunk.byteOffset === 0 &&
    chunk.byteLength === buffer.byteLength && buffer.byteLength > 8192
  ) {
    buffer.transfer(0);
  }
}

/**
 * Freeing buffers as soon as they are done with, and reusing the common ones. V8 lets dead
 * ArrayBuffers pile up by tens of MB per isolate before it collects them; a push streams
 * gigabytes through short-lived 1 MiB buffers on the main thread and every compression worker,
 * so memory would grow with the number of threads. Detaching a buffer (`transfer(0)`) frees its
 * memory at once.
 *
 * A fresh buffer costs more than its allocation: the kernel maps and zeroes every page of it
 * again (issue 21: reading 763 MB in fresh 1 MiB buffers took 0.26 CPU-s, against 0.14 reusing
 * one). So a released buffer of {@linkcode POOLED_SIZE} bytes goes to a small free list that
 * {@linkcode allocate} takes from, once this isolate has asked for one.
 */

/** Size of the buffers kept for reuse: `readRange`'s default chunk. */
export const POOLED_SIZE = 1024 * 1024;

/** Free buffers kept at most, per isolate (8 MiB). */
const POOL_LIMIT = 8;

const pool: ArrayBuffer[] = [];
/** Set by the first `allocate`: an isolate that never allocates (a worker) keeps nothing. */
let pooling = false;

/**
 * A buffer of `size` bytes for the caller to fill: a released one when `size` is
 * {@linkcode POOLED_SIZE} and one is free (its old bytes still in it), otherwise a new,
 * zeroed one.
 */
export function allocate(size: number): Uint8Array<ArrayBuffer> {
  if (size !== POOLED_SIZE) return new Uint8Array(size);
  pooling = true;
  const buffer = pool.pop();
  return buffer === undefined ? new Uint8Array(size) : new Uint8Array(buffer);
}

/**
 * Frees `chunk`'s memory now, or keeps it for {@linkcode allocate}. Only a chunk that is a
 * whole buffer of its own, larger than Buffer's 8 KiB pool slabs, is freed; a view into part of
 * a buffer is left alone. The caller must own the chunk: anything else still holding it sees
 * an empty, detached buffer (a kept buffer's memory moves to a new ArrayBuffer).
 */
export function release(chunk: Uint8Array): void {
  const buffer = chunk.buffer;
  if (
    buffer instanceof ArrayBuffer && !buffer.detached && chunk.byteOffset === 0 &&
    chunk.byteLength === buffer.byteLength && buffer.byteLength > 8192
  ) {
    if (pooling && buffer.byteLength === POOLED_SIZE && pool.length < POOL_LIMIT) {
      // transfer() moves the memory without copying it and detaches the old buffer.
      pool.push(buffer.transfer());
    } else {
      buffer.transfer(0);
    }
  }
}

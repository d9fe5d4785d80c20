import { allocate, POOLED_SIZE, release } from "../src/release.ts";
import { assert, assertEquals } from "./helpers/assert.ts";

Deno.test("release frees a chunk that is a whole buffer of its own", () => {
  const chunk = new Uint8Array(64 * 1024).fill(7);
  release(chunk);
  assertEquals(chunk.buffer.detached, true);
  assertEquals(chunk.length, 0);
  release(chunk); // twice is harmless
});

Deno.test("release leaves views, small buffers (Buffer's pool slabs) and shared memory alone", () => {
  const whole = new Uint8Array(64 * 1024).fill(1);
  const view = whole.subarray(0, 1024);
  release(view);
  release(whole.subarray(1024));
  assertEquals(whole.buffer.detached, false);
  assertEquals(whole[0], 1);
  const small = new Uint8Array(8192);
  release(small);
  assertEquals(small.buffer.detached, false);
  const shared = new Uint8Array(new SharedArrayBuffer(64 * 1024));
  release(shared);
  assertEquals(shared.length, 64 * 1024);
});

Deno.test("allocate hands out released buffers of the pooled size, not zeroed", () => {
  const chunk = allocate(POOLED_SIZE).fill(42);
  release(chunk);
  assertEquals(chunk.buffer.detached, true, "whoever still holds it sees an empty buffer");
  const again = allocate(POOLED_SIZE);
  assertEquals(again.length, POOLED_SIZE);
  assertEquals([again[0], again[POOLED_SIZE - 1]], [42, 42], "the same memory, as it was left");
  assertEquals(allocate(POOLED_SIZE)[0], 0, "none free: a new buffer");
  // Other sizes are never pooled: freed at once, and allocated zeroed.
  const other = allocate(POOLED_SIZE / 2).fill(42);
  release(other);
  assertEquals(other.buffer.detached, true);
  assertEquals(allocate(POOLED_SIZE / 2)[0], 0);
});

Deno.test("release keeps at most 8 buffers for reuse, and frees the rest", () => {
  const released = Array.from({ length: 10 }, () => allocate(POOLED_SIZE).fill(9));
  for (const chunk of released) release(chunk);
  assert(released.every((chunk) => chunk.buffer.detached));
  const reused = Array.from({ length: 10 }, () => allocate(POOLED_SIZE));
  assertEquals(reused.filter((chunk) => chunk[0] === 9).length, 8);
});

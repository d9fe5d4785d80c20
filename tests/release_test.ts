import { release } from "../src/release.ts";
import { assertEquals } from "./helpers/assert.ts";

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

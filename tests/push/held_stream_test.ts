import { HeldStream, StreamGoneError } from "../../src/push/held_stream.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";

async function* chunks(count: number, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < count; i++) {
    await Promise.resolve();
    yield new Uint8Array(size).fill(i);
  }
}

async function take(iterable: AsyncIterable<Uint8Array>, bytes: number): Promise<number[]> {
  const out: number[] = [];
  for await (const chunk of iterable) {
    out.push(...chunk);
    if (out.length >= bytes) break;
  }
  return out.slice(0, bytes);
}

Deno.test("HeldStream replays what the registry has not confirmed, then goes on", async () => {
  const held = new HeldStream(chunks(4, 10), "layer");
  // A first pass sends 25 bytes, of which the registry confirms 12.
  assertEquals((await take(held.open(0), 25)).length, 25);
  held.confirm(12);
  // Chunk 0 (bytes 0–9) is let go; chunk 1 on is held.
  assertEquals(held.heldBytes, 20);
  const again = await take(held.open(12), 28);
  assertEquals(again, [...Array(8).fill(1), ...Array(10).fill(2), ...Array(10).fill(3)]);
  held.confirm(40);
  assertEquals(held.heldBytes, 0);
  await held.close();
});

Deno.test("HeldStream refuses bytes it let go", async () => {
  const held = new HeldStream(chunks(3, 10), "layer");
  await take(held.open(0), 30);
  held.confirm(20);
  const error = await assertRejects(() => take(held.open(5), 1), StreamGoneError);
  assert(error.message.includes("a stream cannot be read again"), error.message);
  await held.close();
});

Deno.test("HeldStream holds at most what was taken past the last confirmation", async () => {
  const held = new HeldStream(chunks(100, 1000), "layer");
  const pass = held.open(0)[Symbol.asyncIterator]();
  let sent = 0;
  let most = 0;
  for (;;) {
    const next = await pass.next();
    if (next.done) break;
    sent += next.value.length;
    if (sent % 5000 === 0) held.confirm(sent); // the registry confirms every 5 chunks
    most = Math.max(most, held.heldBytes);
  }
  assertEquals(sent, 100_000);
  assert(most <= 5000, `held ${most} bytes`);
  await held.close();
});

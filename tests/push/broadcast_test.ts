import { BRANCH_QUEUE, broadcast } from "../../src/push/broadcast.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";

async function* chunks(count: number, size = 10_000, onPull?: (i: number) => void) {
  for (let i = 0; i < count; i++) {
    onPull?.(i);
    yield new Uint8Array(size).fill(i);
  }
}

async function collect(branch: AsyncIterable<Uint8Array>): Promise<number[]> {
  const seen: number[] = [];
  for await (const chunk of branch) seen.push(chunk[0]!, chunk.length);
  return seen;
}

Deno.test("broadcast: every branch gets every chunk, each its own buffer", async () => {
  const given: Uint8Array[] = [];
  const [a, b, c] = broadcast(chunks(5), 3);
  const take = async (branch: AsyncIterable<Uint8Array>) => {
    const seen: number[] = [];
    for await (const chunk of branch) {
      given.push(chunk);
      seen.push(chunk[0]!);
    }
    return seen;
  };
  const results = await Promise.all([take(a!), take(b!), take(c!)]);
  assertEquals(results, [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]);
  assertEquals(new Set(given.map((g) => g.buffer)).size, given.length, "no buffer is shared");
});

Deno.test("broadcast: the stream waits for the slowest branch (bounded memory)", async () => {
  let pulled = 0;
  const [fast, slow] = broadcast(chunks(20, 100, (i) => pulled = i + 1), 2);
  const fastDone = collect(fast!);
  const slowReader = slow![Symbol.asyncIterator]();
  await slowReader.next();
  await new Promise((r) => setTimeout(r, 50));
  // The fast branch cannot run ahead more than the slow one's queue allows.
  assert(pulled <= 1 + BRANCH_QUEUE + 1, `pulled ${pulled} chunks while one branch took 1`);
  while (!(await slowReader.next()).done) { /* drain */ }
  assertEquals((await fastDone).length, 40);
  assertEquals(pulled, 20);
});

Deno.test("broadcast: a branch that closes is dropped; the others go on", async () => {
  const [a, b] = broadcast(chunks(10), 2);
  const reader = a![Symbol.asyncIterator]();
  await reader.next();
  a!.close();
  assertEquals((await collect(b!)).length, 20);
});

Deno.test("broadcast: when every branch is gone the stream stops", async () => {
  let pulled = 0;
  let finished = false;
  async function* source() {
    try {
      for (let i = 0; i < 1000; i++) {
        pulled++;
        yield new Uint8Array(16);
      }
    } finally {
      finished = true;
    }
  }
  const [a, b] = broadcast(source(), 2);
  const ra = a![Symbol.asyncIterator]();
  const rb = b![Symbol.asyncIterator]();
  await ra.next();
  await rb.next();
  a!.close();
  b!.close();
  await new Promise((r) => setTimeout(r, 20));
  assert(finished, "the source was stopped");
  assert(pulled < 10, `pulled ${pulled}`);
});

Deno.test("broadcast: a failing stream fails every branch", async () => {
  async function* failing() {
    yield new Uint8Array(4);
    throw new Error("archive read failed");
  }
  const [a, b] = broadcast(failing(), 2);
  await assertRejects(() => collect(a!), Error, "archive read failed");
  await assertRejects(() => collect(b!), Error, "archive read failed");
});

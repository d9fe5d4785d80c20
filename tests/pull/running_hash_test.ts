/**
 * Running hashes: the worker's agree with node:crypto's for bytes in shared and in ordinary
 * memory, mid-way and after a reset, for several hashes at once; a closed worker fails what
 * still waits, and what comes after.
 */
import { createHash } from "node:crypto";
import { HashWorker, localHash, type RunningHash } from "../../src/pull/running_hash.ts";
import { assertEquals, assertRejects } from "../helpers/assert.ts";

const hex = (...parts: Uint8Array[]) => {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest("hex");
};

function bytes(length: number, seed: number, shared = false): Uint8Array {
  const out = new Uint8Array(shared ? new SharedArrayBuffer(length) : new ArrayBuffer(length));
  for (let i = 0; i < length; i++) out[i] = (i * seed) % 251;
  return out;
}

async function exercise(make: () => RunningHash): Promise<void> {
  const a = make();
  const b = make();
  const one = bytes(300_000, 7, true);
  const two = bytes(70_001, 11);
  await Promise.all([a.update(one.subarray(5)), b.update(two)]);
  assertEquals(await a.hex(), hex(one.subarray(5)));
  await a.update(two);
  assertEquals(await a.hex(), hex(one.subarray(5), two));
  assertEquals(await b.hex(), hex(two));
  a.reset();
  assertEquals(await a.hex(), hex());
  await a.update(one);
  assertEquals(await a.hex(), hex(one));
}

Deno.test("localHash: a running sha256, mid-way and after a reset", async () => {
  await exercise(localHash);
});

Deno.test("HashWorker: the same digests, from shared and ordinary memory", async () => {
  using worker = new HashWorker();
  await exercise(() => worker.newHash());
});

Deno.test("HashWorker: closing it fails what waits and what comes after", async () => {
  const worker = new HashWorker();
  const hash = worker.newHash();
  const waiting = hash.update(bytes(4 * 1024 * 1024, 3));
  worker.close();
  await assertRejects(() => waiting, Error, "closed");
  await assertRejects(() => hash.hex(), Error, "closed");
});

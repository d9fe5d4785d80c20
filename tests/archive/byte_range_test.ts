import { readRange, readRangeBytes } from "../../src/archive/byte_range.ts";
import { POOLED_SIZE, release } from "../../src/release.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { concat, openFileCount, tempDir, writeFile } from "./_tar_fixtures.ts";

/** 10 000 bytes where byte i is i % 251, so any misplaced byte shows. */
const DATA = Uint8Array.from({ length: 10_000 }, (_, i) => i % 251);

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const chunk of chunks) out.push(chunk);
  return out;
}

Deno.test("readRange streams exactly the range, in chunks of at most chunkSize", async () => {
  await using dir = await tempDir();
  const path = await writeFile(dir.path, "data", DATA);
  const chunks = await collect(readRange(path, 1000, 2500, { chunkSize: 1024 }));
  assertEquals(chunks.map((c) => c.length), [1024, 1024, 452]);
  assertEquals(concat(...chunks), DATA.subarray(1000, 3500));

  // Default chunk size (1 MiB) covers it in one chunk; a range up to the last byte works.
  const tail = await collect(readRange(path, 9000, 1000));
  assertEquals(tail.length, 1);
  assertEquals(tail[0], DATA.subarray(9000));
  assertEquals(await collect(readRange(path, 10_000, 0)), []);
});

Deno.test("readRange yields a fresh buffer per chunk that the consumer may keep", async () => {
  await using dir = await tempDir();
  const path = await writeFile(dir.path, "data", DATA);
  const kept: Uint8Array[] = [];
  for await (const chunk of readRange(path, 0, 4096, { chunkSize: 512 })) {
    kept.push(chunk);
    chunk.fill(0xee); // scribbling on one chunk must not affect the next
  }
  assertEquals(new Set(kept.map((c) => c.buffer)).size, kept.length);
  for (const chunk of kept) assert(chunk.byteOffset === 0 && chunk.buffer.byteLength === 512);
  const again = await collect(readRange(path, 512, 512, { chunkSize: 512 }));
  assertEquals(again[0], DATA.subarray(512, 1024));
});

Deno.test("readRange reuses the chunks its consumer releases, every byte intact", async () => {
  await using dir = await tempDir();
  const data = Uint8Array.from({ length: 3 * POOLED_SIZE + 12_345 }, (_, i) => (i * 7) % 253);
  const path = await writeFile(dir.path, "data", data);
  const out = new Uint8Array(data.length);
  let at = 0;
  for await (const chunk of readRange(path, 0, data.length)) {
    out.set(chunk, at);
    at += chunk.length;
    release(chunk); // the next chunk may be this one's memory, filled again
  }
  assertEquals(at, data.length);
  assertEquals(out, data);
  // A range that starts mid-file reads from there, whatever a reused buffer held before.
  const tail = await collect(readRange(path, POOLED_SIZE + 1, POOLED_SIZE));
  assertEquals(concat(...tail), data.subarray(POOLED_SIZE + 1, 2 * POOLED_SIZE + 1));
});

/** Counts the synchronous and asynchronous reads of every FsFile while `body` runs. */
async function countReads(body: () => Promise<void>): Promise<{ sync: number; async: number }> {
  const counts = { sync: 0, async: 0 };
  const proto = Deno.FsFile.prototype;
  const { read, readSync } = proto;
  proto.read = function (buffer) {
    counts.async++;
    return read.call(this, buffer);
  };
  proto.readSync = function (buffer) {
    counts.sync++;
    return readSync.call(this, buffer);
  };
  try {
    await body();
  } finally {
    proto.read = read;
    proto.readSync = readSync;
  }
  return counts;
}

Deno.test("readRange reads a regular file synchronously, every 8th read async", async () => {
  // Sync reads save a thread round trip per chunk; the async ones give the event loop a turn
  // even when the consumer never waits (a hash), so timers and Ctrl-C still get in.
  await using dir = await tempDir();
  const path = await writeFile(dir.path, "data", DATA);
  const counts = await countReads(async () => {
    const chunks = await collect(readRange(path, 0, 6400, { chunkSize: 64 }));
    assertEquals(concat(...chunks), DATA.subarray(0, 6400));
  });
  assertEquals(counts, { sync: 88, async: 12 });
});

Deno.test({
  name: "readRange reads what is not a regular file asynchronously",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    // A device (or a FIFO) may block for as long as it likes: never on the event loop.
    const counts = await countReads(async () => {
      const chunks = await collect(readRange("/dev/zero", 0, 640, { chunkSize: 64 }));
      assertEquals(concat(...chunks), new Uint8Array(640));
    });
    assertEquals(counts, { sync: 0, async: 10 });
  },
});

Deno.test("readRange closes its file when done, failed or stopped early", async () => {
  await using dir = await tempDir();
  const path = await writeFile(dir.path, "data", DATA);
  const before = await openFileCount();
  let seen = 0;
  for await (const chunk of readRange(path, 0, DATA.length, { chunkSize: 100 })) {
    seen += chunk.length;
    if (seen >= 300) break; // calls return() on the generator
  }
  assertEquals(seen, 300);
  assertEquals(await openFileCount(), before, "after break");

  const generator = readRange(path, 0, DATA.length, { chunkSize: 100 });
  await generator.next();
  assertEquals(await openFileCount(), before + 1, "while suspended");
  await generator.return(undefined);
  assertEquals(await openFileCount(), before, "after return()");

  await collect(readRange(path, 0, 1000, { chunkSize: 100 }));
  await assertRejects(() => collect(readRange(path, 9000, 2000)));
  await readRangeBytes(path, 0, 10, 10);
  await assertRejects(() => readRangeBytes(path, 9999, 2, 10));
  assertEquals(await openFileCount(), before, "after complete and failed reads");
});

Deno.test("readRange runs many reads of one file concurrently", async () => {
  await using dir = await tempDir();
  const path = await writeFile(dir.path, "data", DATA);
  const ranges = Array.from({ length: 20 }, (_, i) => [i * 500, 500] as const);
  const results = await Promise.all(
    ranges.map(async ([offset, length]) =>
      concat(...await collect(readRange(path, offset, length, { chunkSize: 64 })))
    ),
  );
  results.forEach((bytes, i) => assertEquals(bytes, DATA.subarray(i * 500, i * 500 + 500)));
});

Deno.test("readRange fails when the file ends before the range does", async () => {
  await using dir = await tempDir();
  const path = await writeFile(dir.path, "data", DATA);
  const chunks: Uint8Array[] = [];
  await assertRejects(
    async () => {
      for await (const chunk of readRange(path, 9000, 2000, { chunkSize: 600 })) chunks.push(chunk);
    },
    Error,
    `Unexpected end of file at byte 10000 of ${path}`,
  );
  // The complete chunks before the end were delivered.
  assertEquals(chunks.map((c) => c.length), [600]);
  await assertRejects(() => collect(readRange(path, 20_000, 1)), Error, "at byte 20000 of");
});

Deno.test("readRange stops between chunks when its signal aborts", async () => {
  await using dir = await tempDir();
  const path = await writeFile(dir.path, "data", DATA);
  const controller = new AbortController();
  let chunks = 0;
  await assertRejects(async () => {
    for await (
      const _ of readRange(path, 0, DATA.length, { chunkSize: 100, signal: controller.signal })
    ) {
      if (++chunks === 2) controller.abort();
    }
  }, DOMException);
  assertEquals(chunks, 2);
  await assertRejects(
    () => collect(readRange(path, 0, 1, { signal: AbortSignal.abort() })),
    DOMException,
  );
});

Deno.test("readRange rejects bad arguments and missing files", async () => {
  await using dir = await tempDir();
  const path = await writeFile(dir.path, "data", DATA);
  await assertRejects(() => collect(readRange(path, -1, 1)), RangeError, "Invalid offset -1");
  await assertRejects(() => collect(readRange(path, 0, 1.5)), RangeError, "Invalid length 1.5");
  await assertRejects(
    () => collect(readRange(path, 0, 1, { chunkSize: 0 })),
    RangeError,
    "chunk size",
  );
  await assertRejects(() => collect(readRange(`${dir.path}/missing`, 0, 1)), Deno.errors.NotFound);
});

Deno.test("readRangeBytes reads a small range whole, within its limit", async () => {
  await using dir = await tempDir();
  const path = await writeFile(dir.path, "data", DATA);
  assertEquals(await readRangeBytes(path, 100, 200, 200), DATA.subarray(100, 300));
  assertEquals(await readRangeBytes(path, 0, 0, 0), new Uint8Array());
  await assertRejects(
    () => readRangeBytes(path, 0, 201, 200),
    RangeError,
    `Cannot read 201 bytes at offset 0 of ${path}: the limit is 200 bytes`,
  );
  await assertRejects(
    () => readRangeBytes(path, 9990, 20, 100),
    Error,
    `Unexpected end of file at byte 10000 of ${path}`,
  );
});

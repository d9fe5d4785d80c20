import type { Codec } from "../../src/compress/codec.ts";
import { CompressorPool } from "../../src/compress/worker_pool.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { concat, decompress, textBytes, zstdFrames } from "../helpers/compression.ts";

const CODECS: Codec[] = ["gzip", "zstd"];

async function withPool(size: number, fn: (pool: CompressorPool) => Promise<void>): Promise<void> {
  const pool = new CompressorPool(size);
  try {
    await fn(pool);
  } finally {
    pool.close();
  }
}

for (const codec of CODECS) {
  Deno.test(`CompressorPool ${codec}: a block decompresses to its input`, async () => {
    await withPool(1, async (pool) => {
      const input = textBytes(1, 300_000);
      // A whole buffer is handed to the worker (transferred), so compress a copy.
      const { output } = await pool.compress(input.slice(), codec, 3);
      assert(output.length > 0 && output.length < input.length / 2, `${output.length} bytes`);
      assertEquals(decompress(codec, output), input);
    });
  });

  Deno.test(`CompressorPool ${codec}: independently compressed blocks concatenate to one stream`, async () => {
    // Multi-member gzip (RFC 1952 §2.2) and multi-frame zstd (RFC 8878 §3.1).
    await withPool(2, async (pool) => {
      const blocks = [textBytes(2, 100_000), textBytes(3, 1), textBytes(4, 77_777)];
      const outputs = await Promise.all(
        blocks.map(async (b) => (await pool.compress(b.slice(), codec, 5)).output),
      );
      // (Deno's zstd may end a block with an extra empty frame: still one frame or more each.)
      if (codec === "zstd") assert(zstdFrames(concat(...outputs)).length >= blocks.length);
      assertEquals(decompress(codec, concat(...outputs)), concat(...blocks));
    });
  });

  Deno.test(`CompressorPool ${codec}: a higher level gives smaller output`, async () => {
    await withPool(2, async (pool) => {
      const input = textBytes(5, 256 * 1024);
      const high = codec === "gzip" ? 9 : 19;
      const [fast, strong] = await Promise.all([
        pool.compress(input.slice(), codec, 1).then((b) => b.output),
        pool.compress(input.slice(), codec, high).then((b) => b.output),
      ]);
      assert(
        fast.length > strong.length,
        `level 1: ${fast.length}, level ${high}: ${strong.length}`,
      );
      assertEquals(decompress(codec, fast), input);
      assertEquals(decompress(codec, strong), input);
    });
  });

  Deno.test(`CompressorPool ${codec}: an empty block is a valid member of its own`, async () => {
    await withPool(1, async (pool) => {
      const { output } = await pool.compress(new Uint8Array(0), codec, 6);
      assert(output.length > 0, "an empty stream is not a valid member");
      assertEquals(decompress(codec, output).length, 0);
      // An empty view into a larger buffer too.
      const view = new Uint8Array(16).subarray(8, 8);
      assertEquals(decompress(codec, (await pool.compress(view, codec, 6)).output).length, 0);
    });
  });
}

Deno.test("CompressorPool: many concurrent jobs on two workers each get their own output", async () => {
  await withPool(2, async (pool) => {
    // Different sizes finish out of order; each answer must still reach its own caller.
    const inputs = Array.from(
      { length: 40 },
      (_, i) => textBytes(100 + i, 1000 + (i % 7) * 20_011),
    );
    const jobs = inputs.map((input, i) => {
      const codec = CODECS[i % 2]!;
      return pool.compress(input.slice(), codec, 1 + (i % 5)).then((b) => ({
        codec,
        out: b.output,
      }));
    });
    const results = await Promise.all(jobs);
    results.forEach(({ codec, out }, i) => {
      assertEquals(decompress(codec, out), inputs[i], `job ${i} (${codec})`);
    });
  });
});

Deno.test("CompressorPool: a view into a larger buffer is copied, leaving the buffer intact", async () => {
  await withPool(1, async (pool) => {
    const whole = textBytes(7, 200_000);
    const before = whole.slice();
    const view = whole.subarray(50_000, 150_000);
    const { output } = await pool.compress(view, "gzip", 6);
    assertEquals(whole.buffer.byteLength, 200_000, "the larger buffer was detached");
    assertEquals(view.length, 100_000);
    assertEquals(whole, before);
    assertEquals(decompress("gzip", output), before.subarray(50_000, 150_000));
    // A view at offset 0 that is shorter than its buffer is a view too.
    const head = whole.subarray(0, 1000);
    assertEquals(
      decompress("zstd", (await pool.compress(head, "zstd", 3)).output),
      before.subarray(0, 1000),
    );
    assertEquals(whole, before);
  });
});

Deno.test("CompressorPool: a level the codec rejects fails that job only", async () => {
  await withPool(1, async (pool) => {
    await assertRejects(
      () => pool.compress(textBytes(8, 100), "gzip", 42),
      Error,
      "Compression failed",
    );
    const input = textBytes(9, 1000);
    assertEquals(decompress("gzip", (await pool.compress(input.slice(), "gzip", 6)).output), input);
  });
});

Deno.test("CompressorPool: close() fails running and queued jobs, later calls fail at once", async () => {
  const pool = new CompressorPool(1);
  let jobs: Promise<unknown>[];
  try {
    jobs = Array.from({ length: 5 }, (_, i) => pool.compress(textBytes(i, 2_000_000), "zstd", 19));
  } finally {
    pool.close();
  }
  for (const job of jobs) await assertRejects(() => job, Error, "Compression pool is closed");
  await assertRejects(
    () => pool.compress(new Uint8Array(10), "gzip", 1),
    Error,
    "Compression pool is closed",
  );
  pool.close(); // closing twice is harmless
});

Deno.test("CompressorPool: a pool closed before its first job rejects compress()", async () => {
  const pool = new CompressorPool();
  pool.close();
  await assertRejects(() => pool.compress(new Uint8Array(1), "zstd", 3), Error, "closed");
});

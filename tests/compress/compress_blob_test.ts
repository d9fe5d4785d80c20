import { Buffer } from "node:buffer";
import { gzipSync } from "node:zlib";
import { type Codec, LEVELS } from "../../src/compress/codec.ts";
import {
  BLOCK_SIZE,
  compressBlob,
  type CompressOptions,
} from "../../src/compress/compress_blob.ts";
import { LevelControl } from "../../src/compress/level_control.ts";
import { type CompressedBlock, CompressorPool } from "../../src/compress/worker_pool.ts";
import { sha256Digest } from "../../src/digest.ts";
import type { BlobSource } from "../../src/image/graph.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../helpers/assert.ts";
import { seededBytes } from "../helpers/random.ts";
import { concat, decompress, textBytes } from "../helpers/compression.ts";

const MIB = 1024 * 1024;
/** Source chunks that never line up with a block. */
const ODD_CHUNK = 65536 + 7;
let large: Uint8Array | undefined;
/** 40 MiB of text, made once for the tests that need many blocks. */
function largeText(): Uint8Array {
  return large ??= textBytes(40, 40 * MIB);
}

/** A blob held in memory, streamed in fresh chunks of `chunkSize`. */
function memorySource(bytes: Uint8Array, chunkSize = ODD_CHUNK): BlobSource {
  return {
    digest: sha256Digest(bytes),
    size: bytes.length,
    describe: `memory:${bytes.length}`,
    async *read(offset: number, length: number, signal?: AbortSignal) {
      for (let at = offset; at < offset + length; at += chunkSize) {
        signal?.throwIfAborted();
        yield bytes.slice(at, Math.min(at + chunkSize, offset + length));
        await Promise.resolve();
      }
    },
  };
}

interface RunOptions {
  codec?: Codec;
  level?: number | "auto";
  workers?: number;
  window?: number;
  /** Milliseconds the consumer spends on each chunk (a slow link). */
  delay?: number;
  signal?: AbortSignal;
  /** A pool to use (closed at the end) instead of a fresh one of `workers`. */
  pool?: CompressorPool;
}

/** Compresses `source` to the end, collecting the chunks, progress reports and summary. */
async function run(source: BlobSource, options: RunOptions = {}) {
  const pool = options.pool ?? new CompressorPool(options.workers ?? 2);
  const control = new LevelControl(options.codec ?? "gzip", options.level ?? 1);
  const progress: number[] = [];
  try {
    const compressOptions: CompressOptions = {
      pool,
      control,
      window: options.window ?? 3,
      onProgress: (done) => progress.push(done),
      ...(options.signal ? { signal: options.signal } : {}),
    };
    const stream = compressBlob(source, compressOptions);
    const chunks: Uint8Array[] = [];
    for await (const chunk of stream.chunks) {
      chunks.push(chunk);
      if (options.delay) await new Promise((resolve) => setTimeout(resolve, options.delay));
    }
    return { chunks, output: concat(...chunks), summary: stream.summary(), progress, control };
  } finally {
    pool.close();
  }
}

const SIZES: [string, number][] = [
  ["0", 0],
  ["1", 1],
  ["BLOCK_SIZE", BLOCK_SIZE],
  ["BLOCK_SIZE + 1", BLOCK_SIZE + 1],
  ["3 × BLOCK_SIZE + 5", 3 * BLOCK_SIZE + 5],
];

for (const codec of ["gzip", "zstd"] as const) {
  for (const [name, size] of SIZES) {
    Deno.test(`compressBlob ${codec}: ${name} bytes round-trip, one member per block`, async () => {
      const input = size > 0 ? largeText().subarray(0, size) : new Uint8Array(0);
      const { chunks, output, summary, progress } = await run(memorySource(input), { codec });

      assertEquals(decompress(codec, output), input);
      // Every chunk is a complete member (frame) holding exactly its block of the input.
      assertEquals(chunks.length, Math.max(1, Math.ceil(size / BLOCK_SIZE)));
      chunks.forEach((chunk, i) => {
        const block = input.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE);
        assertEquals(decompress(codec, chunk), block, `block ${i}`);
      });

      assertEquals(summary.digest, sha256Digest(output));
      assertEquals(summary.size, output.length);
      assertEquals(summary.inputDigest, sha256Digest(input));
      if (size > 1000) assert(summary.size < size / 2, `${summary.size} of ${size} bytes`);

      // Progress counts input bytes, one report per block, rising to the whole input.
      assertEquals(progress.length, chunks.length);
      assert(progress.every((done, i) => i === 0 || done > progress[i - 1]!), `${progress}`);
      assertEquals(progress.at(-1), size);
    });
  }
}

Deno.test("compressBlob: source chunk sizes do not change the output", async () => {
  const input = largeText().subarray(0, BLOCK_SIZE + 12_345);
  const odd = await run(memorySource(input, ODD_CHUNK));
  const tiny = await run(memorySource(input, 4093));
  const whole = await run(memorySource(input, input.length));
  assertEquals(tiny.summary, odd.summary);
  assertEquals(whole.summary, odd.summary);
});

Deno.test("compressBlob: summary() throws until the stream has been read to the end", async () => {
  const pool = new CompressorPool(2);
  try {
    const input = largeText().subarray(0, 2 * BLOCK_SIZE + 1);
    const source = memorySource(input);
    const stream = compressBlob(source, {
      pool,
      control: new LevelControl("gzip", 1),
      window: 3,
    });
    assertThrows(() => stream.summary(), Error, `${source.describe}: compression did not finish`);
    const chunks: Uint8Array[] = [];
    for await (const chunk of stream.chunks) {
      chunks.push(chunk);
      // Every chunk is out, but the stream has not said it is done yet.
      assertThrows(() => stream.summary(), Error, "did not finish");
    }
    assertEquals(chunks.length, 3);
    assertEquals(stream.summary().inputDigest, sha256Digest(input));
  } finally {
    pool.close();
  }
});

Deno.test("compressBlob: a consumer that stops early leaves no summary and no stray rejection", async () => {
  const pool = new CompressorPool(2);
  try {
    const stream = compressBlob(memorySource(largeText().subarray(0, 5 * BLOCK_SIZE)), {
      pool,
      control: new LevelControl("zstd", 1),
      window: 4,
    });
    for await (const _ of stream.chunks) break;
    assertThrows(() => stream.summary(), Error, "did not finish");
  } finally {
    // Blocks still in the pool fail here; nothing may surface as an unhandled rejection.
    pool.close();
  }
  await new Promise((resolve) => setTimeout(resolve, 10));
});

Deno.test("compressBlob: an abort while reading stops the stream with the reason", async () => {
  const controller = new AbortController();
  const reason = new Error("push cancelled");
  const source = memorySource(largeText().subarray(0, 3 * BLOCK_SIZE));
  let reads = 0;
  const counting: BlobSource = {
    ...source,
    async *read(offset, length, signal) {
      for await (const chunk of source.read(offset, length, signal)) {
        if (++reads === 20) controller.abort(reason);
        yield chunk;
      }
    },
  };
  const error = await assertRejects(() => run(counting, { signal: controller.signal }));
  assertEquals(error, reason);
});

Deno.test("compressBlob: inputDigest reports the bytes read, so a corrupted source shows", async () => {
  const input = largeText().subarray(0, BLOCK_SIZE + 100);
  const source = memorySource(input);
  const corrupted: BlobSource = {
    ...source,
    async *read(offset, length, signal) {
      let at = offset;
      for await (const chunk of source.read(offset, length, signal)) {
        if (at <= 1_000_000 && 1_000_000 < at + chunk.length) chunk[1_000_000 - at]! ^= 0x01;
        at += chunk.length;
        yield chunk;
      }
    },
  };
  const { output, summary } = await run(corrupted);
  const expected = input.slice();
  expected[1_000_000]! ^= 0x01;
  assertEquals(summary.inputDigest, sha256Digest(expected));
  assert(summary.inputDigest !== source.digest);
  assertEquals(decompress("gzip", output), expected);
});

for (const codec of ["gzip", "zstd"] as const) {
  Deno.test(`compressBlob ${codec}: a fixed level is reproducible across runs and pool sizes`, async () => {
    const input = largeText().subarray(0, 2 * BLOCK_SIZE + 4321);
    const level = codec === "gzip" ? 6 : 3;
    const first = await run(memorySource(input), { codec, level, workers: 1, window: 3 });
    const second = await run(memorySource(input), { codec, level, workers: 1, window: 3 });
    const wide = await run(memorySource(input, 1 << 20), { codec, level, workers: 3, window: 5 });
    assertEquals(second.output, first.output);
    assertEquals(wide.output, first.output);
    assertEquals(second.summary, first.summary);
    assertEquals(wide.summary, first.summary);
    // A fixed level never moves, whatever the consumer's pace.
    assertEquals(first.control.level, level);
  });
}

Deno.test("compressBlob gzip auto: starts at the floor, and a consumer faster than the workers keeps it there", async () => {
  const pool = new RecordingPool(2);
  const { summary, control } = await run(memorySource(largeText()), { level: "auto", pool });
  assertEquals(summary.inputDigest, sha256Digest(largeText()));
  assertEquals(pool.levels[0], LEVELS.gzip.autoMin);
  assertEquals(control.level, LEVELS.gzip.autoMin);
});

/** The real pool, noting the level each block was asked for. */
class RecordingPool extends CompressorPool {
  /** The level each block was asked for. */
  readonly levels: number[] = [];
  /** The level each block was made at: 0 when the worker's probe stored it. */
  readonly used: number[] = [];
  /** Whether each block was Huffman-coded only. */
  readonly huffmanOnly: boolean[] = [];
  override async compress(
    input: Uint8Array,
    codec: Codec,
    level: number,
    probe = 0,
  ): Promise<CompressedBlock> {
    const index = this.levels.push(level) - 1;
    const block = await super.compress(input, codec, level, probe);
    this.used[index] = block.level ?? level;
    this.huffmanOnly[index] = block.huffmanOnly === true;
    return block;
  }
}

Deno.test("compressBlob zstd auto: a consumer slower than the workers raises the level", async () => {
  // 60 ms per 4 MiB block is slower than two workers at zstd's low levels (about 10 ms a block
  // here), so blocks wait for the consumer and the level climbs until compressing takes as long
  // as consuming; on a loaded machine it may then come down again, so the test looks at the
  // climb. (gzip's start level 6 takes about 95 ms a block: against it a 30 ms consumer is the
  // faster side, and the level rightly goes down.)
  const pool = new RecordingPool(2);
  const { output, control } = await run(memorySource(largeText()), {
    codec: "zstd",
    level: "auto",
    delay: 60,
    pool,
  });
  assertEquals(decompress("zstd", output), largeText());
  assertEquals(pool.levels[0], LEVELS.zstd.start);
  assert(Math.max(...pool.levels) > LEVELS.zstd.start, `levels ${pool.levels}`);
  assert(pool.levels.every((l, i) => i === 0 || l - pool.levels[i - 1]! <= 1), `${pool.levels}`);
  assert(control.level >= LEVELS.zstd.min && control.level <= LEVELS.zstd.autoMax);
});

/** A pool that answers after `delay` ms (0: at once) and records the level of each block. */
class ScriptedPool extends CompressorPool {
  readonly levels: number[] = [];
  #delay: (level: number) => number;
  /** Each block takes `delay` ms, or what `delay` says for its level. */
  constructor(delay: number | ((level: number) => number)) {
    super(1);
    this.#delay = typeof delay === "number" ? () => delay : delay;
  }
  override compress(input: Uint8Array, _codec: Codec, level: number): Promise<CompressedBlock> {
    this.levels.push(level);
    const output = { output: new Uint8Array([level]), input: input.buffer as ArrayBuffer };
    const delay = this.#delay(level);
    if (delay === 0) return Promise.resolve(output);
    return new Promise((resolve) => setTimeout(() => resolve(output), delay));
  }
}

async function drive(pool: ScriptedPool, blocks: number, delay = 0): Promise<LevelControl> {
  // Cores to spare: the level follows the upload's waits alone (see level_control.ts).
  const control = new LevelControl("gzip", "auto", { idleCores: () => 8 });
  const source = memorySource(new Uint8Array(blocks * BLOCK_SIZE), BLOCK_SIZE);
  const stream = compressBlob(source, { pool, control, window: 3 });
  for await (const _ of stream.chunks) {
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
  }
  assertEquals(stream.summary().size, blocks);
  return control;
}

Deno.test("compressBlob auto: blocks ready before they are wanted raise the level step by step", async () => {
  const pool = new ScriptedPool(0);
  try {
    const control = await drive(pool, 40, 1);
    assertEquals(pool.levels.slice(0, 2), [LEVELS.gzip.start, LEVELS.gzip.start]);
    assert(pool.levels.every((l, i) => i === 0 || l - pool.levels[i - 1]! <= 1), `${pool.levels}`);
    assertEquals(control.level, LEVELS.gzip.max);
  } finally {
    pool.close();
  }
});

Deno.test("compressBlob auto: a consumer kept waiting lowers the level step by step", async () => {
  // Levels up to 4 are ready at once, so the level climbs from the floor; from 5 on a block takes
  // 60 ms (the scripted pool runs a window's blocks at once: 20 ms a block), far longer than the
  // consumer's 1 ms (a few on a loaded machine), so the upload waits and the level comes down.
  const pool = new ScriptedPool((level) => level >= 5 ? 60 : 0);
  try {
    const control = await drive(pool, 60, 1);
    const { levels } = pool;
    assertEquals(levels[0], LEVELS.gzip.autoMin);
    assert(levels.every((l, i) => i === 0 || Math.abs(l - levels[i - 1]!) <= 1), `${levels}`);
    const top = levels.indexOf(5);
    assert(top > 0 && levels.slice(top).some((l) => l < 5), `${levels}`);
    assert(levels.every((l) => l >= LEVELS.gzip.autoMin && l <= 6), `${levels}`);
    assert(control.level <= 6, `${control.level}`);
  } finally {
    pool.close();
  }
});

Deno.test("compressBlob: incompressible blocks are stored (gzip level 0), fixed level or not", async () => {
  for (const level of [9, "auto"] as const) {
    const pool = new RecordingPool(2);
    try {
      const data = seededBytes("noise", 3 * BLOCK_SIZE + 100);
      const control = new LevelControl("gzip", level);
      const stream = compressBlob(memorySource(data), { pool, control, window: 1 });
      const parts: Uint8Array[] = [];
      for await (const chunk of stream.chunks) parts.push(chunk);
      assertEquals(pool.used.slice(0, 3), [0, 0, 0], `${level}: ${pool.used}`);
      assertEquals(decompress("gzip", concat(...parts)), data);
      assert(stream.summary().size < data.length * 1.001, "stored blocks add next to nothing");
    } finally {
      pool.close();
    }
  }
});

Deno.test("compressBlob open(from): the same bytes again from any offset, in-process and after a restart", async () => {
  const input = largeText().subarray(0, 5 * BLOCK_SIZE + 1234);
  const pool = new RecordingPool(2);
  try {
    const control = new LevelControl("gzip", "auto");
    const options = { pool, control, window: 3 };
    const first = compressBlob(memorySource(input), options);
    const parts: Uint8Array[] = [];
    for await (const chunk of first.open(0)) parts.push(chunk.slice());
    const whole = concat(...parts);
    const made = pool.levels.length;
    const from = Math.floor(whole.length * 0.6);

    // The same run: blocks wholly before `from` are hashed already and not made again.
    const again: Uint8Array[] = [];
    for await (const chunk of first.open(from)) again.push(chunk.slice());
    assertEquals(concat(...again), whole.subarray(from));
    assert(pool.levels.length - made < made, `${pool.levels.length - made} blocks made again`);
    assertEquals(first.summary().digest, sha256Digest(whole));

    // A later run with the saved levels: the same stream, whatever the level control says now.
    const restarted = compressBlob(memorySource(input), {
      ...options,
      control: new LevelControl("gzip", "auto"),
      levels: first.levels,
    });
    const rest: Uint8Array[] = [];
    for await (const chunk of restarted.open(from)) rest.push(chunk.slice());
    assertEquals(concat(...rest), whole.subarray(from));
    assertEquals(restarted.summary(), first.summary());
  } finally {
    pool.close();
  }
});

Deno.test("compressBlob: each block is judged on its own: text right after noise is compressed", async () => {
  const pool = new RecordingPool(1);
  try {
    const input = concat(
      seededBytes("noise first", BLOCK_SIZE),
      base64Text("then text", 2 * BLOCK_SIZE),
      seededBytes("noise again", 2 * BLOCK_SIZE),
      seqText(2 * BLOCK_SIZE),
    );
    const stream = compressBlob(memorySource(input, BLOCK_SIZE), {
      pool,
      control: new LevelControl("gzip", 6),
      window: 1,
    });
    const parts: Uint8Array[] = [];
    for await (const chunk of stream.chunks) parts.push(chunk);
    assertEquals(decompress("gzip", concat(...parts)), input);
    assertEquals(pool.levels, [6, 6, 6, 6, 6, 6, 6]);
    assertEquals(pool.used, [0, 6, 6, 0, 0, 6, 6]);
  } finally {
    pool.close();
  }
});

/** Base64 of incompressible bytes in 76-column lines, as `base64` writes it. */
function base64Text(seed: string, size: number): Uint8Array {
  const encoded = Buffer.from(seededBytes(seed, Math.ceil(size * 0.74))).toString("base64");
  const lines = encoded.match(/.{1,76}/g)!.join("\n");
  return new TextEncoder().encode(lines.slice(0, size));
}

/** What `seq 1 N` prints, up to `size` bytes. */
function seqText(size: number): Uint8Array {
  const parts: string[] = [];
  let length = 0;
  for (let i = 1; length < size; i++) {
    const line = `${i}\n`;
    parts.push(line);
    length += line.length;
  }
  return new TextEncoder().encode(parts.join("").slice(0, size));
}

/** The size of GNU gzip -1's output for `bytes`. */
async function gnuGzip1Size(bytes: Uint8Array): Promise<number> {
  const child = new Deno.Command("gzip", { args: ["-1", "-c"], stdin: "piped", stdout: "piped" })
    .spawn();
  const writer = child.stdin.getWriter();
  const [output] = await Promise.all([
    child.output(),
    writer.write(bytes).then(() => writer.close()),
  ]);
  assert(output.success, "gzip -1 failed");
  return output.stdout.length;
}

/** A level control already at the gzip floor, kept there: no core is ever idle. */
function atTheFloor(): LevelControl {
  const control = new LevelControl("gzip", "auto", { idleCores: () => 0 });
  for (let i = 0; i < 40; i++) control.observe(100, 0);
  return control;
}

for (
  const [name, make] of [["base64", () => base64Text("b64", 5 * BLOCK_SIZE)], [
    "seq output",
    () => seqText(5 * BLOCK_SIZE),
  ]] as const
) {
  Deno.test(`compressBlob gzip auto: ${name} stored in at most GNU gzip -1's bytes + 3 %`, async () => {
    const input = make();
    const pool = new RecordingPool(2);
    try {
      // The lowest level auto ever picks: a link faster than compression all along.
      const control = atTheFloor();
      const stream = compressBlob(memorySource(input), { pool, control, window: 3 });
      const parts: Uint8Array[] = [];
      for await (const chunk of stream.chunks) parts.push(chunk);
      assertEquals(decompress("gzip", concat(...parts)), input);
      const gzip1 = await gnuGzip1Size(input);
      const size = stream.summary().size;
      assert(
        size <= gzip1 * 1.03,
        `${size} bytes stored, gzip -1: ${gzip1}, levels ${pool.levels}`,
      );
      assert(pool.levels.every((l) => l === LEVELS.gzip.autoMin), `levels ${pool.levels}`);
    } finally {
      pool.close();
    }
  });
}

Deno.test("compressBlob: a base64 layer is compressed, not judged incompressible", async () => {
  for (const level of ["auto", 2, 6] as const) {
    const pool = new RecordingPool(2);
    try {
      const input = base64Text("b64 layer", 4 * BLOCK_SIZE);
      const control = level === "auto" ? atTheFloor() : new LevelControl("gzip", level);
      const stream = compressBlob(memorySource(input), { pool, control, window: 1 });
      for await (const _ of stream.chunks) { /* drain */ }
      assert(!pool.levels.includes(0), `${level}: levels ${pool.levels}`);
      assert(stream.summary().size < input.length * 0.8, `${level}: ${stream.summary().size}`);
    } finally {
      pool.close();
    }
  }
});

Deno.test("compressBlob: a fixed level gives the same bytes for mixed noise and text, whatever the window", async () => {
  const input = concat(
    seededBytes("packed", 3 * BLOCK_SIZE),
    seqText(3 * BLOCK_SIZE),
    seededBytes("packed again", BLOCK_SIZE),
    base64Text("text", 2 * BLOCK_SIZE),
  );
  const narrow = await run(memorySource(input), { level: 2, workers: 1, window: 1 });
  const wide = await run(memorySource(input), { level: 2, workers: 2, window: 6 });
  assertEquals(wide.summary, narrow.summary);
  assertEquals(decompress("gzip", narrow.output), input);
});

Deno.test("compressBlob: mixed noise and text stays within GNU gzip -1's bytes + 3 %, fixed level 2", async () => {
  // Stretches of already-compressed files between text, as in a /usr/lib layer.
  const stretches: Uint8Array[] = [];
  for (let i = 0; i < 4; i++) {
    stretches.push(seededBytes(`packed ${i}`, BLOCK_SIZE + 4096 * i));
    stretches.push(seqText(3 * BLOCK_SIZE).subarray(i * 1000));
  }
  const input = concat(...stretches);
  const pool = new RecordingPool(2);
  try {
    const stream = compressBlob(memorySource(input), {
      pool,
      control: new LevelControl("gzip", 2),
      window: 3,
    });
    const parts: Uint8Array[] = [];
    for await (const chunk of stream.chunks) parts.push(chunk);
    assertEquals(decompress("gzip", concat(...parts)), input);
    const gzip1 = await gnuGzip1Size(input);
    const size = stream.summary().size;
    assert(size <= gzip1 * 1.03, `${size} bytes stored, gzip -1: ${gzip1}, levels ${pool.used}`);
  } finally {
    pool.close();
  }
});

/** The size of node:zlib's gzip of each block of `bytes` at `level`, summed. */
function blockwiseGzipSize(bytes: Uint8Array, level: number): number {
  let size = 0;
  for (let at = 0; at < bytes.length; at += BLOCK_SIZE) {
    size += gzipSync(bytes.subarray(at, at + BLOCK_SIZE), { level }).length;
  }
  return size;
}

Deno.test("compressBlob gzip: base64 is Huffman-coded at every level, seq output only where level 1's static codes lose", async () => {
  const cases = [
    ["base64", base64Text("huffman", 3 * BLOCK_SIZE), [1, 2, 6, 9], true],
    ["seq output", seqText(3 * BLOCK_SIZE), [2, 6, 9], false],
    ["seq output", seqText(3 * BLOCK_SIZE), [1], true],
  ] as const;
  for (const [name, input, levels, huffman] of cases) {
    for (const level of levels) {
      const pool = new RecordingPool(2);
      try {
        const control = new LevelControl("gzip", level);
        const stream = compressBlob(memorySource(input), { pool, control, window: 2 });
        const parts: Uint8Array[] = [];
        for await (const chunk of stream.chunks) parts.push(chunk);
        assertEquals(decompress("gzip", concat(...parts)), input);
        assertEquals(pool.huffmanOnly, [huffman, huffman, huffman], `${name}, level ${level}`);
        // Never more than 1 % over what the level itself makes of the same blocks.
        const atLevel = blockwiseGzipSize(input, level);
        const size = stream.summary().size;
        assert(size <= atLevel * 1.01, `${name}, level ${level}: ${size} against ${atLevel}`);
      } finally {
        pool.close();
      }
    }
  }
});

Deno.test("compressBlob gzip auto: Huffman-only blocks say nothing about the level", async () => {
  // A slow consumer and idle cores: blocks coded with matches would raise the level (see the
  // zstd test above); Huffman-only blocks cost the same at any level, so they must not.
  const pool = new RecordingPool(2);
  try {
    const control = new LevelControl("gzip", "auto", { idleCores: () => 2 });
    const input = base64Text("slow link", 10 * BLOCK_SIZE);
    const stream = compressBlob(memorySource(input), { pool, control, window: 2 });
    for await (const _ of stream.chunks) await new Promise((r) => setTimeout(r, 40));
    assert(pool.huffmanOnly.every((h) => h), `${pool.huffmanOnly}`);
    assert(pool.levels.every((l) => l === LEVELS.gzip.start), `levels ${pool.levels}`);
  } finally {
    pool.close();
  }
});

Deno.test("compressBlob gzip: repeats 16 to 32 KiB back are found: such blocks are neither stored nor Huffman-coded", async () => {
  // One 20 KB unit over and over: every repeat is 20 KB back, inside deflate's 32 KiB window but
  // past a 16 KiB sample piece. Base64 looked like plain base64 (Huffman-only kept 37 times gzip
  // -1's bytes); packed bytes looked incompressible (stored whole).
  const repeated = (unit: Uint8Array) => {
    const out = new Uint8Array(3 * BLOCK_SIZE);
    for (let at = 0; at < out.length; at += unit.length) {
      out.set(unit.subarray(0, out.length - at), at);
    }
    return out;
  };
  for (
    const [name, input] of [
      ["base64 unit", repeated(base64Text("unit", 20_000))],
      ["packed unit", repeated(seededBytes("unit", 20_000))],
    ] as const
  ) {
    // Against deflate at level 2 of the same blocks, not gzip -1 of the whole: each block starts
    // without history, which on a unit repeated costs a unit per block.
    const atLevel2 = blockwiseGzipSize(input, 2);
    for (const level of ["auto", 2] as const) {
      const pool = new RecordingPool(2);
      try {
        const control = level === "auto" ? atTheFloor() : new LevelControl("gzip", level);
        const stream = compressBlob(memorySource(input), { pool, control, window: 2 });
        const parts: Uint8Array[] = [];
        for await (const chunk of stream.chunks) parts.push(chunk);
        assertEquals(decompress("gzip", concat(...parts)), input);
        const size = stream.summary().size;
        assert(!pool.huffmanOnly.includes(true) && !pool.used.includes(0), `${name}: ${pool.used}`);
        assert(size <= atLevel2 * 1.03, `${name}, ${level}: ${size} bytes, level 2: ${atLevel2}`);
      } finally {
        pool.close();
      }
    }
  }
});

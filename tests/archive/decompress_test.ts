import { createHash } from "node:crypto";
import { constants, gzipSync, zstdCompressSync } from "node:zlib";
import { openDecompressed } from "../../src/archive/decompress.ts";
import { INPUT_BATCH } from "../../src/archive/zlib_decoder.ts";
import { ArchiveError } from "../../src/errors.ts";
import { run } from "../helpers/command.ts";
import { concat, textBytes } from "../helpers/compression.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../helpers/assert.ts";
import { integrationTest } from "../helpers/tools.ts";
import { header, tempDir } from "./_tar_fixtures.ts";

const LABEL = "app.tar.x";

/** A source that hands out `bytes` in chunks of `chunkSize`, counting what was read. */
class CountingSource {
  read = 0;
  cancelled = false;
  readonly stream: ReadableStream<Uint8Array>;
  constructor(bytes: Uint8Array, chunkSize = 16 * 1024) {
    this.stream = new ReadableStream<Uint8Array>({
      pull: (controller) => {
        if (this.read >= bytes.length) return controller.close();
        // A copy, so that a consumer that keeps or changes chunks cannot affect the test.
        const chunk = new Uint8Array(bytes.subarray(this.read, this.read + chunkSize));
        this.read += chunk.length;
        controller.enqueue(chunk);
      },
      cancel: () => {
        this.cancelled = true;
      },
    }, { highWaterMark: 0 });
  }
}

/** Bytes that do not compress: as many go in as come out. */
function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
  return bytes;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return concat(...chunks);
}

/** Decodes `compressed` fed in chunks of `chunkSize`; checks the format and the output. */
async function decode(
  compressed: Uint8Array,
  chunkSize?: number,
): Promise<{ format: string; bytes: Uint8Array }> {
  const { format, stream } = await openDecompressed(
    new CountingSource(compressed, chunkSize).stream,
    LABEL,
  );
  return { format, bytes: await readAll(stream) };
}

/** Runs a shell command in `dir` and returns its stdout. */
async function sh(dir: string, command: string): Promise<Uint8Array> {
  return (await run("sh", ["-c", command], { cwd: dir })).stdoutBytes;
}

/**
 * Files of odd sizes: text-like (compresses like a layer) and random (does not), one whose
 * size is a multiple of 16 KiB (the case Deno's zstd decoder gets right by luck), and an
 * empty one.
 */
async function writeInputs(dir: string): Promise<Record<string, Uint8Array>> {
  const random = randomBytes(100_003);
  const files: Record<string, Uint8Array> = {
    a: textBytes(1, 300_001),
    b: random,
    c: textBytes(2, 16 * 1024 * 4),
    d: textBytes(3, 77_777),
    e: new Uint8Array(0),
  };
  for (const [name, bytes] of Object.entries(files)) await Deno.writeFile(`${dir}/${name}`, bytes);
  return files;
}

/** Output of real tools, and the bytes each decodes to. */
const CASES: { command: string; expect: (f: Record<string, Uint8Array>) => Uint8Array }[] = [
  { command: "gzip -c a", expect: (f) => f.a! },
  {
    command: "gzip -c a; gzip -c b; gzip -c e; gzip -c d",
    expect: (f) => concat(f.a!, f.b!, f.d!),
  },
  { command: "gzip -c a; head -c 1000 /dev/zero", expect: (f) => f.a! },
  { command: "pigz -c -b 32 a", expect: (f) => f.a! },
  {
    command: "pigz -c -p 2 -b 32 a; pigz -c b; pigz -c c",
    expect: (f) => concat(f.a!, f.b!, f.c!),
  },
  {
    command: "cat a b c d | pigz -c --independent -b 32",
    expect: (f) => concat(f.a!, f.b!, f.c!, f.d!),
  },
  { command: "zstd -qc a", expect: (f) => f.a! },
  { command: "zstd -qc a; zstd -qc b", expect: (f) => concat(f.a!, f.b!) },
  // A frame whose content is a multiple of 16 KiB, an empty frame, frames without checksums.
  {
    command: "zstd -qc c; zstd -qc e; zstd -qc --no-check d; zstd -qc -19 a",
    expect: (f) => concat(f.c!, f.d!, f.a!),
  },
  {
    command: "cat a b c d | zstd -qc -T0 --long=28",
    expect: (f) => concat(f.a!, f.b!, f.c!, f.d!),
  },
  { command: "zstd -qc --long a", expect: (f) => f.a! },
  // pzstd writes a skippable frame before each frame.
  { command: "cat a b c d | pzstd -qc -p 2 -3", expect: (f) => concat(f.a!, f.b!, f.c!, f.d!) },
  { command: "xz -c a", expect: (f) => f.a! },
  { command: "xz -c a; xz -c b; xz -c --check=crc32 d", expect: (f) => concat(f.a!, f.b!, f.d!) },
  { command: "cat a b | xz -c -T2 --block-size=65536", expect: (f) => concat(f.a!, f.b!) },
];

integrationTest(
  "openDecompressed decodes the output of gzip, pigz, zstd, pzstd and xz",
  async () => {
    await using dir = await tempDir();
    const files = await writeInputs(dir.path);
    for (const { command, expect } of CASES) {
      const compressed = await sh(dir.path, command);
      const format = command.match(/\b(gzip|pigz|zstd|pzstd|xz)\b/)![1]!
        .replace("pigz", "gzip").replace("pzstd", "zstd");
      const expected = sha256(expect(files));
      // Chunk sizes that cut headers, frame magics and checksums at every offset.
      for (const chunkSize of [65536, 4093, 7]) {
        if (chunkSize === 7 && compressed.length > 200_000) continue;
        const result = await decode(compressed, chunkSize);
        assertEquals(result.format, format, command);
        assertEquals(sha256(result.bytes), expected, `${command} in chunks of ${chunkSize}`);
      }
    }
  },
  { tools: ["gzip", "pigz", "zstd", "pzstd", "xz"] },
);

integrationTest("openDecompressed passes a plain tar through untouched", async () => {
  await using dir = await tempDir();
  await writeInputs(dir.path);
  for (const format of ["gnu", "v7"]) {
    const tar = await sh(dir.path, `tar --format=${format} -cf - a b c`);
    const source = new CountingSource(tar, 1000);
    const { format: found, stream } = await openDecompressed(source.stream, LABEL);
    assertEquals(found, "tar");
    assertEquals(sha256(await readAll(stream)), sha256(tar));
  }
  // An empty tar: zero blocks.
  assertEquals((await decode(new Uint8Array(10240))).bytes, new Uint8Array(10240));
}, { tools: ["tar"] });

Deno.test("openDecompressed reads no further ahead than one batch when its reader is slow", async () => {
  // 8 MiB in, 8 MiB out; the plain case starts with a tar header to pass as a tar.
  const data = concat(header(), randomBytes(8 << 20));
  const bound = INPUT_BATCH + 2 * 64 * 1024;
  for (const compressed of [gzipSync(data, { level: 1 }), zstdCompressSync(data), data]) {
    const source = new CountingSource(compressed, 64 * 1024);
    const { format, stream } = await openDecompressed(source.stream, LABEL);
    const reader = stream.getReader();
    let got = 0;
    // Read a little, then stall as a slow consumer does.
    for (let i = 0; i < 3; i++) got += (await reader.read()).value?.length ?? 0;
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert(source.read <= got + bound, `${format}: read ${source.read} for ${got} consumed`);
    assert(source.read < compressed.length / 2, `${format}: read ${source.read}`);
    // Reading on continues where it stopped.
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      got += value.length;
    }
    assertEquals(got, data.length, format);
    assertEquals(source.read, compressed.length, format);
  }
});

integrationTest(
  "openDecompressed keeps memory flat on a stream that expands a thousandfold",
  async () => {
    await using dir = await tempDir();
    // Zeros: 1 GiB in 36 KB of zstd, 256 MiB in 260 KB of gzip, each read in one batch. A
    // decoder that ignored its reader would hold all of it.
    const commands = [
      "head -c 1073741824 /dev/zero | zstd -qc -1",
      "head -c 268435456 /dev/zero | gzip -9",
    ];
    for (const command of commands) {
      const compressed = await sh(dir.path, command);
      const before = Deno.memoryUsage().rss;
      const { stream } = await openDecompressed(new CountingSource(compressed).stream, LABEL);
      const reader = stream.getReader();
      await reader.read();
      await new Promise((resolve) => setTimeout(resolve, 300));
      const grown = Deno.memoryUsage().rss - before;
      await reader.cancel();
      assert(grown < 128 << 20, `${command}: memory grew by ${grown} bytes`);
    }
  },
  { tools: ["zstd", "gzip"] },
);

Deno.test("openDecompressed cancels the source when its stream is cancelled", async () => {
  for (const bytes of [gzipSync(randomBytes(4 << 20)), concat(header(), randomBytes(1 << 20))]) {
    const source = new CountingSource(bytes, 4096);
    const { stream } = await openDecompressed(source.stream, LABEL);
    const reader = stream.getReader();
    await reader.read();
    await reader.cancel();
    assert(source.cancelled);
    assert(source.read < bytes.length);
  }
});

Deno.test("openDecompressed stops on abort with the signal's reason", async () => {
  for (const bytes of [zstdCompressSync(randomBytes(4 << 20)), new Uint8Array(4 << 20)]) {
    const controller = new AbortController();
    const source = new CountingSource(bytes, 4096);
    const { stream } = await openDecompressed(source.stream, LABEL, { signal: controller.signal });
    const reader = stream.getReader();
    await reader.read();
    controller.abort(new Error("stop here"));
    await assertRejects(
      async () => {
        for (;;) if ((await reader.read()).done) break;
      },
      Error,
      "stop here",
    );
    assert(source.cancelled);
  }
  // Aborted before it starts: the source is not even read.
  const source = new CountingSource(new Uint8Array(1024));
  await assertRejects(
    () => openDecompressed(source.stream, LABEL, { signal: AbortSignal.abort(new Error("no")) }),
    Error,
    "no",
  );
  assert(source.cancelled);
});

// --- Malformed input: one clear ArchiveError naming the source ---

/** Expects decoding `bytes` to fail, while opening or reading, with a message holding `part`. */
async function expectFailure(bytes: Uint8Array, part: string, what: string): Promise<void> {
  const source = new CountingSource(bytes, 4096);
  const error = await assertRejects(async () => {
    const { stream } = await openDecompressed(source.stream, LABEL);
    await readAll(stream);
  }, ArchiveError);
  assert(error.message.startsWith(`${LABEL}: `), `${what}: ${error.message}`);
  assertStringIncludes(error.message, part, `${what}: ${error.message}`);
  assertEquals(error.archive, LABEL);
  assert(source.cancelled || source.read === bytes.length, `${what}: source left open`);
}

/** A copy of `bytes` with the byte at `at` (negative: from the end) inverted. */
function flip(bytes: Uint8Array, at: number): Uint8Array {
  // A copy, not `slice()`: on the Buffers node:zlib returns, slice() is a view.
  const copy = new Uint8Array(bytes);
  copy[at < 0 ? copy.length + at : at]! ^= 0xff;
  return copy;
}

Deno.test("openDecompressed refuses input that is no image archive", async () => {
  await expectFailure(new Uint8Array(0), "empty input, not an image archive", "empty");
  await expectFailure(
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...new Uint8Array(600)]),
    "not a tar archive or a compressed one (first bytes 89 50 4e 47)",
    "png",
  );
  await expectFailure(new TextEncoder().encode("hello\n"), "(first bytes 68 65 6c 6c)", "text");
  await expectFailure(
    new TextEncoder().encode("BZh91AY&SY"),
    "bzip2-compressed archives are not supported; decompress it on the way in, e.g. " +
      "`bzip2 -dc app.tar.bz2 | docker-image-pusher -f - …`",
    "bzip2",
  );
});

Deno.test("openDecompressed reports broken gzip streams", async () => {
  const data = textBytes(6, 200_000);
  const gz = gzipSync(data);
  const cases: [Uint8Array, string, string][] = [
    [gz.subarray(0, gz.length >> 1), "the gzip stream ends early (truncated?)", "cut in half"],
    [gz.subarray(0, gz.length - 4), "the gzip stream ends early (truncated?)", "no length"],
    [gz.subarray(0, 2), "the gzip stream ends early (truncated?)", "magic only"],
    [flip(gz, -8), "the gzip data is corrupt (CRC mismatch)", "bad CRC"],
    [flip(gz, -4), "the gzip data is corrupt (length mismatch)", "bad length"],
    [flip(gz, gz.length >> 1), "the gzip data is corrupt", "corrupt deflate data"],
    [
      concat(gz, new TextEncoder().encode("GARBAGE!")),
      "unexpected bytes after the gzip data, not another gzip member",
      "trailing garbage",
    ],
    [concat(gz, gz.subarray(0, 100)), "the gzip stream ends early (truncated?)", "cut member 2"],
  ];
  for (const [bytes, part, what] of cases) await expectFailure(bytes, part, `gzip: ${what}`);
  // Zero padding after the last member is allowed, as GNU gzip allows it.
  assertEquals((await decode(concat(gz, new Uint8Array(512)))).bytes.length, data.length);
});

Deno.test("openDecompressed reports broken zstd streams", async () => {
  const data = textBytes(7, 200_000);
  // With a content checksum, as the zstd CLI writes by default: without one, a changed byte
  // in literals decodes to wrong bytes with no error (caught later by the layer digests).
  const frame = zstdCompressSync(data, { params: { [constants.ZSTD_c_checksumFlag]: 1 } });
  assertEquals(frame[4]! & 0x04, 0x04);
  const second = zstdCompressSync(textBytes(8, 50_001));
  // The first block header follows the magic, the descriptor and the rest of the header.
  const reserved = new Uint8Array(frame);
  const blockAt = 4 + 1 + frameHeaderRest(frame[4]!);
  reserved[blockAt] = (reserved[blockAt]! & ~0x06) | 0x06; // block type 3: reserved
  const cases: [Uint8Array, string, string][] = [
    [frame.subarray(0, frame.length >> 1), "the zstd stream ends early (truncated?)", "half"],
    [frame.subarray(0, frame.length - 1), "the zstd stream ends early (truncated?)", "-1 byte"],
    [frame.subarray(0, 5), "the zstd stream ends early (truncated?)", "header cut"],
    [
      concat(frame, second.subarray(0, 2)),
      "the zstd stream ends early (truncated?)",
      "second magic cut",
    ],
    [
      concat(frame, new TextEncoder().encode("GARBAGE!")),
      `unexpected bytes after the zstd data at byte ${frame.length} (47 41 52 42)`,
      "trailing garbage",
    ],
    [concat(frame, new Uint8Array(16)), "(00 00 00 00), not another zstd frame", "zeros"],
    [concat(frame, new Uint8Array([1, 2])), `at byte ${frame.length} (01 02)`, "2 bytes"],
    [reserved, "the zstd data is corrupt: reserved block type", "reserved block type"],
    [flip(frame, frame.length >> 1), "the zstd data is corrupt", "corrupt block"],
  ];
  for (const [bytes, part, what] of cases) await expectFailure(bytes, part, `zstd: ${what}`);
});

integrationTest("openDecompressed reports a zstd checksum mismatch", async () => {
  await using dir = await tempDir();
  await Deno.writeFile(`${dir.path}/a`, textBytes(9, 100_000));
  // zstd's CLI writes a content checksum (the frame's last 4 bytes) by default.
  const zst = await sh(dir.path, "zstd -qc a");
  await expectFailure(flip(zst, -1), "the zstd data is corrupt (", "zstd checksum");
}, { tools: ["zstd"] });

integrationTest("openDecompressed reports broken xz streams", async () => {
  await using dir = await tempDir();
  await Deno.writeFile(`${dir.path}/a`, textBytes(10, 200_000));
  const xz = await sh(dir.path, "xz -c a");
  const cases: [Uint8Array, string, string][] = [
    [xz.subarray(0, xz.length >> 1), "the xz stream ends early (truncated?)", "half"],
    [xz.subarray(0, xz.length - 1), "the xz stream ends early (truncated?)", "-1 byte"],
    [flip(xz, xz.length >> 1), "the xz data is corrupt", "corrupt"],
    [
      concat(xz, new TextEncoder().encode("GARBAGE! GARBAGE! GARBAGE!")),
      "trailing garbage",
      "trailing garbage",
    ],
  ];
  for (const [bytes, part, what] of cases) await expectFailure(bytes, part, `xz: ${what}`);
}, { tools: ["xz"] });

/** Bytes of a zstd frame header after its descriptor (RFC 8878 §3.1.1.1). */
function frameHeaderRest(descriptor: number): number {
  const singleSegment = (descriptor & 0x20) !== 0;
  const sizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6]!;
  return (singleSegment ? 0 : 1) + [0, 1, 2, 4][descriptor & 3]! + sizeBytes;
}

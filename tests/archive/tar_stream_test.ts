/**
 * The sequential tar reader against the random-access indexer: for archives from our writer,
 * GNU tar, Python's tarfile and skopeo, and for corrupted ones, a stream delivered in pieces
 * of any size yields exactly the entries and bytes `indexTar` finds, or fails with the same
 * message ("stream ends" for "archive ends"). Also: bodies skipped or partly read in constant
 * memory, chunks the consumer owns, cancellation, and the malformed matrix.
 *
 * Replay a property failure with `FC_SEED=<seed> FC_PATH=<path>`; `FC_RUNS=<n>` multiplies the
 * run counts.
 */
import fc from "fast-check";
import { gzipSync } from "node:zlib";
import { readRangeBytes } from "../../src/archive/byte_range.ts";
import { BLOCK_SIZE } from "../../src/archive/tar_header.ts";
import { indexTar } from "../../src/archive/tar_index.ts";
import type { TarEntry } from "../../src/archive/tar_names.ts";
import {
  readTarStream,
  type StreamedTarEntry,
  type TarStream,
} from "../../src/archive/tar_stream.ts";
import type { TarStreamSource } from "../../src/archive/_chunk_cursor.ts";
import { ArchiveError } from "../../src/errors.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../helpers/assert.ts";
import { run } from "../helpers/command.ts";
import { skopeoArchive, umociImage } from "../helpers/skopeo.ts";
import { tarBytes, tarStream } from "../helpers/tar_writer.ts";
import { integrationTest } from "../helpers/tools.ts";
import {
  archive,
  concat,
  header,
  member,
  pad,
  paxPayload,
  pythonTar,
  tempDir,
} from "./_tar_fixtures.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const LONG = `blobs/sha256/${"ab".repeat(64)}`; // 141 bytes: needs PAX or GNU 'L'

function params<T>(numRuns: number): fc.Parameters<T> {
  const seed = Deno.env.get("FC_SEED");
  const path = Deno.env.get("FC_PATH");
  const factor = Number(Deno.env.get("FC_RUNS") ?? "1");
  return {
    numRuns: Math.max(1, Math.round(numRuns * (Number.isFinite(factor) ? factor : 1))),
    ...(seed !== undefined && seed !== "" ? { seed: Number(seed) } : {}),
    ...(path !== undefined && path !== "" ? { path } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Sources, and what the two readers make of the same bytes

/** `bytes` in fresh pieces of the given sizes (repeated), as an iterable or a byte stream. */
function pieces(
  bytes: Uint8Array,
  sizes: readonly number[],
  kind: "iterable" | "stream" = "iterable",
): TarStreamSource {
  async function* chunks() {
    for (let at = 0, i = 0; at < bytes.length; i++) {
      const size = sizes[i % sizes.length]!;
      yield bytes.slice(at, at + size);
      at += size;
    }
  }
  return kind === "stream" ? ReadableStream.from(chunks()) : chunks();
}

/** How a test consumes each body: all of it, with `bytes()`, not at all, or one chunk. */
type BodyMode = "read" | "bytes" | "skip" | "part";

/** What a reader made of an archive: its entries and file contents, or its error message. */
type Outcome =
  | { entries: TarEntry[]; data: Map<string, Uint8Array>; endMarker: boolean }
  | { error: string };

function metadata(entry: StreamedTarEntry): TarEntry {
  const { body: _body, bytes: _bytes, ...rest } = entry;
  return rest;
}

async function readBody(entry: StreamedTarEntry, mode: BodyMode): Promise<Uint8Array | null> {
  if (mode === "bytes") return await entry.bytes();
  if (mode === "skip") return null;
  const chunks: Uint8Array[] = [];
  for await (const chunk of entry.body) {
    chunks.push(chunk);
    if (mode === "part") return null;
  }
  return concat(...chunks);
}

async function streamOutcome(
  source: TarStreamSource,
  label: string,
  mode: BodyMode,
): Promise<Outcome & { tar: TarStream }> {
  const tar = readTarStream(source, label);
  const entries: TarEntry[] = [];
  const data = new Map<string, Uint8Array>();
  try {
    for await (const entry of tar) {
      entries.push(metadata(entry));
      const bytes = await readBody(entry, mode);
      if (bytes !== null && entry.type === "file") data.set(entry.name, bytes);
    }
  } catch (error) {
    if (!(error instanceof ArchiveError)) throw error;
    assert(error.message.startsWith(`${label}: `), error.message);
    return { error: error.message, tar };
  }
  return { entries, data, endMarker: tar.endMarker === true, tar };
}

async function indexOutcome(path: string): Promise<Outcome> {
  try {
    const index = await indexTar(path);
    const data = new Map<string, Uint8Array>();
    for (const entry of index.entries.values()) {
      if (entry.type !== "file") continue;
      data.set(entry.name, await readRangeBytes(path, entry.dataOffset, entry.size, 1 << 30));
    }
    return { entries: [...index.entries.values()], data, endMarker: index.endMarker };
  } catch (error) {
    if (!(error instanceof ArchiveError)) throw error;
    return { error: error.message };
  }
}

/** The indexer's message in the stream's words. */
function asStreamMessage(message: string): string {
  return message.replace("the archive ends at byte", "the stream ends at byte")
    .replace("empty file, not a tar archive", "empty stream, not a tar archive");
}

/**
 * Reads `bytes` with both readers and checks they agree. The one allowed difference: an
 * entry both cut off and unsafe or duplicated is refused for its name by the stream (which
 * reports an entry before its data) and for the truncation by the indexer.
 */
async function assertSameAsIndex(
  path: string,
  bytes: Uint8Array,
  source: TarStreamSource,
  mode: BodyMode,
): Promise<Outcome & { tar: TarStream }> {
  await Deno.writeFile(path, bytes);
  const indexed = await indexOutcome(path);
  const streamed = await streamOutcome(source, path, mode);
  if ("error" in indexed || "error" in streamed) {
    const expected = "error" in indexed ? asStreamMessage(indexed.error) : "(no error)";
    const actual = "error" in streamed ? streamed.error : "(no error)";
    const nameFirst = /declares \d+ bytes but the stream ends/.test(expected) &&
      /: (unsafe path|duplicate entry|entry at offset \d+ has an empty name)/.test(actual);
    if (!nameFirst) assertEquals(actual, expected, `${mode}: the stream fails as indexTar does`);
    return streamed;
  }
  assertEquals(streamed.entries, indexed.entries, `${mode}: entries`);
  assertEquals(streamed.endMarker, indexed.endMarker, `${mode}: end marker`);
  if (mode === "read" || mode === "bytes") assertEquals(streamed.data, indexed.data);
  // Names resolve the same way once the whole stream has been read.
  const index = await indexTar(path);
  for (const entry of indexed.entries) {
    const expected = attempt(() => index.resolve(entry.name));
    const actual = attempt((): TarEntry => streamed.tar.names.resolve(entry.name));
    assertEquals(actual, expected, entry.name);
  }
  return streamed;
}

function attempt<T>(fn: () => T): T | string {
  try {
    return fn();
  } catch (error) {
    if (!(error instanceof ArchiveError)) throw error;
    return error.message;
  }
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  await using dir = await tempDir();
  await fn(dir.path);
}

// ---------------------------------------------------------------------------------------------
// Properties

/** One path segment: no "/", no NUL, not "." or "..", and valid UTF-16. */
const segment = fc.oneof(
  fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 40 }),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }),
).filter((s) =>
  s !== "." && s !== ".." && !s.includes("/") && !s.includes("\0") &&
  decoder.decode(encoder.encode(s)) === s
);

/** A normalized relative path of 1–300 characters. */
const entryName = fc.array(segment, { minLength: 1, maxLength: 10 })
  .map((segments) => segments.join("/"))
  .filter((name) => name.length <= 300);

/** Piece sizes from 1 byte to 100 KB, often small enough to split headers. */
const pieceSizes = fc.array(
  fc.oneof(fc.integer({ min: 1, max: 600 }), fc.integer({ min: 1, max: 100_000 })),
  { minLength: 1, maxLength: 12 },
);

const bodyMode = fc.constantFrom<BodyMode>("read", "bytes", "skip", "part");
const sourceKind = fc.constantFrom("iterable" as const, "stream" as const);

type Op =
  | { kind: "file"; name: string; size: number; seed: number }
  | { kind: "dir"; name: string }
  | { kind: "symlink" | "hardlink"; name: string; target: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("file" as const),
      name: entryName,
      size: fc.oneof(fc.nat({ max: 2000 }), fc.nat({ max: 150_000 })),
      seed: fc.nat(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("dir" as const), name: entryName }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constantFrom("symlink" as const, "hardlink" as const),
      name: entryName,
      target: fc.nat(),
    }),
  },
);

/** Writes the ops with our tar writer; links point to another op's name, before or after. */
async function writeOps(ops: Op[], longNames: "pax" | "gnu"): Promise<Uint8Array> {
  return await tarBytes(async (tar) => {
    for (const o of ops) {
      if (o.kind === "file") {
        await tar.addFile(o.name, new Uint8Array(o.size).map((_, i) => (o.seed + i * 31) & 0xff));
      } else if (o.kind === "dir") {
        await tar.addDirectory(o.name);
      } else {
        const target = ops[o.target % ops.length]!.name;
        if (o.kind === "hardlink") await tar.addHardlink(o.name, target);
        else await tar.addSymlink(o.name, "../".repeat(o.name.split("/").length - 1) + target);
      }
    }
  }, { longNames });
}

Deno.test("property: streamed entries and bytes equal indexTar's, in pieces of any size", async () => {
  await withTempDir(async (dir) => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(op, { minLength: 1, maxLength: 8, selector: (o) => o.name }),
        fc.constantFrom("pax" as const, "gnu" as const),
        pieceSizes,
        sourceKind,
        bodyMode,
        async (ops, longNames, sizes, kind, mode) => {
          const bytes = await writeOps(ops, longNames);
          const outcome = await assertSameAsIndex(
            `${dir}/w.tar`,
            bytes,
            pieces(bytes, sizes, kind),
            mode,
          );
          assert(!("error" in outcome), "error" in outcome ? outcome.error : "");
          assertEquals(outcome.entries.map((e) => e.name), ops.map((o) => o.name));
          assertEquals(outcome.tar.position, bytes.length);
        },
      ),
      params(150),
    );
  });
});

type Mutation =
  | { kind: "flip"; at: number; mask: number }
  | { kind: "header"; header: number; at: number; value: number }
  | { kind: "truncate"; at: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant("flip" as const),
    at: fc.nat(),
    mask: fc.integer({ min: 1, max: 255 }),
  }),
  // A header field changed with the checksum fixed, so the parsers look further.
  fc.record({
    kind: fc.constant("header" as const),
    header: fc.nat(),
    at: fc.nat({ max: BLOCK_SIZE - 1 }).filter((at) => at < 148 || at >= 156),
    value: fc.integer({ min: 0, max: 255 }),
  }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
);

function fixChecksum(block: Uint8Array): void {
  block.fill(0x20, 148, 156);
  const sum = block.reduce((n, byte) => n + byte, 0);
  block.set(encoder.encode(`${sum.toString(8).padStart(6, "0")}\0 `), 148);
}

function mutate(base: Uint8Array, headers: number[], mutations: Mutation[]): Uint8Array {
  let bytes = base.slice();
  for (const m of mutations) {
    if (bytes.length === 0) break;
    if (m.kind === "flip") {
      bytes[m.at % bytes.length]! ^= m.mask;
    } else if (m.kind === "header") {
      const start = headers[m.header % headers.length]!;
      if (start + BLOCK_SIZE > bytes.length) continue;
      bytes[start + m.at] = m.value;
      fixChecksum(bytes.subarray(start, start + BLOCK_SIZE));
    } else {
      bytes = bytes.slice(0, m.at % (bytes.length + 1));
    }
  }
  return bytes;
}

Deno.test("property: corrupted archives fail (or pass) the stream exactly as indexTar", async () => {
  const links = await tarBytes(async (tar) => {
    await tar.addDirectory("dir");
    await tar.addSymlink("id/layer.tar", `../${LONG}`); // points forward, as skopeo's may
    await tar.addFile(LONG, encoder.encode("long name\n"));
    await tar.addFile("dir/file", encoder.encode("x".repeat(1300)));
    await tar.addHardlink("hard", "dir/file");
    await tar.addFile("manifest.json", encoder.encode('[{"Layers":["id/layer.tar"]}]'));
  });
  const gnu = await tarBytes(async (tar) => {
    await tar.addFile(LONG, encoder.encode("gnu long name"));
    await tar.addSymlink(`l/${"k".repeat(120)}`, `../${LONG}`);
  }, { longNames: "gnu" });
  const bases = [links, gnu].map((bytes) => {
    const headers: number[] = [];
    for (let at = 0; at + BLOCK_SIZE <= bytes.length; at += BLOCK_SIZE) {
      const block = bytes.subarray(at, at + BLOCK_SIZE);
      const copy = block.slice();
      fixChecksum(copy);
      if (block.some((b) => b !== 0) && copy.every((b, i) => b === block[i])) headers.push(at);
    }
    return { bytes, headers };
  });
  await withTempDir(async (dir) => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: bases.length - 1 }),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        pieceSizes,
        sourceKind,
        bodyMode,
        async (which, mutations, sizes, kind, mode) => {
          const { bytes, headers } = bases[which]!;
          const mutated = mutate(bytes, headers, mutations);
          await assertSameAsIndex(`${dir}/m.tar`, mutated, pieces(mutated, sizes, kind), mode);
        },
      ),
      params(300),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Archives written by real tools

/** Checks the stream agrees with indexTar for the file at `path`, read several ways. */
async function assertStreamsLikeIndex(path: string): Promise<Outcome & { tar: TarStream }> {
  const bytes = await Deno.readFile(path);
  const copy = `${path}.copy`;
  let first: (Outcome & { tar: TarStream }) | undefined;
  const ways: [TarStreamSource, BodyMode][] = [
    [(await Deno.open(path)).readable, "read"],
    [pieces(bytes, [1, 511, 513, 4096]), "bytes"],
    [pieces(bytes, [700, 3], "stream"), "part"],
    [pieces(bytes, [100_000]), "skip"],
  ];
  for (const [source, mode] of ways) {
    const outcome = await assertSameAsIndex(copy, bytes, source, mode);
    assert(!("error" in outcome), "error" in outcome ? outcome.error : "");
    first ??= outcome;
  }
  return first!; // read with "read": it has the data
}

/** A tree with a directory, files, a symlink, a hard link and (optionally) long names. */
async function makeTree(root: string, long: boolean): Promise<void> {
  await Deno.mkdir(`${root}/d/sub`, { recursive: true });
  await Deno.writeTextFile(`${root}/d/a.txt`, "hello\n");
  await Deno.writeFile(`${root}/d/big.bin`, new Uint8Array(70_000).map((_, i) => i * 7));
  await Deno.symlink("a.txt", `${root}/d/link`);
  await Deno.link(`${root}/d/a.txt`, `${root}/d/hard`);
  if (long) {
    await Deno.mkdir(`${root}/d/blobs/sha256`, { recursive: true });
    await Deno.writeTextFile(`${root}/d/${LONG}`, "long\n");
    await Deno.symlink(`../${LONG}`, `${root}/d/sub/${"l".repeat(120)}`);
  }
}

Deno.test("readTarStream reads GNU tar's gnu, oldgnu, pax, ustar and v7 formats", async () => {
  await withTempDir(async (dir) => {
    for (const format of ["gnu", "oldgnu", "pax", "ustar", "v7"]) {
      const root = `${dir}/${format}`;
      const long = format === "gnu" || format === "oldgnu" || format === "pax";
      await makeTree(root, long);
      await run("tar", [`--format=${format}`, "-cf", "t.tar", "d"], { cwd: root });
      const { tar } = await assertStreamsLikeIndex(`${root}/t.tar`);
      // Which of a.txt and hard is the hard link depends on directory order.
      const file = tar.names.resolve("./d//link").name;
      assert(file === "d/a.txt" || file === "d/hard", `${format}: d/link -> ${file}`);
      if (long) assertEquals(tar.names.resolve(`d/sub/${"l".repeat(120)}`).name, `d/${LONG}`);
    }
  });
});

Deno.test("readTarStream skips GNU sparse files (old 'S' headers with extensions, and PAX 1.0)", async () => {
  await withTempDir(async (dir) => {
    using file = await Deno.open(`${dir}/sparse`, { write: true, create: true });
    for (let i = 0; i < 30; i++) {
      await file.seek(i * 65536, Deno.SeekMode.Start);
      await file.write(new Uint8Array(512).fill(0x41));
    }
    await Deno.writeTextFile(`${dir}/after.txt`, "after\n");
    for (const format of ["gnu", "pax"]) {
      await run("tar", [`--format=${format}`, "-S", "-cf", "s.tar", "sparse", "after.txt"], {
        cwd: dir,
      });
      const outcome = await assertStreamsLikeIndex(`${dir}/s.tar`);
      assertEquals(outcome.tar.names.get("sparse")?.type, "other", format);
      assert(!("error" in outcome) && decoder.decode(outcome.data.get("after.txt")) === "after\n");
    }
  });
});

Deno.test("readTarStream reads Python tarfile archives: PAX, GNU, ustar and global headers", async () => {
  await withTempDir(async (dir) => {
    const entries: [string, string, string?, string?][] = [
      ["blobs/", "5"],
      [`links/${"k".repeat(110)}`, "2", "", `../${LONG}`], // before its target
      [LONG, "0", "blob"],
      ["caf\u00e9/\u{1f600}.json", "0", "{}"],
      ["hard", "1", "", LONG],
    ];
    for (const format of ["pax", "gnu"] as const) {
      const { tar } = await assertStreamsLikeIndex(
        await pythonTar(dir, `${format}.tar`, entries, format),
      );
      assertEquals(tar.names.resolve(`links/${"k".repeat(110)}`).name, LONG);
      assertEquals(tar.names.resolve("hard").name, LONG);
    }
    await assertStreamsLikeIndex(
      await pythonTar(
        dir,
        "ustar.tar",
        [["a", "0", "x".repeat(600)], ["b", "2", "", "a"]],
        "ustar",
      ),
    );
    await run("python3", [
      "-c",
      `import tarfile, io
with tarfile.open("g.tar", "w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "global"}) as t:
    i = tarfile.TarInfo("f"); i.size = 2; t.addfile(i, io.BytesIO(b"hi"))`,
    ], { cwd: dir });
    const global = await assertStreamsLikeIndex(`${dir}/g.tar`);
    assert(!("error" in global));
    assertEquals(global.entries.map((e) => [e.name, e.headerOffset]), [["f", 1024]]);
  });
});

integrationTest(
  "readTarStream reads skopeo's docker-archive: layer.tar symlinks resolve at the end",
  async () => {
    await withTempDir(async (dir) => {
      await Deno.mkdir(`${dir}/l1/etc`, { recursive: true });
      await Deno.writeTextFile(`${dir}/l1/etc/hello`, "hello from layer one\n");
      await umociImage(`${dir}/layout`, "v1", [`${dir}/l1`]);
      const path = `${dir}/skopeo-docker.tar`;
      await skopeoArchive("docker-archive", `${dir}/layout`, "v1", path);
      const outcome = await assertStreamsLikeIndex(path);
      assert(!("error" in outcome));
      const manifest = JSON.parse(
        decoder.decode(outcome.data.get(outcome.tar.names.resolve("manifest.json").name)),
      ) as { Layers: string[] }[];
      const layer = manifest[0]!.Layers[0]!;
      assert(/^[0-9a-f]{64}\.tar$/.test(layer), layer);
      assertEquals(outcome.tar.names.resolve(layer).name, layer);
      // The legacy `<id>/layer.tar`: a symlink written after the blob it points to.
      const links = outcome.entries.filter((e) => e.name.endsWith("/layer.tar"));
      assertEquals(links.map((e) => [e.type, e.linkName]), [["symlink", `../${layer}`]]);
      assertEquals(outcome.tar.names.resolve(links[0]!.name).name, layer);
    });
  },
  { tools: ["skopeo", "umoci"] },
);

// ---------------------------------------------------------------------------------------------
// Links, end markers and names while the stream is read

Deno.test("links may point forward or back; names resolve once the stream has ended", async () => {
  const bytes = await tarBytes(async (tar) => {
    await tar.addSymlink("id/layer.tar", "../abc.tar"); // before its target (Docker 25 order)
    await tar.addFile("abc.tar", encoder.encode("layer"));
    await tar.addHardlink("other/layer.tar", "abc.tar"); // after it (skopeo order)
    await tar.addFile("manifest.json", encoder.encode("[]"));
  });
  const tar = readTarStream(pieces(bytes, [512]), "links.tar");
  for await (const entry of tar) {
    if (entry.name !== "id/layer.tar") continue;
    assertThrows(
      () => tar.names.resolve("id/layer.tar"),
      ArchiveError,
      'links.tar: "id/layer.tar" links to "abc.tar", which is not in the archive',
    );
    assertThrows(
      () => tar.names.resolve("manifest.json"),
      ArchiveError,
      '"manifest.json" not found in archive (not seen so far: the archive is still being read)',
    );
  }
  assertEquals(tar.endMarker, true);
  assertEquals(tar.names.resolve("id/layer.tar").name, "abc.tar");
  assertEquals(tar.names.resolve("other/layer.tar").name, "abc.tar");
  assertThrows(
    () => tar.names.resolve("nope"),
    ArchiveError,
    'links.tar: "nope" not found in archive',
  );
});

Deno.test("readTarStream accepts every end-of-archive form indexTar accepts", async () => {
  await withTempDir(async (dir) => {
    const a = member({ name: "a" }, "aaa");
    const b = member({ name: "b" }, "bb");
    const forms: [string, Uint8Array, boolean][] = [
      ["two zero blocks", archive(a, b), true],
      ["record padding", concat(a, b, new Uint8Array(10240 - 2048)), true],
      ["one zero block then end", concat(a, b, new Uint8Array(512)), true],
      ["no end marker", concat(a, b), false],
      ["padding of the last entry cut off", concat(a, b).subarray(0, 1024 + 512 + 2), false],
      [
        "junk after the marker",
        concat(a, b, new Uint8Array(1024), new Uint8Array(700).fill(7)),
        true,
      ],
      ["empty archive", new Uint8Array(1024), true],
    ];
    for (const [form, bytes, endMarker] of forms) {
      for (const mode of ["read", "skip"] as const) {
        const outcome = await assertSameAsIndex(`${dir}/e.tar`, bytes, pieces(bytes, [300]), mode);
        assert(!("error" in outcome), form);
        assertEquals(outcome.endMarker, endMarker, form);
        // The whole stream is read, junk after the marker included (no broken pipe upstream).
        assertEquals(outcome.tar.position, bytes.length, form);
      }
    }
    const tar = readTarStream(pieces(concat(a, b), [4096]), "cut.tar");
    for await (const _ of tar) { /* skip */ }
    assertThrows(
      () => tar.names.resolve("c"),
      ArchiveError,
      'cut.tar: "c" not found in archive (the archive has no end-of-archive marker: truncated?)',
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Bodies

Deno.test("unread and partly read bodies are skipped in constant memory", async () => {
  const big = 50 * 1024 * 1024;
  const chunk = 64 * 1024;
  for (const mode of ["skip", "part"] as const) {
    const source = tarStream(async (tar) => {
      await tar.addFile("a.json", encoder.encode('{"a":1}'));
      await tar.addFile("layer.tar", {
        size: big,
        stream: (async function* () {
          for (let at = 0; at < big; at += chunk) yield new Uint8Array(chunk).fill(at / chunk);
        })(),
      });
      await tar.addFile("c.json", encoder.encode('{"c":3}'));
    });
    let pulled = 0;
    let largest = 0;
    const counting = async function* () {
      for await (const piece of source) {
        // The reader asks for more only once it has consumed all it holds: it never holds more
        // than the one chunk it is reading, whatever the consumer does with the bodies.
        assertEquals(tar.position, pulled, "bytes held when pulling");
        pulled += piece.length;
        largest = Math.max(largest, piece.length);
        yield piece;
      }
    };
    const tar: TarStream = readTarStream(counting(), "big.tar");
    const seen: [string, string | number][] = [];
    for await (const entry of tar) {
      if (entry.name.endsWith(".json")) {
        seen.push([entry.name, decoder.decode(await entry.bytes())]);
      } else if (mode === "part") {
        let got = 0;
        for await (const piece of entry.body) {
          got += piece.length;
          if (got >= 3 * chunk) break;
        }
        seen.push([entry.name, got]);
      }
    }
    assertEquals(seen, [
      ["a.json", '{"a":1}'],
      ...(mode === "part" ? [["layer.tar", 3 * chunk] as [string, number]] : []),
      ["c.json", '{"c":3}'],
    ]);
    assertEquals(tar.position, pulled);
    assert(pulled > big, `the whole stream was read (${pulled} bytes)`);
    assert(largest <= chunk, `no chunk over ${chunk} bytes reached the reader`);
  }
});

Deno.test("body chunks belong to the consumer: overwriting them does not disturb the reader", async () => {
  const files = ["a", "b", "c", "d"].map((name, i) => ({
    name,
    data: new Uint8Array(300 + i * 700).map((_, j) => (j * 13 + i) & 0xff),
  }));
  const bytes = await tarBytes(async (tar) => {
    for (const { name, data } of files) await tar.addFile(name, data);
  });
  // 700-byte pieces put a body's tail and the next header in one source chunk.
  for (const kind of ["iterable", "stream"] as const) {
    const got: [string, Uint8Array][] = [];
    for await (const entry of readTarStream(pieces(bytes, [700, 1500], kind), "own.tar")) {
      const parts: Uint8Array[] = [];
      for await (const chunk of entry.body) {
        parts.push(chunk.slice());
        chunk.fill(0xee);
      }
      got.push([entry.name, concat(...parts)]);
    }
    assertEquals(got, files.map(({ name, data }) => [name, data] as [string, Uint8Array]));
  }
});

Deno.test("a body is read once, and only until the reader moves on", async () => {
  const bytes = archive(member({ name: "a" }, "aaa"), member({ name: "b" }, "bbb"));
  const tar = readTarStream(pieces(bytes, [2048]), "once.tar");
  const iterator = tar[Symbol.asyncIterator]();
  const a = (await iterator.next()).value as StreamedTarEntry;
  assertEquals(decoder.decode(await a.bytes()), "aaa");
  await assertRejects(() => a.bytes(), TypeError, 'Cannot read the body of "a" twice');
  assertThrows(() => a.body[Symbol.asyncIterator](), TypeError, "twice");
  const b = (await iterator.next()).value as StreamedTarEntry;
  assertEquals(b.name, "b");
  await iterator.next();
  await assertRejects(() => b.bytes(), TypeError, 'the body of "b": the reader has moved past it');
  assertThrows(
    () => tar[Symbol.asyncIterator](),
    TypeError,
    'Cannot read the tar stream "once.tar" twice',
  );
});

// ---------------------------------------------------------------------------------------------
// Cancellation

/** A byte stream that delivers `first`, then stalls, recording whether it was cancelled. */
function stalling(first: Uint8Array): { stream: ReadableStream<Uint8Array>; cancelled: unknown[] } {
  const cancelled: unknown[] = [];
  let sent = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sent) controller.enqueue(first);
      sent = true;
      return new Promise(() => {}); // a pipe whose writer went quiet
    },
    cancel(reason) {
      cancelled.push(reason);
    },
  }, { highWaterMark: 0 });
  return { stream, cancelled };
}

Deno.test("readTarStream honours its signal, even while the source stalls", async () => {
  const bytes = archive(member({ name: "a" }, "aaa"));
  await assertRejects(
    async () => {
      for await (
        const _ of readTarStream(pieces(bytes, [512]), "x", { signal: AbortSignal.abort() })
      ) {
        // never reached
      }
    },
    DOMException,
  );

  const { stream, cancelled } = stalling(header({ name: "layer.tar", size: 5000 }));
  const controller = new AbortController();
  const reason = new Error("Timed out waiting for the pipe");
  const tar = readTarStream(stream, "stall.tar", { signal: controller.signal });
  const seen: string[] = [];
  const done = (async () => {
    for await (const entry of tar) {
      seen.push(entry.name);
      setTimeout(() => controller.abort(reason), 20);
      for await (const _ of entry.body) { /* stalls until aborted */ }
    }
  })();
  const error = await assertRejects(() => done, Error);
  assertEquals(error, reason);
  assertEquals(seen, ["layer.tar"]);
  assertEquals(cancelled, [reason]);
});

Deno.test("leaving the loop early cancels the source", async () => {
  const { stream, cancelled } = stalling(header({ name: "a", size: 5000 }));
  for await (const entry of readTarStream(stream, "early.tar")) {
    assertEquals(entry.name, "a");
    break;
  }
  assertEquals(cancelled, [undefined]);

  let closed = false;
  async function* source() {
    try {
      yield archive(member({ name: "a" }, "a"), member({ name: "b" }, "b"));
    } finally {
      closed = true;
    }
  }
  for await (const _ of readTarStream(source(), "early.tar")) break;
  assert(closed, "the source iterator was closed");
});

// ---------------------------------------------------------------------------------------------
// Malformed streams: exact messages, the same as indexTar's

Deno.test("malformed streams fail with indexTar's messages", async () => {
  const good = archive(
    member({ name: "a.txt" }, "hello\n"),
    member({ name: "big.bin" }, new Uint8Array(3000).fill(1)),
    member({ name: "c.txt" }, "c\n"),
  );
  // a.txt: header 0; big.bin: header 1024, data 1536-4536; c.txt: header 4608.
  const pathPayload = paxPayload({ path: `long/${"p".repeat(200)}` });
  const sizePayload = paxPayload({ size: "1048576" });
  const badChecksum = good.slice();
  badChecksum[1024 + 5]! ^= 0x20;
  const gnuSparse = header({
    name: "s",
    typeflag: "S",
    format: "gnu",
    patch: {
      offset: 482,
      bytes: new Uint8Array([1]),
    },
  });
  const cases: [string, Uint8Array, string][] = [
    ["zero-length input", new Uint8Array(), "empty stream, not a tar archive"],
    [
      "too short",
      new Uint8Array(100).fill(0x61),
      "not a tar archive (100 bytes, shorter than one 512-byte header)",
    ],
    [
      "garbage",
      new Uint8Array(4096).fill(0x61),
      "not a tar archive (bad header checksum at offset 0)",
    ],
    [
      "gzip",
      new Uint8Array(gzipSync(good)),
      "the archive is gzip-compressed; decompress it first (e.g. `gunzip -k`)",
    ],
    ["bad checksum", badChecksum, "bad header checksum at offset 1024"],
    [
      "truncated mid-header",
      good.slice(0, 1024 + 100),
      "incomplete header at offset 1024: the stream ends at byte 1124 (truncated?)",
    ],
    [
      "truncated mid-entry",
      good.slice(0, 3000),
      'entry "big.bin" declares 3000 bytes but the stream ends at byte 3000 (truncated?)',
    ],
    [
      "truncated mid-PAX",
      concat(header({ name: "x", typeflag: "x", size: pathPayload.length }), pathPayload)
        .subarray(0, 600),
      `PAX header at offset 0 declares ${pathPayload.length} bytes but the stream ends at byte 600 (truncated?)`,
    ],
    [
      "PAX size past the end",
      archive(member({ name: "x", typeflag: "x" }, sizePayload), member({ name: "small" }, "5")),
      'entry "small" declares 1048576 bytes but the stream ends at byte 3072 (truncated?)',
    ],
    [
      "PAX header and nothing after",
      member({ name: "x", typeflag: "x" }, pathPayload),
      "extended header at offset 0 is not followed by an entry (truncated?)",
    ],
    [
      "oversized PAX header",
      archive(
        header({ name: "x", typeflag: "x", size: 2_000_000 }),
        pad(new Uint8Array(2_000_000)),
      ),
      "PAX header at offset 0 is 2000000 bytes, over the 1 MiB limit",
    ],
    [
      "oversized PAX header, truncated",
      concat(header({ name: "x", typeflag: "x", size: 2_000_000 }), new Uint8Array(1000)),
      "PAX header at offset 0 declares 2000000 bytes but the stream ends at byte 1512 (truncated?)",
    ],
    [
      "malformed PAX record",
      archive(member({ name: "x", typeflag: "x" }, "9 path\n"), member({ name: "f" })),
      "malformed record at byte 0 of the PAX header at offset 0: length 9 does not fit",
    ],
    [
      "absolute path",
      archive(member({ name: "/etc/passwd" }, "x")),
      'unsafe path "/etc/passwd" at offset 0 (absolute)',
    ],
    [
      "parent directory",
      archive(member({ name: "a/../../x" }, "x")),
      'unsafe path "a/../../x" at offset 0 (contains "..")',
    ],
    [
      "parent directory in a PAX path",
      archive(member({ name: "x", typeflag: "x" }, paxPayload({ path: "../up" })), member({})),
      'unsafe path "../up" at offset 1024 (contains "..")',
    ],
    [
      "duplicate file",
      archive(member({ name: "a" }, "1"), member({ name: "./a" }, "2")),
      'duplicate entry "a" at offset 1024 (first at offset 0)',
    ],
    [
      "file named like a directory",
      archive(member({ name: "d/", typeflag: "5" }), member({ name: "d" }, "2")),
      'duplicate entry "d" at offset 512 (first at offset 0)',
    ],
    ["empty name", archive(member({ name: "" }, "x")), "entry at offset 0 has an empty name"],
    [
      "header after an end block",
      concat(
        member({ name: "a" }),
        new Uint8Array(512),
        member({ name: "b" }),
        new Uint8Array(1024),
      ),
      "unexpected header after an end-of-archive block at offset 512",
    ],
    [
      "invalid size field",
      archive(header({ name: "a", size: "xyzzy\0\0\0\0\0\0\0" })),
      "invalid size field at offset 0",
    ],
    ["incomplete sparse header", gnuSparse, "incomplete sparse header at offset 512 (truncated?)"],
  ];
  await withTempDir(async (dir) => {
    const path = `${dir}/bad.tar`;
    for (const [what, bytes, message] of cases) {
      await Deno.writeFile(path, bytes);
      const indexed = await indexOutcome(path);
      assert("error" in indexed, `${what}: indexTar accepts it`);
      assertEquals(asStreamMessage(indexed.error), `${path}: ${message}`, `${what}: indexTar`);
      for (const mode of ["read", "skip", "bytes", "part"] as const) {
        // Byte by byte only for the small ones: 2 MB in single bytes would be slow.
        for (const sizes of [bytes.length < 65536 ? [1] : [4096], [511, 7], [65536]]) {
          const streamed = await streamOutcome(pieces(bytes, sizes), path, mode);
          assert("error" in streamed, `${what}: the stream accepts it`);
          assertEquals(streamed.error, `${path}: ${message}`, `${what}, ${mode}, ${sizes}`);
        }
      }
    }
  });
  // Repeated directories are fine, as in indexTar; the root directory is not an entry.
  const dirs = archive(
    member({ name: "./", typeflag: "5" }),
    member({ name: "d/", typeflag: "5" }),
    member({ name: "./d", typeflag: "5" }),
  );
  const outcome = await streamOutcome(pieces(dirs, [512]), "dirs.tar", "read");
  assert(!("error" in outcome));
  assertEquals(outcome.entries.map((e) => [e.name, e.type]), [["d", "directory"]]);
});

Deno.test("a failing source is an ArchiveError naming the stream and the byte", async () => {
  async function* failing() {
    yield member({ name: "a" }, "aaa");
    throw new Error("corrupt gzip data");
  }
  const error = await assertRejects(
    async () => {
      for await (const _ of readTarStream(failing(), "app.tar.gz")) { /* skip */ }
    },
    ArchiveError,
    "app.tar.gz: cannot read the stream at byte 1024: corrupt gzip data",
  );
  assertEquals((error.cause as Error).message, "corrupt gzip data");
  // The body itself fails when the stream ends inside it, and so does the iteration after.
  for (const read of ["body", "bytes"] as const) {
    const tar = readTarStream(pieces(cut(), [700]), "cut.tar");
    let fromBody: unknown;
    const failure = await assertRejects(async () => {
      for await (const entry of tar) {
        try {
          if (read === "bytes") await entry.bytes();
          else for await (const _ of entry.body) { /* consume */ }
        } catch (error) {
          fromBody = error;
        }
      }
    }, ArchiveError);
    assertEquals(
      failure.message,
      'cut.tar: entry "big" declares 5000 bytes but the stream ends at byte 2000 (truncated?)',
    );
    assert(fromBody === failure, `${read}: the body read failed with the same error`);
  }

  function cut(): Uint8Array {
    return member({ name: "big" }, new Uint8Array(5000)).subarray(0, 2000);
  }
});

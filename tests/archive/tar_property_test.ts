/**
 * Property tests of the tar parser: whatever bytes it is given, it answers with a header, an
 * index, or an `ArchiveError`, never another error type and never a hang; and archives our
 * writer produces index back exactly.
 *
 * Replay a failure with the seed (and path) fast-check prints:
 * `FC_SEED=<seed> FC_PATH=<path> deno test -A tests/archive/tar_property_test.ts`.
 * `FC_RUNS=<n>` multiplies every property's run count for a longer soak.
 */
import fc from "fast-check";
import { readRangeBytes } from "../../src/archive/byte_range.ts";
import { openImageArchive } from "../../src/archive/image_archive.ts";
import { BLOCK_SIZE, parseHeader, parsePaxRecords } from "../../src/archive/tar_header.ts";
import { indexTar, type TarIndex } from "../../src/archive/tar_index.ts";
import { ArchiveError } from "../../src/errors.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { writeDockerSaveLegacy, writeOciArchive } from "../helpers/image_fixtures.ts";
import { tarBytes } from "../helpers/tar_writer.ts";

const ARCHIVE = "prop.tar";
const encoder = new TextEncoder();

/** Run settings: a modest count, and the seed from `FC_SEED` when replaying a failure. */
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

/** Rethrows anything but an `ArchiveError` that names the archive. */
function onlyArchiveError(error: unknown, archive: string): void {
  if (!(error instanceof ArchiveError)) {
    throw new Error(`Expected an ArchiveError, got ${describe(error)}`, { cause: error });
  }
  assert(
    error.message.startsWith(`${archive}: `),
    `the message does not start with the archive: ${error.message}`,
  );
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Settles `promise` or fails after `ms`: a parser that hangs fails the property. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dip-tar-prop-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Stores a correct (unsigned) checksum in a header block, in place. */
function fixChecksum(block: Uint8Array): Uint8Array {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.set(encoder.encode(`${sum.toString(8).padStart(6, "0")}\0 `), 148);
  return block;
}

function storedChecksumIsValid(block: Uint8Array): boolean {
  const copy = block.slice();
  return fixChecksum(copy).every((byte, i) => byte === block[i]);
}

// ---------------------------------------------------------------------------------------------
// Generators

const TYPEFLAGS = ["0", "\0", "1", "2", "3", "5", "7", "x", "g", "L", "K", "S", "V", "Z"];
const MAGICS = ["ustar\x0000", "ustar  \0", "\0\0\0\0\0\0\0\0", "ustar\0  ", "USTAR\x0000"];

/** A numeric field: octal (well-formed or not), base-256, or raw bytes. */
const numericField = fc.oneof(
  fc.nat({ max: 4096 }).map((n) => encoder.encode(`${n.toString(8).padStart(11, "0")}\0`)),
  fc.nat({ max: 4096 }).map((n) => encoder.encode(` ${n.toString(8)} `.padEnd(12, "\0"))),
  fc.uint8Array({ minLength: 12, maxLength: 12 }).map((b) => {
    b[0] = b[0]! | 0x80; // GNU base-256, sometimes with the sign bit
    return b;
  }),
  fc.uint8Array({ minLength: 12, maxLength: 12 }),
  fc.constant(new Uint8Array(12)),
);

const shortText = (max: number) =>
  fc.string({ unit: "binary-ascii", maxLength: max }).map((s) => encoder.encode(s));

/** A header block with plausible fields and, most of the time, a correct checksum. */
const headerBlock = fc.record({
  noise: fc.uint8Array({ minLength: BLOCK_SIZE, maxLength: BLOCK_SIZE }),
  keepNoise: fc.boolean(),
  name: shortText(100),
  linkName: shortText(100),
  prefix: shortText(155),
  size: numericField,
  typeflag: fc.constantFrom(...TYPEFLAGS),
  magic: fc.constantFrom(...MAGICS),
  extended: fc.boolean(), // old GNU sparse "isextended" flags
  checksum: fc.constantFrom("valid", "valid", "valid", "garbage"),
}).map((f) => {
  const block = f.keepNoise ? f.noise.slice() : new Uint8Array(BLOCK_SIZE);
  block.set(f.name.subarray(0, 100), 0);
  block.set(f.size, 124);
  block[156] = f.typeflag.charCodeAt(0);
  block.set(f.linkName.subarray(0, 100), 157);
  block.set(encoder.encode(f.magic), 257);
  block.set(f.prefix.subarray(0, 155), 345);
  block[482] = f.extended ? 1 : 0;
  block[504] = f.extended ? 1 : 0;
  if (f.checksum === "valid") fixChecksum(block);
  return block;
});

/** Any block: random bytes, random bytes with a valid checksum, or a plausible header. */
const anyBlock = fc.oneof(
  fc.uint8Array({ minLength: BLOCK_SIZE, maxLength: BLOCK_SIZE }),
  fc.uint8Array({ minLength: BLOCK_SIZE, maxLength: BLOCK_SIZE }).map(fixChecksum),
  headerBlock,
);

/** A PAX payload: well-formed records, records with wrong lengths, or noise. */
const paxPayload = fc.oneof(
  fc.array(
    fc.tuple(
      fc.constantFrom("path", "linkpath", "size", "GNU.sparse.name", "GNU.sparse.major", "mtime"),
      fc.oneof(fc.string({ maxLength: 40 }), fc.nat().map(String), fc.constant("")),
      fc.integer({ min: -3, max: 3 }),
    ),
    { maxLength: 4 },
  ).map((records) =>
    encoder.encode(
      records.map(([key, value, skew]) => {
        const body = ` ${key}=${value}\n`;
        let length = encoder.encode(body).length + 1;
        while (String(length).length + encoder.encode(body).length !== length) length++;
        return `${Math.max(0, length + skew)}${body}`;
      }).join(""),
    )
  ),
  fc.uint8Array({ maxLength: 600 }),
  fc.string({ unit: fc.constantFrom("1", "2", " ", "=", "\n", "a", "0", "9"), maxLength: 80 })
    .map((s) => encoder.encode(s)),
);

/** Tar-like bytes: headers, data blocks, PAX payloads and zero blocks, up to 8 KiB. */
const tarLike = fc.array(
  fc.oneof(
    { weight: 4, arbitrary: anyBlock },
    { weight: 2, arbitrary: paxPayload },
    { weight: 1, arbitrary: fc.constant(new Uint8Array(BLOCK_SIZE)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 700 }) },
  ),
  { maxLength: 14 },
).map((parts) => concat(parts).subarray(0, 8192));

// ---------------------------------------------------------------------------------------------
// (a) one header block

Deno.test("property: parseHeader returns a sane header or throws ArchiveError", () => {
  fc.assert(
    fc.property(
      fc.oneof(anyBlock, fc.uint8Array({ maxLength: 2 * BLOCK_SIZE })),
      fc.nat(),
      (block, offset) => {
        const started = performance.now();
        try {
          const header = parseHeader(block, offset, ARCHIVE);
          assertEquals(block.length, BLOCK_SIZE, "only a whole block parses");
          assert(Number.isSafeInteger(header.size) && header.size >= 0, `size ${header.size}`);
          assert(typeof header.name === "string" && typeof header.linkName === "string");
          assertEquals(header.typeflag, String.fromCharCode(block[156]!));
        } catch (error) {
          onlyArchiveError(error, ARCHIVE);
        }
        assert(performance.now() - started < 100, "parseHeader took more than 100 ms");
      },
    ),
    params(3000),
  );
});

Deno.test("property: parsePaxRecords returns records or throws ArchiveError", () => {
  fc.assert(
    fc.property(paxPayload, (payload) => {
      try {
        const records = parsePaxRecords(payload, ARCHIVE, "PAX header at offset 0");
        for (const [key] of records) assert(key !== "" && !key.includes("="), `key "${key}"`);
      } catch (error) {
        onlyArchiveError(error, ARCHIVE);
      }
    }),
    params(3000),
  );
});

// ---------------------------------------------------------------------------------------------
// (b) whole files of arbitrary bytes

/** Indexes `bytes`; checks the index is consistent, or the error is an ArchiveError. */
async function indexOrArchiveError(path: string, bytes: Uint8Array): Promise<TarIndex | null> {
  await Deno.writeFile(path, bytes);
  let index: TarIndex;
  try {
    index = await within(2000, "indexTar", indexTar(path));
  } catch (error) {
    onlyArchiveError(error, path);
    return null;
  }
  assertEquals(index.size, bytes.length);
  for (const entry of index.entries.values()) {
    assert(entry.name !== "" && !entry.name.startsWith("/"), `entry name "${entry.name}"`);
    assert(!entry.name.split("/").includes(".."), `entry name "${entry.name}"`);
    assert(entry.dataOffset + entry.size <= bytes.length, `entry "${entry.name}" past the end`);
    assertEquals(entry.dataOffset % BLOCK_SIZE, 0);
    // Resolving follows links, with loops and dangling links reported as ArchiveError.
    try {
      const target = index.resolve(entry.name);
      assertEquals(target.type, "file");
    } catch (error) {
      onlyArchiveError(error, path);
    }
  }
  return index;
}

Deno.test("property: indexTar of arbitrary bytes resolves or rejects with ArchiveError", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/arbitrary.tar`;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.uint8Array({ maxLength: 8192 }), tarLike),
        async (bytes) => {
          await indexOrArchiveError(path, bytes);
        },
      ),
      params(1000),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// (c) round trip through our writer

/** One path segment: no "/", no NUL, not "." or "..", and valid UTF-16 (no lone surrogates). */
const segment = fc.oneof(
  fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 40 }),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }),
  fc.string({ unit: "binary", minLength: 1, maxLength: 20 }),
).filter((s) =>
  s !== "." && s !== ".." && !s.includes("/") && !s.includes("\0") &&
  new TextDecoder().decode(encoder.encode(s)) === s
);

/** A normalized relative path of 1–300 characters. */
const entryName = fc.array(segment, { minLength: 1, maxLength: 12 })
  .map((segments) => segments.join("/"))
  .filter((name) => name.length >= 1 && name.length <= 300);

Deno.test("property: entries written by the tar writer index back exactly", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/roundtrip.tar`;
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.tuple(entryName, fc.nat({ max: 2000 }), fc.nat()), {
          minLength: 1,
          maxLength: 8,
          selector: ([name]) => name,
        }),
        fc.constantFrom("pax" as const, "gnu" as const),
        async (files, longNames) => {
          const written: { name: string; data: Uint8Array; dataOffset: number }[] = [];
          const bytes = await tarBytes(async (tar) => {
            for (const [name, size, seed] of files) {
              const data = new Uint8Array(size).map((_, i) => (seed + i * 31) & 0xff);
              await tar.addFile(name, data);
              const dataOffset = tar.bytesWritten - Math.ceil(size / BLOCK_SIZE) * BLOCK_SIZE;
              written.push({ name, data, dataOffset });
            }
          }, { longNames });
          await Deno.writeFile(path, bytes);
          const index = await within(2000, "indexTar", indexTar(path));
          assert(index.endMarker, "the writer ends the archive with two zero blocks");
          assertEquals([...index.entries.keys()], written.map((w) => w.name));
          for (const { name, data, dataOffset } of written) {
            const entry = index.get(name);
            assert(entry !== undefined, `"${name}" is not in the index`);
            assertEquals(entry.type, "file");
            assertEquals(entry.size, data.length, `size of "${name}"`);
            assertEquals(entry.dataOffset, dataOffset, `data offset of "${name}"`);
            assertEquals(entry.headerOffset, dataOffset - BLOCK_SIZE, `header of "${name}"`);
            assertEquals(index.resolve(name), entry);
            const back = await readRangeBytes(path, entry.dataOffset, entry.size, 1 << 20);
            assertEquals(back, data, `data of "${name}"`);
          }
        },
      ),
      params(200),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// (d) corrupted valid archives

/** Offsets of the blocks of `bytes` whose checksum is valid: the headers, PAX ones included. */
function headerOffsets(bytes: Uint8Array): number[] {
  const offsets: number[] = [];
  for (let at = 0; at + BLOCK_SIZE <= bytes.length; at += BLOCK_SIZE) {
    const block = bytes.subarray(at, at + BLOCK_SIZE);
    if (block.some((b) => b !== 0) && storedChecksumIsValid(block)) offsets.push(at);
  }
  return offsets;
}

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
  // A header field changed with the checksum fixed, so the parser looks further.
  fc.record({
    kind: fc.constant("header" as const),
    header: fc.nat(),
    at: fc.nat({ max: BLOCK_SIZE - 1 }).filter((at) => at < 148 || at >= 156),
    value: fc.integer({ min: 0, max: 255 }),
  }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
);

function mutate(base: Uint8Array, headers: number[], mutations: Mutation[]): Uint8Array {
  let bytes = base.slice();
  for (const m of mutations) {
    if (bytes.length === 0) break;
    if (m.kind === "flip") {
      const at = m.at % bytes.length;
      bytes[at] = bytes[at]! ^ m.mask;
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

Deno.test("property: corrupted archives are indexed and opened, or fail with ArchiveError", async () => {
  await withTempDir(async (dir) => {
    const legacy = await writeDockerSaveLegacy(`${dir}/legacy.tar`, [
      { name: "app:1", layerSizes: [300, 200] },
    ]);
    const oci = await writeOciArchive(`${dir}/oci.tar`, [{ name: "app:1", layerSizes: [300] }]);
    const long = `blobs/sha256/${"ab".repeat(64)}`;
    const links = await tarBytes(async (tar) => {
      await tar.addDirectory("dir");
      await tar.addFile(long, encoder.encode("long name\n"));
      await tar.addFile("dir/file", encoder.encode("x".repeat(700)));
      await tar.addSymlink("dir/link", "file");
      await tar.addHardlink("hard", "dir/file");
      await tar.addSymlink(`dir/${"l".repeat(120)}`, `../${long}`);
    });
    const bases = [
      await Deno.readFile(legacy.path),
      await Deno.readFile(oci.path),
      links,
    ].map((bytes) => ({ bytes, headers: headerOffsets(bytes) }));
    const path = `${dir}/mutated.tar`;

    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: bases.length - 1 }),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        async (which, mutations) => {
          const { bytes, headers } = bases[which]!;
          const mutated = mutate(bytes, headers, mutations);
          const index = await indexOrArchiveError(path, mutated);
          if (index === null) return;
          try {
            await within(5000, "openImageArchive", openImageArchive(path));
          } catch (error) {
            onlyArchiveError(error, path);
          }
        },
      ),
      params(1000),
    );
  });
});

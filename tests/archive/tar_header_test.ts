import { ArchiveError } from "../../src/errors.ts";
import {
  hasValidChecksum,
  isZeroBlock,
  parseGnuLongName,
  parseHeader,
  parsePaxRecords,
} from "../../src/archive/tar_header.ts";
import { run } from "../helpers/command.ts";
import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";
import { header, paxPayload, tempDir } from "./_tar_fixtures.ts";

const encoder = new TextEncoder();
const parse = (block: Uint8Array, offset = 0) => parseHeader(block, offset, "test.tar");

Deno.test("parseHeader reads headers written by GNU tar in ustar, gnu, pax and v7 formats", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/hello.txt`, "hello\n");
  const expected = { ustar: "ustar", gnu: "gnu", pax: "ustar", v7: "v7" } as const;
  for (const [format, detected] of Object.entries(expected)) {
    await run("tar", [`--format=${format}`, "-cf", `${format}.tar`, "hello.txt"], {
      cwd: dir.path,
    });
    const bytes = await Deno.readFile(`${dir.path}/${format}.tar`);
    let parsed = parse(bytes.subarray(0, 512));
    if (format === "pax") {
      // GNU tar's pax format always starts with an 'x' header (mtime, atime, ctime).
      assertEquals(parsed.kind, "pax");
      const next = 512 + Math.ceil(parsed.size / 512) * 512;
      parsed = parse(bytes.subarray(next, next + 512), next);
    }
    assertEquals(parsed.name, "hello.txt", format);
    assertEquals(parsed.size, 6, format);
    assertEquals(parsed.kind, "file", format);
    assertEquals(parsed.format, detected, format);
  }
});

Deno.test("parseHeader joins the ustar prefix to the name", async () => {
  await using dir = await tempDir();
  const deep = `${"d".repeat(60)}/${"e".repeat(60)}`;
  await Deno.mkdir(`${dir.path}/${deep}`, { recursive: true });
  await Deno.writeTextFile(`${dir.path}/${deep}/file.json`, "{}");
  await run("tar", ["--format=ustar", "-cf", "a.tar", `${deep}/file.json`], { cwd: dir.path });
  const block = (await Deno.readFile(`${dir.path}/a.tar`)).subarray(0, 512);
  assertEquals(parse(block).name, `${deep}/file.json`);

  assertEquals(parse(header({ name: "b", prefix: "a" })).name, "a/b");
  // GNU headers keep atime/ctime where ustar has its prefix: never joined.
  assertEquals(parse(header({ name: "b", prefix: "a", format: "gnu" })).name, "b");
  // star: "tar\0" at 508 shortens the prefix to 131 bytes.
  const star = header({
    name: "n",
    prefix: "p".repeat(131),
    patch: {
      offset: 476,
      bytes: encoder.encode("atimectime\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0tar\0"),
    },
  });
  assertEquals(parse(star).name, `${"p".repeat(131)}/n`);
});

Deno.test("parseHeader maps typeflags to kinds", () => {
  const kinds: Record<string, string> = {
    "0": "file",
    "\0": "file",
    "7": "file",
    "1": "hardlink",
    "2": "symlink",
    "5": "directory",
    "x": "pax",
    "g": "pax-global",
    "L": "gnu-long-name",
    "K": "gnu-long-link",
    "3": "other",
    "4": "other",
    "6": "other",
    "S": "other",
    "V": "other",
    "M": "other",
  };
  for (const [typeflag, kind] of Object.entries(kinds)) {
    const parsed = parse(header({ typeflag, linkName: "target" }));
    assertEquals(parsed.kind, kind, `typeflag ${JSON.stringify(typeflag)}`);
    assertEquals(parsed.typeflag, typeflag);
    assertEquals(parsed.linkName, "target");
  }
});

Deno.test("parseHeader validates the checksum, accepting the signed-sum variant", () => {
  const name = "caf\xe9\xff.txt"; // bytes >= 0x80 make the signed and unsigned sums differ
  assert(hasValidChecksum(header({ name })));
  assert(hasValidChecksum(header({ name, checksum: "signed" })));
  assertEquals(parse(header({ name, checksum: "signed" }), 0).size, 0);

  const flipped = header({ name: "ok.txt" });
  flipped[3]! ^= 0x01;
  assert(!hasValidChecksum(flipped));
  assertThrows(
    () => parse(flipped, 1536),
    ArchiveError,
    "test.tar: bad header checksum at offset 1536",
  );
  assertThrows(() => parse(header({ checksum: 12345 })), ArchiveError, "bad header checksum");

  const garbage = header();
  garbage.set(encoder.encode("zz"), 148);
  assertThrows(() => parse(garbage), ArchiveError, "bad header checksum at offset 0");
  assertThrows(
    () => parse(new Uint8Array(100), 512),
    ArchiveError,
    "incomplete header at offset 512",
  );
});

Deno.test("parseHeader reads octal size fields however they are terminated", () => {
  const cases: [string, number][] = [
    ["00000000012\0", 10],
    ["00000000012 ", 10],
    ["        12 \0", 10], // leading spaces, space then NUL
    ["12\0\0\0\0\0\0\0\0\0\0", 10],
    ["777777777777", 0o777777777777], // all 12 digits, no terminator (star)
    ["\0\0\0\0\0\0\0\0\0\0\0\0", 0], // blank field
    ["            ", 0],
  ];
  for (const [field, size] of cases) {
    assertEquals(parse(header({ size: field })).size, size, JSON.stringify(field));
  }
  for (
    const field of [
      "garbage!!!!\0",
      "0000000001x\0",
      "12 34\0\0\0\0\0\0\0",
      "-0000000001\0",
      "0000000009\0\0",
    ]
  ) {
    assertThrows(
      () => parse(header({ size: field })),
      ArchiveError,
      "invalid size field at offset 0",
    );
  }
});

Deno.test("parseHeader reads GNU base-256 size fields", () => {
  const base256 = (...bytes: number[]) => {
    const field = new Uint8Array(12);
    field[0] = 0x80;
    field.set(bytes, 12 - bytes.length);
    return field;
  };
  assertEquals(parse(header({ size: base256(0x01, 0x00) })).size, 256);
  // 10 GiB: past what 11 octal digits hold.
  assertEquals(parse(header({ size: base256(0x02, 0x80, 0x00, 0x00, 0x00) })).size, 10 * 2 ** 30);
  // Number.MAX_SAFE_INTEGER = 0x1f_ffff_ffff_ffff still fits; one more does not.
  const max = base256(0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
  assertEquals(parse(header({ size: max })).size, Number.MAX_SAFE_INTEGER);
  const tooBig = base256(0x20, 0, 0, 0, 0, 0, 0);
  assertThrows(
    () => parse(header({ size: tooBig })),
    ArchiveError,
    "invalid size field at offset 0",
  );
  const huge = base256(1, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  assertThrows(() => parse(header({ size: huge })), ArchiveError, "invalid size field");
  // Negative: 0xff-prefixed two's complement.
  const negative = new Uint8Array(12).fill(0xff);
  assertThrows(
    () => parse(header({ size: negative }), 2048),
    ArchiveError,
    "invalid size field at offset 2048",
  );
});

Deno.test("parseHeader reads base-256 fields written by Python's tarfile", async () => {
  await using dir = await tempDir();
  // A uid over 8^7 forces base-256 in the GNU format; the header must still parse.
  await run("python3", [
    "-c",
    `import tarfile, io
with tarfile.open("big.tar", "w", format=tarfile.GNU_FORMAT) as t:
    i = tarfile.TarInfo("f"); i.size = 3; i.uid = 8**9
    t.addfile(i, io.BytesIO(b"abc"))`,
  ], { cwd: dir.path });
  const block = (await Deno.readFile(`${dir.path}/big.tar`)).subarray(0, 512);
  assertEquals(block[108]! & 0x80, 0x80, "uid field is base-256");
  const parsed = parse(block);
  assertEquals([parsed.name, parsed.size, parsed.format], ["f", 3, "gnu"]);
});

Deno.test("parseHeader flags old GNU sparse headers with extension blocks", () => {
  const extended = header({
    typeflag: "S",
    format: "gnu",
    patch: { offset: 482, bytes: new Uint8Array([1]) },
  });
  assertEquals(parse(extended).sparseExtended, true);
  assertEquals(parse(header({ typeflag: "S", format: "gnu" })).sparseExtended, false);
  // Byte 482 is part of the prefix in ustar headers: not a flag there.
  const ustar = header({ typeflag: "S", patch: { offset: 482, bytes: new Uint8Array([1]) } });
  assertEquals(parse(ustar).sparseExtended, false);
});

Deno.test("isZeroBlock detects the end-of-archive marker", () => {
  assert(isZeroBlock(new Uint8Array(512)));
  const almost = new Uint8Array(512);
  almost[511] = 1;
  assert(!isZeroBlock(almost));
  assert(!isZeroBlock(header()));
});

Deno.test("parsePaxRecords reads records, including values with '=' and newlines", () => {
  const payload = paxPayload({
    path: "a=b\nc",
    linkpath: "x",
    size: "12345678901",
    "SCHILY.xattr.k": "",
  });
  const records = parsePaxRecords(payload, "test.tar", "PAX header at offset 0");
  assertEquals(records.get("path"), "a=b\nc");
  assertEquals(records.get("linkpath"), "x");
  assertEquals(records.get("size"), "12345678901");
  assertEquals(records.get("SCHILY.xattr.k"), "");
  // Trailing NUL padding after the last record is tolerated.
  const padded = new Uint8Array(payload.length + 7);
  padded.set(payload);
  assertEquals(parsePaxRecords(padded, "t", "h").size, 4);
  assertEquals(parsePaxRecords(new Uint8Array(), "t", "h").size, 0);
});

Deno.test("parsePaxRecords rejects malformed records instead of looping", () => {
  const bad = [
    "0 path=x\n", // zero length would never advance
    "3 path=x\n", // shorter than its own text
    "99 path=x\n", // longer than the payload
    "11 path=x\n", // off by one: last byte is not a newline
    "path=x\n", // no length
    "x1 path=x\n",
    "9 pathx\n\n", // no '='
    "9 =value\n", // empty key
    "10path=xy\n", // no space after the length
    "99999999999999999999 a=b\n", // absurd length
    "10 path=x\n8 a=",
  ];
  for (const text of bad) {
    assertThrows(
      () => parsePaxRecords(encoder.encode(text), "test.tar", "PAX header at offset 512"),
      ArchiveError,
      "of the PAX header at offset 512",
    );
  }
});

Deno.test("parseGnuLongName stops at the NUL", () => {
  assertEquals(parseGnuLongName(encoder.encode("long/name\0\0\0")), "long/name");
  assertEquals(parseGnuLongName(encoder.encode("no-terminator")), "no-terminator");
});

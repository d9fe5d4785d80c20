import { zstdCompressSync } from "node:zlib";
import { hexPrefix, sniffStreamFormat } from "../../src/archive/stream_format.ts";
import { run } from "../helpers/command.ts";
import { assertEquals } from "../helpers/assert.ts";
import { integrationTest } from "../helpers/tools.ts";
import { header, tempDir } from "./_tar_fixtures.ts";

const bytes = (...values: number[]) => new Uint8Array(values);
const text = (value: string) => new TextEncoder().encode(value);

Deno.test("sniffStreamFormat tells compressed streams by their magic bytes", () => {
  assertEquals(sniffStreamFormat(bytes(0x1f, 0x8b, 0x08, 0x00)), "gzip");
  assertEquals(sniffStreamFormat(zstdCompressSync(text("hello"))), "zstd");
  // pzstd starts with a skippable frame (0x184D2A50–5F, little-endian).
  assertEquals(sniffStreamFormat(bytes(0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0)), "zstd");
  assertEquals(sniffStreamFormat(bytes(0x5f, 0x2a, 0x4d, 0x18)), "zstd");
  assertEquals(sniffStreamFormat(bytes(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00)), "xz");
  assertEquals(sniffStreamFormat(text("BZh91AY&SY")), "bzip2");
});

Deno.test("sniffStreamFormat needs the whole magic", () => {
  assertEquals(sniffStreamFormat(bytes(0x1f)), "unknown");
  assertEquals(sniffStreamFormat(bytes(0x28, 0xb5, 0x2f)), "unknown");
  assertEquals(sniffStreamFormat(bytes(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x01)), "unknown");
  // "BZh" without a block size digit is text, not bzip2.
  assertEquals(sniffStreamFormat(text("BZhello")), "unknown");
});

Deno.test("sniffStreamFormat tells tars by their first header block", () => {
  assertEquals(sniffStreamFormat(header({ format: "ustar" })), "tar");
  assertEquals(sniffStreamFormat(header({ format: "gnu" })), "tar");
  // v7: no magic, only a valid checksum.
  assertEquals(sniffStreamFormat(header({ format: "v7" })), "tar");
  assertEquals(sniffStreamFormat(header({ format: "v7", checksum: "signed" })), "tar");
  // An empty tar is zero blocks.
  assertEquals(sniffStreamFormat(new Uint8Array(1024)), "tar");
});

Deno.test("sniffStreamFormat refuses what is not a tar", () => {
  assertEquals(sniffStreamFormat(new Uint8Array(0)), "empty");
  const png = bytes(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
  assertEquals(sniffStreamFormat(png), "unknown");
  assertEquals(hexPrefix(png), "89 50 4e 47");
  // A v7 header with a wrong checksum, and a header cut short, are not tars.
  assertEquals(sniffStreamFormat(header({ format: "v7", checksum: 1234 })), "unknown");
  assertEquals(sniffStreamFormat(header().subarray(0, 511)), "unknown");
  // Fewer than 512 zero bytes are not a tar block.
  assertEquals(sniffStreamFormat(new Uint8Array(100)), "unknown");
  assertEquals(sniffStreamFormat(text('{"manifests": []}')), "unknown");
});

integrationTest("sniffStreamFormat knows the output of real tools", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/a.txt`, "hello\n".repeat(100));
  const expected: [string, string][] = [
    ["tar -cf - a.txt", "tar"],
    ["tar --format=v7 -cf - a.txt", "tar"],
    ["gzip -c a.txt", "gzip"],
    ["pigz -c a.txt", "gzip"],
    ["zstd -qc a.txt", "zstd"],
    ["pzstd -qc a.txt", "zstd"],
    ["xz -c a.txt", "xz"],
    ["bzip2 -c a.txt", "bzip2"],
  ];
  for (const [command, format] of expected) {
    const { stdoutBytes } = await run("sh", ["-c", command], { cwd: dir.path });
    assertEquals(sniffStreamFormat(stdoutBytes.subarray(0, 512)), format, command);
  }
}, { tools: ["tar", "gzip", "pigz", "zstd", "pzstd", "xz", "bzip2"] });

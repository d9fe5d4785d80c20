import { parseHeader } from "../../src/archive/tar_header.ts";
import { layOut, tarHeader } from "../../src/pull/tar_layout.ts";
import { assertEquals } from "../helpers/assert.ts";

Deno.test("layOut: every entry at a block boundary, end marker counted", () => {
  const layout = layOut([
    { kind: "dir", name: "blobs/" },
    { kind: "blob", name: "blobs/sha256/aa", digest: "sha256:aa", size: 1000 },
    { kind: "bytes", name: "index.json", data: new Uint8Array(3) },
  ]);
  assertEquals(layout.entries.map((e) => [e.headerOffset, e.dataOffset, e.size]), [
    [0, 512, 0],
    [512, 1024, 1000],
    [2048, 2560, 3],
  ]);
  assertEquals(layout.totalSize, 3072 + 1024);
});

Deno.test("tarHeader: our reader reads it back; sizes of 8 GiB and more in base-256", () => {
  for (const size of [0, 1, 511, 8 * 1024 ** 3 - 1, 8 * 1024 ** 3, 50 * 1024 ** 3 + 7]) {
    const header = parseHeader(tarHeader({ kind: "bytes", name: "blobs/sha256/ab", size }), 0, "t");
    assertEquals([header.name, header.size], ["blobs/sha256/ab", size]);
  }
  const dir = parseHeader(tarHeader({ kind: "dir", name: "blobs", size: 0 }), 0, "t");
  assertEquals(dir.name.replace(/\/$/, ""), "blobs");
});

Deno.test("tarHeader: mode 0644 for a file and 0755 for a directory unless one is given", () => {
  const mode = (header: Uint8Array) =>
    parseInt(new TextDecoder().decode(header.subarray(100, 107)), 8);
  assertEquals(mode(tarHeader({ kind: "bytes", name: "a", size: 1 })), 0o644);
  assertEquals(mode(tarHeader({ kind: "dir", name: "d", size: 0 })), 0o755);
  assertEquals(mode(tarHeader({ kind: "bytes", name: "bin/run", size: 1, mode: 0o755 })), 0o755);
  assertEquals(mode(tarHeader({ kind: "dir", name: "private", size: 0, mode: 0o700 })), 0o700);
});

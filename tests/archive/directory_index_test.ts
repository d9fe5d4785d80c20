/**
 * `indexDirectory`: an image directory read as the loaders read a tar. Files become entries by
 * their path under the directory; links resolve as in a tar (relative, absolute within the
 * directory, loops refused), a link leaving the directory is followed on the file system; data
 * is read from the files in place; a directory that is no image layout is refused before it is
 * walked.
 */
import { indexDirectory } from "../../src/archive/directory_index.ts";
import type { TarIndex } from "../../src/archive/tar_index.ts";
import { ArchiveError } from "../../src/errors.ts";
import {
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "../helpers/assert.ts";
import { tempDir } from "./_tar_fixtures.ts";

/** Writes `text` to `dir/name`, making its directories; returns the path. */
async function put(dir: string, name: string, text: string): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(path, text);
  return path;
}

async function readAll(index: TarIndex, name: string, offset = 0, length?: number) {
  const entry = index.resolve(name);
  const parts: Uint8Array[] = [];
  for await (const chunk of index.read(entry, offset, length ?? entry.size - offset)) {
    parts.push(chunk);
  }
  return new TextDecoder().decode(
    parts.reduce((a, b) => new Uint8Array([...a, ...b]), new Uint8Array()),
  );
}

Deno.test("a directory's files are entries by path, read in place by byte range", async () => {
  await using dir = await tempDir();
  await put(dir.path, "index.json", "{}");
  await put(dir.path, "blobs/sha256/abc", "hello, layer");
  const index = await indexDirectory(`${dir.path}/`);
  assertEquals(index.label, `${dir.path}/`);
  assertEquals(
    [...index.entries.values()].map((e) => [e.name, e.type, e.size]),
    [
      ["blobs", "directory", 0],
      ["blobs/sha256", "directory", 0],
      ["blobs/sha256/abc", "file", 12],
      ["index.json", "file", 2],
    ],
  );
  assertEquals(index.size, 14);
  assertEquals(await readAll(index, "blobs/sha256/abc"), "hello, layer");
  assertEquals(await readAll(index, "./blobs//sha256/abc", 7, 5), "layer");
});

Deno.test("symlinks: relative and absolute inside resolve in the directory, outside on the file system", async () => {
  await using dir = await tempDir();
  await using elsewhere = await tempDir();
  await put(dir.path, "manifest.json", "[]");
  await put(dir.path, "abc.tar", "layer bytes");
  await Deno.mkdir(`${dir.path}/id1`);
  await Deno.symlink("../abc.tar", `${dir.path}/id1/layer.tar`);
  await Deno.mkdir(`${dir.path}/id2`);
  await Deno.symlink(`${await Deno.realPath(dir.path)}/abc.tar`, `${dir.path}/id2/layer.tar`);
  const outside = await put(elsewhere.path, "big.tar", "kept elsewhere");
  await Deno.symlink(outside, `${dir.path}/def.tar`);
  const index = await indexDirectory(dir.path);
  assertEquals(index.resolve("id1/layer.tar").name, "abc.tar");
  assertEquals(index.resolve("id2/layer.tar").name, "abc.tar");
  assertEquals(await readAll(index, "id1/layer.tar"), "layer bytes");
  assertEquals(index.resolve("def.tar").size, 14);
  assertEquals(await readAll(index, "def.tar"), "kept elsewhere");
  // The files' bytes: the directory's own, and what the link out of it points to.
  assertEquals(index.size, "[]".length + "layer bytes".length + "kept elsewhere".length);
});

Deno.test("a symlink loop and a dangling link are named when resolved", async () => {
  await using dir = await tempDir();
  await put(dir.path, "manifest.json", "[]");
  await Deno.symlink("b", `${dir.path}/a`);
  await Deno.symlink("a", `${dir.path}/b`);
  await Deno.symlink("gone.tar", `${dir.path}/dangling`);
  const index = await indexDirectory(dir.path);
  assertStringIncludes(assertThrows(() => index.resolve("a"), ArchiveError).message, "loop");
  assertStringIncludes(
    assertThrows(() => index.resolve("dangling"), ArchiveError).message,
    `"dangling" links to "gone.tar", which is not in the archive`,
  );
});

Deno.test("a directory that is no image layout is refused, naming what would make one", async () => {
  await using dir = await tempDir();
  await put(dir.path, "notes.txt", "hi");
  const error = await assertRejects(() => indexDirectory(dir.path), ArchiveError);
  assertStringIncludes(error.message, `${dir.path}: is a directory but not an image layout`);
  assertStringIncludes(error.message, "index.json");
  assertStringIncludes(error.message, "manifest.json");
});

Deno.test("a file removed after the listing fails its read with the entry's name", async () => {
  await using dir = await tempDir();
  await put(dir.path, "index.json", "{}");
  await put(dir.path, "blobs/sha256/abc", "0123456789");
  const index = await indexDirectory(dir.path);
  await Deno.truncate(`${dir.path}/blobs/sha256/abc`, 4);
  const error = await assertRejects(() => readAll(index, "blobs/sha256/abc"), ArchiveError);
  assertStringIncludes(error.message, "blobs/sha256/abc: cannot read 10 bytes at 0 of its 10");
});

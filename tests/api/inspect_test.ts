/**
 * The public `inspect` (mod.ts): a path and a stream of the same archive give the same
 * report; a file that is no archive is an ArchiveError; an aborted signal rejects with its
 * reason.
 */
import { ArchiveError, inspect } from "../../mod.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { writeDocker25Save } from "../helpers/image_fixtures.ts";

Deno.test("inspect: a path and a stream of the same archive report the same images", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dip-api-inspect-" });
  try {
    const archive = await writeDocker25Save(`${dir}/app.tar`, [
      { name: "app:1" },
      { name: "tool:2", architecture: "arm64" },
    ]);
    const byPath = await inspect(archive.path);
    assertEquals(byPath.totals.images, 2);
    assertEquals(
      byPath.images.map((i) => i.manifestDigest),
      archive.images.map((i) => i.manifestDigest),
    );
    using file = await Deno.open(archive.path);
    const byStream = await inspect(file.readable);
    assertEquals(byStream.archive.streamed, true);
    assertEquals(byStream.images, byPath.images);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("inspect: a file that is no image archive is an ArchiveError", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dip-api-inspect-" });
  try {
    await Deno.writeTextFile(`${dir}/notes.tar`, "not a tar at all, just text");
    const error = await assertRejects(() => inspect(`${dir}/notes.tar`), ArchiveError);
    assertEquals(error.archive, `${dir}/notes.tar`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("inspect: an aborted signal rejects with its reason", async () => {
  const reason = new Error("not now");
  const rejected = await assertRejects(() =>
    inspect("/nonexistent.tar", { signal: AbortSignal.abort(reason) })
  );
  assert(rejected === reason);
});

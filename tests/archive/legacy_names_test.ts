/**
 * A Docker 25+ save whose `manifest.json` and `index.json` name an image differently: the
 * index's names stay the ones a push uses, the other name is kept beside them with a note
 * saying both, and `--image` (`findImages`/`selectImage`) finds the image by either. Files that
 * agree (`app:1` and `docker.io/library/app:1` are one name) add nothing.
 */
import { findImages, openImageArchive, selectImage } from "../../src/archive/image_archive.ts";
import { ArchiveError } from "../../src/errors.ts";
import { assertEquals, assertRejects, assertStringIncludes } from "../helpers/assert.ts";
import { run } from "../helpers/command.ts";
import { writeDocker25Save } from "../helpers/image_fixtures.ts";
import { integrationTest } from "../helpers/tools.ts";
import { tempDir } from "./_tar_fixtures.ts";

/** A Docker 25 save of app:1 and tool:2, unpacked into `dir/save`, `manifest.json` edited. */
async function unpackedSave(dir: string, edit: (manifest: { RepoTags: string[] }[]) => void) {
  await writeDocker25Save(`${dir}/save.tar`, [
    { name: "app:1", layerSizes: [1000] },
    { name: "tool:2", layerSizes: [1200] },
  ]);
  await Deno.mkdir(`${dir}/save`);
  await run("tar", ["xf", `${dir}/save.tar`, "-C", `${dir}/save`]);
  const manifest = JSON.parse(await Deno.readTextFile(`${dir}/save/manifest.json`));
  edit(manifest);
  await Deno.writeTextFile(`${dir}/save/manifest.json`, JSON.stringify(manifest));
  await run("tar", ["cf", `${dir}/edited.tar`, "-C", `${dir}/save`, "."]);
}

integrationTest(
  "names only manifest.json gives are kept, noted and matched by --image",
  async () => {
    await using dir = await tempDir();
    await unpackedSave(dir.path, (manifest) => {
      manifest[0]!.RepoTags = ["registry.example/other:9"];
    });
    for (const path of [`${dir.path}/save`, `${dir.path}/edited.tar`]) {
      const archive = await openImageArchive(path);
      const [app, tool] = archive.images;
      assertEquals(app!.names, ["docker.io/library/app:1", "1"]);
      assertEquals(app!.legacyNames, ["registry.example/other:9"]);
      assertEquals(app!.notes, [
        'manifest.json names this image "registry.example/other:9", index.json ' +
        '"docker.io/library/app:1", "1": a push uses index.json\'s; either name selects it (images)',
      ]);
      assertEquals(tool!.legacyNames, undefined);
      assertEquals(tool!.notes, []);
      assertEquals(findImages(archive, "registry.example/other:9"), [app]);
      assertEquals(selectImage(archive, "registry.example/other:9"), app);
      assertEquals(selectImage(archive, "app:1"), app);
    }
  },
  { tools: ["tar"] },
);

integrationTest("files that agree add no name and no note", async () => {
  await using dir = await tempDir();
  await unpackedSave(dir.path, () => {});
  const archive = await openImageArchive(`${dir.path}/save`);
  assertEquals(archive.images.map((i) => i.legacyNames), [undefined, undefined]);
  assertEquals(archive.images.flatMap((i) => i.notes), []);
}, { tools: ["tar"] });

integrationTest(
  "a manifest.json beside index.json that is not docker save's list is an error",
  async () => {
    await using dir = await tempDir();
    await unpackedSave(dir.path, () => {});
    await Deno.writeTextFile(`${dir.path}/save/manifest.json`, '{"Config":"x"}');
    const error = await assertRejects(() => openImageArchive(`${dir.path}/save`), ArchiveError);
    assertStringIncludes(error.message, "manifest.json: the top level must be an array");
  },
  { tools: ["tar"] },
);

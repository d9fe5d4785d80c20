/**
 * containers/image's `dir:` layout, as `skopeo copy … dir:` writes it, read as a directory, as a
 * tar of one, and as a stream of that tar: the config and layers are the writer's, media types
 * that lie about a layer's compression (skopeo labels a docker-archive's plain tars gzip) are
 * corrected with a note, and every broken shape fails at load with the file it is about.
 */
import { openImageArchive } from "../../src/archive/image_archive.ts";
import { loadImages } from "../../src/archive/image_archive.ts";
import type { ArchiveBlob, ImageArchive } from "../../src/archive/image.ts";
import { readArchiveStream } from "../../src/archive/stream_archive.ts";
import { ArchiveError } from "../../src/errors.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../helpers/assert.ts";
import { run } from "../helpers/command.ts";
import { writeDockerSaveLegacy, writeOciArchive } from "../helpers/image_fixtures.ts";
import { sha256Digest } from "../helpers/random.ts";
import { skopeoCopy } from "../helpers/skopeo.ts";
import { integrationTest } from "../helpers/tools.ts";
import { tempDir } from "./_tar_fixtures.ts";

const TOOLS = ["skopeo", "tar"];
/** Above the 1 MiB a stream holds: this layer goes past as a stream reads it. */
const LARGE = 1_200_000;

async function blobBytes(blob: ArchiveBlob): Promise<Uint8Array> {
  const parts: number[] = [];
  for await (const chunk of blob.read(0, blob.size)) parts.push(...chunk);
  return new Uint8Array(parts);
}

/** The image of a one-image archive: its config, layers and manifest as plain values. */
function only(archive: ImageArchive) {
  assertEquals(archive.images.length, 1);
  const image = archive.images[0]!;
  const [config, ...layers] = image.root.blobs;
  return {
    image,
    config: config!,
    layers,
    manifest: JSON.parse(new TextDecoder().decode(image.root.bytes)),
  };
}

integrationTest(
  "skopeo's dir: from a docker-archive: read in place, as a tar and as a stream",
  async () => {
    await using dir = await tempDir();
    const { images: [written] } = await writeDockerSaveLegacy(`${dir.path}/app.tar`, [
      { name: "app:1", layerSizes: [LARGE, 2000] },
    ]);
    await skopeoCopy(`docker-archive:${dir.path}/app.tar`, `dir:${dir.path}/d`);
    await run("tar", ["cf", `${dir.path}/d.tar`, "-C", `${dir.path}/d`, "."]);
    using file = await Deno.open(`${dir.path}/d.tar`);
    const streamed = await loadImages(
      (await readArchiveStream({ label: "-", stream: file.readable })).index,
    );
    for (
      const archive of [
        await openImageArchive(`${dir.path}/d`),
        await openImageArchive(`${dir.path}/d.tar`),
        streamed,
      ]
    ) {
      assertEquals(archive.format, "dir");
      const { image, config, layers, manifest } = only(archive);
      assertEquals(image.names, []);
      assertEquals(config.digest, written!.configDigest);
      assertEquals(layers.map((l) => l.digest), written!.layerDiffIds);
      // skopeo wrote these plain tars as …tar.gzip: the manifest pushed says what they are.
      const plain = "application/vnd.docker.image.rootfs.diff.tar";
      assertEquals(layers.map((l) => l.mediaType), [plain, plain]);
      assertEquals(manifest.layers.map((l: { mediaType: string }) => l.mediaType), [plain, plain]);
      assertEquals(image.root.digest, sha256Digest(image.root.bytes));
      assertEquals(image.notes.length, 1);
      assertStringIncludes(image.notes[0]!, "(gzip → none)");
      if (archive !== streamed) {
        assertEquals(sha256Digest(await blobBytes(layers[1]!)), written!.layerDiffIds[1]);
      }
    }
  },
  { tools: TOOLS },
);

integrationTest("a dir: whose media types are right is pushed byte for byte", async () => {
  await using dir = await tempDir();
  const { images: [written] } = await writeOciArchive(`${dir.path}/app.tar`, [
    { name: "app:1", layerSizes: [3000] },
  ]);
  await skopeoCopy(`oci-archive:${dir.path}/app.tar:1`, `dir:${dir.path}/d`);
  const { image, config, layers } = only(await openImageArchive(`${dir.path}/d`));
  const stored = await Deno.readFile(`${dir.path}/d/manifest.json`);
  assertEquals(image.root.bytes, stored);
  assertEquals(image.root.digest, written!.manifestDigest);
  assertEquals(config.digest, written!.configDigest);
  assertEquals(layers.map((l) => l.digest), written!.layerDigests);
  assertEquals(image.notes, []);
}, { tools: TOOLS });

integrationTest("a broken dir: fails at load, naming the file", async (t) => {
  await using dir = await tempDir();
  await writeDockerSaveLegacy(`${dir.path}/app.tar`, [{ name: "app:1", layerSizes: [1000, 2000] }]);
  await skopeoCopy(`docker-archive:${dir.path}/app.tar`, `dir:${dir.path}/good`);
  const manifest = JSON.parse(await Deno.readTextFile(`${dir.path}/good/manifest.json`));
  const layerHex = (manifest.layers[1].digest as string).slice(7);
  const configHex = (manifest.config.digest as string).slice(7);
  let n = 0;
  const broken = async (
    name: string,
    change: (d: string) => Promise<void>,
    expected: string,
  ) => {
    await t.step(name, async () => {
      const d = `${dir.path}/case${++n}`;
      await run("cp", ["-r", `${dir.path}/good`, d]);
      await change(d);
      const error = await assertRejects(() => openImageArchive(d), ArchiveError);
      assertStringIncludes(error.message, expected);
      assert(!error.message.includes("\n"), "one line");
    });
  };
  await broken(
    "a layer's file missing",
    (d) => Deno.remove(`${d}/${layerHex}`),
    `layer ${manifest.layers[1].digest} is missing (no file ${layerHex})`,
  );
  await broken(
    "a layer's file cut short",
    (d) => Deno.truncate(`${d}/${layerHex}`, 512),
    `is 512 bytes in ${layerHex} but its descriptor says`,
  );
  await broken(
    "a config that is not the one named",
    (d) => Deno.writeTextFile(`${d}/${configHex}`, " ".repeat(manifest.config.size)),
    `config ${configHex} does not match its digest`,
  );
  await broken(
    "a schema 1 manifest",
    (d) => Deno.writeTextFile(`${d}/manifest.json`, '{"schemaVersion":1,"fsLayers":[]}'),
    "manifest.json: is a Docker schema 1 manifest",
  );
  await broken(
    "a manifest without layers",
    (d) => Deno.writeTextFile(`${d}/manifest.json`, '{"schemaVersion":2,"config":{}}'),
    "manifest.json: config.digest must be a non-empty string",
  );
  await broken(
    "a version this reader does not know",
    (d) => Deno.writeTextFile(`${d}/version`, "Directory Transport Version: 2.0\n"),
    'version says "Directory Transport Version: 2.0"',
  );
}, { tools: TOOLS });

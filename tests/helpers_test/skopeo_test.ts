import { zstdCompressSync } from "node:zlib";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { run } from "../helpers/command.ts";
import { buildLayerTar, writeOciArchive } from "../helpers/image_fixtures.ts";
import { sha256Digest } from "../helpers/random.ts";
import { startRegistry } from "../helpers/registry.ts";
import { hashLayer, pullBack, skopeoArchive, skopeoCopy, umociImage } from "../helpers/skopeo.ts";
import { integrationTest } from "../helpers/tools.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dip-skopeo-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

integrationTest("umociImage + skopeoArchive make archives skopeo can push", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/l1/etc`, { recursive: true });
    await Deno.writeTextFile(`${dir}/l1/etc/hello`, "hello\n");
    await Deno.mkdir(`${dir}/l2/data`, { recursive: true });
    await Deno.writeFile(`${dir}/l2/data/blob.bin`, crypto.getRandomValues(new Uint8Array(5000)));
    const image = await umociImage(`${dir}/layout`, "v1", [`${dir}/l1`, `${dir}/l2`]);
    assertEquals(image.layerDigests.length, 2);
    for (const [i, digest] of image.layerDigests.entries()) {
      const layer = await hashLayer(`${dir}/layout/blobs/${digest.replace(":", "/")}`);
      assertEquals(layer.digest, digest);
      assertEquals(layer.diffId, image.layerDiffIds[i]);
    }

    await skopeoArchive("docker-archive", `${dir}/layout`, "v1", `${dir}/docker.tar`);
    await skopeoArchive("oci-archive", `${dir}/layout`, "v1", `${dir}/oci.tar`);
    const dockerNames = (await run("tar", ["-tf", `${dir}/docker.tar`])).stdout;
    assert(dockerNames.includes("manifest.json"), dockerNames);
    const listing = (await run("tar", ["-tvf", `${dir}/docker.tar`])).stdout;
    // skopeo stores <digest>.tar and links <id>/layer.tar to it.
    assert(/layer\.tar -> \.\.\/[0-9a-f]{64}\.tar/.test(listing), listing);
    const ociNames = (await run("tar", ["-tf", `${dir}/oci.tar`])).stdout;
    assert(ociNames.includes("index.json") && !ociNames.includes("manifest.json"), ociNames);

    const creds = { username: "u", password: "p" };
    await using registry = await startRegistry({ htpasswd: creds });
    await skopeoCopy(
      `docker-archive:${dir}/docker.tar`,
      `docker://${registry.host}/from/docker:v1`,
      {
        destCreds: creds,
      },
    );
    await skopeoCopy(`oci-archive:${dir}/oci.tar:v1`, `docker://${registry.host}/from/oci:v1`, {
      destCreds: creds,
      args: ["--preserve-digests"],
    });
    const viaDocker = await pullBack(registry, "from/docker", "v1", { creds });
    assertEquals(viaDocker.configDigest, image.configDigest);
    assertEquals(viaDocker.layerDiffIds, image.layerDiffIds);
    const viaOci = await pullBack(registry, "from/oci", "v1", { creds });
    assertEquals(viaOci.manifestDigest, image.manifestDigest);
    assertEquals(viaOci.layerDigests, image.layerDigests);
    assertEquals(
      (await pullBack(registry, "from/oci", image.manifestDigest)).manifestDigest,
      image.manifestDigest,
    );
  });
}, { tools: ["docker-registry", "skopeo", "umoci", "htpasswd", "tar"] });

integrationTest("pullBack refuses an image index and names the way out", async () => {
  await withTempDir(async (dir) => {
    const archive = await writeOciArchive(`${dir}/multi.tar`, [
      { name: "m:a", architecture: "amd64", layerSizes: [10] },
      { name: "m:b", architecture: "arm64", layerSizes: [20] },
    ], { index: { refName: "latest" } });
    await using registry = await startRegistry();
    await skopeoCopy(`oci-archive:${archive.path}:latest`, `docker://${registry.host}/m:latest`, {
      args: ["--all"],
    });
    await assertRejects(() => pullBack(registry, "m", "latest"), TypeError, "image index");
  });
});

Deno.test("hashLayer decompresses gzip and zstd by magic bytes", async () => {
  const tar = await buildLayerTar("hash-layer", 2000);
  const diffId = sha256Digest(tar);
  const dir = await Deno.makeTempDir({ prefix: "dip-hash-layer-" });
  try {
    const gzip = new Uint8Array(
      await new Response(
        new Blob([tar.slice().buffer]).stream().pipeThrough(new CompressionStream("gzip")),
      ).arrayBuffer(),
    );
    const zstd = new Uint8Array(zstdCompressSync(tar));
    for (const [name, bytes] of [["plain", tar], ["gzip", gzip], ["zstd", zstd]] as const) {
      await Deno.writeFile(`${dir}/${name}`, bytes);
      assertEquals(await hashLayer(`${dir}/${name}`), { digest: sha256Digest(bytes), diffId });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

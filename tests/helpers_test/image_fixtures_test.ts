import { assert, assertEquals } from "../helpers/assert.ts";
import { run } from "../helpers/command.ts";
import {
  type FixtureImageInfo,
  makeBigLayerArchive,
  normalizeName,
  splitName,
  writeDocker25Save,
  writeDockerSaveLegacy,
  writeOciArchive,
} from "../helpers/image_fixtures.ts";
import { startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { pullBack, skopeoCopy } from "../helpers/skopeo.ts";
import { integrationTest } from "../helpers/tools.ts";

const creds = { username: "pusher", password: "pa55word" };

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dip-fixture-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function tarList(path: string): Promise<string[]> {
  return (await run("tar", ["-tf", path])).stdout.trim().split("\n");
}

/** Pushes with skopeo, pulls back and compares with what the generator reported. */
async function roundTrip(
  registry: TestRegistry,
  source: string,
  info: FixtureImageInfo,
  repo: string,
): Promise<void> {
  const c = registry.credentials;
  await skopeoCopy(source, `docker://${registry.host}/${repo}:pushed`, c ? { destCreds: c } : {});
  const pulled = await pullBack(registry, repo, "pushed");
  assertEquals(pulled.configDigest, info.configDigest);
  assertEquals(pulled.layerDiffIds, info.layerDiffIds);
  assertEquals((pulled.config.rootfs as { diff_ids: string[] }).diff_ids, info.layerDiffIds);
}

integrationTest(
  "writeDockerSaveLegacy: skopeo accepts it and pushes images sharing a layer",
  async () => {
    await withTempDir(async (dir) => {
      const path = `${dir}/legacy.tar`;
      const archive = await writeDockerSaveLegacy(path, [
        { name: "app:1", layerSizes: [1000, 2000], layerSeeds: ["base", "app1"] },
        { name: "other/app:2", layerSizes: [1000, 500], layerSeeds: ["base", "app2"] },
      ]);
      const [first, second] = archive.images;
      assert(first !== undefined && second !== undefined);
      assertEquals(first.layerDiffIds[0], second.layerDiffIds[0]);
      assertEquals(first.manifestDigest, undefined);

      const names = await tarList(path);
      assertEquals(names.slice(-2), ["manifest.json", "repositories"]);
      const layerEntries = names.filter((n) => n.endsWith("/layer.tar"));
      // "base" is the first layer of both images: same parent chain, so one <id> directory.
      assertEquals(layerEntries.length, 3);
      for (const diffId of first.layerDiffIds) {
        assert(!names.some((n) => n.startsWith(diffId.slice(7))), "ids are not layer digests");
      }

      await using registry = await startRegistry({ htpasswd: creds });
      await roundTrip(registry, `docker-archive:${path}:app:1`, first, "legacy/one");
      await roundTrip(registry, `docker-archive:${path}:other/app:2`, second, "legacy/two");
    });
  },
  { tools: ["docker-registry", "skopeo", "htpasswd", "tar"] },
);

integrationTest("writeDockerSaveLegacy links a layer shared under another parent", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/linked.tar`;
    const archive = await writeDockerSaveLegacy(path, [
      { name: "a:1", layerSizes: [100, 300], layerSeeds: ["x", "shared"] },
      { name: "b:1", layerSizes: [200, 300], layerSeeds: ["y", "shared"] },
    ]);
    const listing = (await run("tar", ["-tvf", path])).stdout;
    assert(/layer\.tar -> \.\.\/[0-9a-f]{64}\/layer\.tar/.test(listing), listing);
    await using registry = await startRegistry();
    const b = archive.images[1];
    assert(b !== undefined);
    await roundTrip(registry, `docker-archive:${path}:b:1`, b, "linked");
  });
}, { tools: ["docker-registry", "skopeo", "tar"] });

integrationTest(
  "writeDocker25Save: skopeo accepts it as docker-archive and as OCI layout",
  async () => {
    await withTempDir(async (dir) => {
      const path = `${dir}/docker25.tar`;
      const archive = await writeDocker25Save(path, [
        { name: "app:1", layerSizes: [1500, 700] },
        { name: "tool:2.0", layerSizes: [300] },
      ], { layerSymlinks: true });
      const names = await tarList(path);
      for (const name of ["oci-layout", "index.json", "manifest.json", "repositories"]) {
        assert(names.includes(name), name);
      }
      const listing = (await run("tar", ["-tvf", path])).stdout;
      assert(/layer\.tar -> \.\.\/blobs\/sha256\/[0-9a-f]{64}/.test(listing), listing);

      await Deno.mkdir(`${dir}/x`);
      await run("tar", ["-xf", path, "-C", `${dir}/x`]);
      const index = JSON.parse(await Deno.readTextFile(`${dir}/x/index.json`));
      assertEquals(index.manifests[0].annotations, {
        "io.containerd.image.name": "docker.io/library/app:1",
        "org.opencontainers.image.ref.name": "1",
      });
      const legacy = JSON.parse(await Deno.readTextFile(`${dir}/x/manifest.json`));
      assert(String(legacy[0].Config).startsWith("blobs/sha256/"));

      await using registry = await startRegistry();
      const [app, tool] = archive.images;
      assert(app !== undefined && tool !== undefined);
      await roundTrip(registry, `docker-archive:${path}:tool:2.0`, tool, "d25/archive");
      // Copying the OCI layout keeps the manifest byte for byte; without --preserve-digests
      // skopeo would gzip the uncompressed layers on the way.
      await skopeoCopy(`oci:${dir}/x:1`, `docker://${registry.host}/d25/oci:1`, {
        args: ["--preserve-digests"],
      });
      const pulled = await pullBack(registry, "d25/oci", "1");
      assertEquals(pulled.manifestDigest, app.manifestDigest);
      assertEquals(pulled.layerDiffIds, app.layerDiffIds);
      assertEquals(pulled.layerDigests, app.layerDigests);
    });
  },
  { tools: ["docker-registry", "skopeo", "tar"] },
);

integrationTest("writeOciArchive: gzip layers pushed unchanged", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/oci.tar`;
    const archive = await writeOciArchive(path, [{ name: "app:1", layerSizes: [4000, 10] }, {
      name: "app:2",
    }]);
    const names = await tarList(path);
    assert(!names.includes("manifest.json"));
    const [one] = archive.images;
    assert(one !== undefined);
    assert(one.layerDigests[0] !== one.layerDiffIds[0]);

    await using registry = await startRegistry();
    await skopeoCopy(`oci-archive:${path}:1`, `docker://${registry.host}/oci/app:1`, {
      args: ["--preserve-digests"],
    });
    const pulled = await pullBack(registry, "oci/app", "1");
    assertEquals(pulled.manifestDigest, one.manifestDigest);
    assertEquals(pulled.layerDigests, one.layerDigests);
    assertEquals(pulled.layerDiffIds, one.layerDiffIds);
    assertEquals(pulled.layerMediaTypes, [
      "application/vnd.oci.image.layer.v1.tar+gzip",
      "application/vnd.oci.image.layer.v1.tar+gzip",
    ]);
  });
});

integrationTest("writeOciArchive with an image index pushes a multi-platform image", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/multi.tar`;
    const archive = await writeOciArchive(path, [
      { name: "multi:amd64", architecture: "amd64", layerSizes: [100] },
      { name: "multi:arm64", architecture: "arm64", layerSizes: [200] },
    ], { index: { refName: "latest" } });
    assert(archive.indexDigest !== undefined);
    await using registry = await startRegistry();
    await skopeoCopy(`oci-archive:${path}:latest`, `docker://${registry.host}/multi:latest`, {
      args: ["--all", "--preserve-digests"],
    });
    const index = await registry.fetchManifest("multi", "latest");
    assertEquals(index.digest, archive.indexDigest);
    assertEquals(index.mediaType, "application/vnd.oci.image.index.v1+json");
    for (const image of archive.images) {
      const pulled = await pullBack(registry, "multi", image.manifestDigest ?? "");
      assertEquals(pulled.layerDiffIds, image.layerDiffIds);
    }
  });
});

for (const kind of ["docker-legacy", "oci"] as const) {
  integrationTest(
    `makeBigLayerArchive (${kind}) writes a pushable single-layer image`,
    async () => {
      await withTempDir(async (dir) => {
        const path = `${dir}/big.tar`;
        const size = 3 * 1024 * 1024 + 5;
        const archive = await makeBigLayerArchive(path, size, kind, { name: "big:1" });
        const stat = await Deno.stat(path);
        assert(stat.size > size && stat.size < size + 64 * 1024, String(stat.size));
        const [image] = archive.images;
        assert(image !== undefined);
        await using registry = await startRegistry();
        const source = kind === "oci" ? `oci-archive:${path}:1` : `docker-archive:${path}:big:1`;
        await roundTrip(registry, source, image, `big/${kind}`);
      });
    },
  );
}

Deno.test("splitName and normalizeName follow Docker's rules", () => {
  assertEquals(splitName("app:1"), { repository: "app", tag: "1" });
  assertEquals(splitName("localhost:5000/app"), {
    repository: "localhost:5000/app",
    tag: "latest",
  });
  assertEquals(normalizeName("app:1"), "docker.io/library/app:1");
  assertEquals(normalizeName("team/app:1"), "docker.io/team/app:1");
  assertEquals(normalizeName("ghcr.io/team/app:1"), "ghcr.io/team/app:1");
  assertEquals(normalizeName("localhost/app"), "localhost/app:latest");
});

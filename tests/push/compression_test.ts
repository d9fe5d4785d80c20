/**
 * Layers compressed on the way up, end to end against the real registry: gzip and zstd images
 * that independent Go clients (skopeo) decompress to the archive's layers, media types and
 * manifests rewritten, instant re-pushes and mounts from the blob-info cache, reproducible
 * digests at a fixed level, and the archive still checked against its digests.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { type CliResult, runCli } from "../helpers/cli.ts";
import {
  writeDocker25Save,
  writeDockerSaveLegacy,
  writeOciArchive,
} from "../helpers/image_fixtures.ts";
import { integrationTest, startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { goDiffIds } from "../helpers/skopeo.ts";
import { startProxy } from "../helpers/proxy.ts";
import { FakeRegistry } from "../helpers/fake_registry.ts";

const TOOLS = ["docker-registry", "skopeo"];
/** Over a 4 MiB block, so the big layer is several gzip members / zstd frames. */
const LAYERS = [9_500_000, 300_000];

const GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd";

interface Fixture extends AsyncDisposable {
  dir: string;
  cache: string;
}

async function fixture(): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "dip-compress-" });
  return {
    dir,
    cache: `${dir}/cache`,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

function push(
  registry: TestRegistry,
  ref: string,
  archive: string,
  args: string[],
  cache: string,
): Promise<CliResult> {
  return runCli(["-r", `${registry.url}/${ref}`, "-f", archive, ...args], {
    env: { XDG_CACHE_HOME: cache, DOCKER_PUSHER_COMPRESSION: "" },
  });
}

function ok(result: CliResult, what: string): void {
  assertEquals(result.code, 0, `${what}\n--- stderr ---\n${result.stderr}`);
}

const repoRequests = async (registry: TestRegistry, repo: string, since: number) =>
  (await registry.requests()).slice(since).filter((r) => r.path.startsWith(`/v2/${repo}/`));

integrationTest(
  "gzip (default) and zstd images decompress, in Go, to the archive's layers",
  async () => {
    await using registry = await startRegistry();
    await using f = await fixture();
    const archive = await writeDockerSaveLegacy(`${f.dir}/app.tar`, [
      { name: "app:1", layerSizes: LAYERS },
    ]);
    const { layerDiffIds } = archive.images[0]!;
    for (
      const [repo, args, mediaType, manifestType] of [
        ["gz", [], GZIP, "application/vnd.docker.distribution.manifest.v2+json"],
        [
          "zs",
          ["--compression", "zstd"],
          OCI_ZSTD,
          "application/vnd.oci.image.manifest.v1+json",
        ],
      ] as const
    ) {
      ok(await push(registry, `${repo}:1`, archive.path, [...args], f.cache), repo);
      const { json, mediaType: served } = await registry.fetchManifest(repo, "1");
      assertEquals(served, manifestType, repo);
      const layers = json.layers as { mediaType: string; size: number }[];
      assertEquals(layers.map((l) => l.mediaType), LAYERS.map(() => mediaType), repo);
      if (repo === "zs") {
        assertEquals(
          (json.config as { mediaType: string }).mediaType,
          "application/vnd.oci.image.config.v1+json",
        );
      }
      assertEquals(await goDiffIds(registry, `${repo}:1`), layerDiffIds, repo);
    }
  },
  { tools: TOOLS },
);

integrationTest(
  "a re-push finds every compressed layer with HEAD; another repository mounts them",
  async () => {
    await using registry = await startRegistry();
    await using f = await fixture();
    const archive = await writeDockerSaveLegacy(`${f.dir}/app.tar`, [
      { name: "app:1", layerSizes: LAYERS },
    ]);
    const first = await push(registry, "one:1", archive.path, [], f.cache);
    ok(first, "first push");
    let since = (await registry.requests()).length;
    const again = await push(registry, "one:1", archive.path, [], f.cache);
    ok(again, "re-push");
    assertEquals(again.stdout, first.stdout, "the same manifest digest");
    const log = await repoRequests(registry, "one", since);
    assertEquals(log.filter((r) => r.method === "POST" || r.method === "PATCH").length, 0);
    assertEquals(log.filter((r) => r.method === "HEAD").length, LAYERS.length + 1);

    since = (await registry.requests()).length;
    const other = await push(registry, "two:1", archive.path, [], f.cache);
    ok(other, "push to another repository");
    const mounts = (await repoRequests(registry, "two", since))
      .filter((r) => r.method === "POST");
    assertEquals(mounts.length, LAYERS.length + 1);
    assert(mounts.every((r) => r.uri.includes("mount=") && r.status === 201), "all mounted");
    assertEquals(
      (await repoRequests(registry, "two", since)).filter((r) => r.method === "PATCH"),
      [],
    );
    assertStringIncludes(other.stderr, "from another repository");

    // --mount-from names the source to try first.
    since = (await registry.requests()).length;
    ok(await push(registry, "three:1", archive.path, ["--mount-from", "two"], f.cache), "three");
    const fromTwo = (await repoRequests(registry, "three", since))
      .filter((r) => r.method === "POST");
    assertEquals(fromTwo.length, LAYERS.length + 1);
    assert(fromTwo.every((r) => r.uri.includes("from=two") && r.status === 201), "from two");
  },
  { tools: TOOLS },
);

integrationTest(
  "a fixed level gives the same digests without the cache; auto may not",
  async () => {
    await using registry = await startRegistry();
    await using f = await fixture();
    const archive = await writeDockerSaveLegacy(`${f.dir}/app.tar`, [
      { name: "app:1", layerSizes: LAYERS },
    ]);
    const level = ["--compression-level", "6"];
    const a = await push(registry, "a:1", archive.path, level, `${f.dir}/cache-a`);
    const b = await push(registry, "b:1", archive.path, level, `${f.dir}/cache-b`);
    ok(a, "a");
    ok(b, "b");
    assertEquals(a.stdout.split("@")[1], b.stdout.split("@")[1]);
  },
  { tools: TOOLS },
);

integrationTest("Docker 25 and OCI index archives: manifests and index rewritten", async () => {
  await using registry = await startRegistry();
  await using f = await fixture();
  const d25 = await writeDocker25Save(`${f.dir}/d25.tar`, [{ name: "app:2", layerSizes: LAYERS }]);
  ok(await push(registry, "d25:2", d25.path, ["--compression", "gzip"], f.cache), "docker 25");
  const { json } = await registry.fetchManifest("d25", "2");
  assertEquals(
    (json.layers as { mediaType: string }[]).map((l) => l.mediaType),
    LAYERS.map(() => "application/vnd.oci.image.layer.v1.tar+gzip"),
  );
  assertEquals(await goDiffIds(registry, "d25:2"), d25.images[0]!.layerDiffIds);

  const multi = await writeOciArchive(`${f.dir}/multi.tar`, [
    { name: "multi:amd64", layerSizes: [200_000], architecture: "amd64" },
    { name: "multi:arm64", layerSizes: [150_000], architecture: "arm64" },
  ], { compression: "none", index: { refName: "1" } });
  ok(await push(registry, "multi:1", multi.path, ["--compression", "zstd"], f.cache), "index");
  const index = await registry.fetchManifest("multi", "1");
  assertEquals(index.mediaType, "application/vnd.oci.image.index.v1+json");
  const children = index.json.manifests as { digest: string; size: number }[];
  assertEquals(children.length, 2);
  for (const [i, child] of children.entries()) {
    const served = await registry.fetchManifest("multi", child.digest);
    assertEquals(served.digest, child.digest);
    assertEquals(served.bytes.length, child.size);
    assertEquals(
      (served.json.layers as { mediaType: string }[]).map((l) => l.mediaType),
      [OCI_ZSTD],
    );
    assertEquals(
      await goDiffIds(registry, `multi@${child.digest}`),
      multi.images[i]!.layerDiffIds,
    );
  }
}, { tools: TOOLS });

integrationTest(
  "compressed pushes still check the archive: a corrupt layer fails, nothing tagged",
  async () => {
    await using registry = await startRegistry();
    await using f = await fixture();
    const archive = await writeDockerSaveLegacy(`${f.dir}/app.tar`, [
      { name: "app:1", layerSizes: [600_000] },
    ]);
    // Flip one byte in the middle of the layer's data.
    const bytes = await Deno.readFile(archive.path);
    const at = bytes.length - 300_000;
    bytes[at] = bytes[at]! ^ 0xff;
    await Deno.writeFile(archive.path, bytes);
    const result = await push(registry, "bad:1", archive.path, ["--retry-attempts", "0"], f.cache);
    assertEquals(result.code, 1, result.stderr);
    assertStringIncludes(result.stderr, "does not match its digest");
    assertEquals(await registry.listTags("bad"), []);
  },
  { tools: TOOLS },
);

integrationTest("push by digest needs --compression none; a dry run sends nothing", async () => {
  await using registry = await startRegistry();
  await using f = await fixture();
  const archive = await writeDocker25Save(`${f.dir}/d25.tar`, [{
    name: "app:2",
    layerSizes: LAYERS,
  }]);
  const digest = archive.images[0]!.manifestDigest!;
  const byDigest = await push(registry, `app@${digest}`, archive.path, [], f.cache);
  assertEquals(byDigest.code, 2, byDigest.stderr);
  assertStringIncludes(byDigest.stderr, "--compression none");
  ok(
    await push(registry, `app@${digest}`, archive.path, ["--compression", "none"], f.cache),
    "none",
  );

  const since = (await registry.requests()).length;
  const dry = await push(registry, "dry:1", archive.path, ["--dry-run"], f.cache);
  ok(dry, "dry run");
  assertStringIncludes(dry.stderr, "digest depends on the compressed layers");
  const sent = (await registry.requests()).slice(since)
    .filter((r) => ["POST", "PATCH", "PUT"].includes(r.method));
  assertEquals(sent, []);
}, { tools: TOOLS });

integrationTest(
  "layers at the threshold go compressed in resumable segments of about a chunk",
  async () => {
    await using registry = await startRegistry();
    await using f = await fixture();
    const archive = await writeDockerSaveLegacy(`${f.dir}/app.tar`, [
      { name: "app:1", layerSizes: [9_000_000, 100_000] },
    ]);
    const args = ["--chunked", "--large-layer-threshold", "1MiB", "--chunk-size", "2MiB"];
    ok(await push(registry, "seg:1", archive.path, args, f.cache), "--chunked");
    const { json } = await registry.fetchManifest("seg", "1");
    assertEquals((json.layers as { mediaType: string }[]).map((l) => l.mediaType), [GZIP, GZIP]);
    const log = (await registry.requests()).filter((r) => r.path.startsWith("/v2/seg/"));
    // The big layer in 2 MiB segments of its compressed stream; the small one in one PATCH.
    const patches = log.filter((r) => r.method === "PATCH").length;
    const big = (json.layers as { size: number }[])[0]!.size;
    assertEquals(patches - 1, Math.ceil(big / (2 * 2 ** 20)), `${big} compressed bytes`);
    assertEquals(await goDiffIds(registry, "seg:1"), archive.images[0]!.layerDiffIds);
  },
  { tools: TOOLS },
);

integrationTest(
  "a body-size cap (413) on a compressed layer: it goes as stored, in chunks",
  async () => {
    await using registry = await startRegistry();
    await using f = await fixture();
    const archive = await writeDockerSaveLegacy(`${f.dir}/app.tar`, [
      { name: "app:1", layerSizes: [5_000_000, 200_000] },
    ]);
    await using proxy = startProxy({
      upstream: registry.url,
      quirks: { maxBodyBytes: 1.5 * 2 ** 20 },
    });
    const result = await runCli(
      ["-r", `${proxy.url}/cap:1`, "-f", archive.path, "--chunk-size", "1MiB"],
      { env: { XDG_CACHE_HOME: f.cache, DOCKER_PUSHER_COMPRESSION: "" } },
    );
    ok(result, "capped");
    assertStringIncludes(result.stderr, "(413); sending it as stored, in chunks");
    const { json } = await registry.fetchManifest("cap", "1");
    assertEquals((json.layers as { mediaType: string }[]).map((l) => l.mediaType), [
      "application/vnd.docker.image.rootfs.diff.tar",
      GZIP,
    ]);
    assertEquals(await goDiffIds(registry, "cap:1"), archive.images[0]!.layerDiffIds);
  },
  { tools: TOOLS },
);

Deno.test("a registry that wants every body's length (411): layers go as stored, with a notice", async () => {
  const fake = await FakeRegistry.start({ server: "tcp" });
  await using f = await fixture();
  try {
    const archive = await writeDockerSaveLegacy(`${f.dir}/app.tar`, [
      { name: "app:1", layerSizes: [300_000] },
    ]);
    const result = await runCli(["-r", `${fake.url}/app:1`, "-f", archive.path], {
      env: { XDG_CACHE_HOME: f.cache, DOCKER_PUSHER_COMPRESSION: "" },
    });
    ok(result, "411");
    assertStringIncludes(result.stderr, "compressed on the fly (411); sending it as stored");
    const manifest = JSON.parse(new TextDecoder().decode(fake.manifests.get("app:1")!.bytes));
    assertEquals(
      (manifest.layers as { mediaType: string; digest: string }[]).map((
        l,
      ) => [l.mediaType, l.digest]),
      [["application/vnd.docker.image.rootfs.diff.tar", archive.images[0]!.layerDigests[0]]],
    );
  } finally {
    await fake.close();
  }
});

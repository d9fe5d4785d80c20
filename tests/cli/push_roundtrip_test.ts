/**
 * End-to-end pushes: the CLI as a subprocess pushes archives of every kind we read into a real
 * registry, then skopeo pulls the image back and every digest is compared with what the
 * archive holds. Layers are compared by their uncompressed digest (diff_id), so a pusher that
 * recompressed or relabelled a layer would still be caught by the media-type checks.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { type CliResult, lines, runCli } from "../helpers/cli.ts";
import { run } from "../helpers/command.ts";
import {
  type FixtureImageInfo,
  writeDocker25Save,
  writeDockerSaveLegacy,
  writeOciArchive,
} from "../helpers/image_fixtures.ts";
import {
  type Credentials,
  integrationTest,
  type LoggedRequest,
  startRegistry,
  type TestRegistry,
} from "../helpers/registry.ts";
import { pullBack, type PulledImage, skopeoArchive, umociImage } from "../helpers/skopeo.ts";

const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
const DIGEST = /^sha256:[0-9a-f]{64}$/;

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dip-push-roundtrip-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `-r` for a repository of the test registry (plain HTTP). */
function target(registry: TestRegistry, repoAndRef: string): string {
  return `http://${registry.host}/${repoAndRef}`;
}

/**
 * Checks a successful push's exit code and stdout: exactly one line,
 * `127.0.0.1:PORT/<repo>:<tag>@sha256:<hex>`. Returns the digest it names.
 */
function pushedDigest(
  result: CliResult,
  registry: TestRegistry,
  repo: string,
  tag: string,
): string {
  assertEquals(result.code, 0, `the push failed; stderr:\n${result.stderr}`);
  assertEquals(lines(result.stdout).length, 1, `stdout: ${JSON.stringify(result.stdout)}`);
  const prefix = `${registry.host}/${repo}:${tag}@`;
  assert(
    result.stdout.startsWith(prefix) && result.stdout.endsWith("\n"),
    `stdout ${JSON.stringify(result.stdout)} should be "${prefix}<digest>\\n"`,
  );
  const digest = result.stdout.slice(prefix.length, -1);
  assert(DIGEST.test(digest), `not a sha256 digest: ${JSON.stringify(digest)}`);
  return digest;
}

/** What a pulled-back image must match. */
interface Expected {
  configDigest: string;
  layerDiffIds: string[];
}

/**
 * Asserts a clean push of `repo:tag` and pulls it back: the digest on stdout is the one the
 * registry serves for the tag, and the config and every layer's diff_id are the archive's.
 */
async function assertRoundTrip(
  result: CliResult,
  registry: TestRegistry,
  repo: string,
  tag: string,
  expected: Expected,
  creds?: Credentials,
): Promise<PulledImage> {
  const digest = pushedDigest(result, registry, repo, tag);
  const served = await registry.fetchManifest(repo, tag);
  assertEquals(served.digest, digest, "stdout names the manifest the registry serves");
  const pulled = await pullBack(registry, repo, tag, creds === undefined ? {} : { creds });
  assertEquals(pulled.manifestDigest, digest);
  assertEquals(pulled.configDigest, expected.configDigest);
  assertEquals(pulled.layerDiffIds, expected.layerDiffIds);
  assertEquals((pulled.config.rootfs as { diff_ids: unknown }).diff_ids, expected.layerDiffIds);
  return pulled;
}

function only<T>(items: readonly T[]): T {
  assertEquals(items.length, 1);
  return items[0]!;
}

/** Blob upload sessions started in `repo` (one per blob actually sent). */
function uploadPosts(requests: LoggedRequest[], repo: string): number {
  return requests.filter((r) => r.method === "POST" && r.path === `/v2/${repo}/blobs/uploads/`)
    .length;
}

function isWrite(request: LoggedRequest): boolean {
  return ["POST", "PATCH", "PUT", "DELETE"].includes(request.method);
}

// ---------------------------------------------------------------------------------------------
// Archives written by our own generators

integrationTest("push: legacy docker save goes up as Docker schema 2 with tar layers", async () => {
  await withTempDir(async (dir) => {
    const archive = await writeDockerSaveLegacy(`${dir}/legacy.tar`, [
      { name: "app:1", layerSizes: [1200, 3000] },
    ]);
    const image = only(archive.images);
    await using registry = await startRegistry();

    const result = await runCli(["-r", target(registry, "legacy/app:1"), "-f", archive.path]);
    const pulled = await assertRoundTrip(result, registry, "legacy/app", "1", image);

    assertEquals(pulled.mediaType, DOCKER_MANIFEST);
    assertEquals(pulled.manifest.mediaType, DOCKER_MANIFEST);
    assertEquals((pulled.manifest.config as { mediaType: string }).mediaType, DOCKER_CONFIG);
    // The layers are plain tars: labelling them `.tar.gzip` would break every pull.
    assertEquals(pulled.layerMediaTypes, [DOCKER_LAYER, DOCKER_LAYER]);
    assert(!pulled.layerMediaTypes.some((t) => t.includes("gzip")));
    // Uncompressed layers: the blob digest is the diff_id.
    assertEquals(pulled.layerDigests, image.layerDiffIds);
  });
});

integrationTest(
  "push: Docker 25 save (layer symlinks) keeps its OCI manifest byte for byte",
  async () => {
    await withTempDir(async (dir) => {
      const archive = await writeDocker25Save(`${dir}/d25.tar`, [
        { name: "app:1", layerSizes: [1500, 700] },
      ], { layerSymlinks: true });
      const image = only(archive.images);
      await using registry = await startRegistry();

      const result = await runCli(["-r", target(registry, "d25/app:1"), "-f", archive.path]);
      const pulled = await assertRoundTrip(result, registry, "d25/app", "1", image);

      assertEquals(pulled.manifestDigest, image.manifestDigest);
      assertEquals(pulled.mediaType, OCI_MANIFEST);
      assertEquals(pulled.layerDigests, image.layerDigests);
    });
  },
);

integrationTest("push: OCI archive with gzip layers keeps its manifest digest", async () => {
  await withTempDir(async (dir) => {
    const archive = await writeOciArchive(`${dir}/oci.tar`, [
      { name: "app:2.0", layerSizes: [4000, 10] },
    ]);
    const image = only(archive.images);
    assert(image.layerDigests[0] !== image.layerDiffIds[0], "the fixture's layers are gzipped");
    await using registry = await startRegistry();

    const result = await runCli(["-r", target(registry, "oci/app:2.0"), "-f", archive.path]);
    const pulled = await assertRoundTrip(result, registry, "oci/app", "2.0", image);

    assertEquals(pulled.manifestDigest, image.manifestDigest);
    assertEquals(pulled.mediaType, OCI_MANIFEST);
    assertEquals(pulled.layerDigests, image.layerDigests);
    assertEquals(pulled.layerMediaTypes, [OCI_LAYER_GZIP, OCI_LAYER_GZIP]);
  });
});

integrationTest(
  "push: OCI archive with an image index pushes both platforms and the index",
  async () => {
    await withTempDir(async (dir) => {
      const archive = await writeOciArchive(`${dir}/multi.tar`, [
        { name: "multi:amd64", architecture: "amd64", layerSizes: [300, 200] },
        { name: "multi:arm64", architecture: "arm64", layerSizes: [400] },
      ], { index: { refName: "latest" } });
      const indexDigest = archive.indexDigest;
      assert(indexDigest !== undefined);
      await using registry = await startRegistry();

      const result = await runCli(["-r", target(registry, "multi:latest"), "-f", archive.path]);
      assertEquals(pushedDigest(result, registry, "multi", "latest"), indexDigest);
      const index = await registry.fetchManifest("multi", "latest");
      assertEquals(index.digest, indexDigest);
      assertEquals(index.mediaType, OCI_INDEX);
      assertEquals(await registry.listTags("multi"), ["latest"]);

      const children = (index.json.manifests as { digest: string }[]).map((m) => m.digest);
      assertEquals(children, archive.images.map((i) => i.manifestDigest));
      for (const image of archive.images) {
        const digest = image.manifestDigest!;
        assert(await registry.manifestExists("multi", digest), `child ${digest} exists by digest`);
        const pulled = await pullBack(registry, "multi", digest);
        assertEquals(pulled.manifestDigest, digest);
        assertEquals(pulled.configDigest, image.configDigest);
        assertEquals(pulled.layerDiffIds, image.layerDiffIds);
        assertEquals(pulled.layerDigests, image.layerDigests);
      }
    });
  },
);

// ---------------------------------------------------------------------------------------------
// Archives written by other tools

/** A two-layer image in an OCI layout made by umoci. */
async function umociLayout(dir: string, tag: string) {
  await Deno.mkdir(`${dir}/l1/etc`, { recursive: true });
  await Deno.writeTextFile(`${dir}/l1/etc/hello`, "hello from layer one\n");
  await Deno.mkdir(`${dir}/l2/data`, { recursive: true });
  const bytes = new Uint8Array(3000).map((_, i) => (i * 31 + 7) & 0xff);
  await Deno.writeFile(`${dir}/l2/data/blob.bin`, bytes);
  const layout = `${dir}/layout`;
  const image = await umociImage(layout, tag, [`${dir}/l1`, `${dir}/l2`]);
  return { layout, image };
}

integrationTest("push: skopeo docker-archive (<digest>.tar with symlinked layer.tar)", async () => {
  await withTempDir(async (dir) => {
    const { layout, image } = await umociLayout(dir, "v1");
    const path = `${dir}/skopeo-docker.tar`;
    await skopeoArchive("docker-archive", layout, "v1", path);
    const listing = (await run("tar", ["-tvf", path])).stdout;
    assert(/layer\.tar -> \.\.\/[0-9a-f]{64}\.tar/.test(listing), listing);
    await using registry = await startRegistry();

    const result = await runCli(["-r", target(registry, "from/skopeo-docker:v1"), "-f", path]);
    const pulled = await assertRoundTrip(result, registry, "from/skopeo-docker", "v1", image);
    assertEquals(pulled.mediaType, DOCKER_MANIFEST);
    for (const mediaType of pulled.layerMediaTypes) {
      // skopeo stores docker-archive layers uncompressed; the label must say so.
      assertEquals(mediaType, DOCKER_LAYER);
    }
  });
}, { tools: ["docker-registry", "skopeo", "umoci", "tar"] });

integrationTest("push: skopeo oci-archive keeps umoci's manifest digest", async () => {
  await withTempDir(async (dir) => {
    const { layout, image } = await umociLayout(dir, "v1");
    const path = `${dir}/skopeo-oci.tar`;
    await skopeoArchive("oci-archive", layout, "v1", path);
    await using registry = await startRegistry();

    const result = await runCli(["-r", target(registry, "from/skopeo-oci:v1"), "-f", path]);
    const pulled = await assertRoundTrip(result, registry, "from/skopeo-oci", "v1", image);
    assertEquals(pulled.manifestDigest, image.manifestDigest);
    assertEquals(pulled.layerDigests, image.layerDigests);
  });
}, { tools: ["docker-registry", "skopeo", "umoci"] });

integrationTest("push: umoci OCI layout tarred by GNU tar (./-prefixed names)", async () => {
  await withTempDir(async (dir) => {
    const { layout, image } = await umociLayout(dir, "v1");
    const path = `${dir}/gnu.tar`;
    await run("tar", ["-C", layout, "-cf", path, "."]);
    const names = (await run("tar", ["-tf", path])).stdout;
    assert(names.split("\n").includes("./index.json"), names);
    await using registry = await startRegistry();

    const result = await runCli(["-r", target(registry, "from/gnu-tar:v1"), "-f", path]);
    const pulled = await assertRoundTrip(result, registry, "from/gnu-tar", "v1", image);
    assertEquals(pulled.manifestDigest, image.manifestDigest);
    assertEquals(pulled.layerDigests, image.layerDigests);
  });
}, { tools: ["docker-registry", "skopeo", "umoci", "tar"] });

// ---------------------------------------------------------------------------------------------
// Multi-image archives

/**
 * Pushes two images of one archive, one after the other, into one repository with `--image`,
 * and checks that each push sent only its own image and skipped the layer they share.
 */
async function pushTwoFromOneArchive(
  registry: TestRegistry,
  path: string,
  repo: string,
  first: { select: string; tag: string; info: FixtureImageInfo },
  second: { select: string; tag: string; info: FixtureImageInfo },
): Promise<void> {
  const unique = (info: FixtureImageInfo) => 1 + new Set(info.layerDiffIds).size;
  const shared = second.info.layerDiffIds.filter((d) => first.info.layerDiffIds.includes(d));
  assert(shared.length > 0, "the fixture's images share a layer");

  const one = await runCli([
    "-r",
    target(registry, `${repo}:${first.tag}`),
    "-f",
    path,
    "--image",
    first.select,
  ]);
  await assertRoundTrip(one, registry, repo, first.tag, first.info);
  assertEquals(await registry.listTags(repo), [first.tag], "only the chosen image is tagged");
  const afterFirst = await registry.requests();
  assertEquals(uploadPosts(afterFirst, repo), unique(first.info));

  const two = await runCli([
    "-r",
    target(registry, `${repo}:${second.tag}`),
    "-f",
    path,
    "--image",
    second.select,
  ]);
  await assertRoundTrip(two, registry, repo, second.tag, second.info);
  assertEquals(await registry.listTags(repo), [first.tag, second.tag].sort());
  const secondRun = (await registry.requests()).slice(afterFirst.length);
  // The shared layer is already in the repository: the second push starts no session for it.
  assertEquals(uploadPosts(secondRun, repo), unique(second.info) - shared.length);
}

integrationTest("push: --image picks one image of a legacy docker save", async () => {
  await withTempDir(async (dir) => {
    // "base" is shared with the same parent (one <id> directory); "app1" is shared under
    // another parent, which Docker writes as a symlink to the first copy.
    const archive = await writeDockerSaveLegacy(`${dir}/legacy-multi.tar`, [
      { name: "app:1", layerSizes: [800, 1200], layerSeeds: ["base", "app1"] },
      { name: "app:2", layerSizes: [800, 600], layerSeeds: ["base", "app2"] },
      { name: "tool:1", layerSizes: [500, 1200], layerSeeds: ["tool", "app1"] },
    ]);
    const [app1, , tool] = archive.images;
    assert(app1 !== undefined && tool !== undefined);
    await using registry = await startRegistry();

    await pushTwoFromOneArchive(
      registry,
      archive.path,
      "legacy-multi",
      { select: "app:1", tag: "app-1", info: app1 },
      // The short name in RepoTags, chosen by its fully qualified spelling.
      { select: "docker.io/library/tool:1", tag: "tool-1", info: tool },
    );
    const pulled = await pullBack(registry, "legacy-multi", "tool-1");
    assertEquals(pulled.layerMediaTypes, [DOCKER_LAYER, DOCKER_LAYER]);
  });
});

integrationTest("push: --image picks one image of a Docker 25 save", async () => {
  await withTempDir(async (dir) => {
    const archive = await writeDocker25Save(`${dir}/d25-multi.tar`, [
      { name: "app:1", layerSizes: [900, 400], layerSeeds: ["base", "app"] },
      { name: "tool:2", layerSizes: [900, 300], layerSeeds: ["base", "tool"] },
    ], { layerSymlinks: true });
    const [app, tool] = archive.images;
    assert(app !== undefined && tool !== undefined);
    await using registry = await startRegistry();

    await pushTwoFromOneArchive(
      registry,
      archive.path,
      "d25-multi",
      { select: "docker.io/library/app:1", tag: "app-1", info: app },
      { select: "tool:2", tag: "tool-2", info: tool },
    );
    // Both went up through index.json: the archive's OCI manifests, unchanged.
    assertEquals((await registry.fetchManifest("d25-multi", "app-1")).digest, app.manifestDigest);
    assertEquals((await registry.fetchManifest("d25-multi", "tool-2")).digest, tool.manifestDigest);
  });
});

// ---------------------------------------------------------------------------------------------
// Push by digest

integrationTest("push: -r repo@digest pushes by digest and creates no tag", async () => {
  await withTempDir(async (dir) => {
    const archive = await writeOciArchive(`${dir}/oci.tar`, [{ name: "app:1" }]);
    const image = only(archive.images);
    const digest = image.manifestDigest!;
    await using registry = await startRegistry();

    const result = await runCli([
      "-r",
      target(registry, `by-digest@${digest}`),
      "-f",
      archive.path,
    ]);
    assertEquals(result.code, 0, result.stderr);
    assertEquals(lines(result.stdout).length, 1);
    assertStringIncludes(result.stdout, `${registry.host}/by-digest@${digest}`);
    assert(result.stdout.endsWith(`@${digest}\n`), result.stdout);

    assert(await registry.manifestExists("by-digest", digest));
    assertEquals(await registry.listTags("by-digest"), []);
    const pulled = await pullBack(registry, "by-digest", digest);
    assertEquals(pulled.manifestDigest, digest);
    assertEquals(pulled.configDigest, image.configDigest);
    assertEquals(pulled.layerDiffIds, image.layerDiffIds);
  });
});

integrationTest(
  "push: -r repo@digest prints the reference with the digest once",
  async () => {
    await withTempDir(async (dir) => {
      const archive = await writeOciArchive(`${dir}/oci.tar`, [{ name: "app:1" }]);
      const digest = only(archive.images).manifestDigest!;
      await using registry = await startRegistry();
      const result = await runCli([
        "-r",
        target(registry, `by-digest@${digest}`),
        "-f",
        archive.path,
      ]);
      assertEquals(result.code, 0, result.stderr);
      assertEquals(result.stdout, `${registry.host}/by-digest@${digest}\n`);
    });
  },
);

integrationTest("push: -r repo@<wrong digest> is a usage error and pushes nothing", async () => {
  await withTempDir(async (dir) => {
    const archive = await writeOciArchive(`${dir}/oci.tar`, [{ name: "app:1" }]);
    const digest = only(archive.images).manifestDigest!;
    const wrong = `sha256:${"0123456789abcdef".repeat(4)}`;
    await using registry = await startRegistry();

    const result = await runCli(["-r", target(registry, `by-digest@${wrong}`), "-f", archive.path]);
    assertEquals(result.code, 2, result.stderr);
    assertEquals(result.stdout, "");
    assert(result.stderr.startsWith("Error: "), result.stderr);
    assertStringIncludes(result.stderr, digest);
    assertStringIncludes(result.stderr, wrong);
    assert(!/^\s+at /m.test(result.stderr), result.stderr);

    assertEquals((await registry.requests()).filter(isWrite), []);
    assertEquals(await registry.listTags("by-digest"), []);
    assertEquals(await registry.manifestExists("by-digest", digest), false);
  });
});

// ---------------------------------------------------------------------------------------------
// Basic auth (htpasswd)

const CREDS: Credentials = { username: "pusher", password: "c0rrect-h0rse" };

/** The ways to give credentials, each a CLI argument list plus environment and stdin. */
const CREDENTIAL_SOURCES: {
  name: string;
  args: string[];
  env?: Record<string, string>;
  stdin?: string;
}[] = [
  { name: "-u/-p", args: ["-u", CREDS.username, "-p", CREDS.password] },
  {
    name: "--password-stdin",
    args: ["-u", CREDS.username, "--password-stdin"],
    stdin: `${CREDS.password}\n`,
  },
  {
    name: "DOCKER_PUSHER_USERNAME/DOCKER_PUSHER_PASSWORD",
    args: [],
    env: { DOCKER_PUSHER_USERNAME: CREDS.username, DOCKER_PUSHER_PASSWORD: CREDS.password },
  },
];

for (const source of CREDENTIAL_SOURCES) {
  integrationTest(`push: basic auth with ${source.name}`, async () => {
    await withTempDir(async (dir) => {
      const archive = await writeDockerSaveLegacy(`${dir}/app.tar`, [
        { name: "app:1", layerSizes: [700, 900] },
      ]);
      await using registry = await startRegistry({ htpasswd: CREDS });

      const result = await runCli(
        ["-r", target(registry, "private/app:1"), "-f", archive.path, ...source.args],
        {
          ...(source.env === undefined ? {} : { env: source.env }),
          ...(source.stdin === undefined ? {} : { stdin: source.stdin }),
        },
      );
      await assertRoundTrip(result, registry, "private/app", "1", only(archive.images), CREDS);
      assert(!result.stdout.includes(CREDS.password) && !result.stderr.includes(CREDS.password));
      // The registry did demand credentials, and got them.
      const requests = await registry.requests();
      assert(requests.some((r) => r.status === 401), "the registry asked for credentials");
      assert(requests.some((r) => r.method === "PUT" && r.path.endsWith("/manifests/1")));
    });
  }, { tools: ["docker-registry", "skopeo", "htpasswd"] });
}

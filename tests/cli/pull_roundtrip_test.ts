/**
 * `pull` against the real registry: what it writes reads back in skopeo (as `docker-archive:`
 * and `oci-archive:`) and in our own push with every digest kept; bundles of several images;
 * platforms of a multi-platform index; and `pull -o - | push -f -` with no file between.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { lines, runCli } from "../helpers/cli.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import { pull, readArchive, seed, skopeoConfig, tempDir } from "../pull/_support.ts";

const TOOLS = ["docker-registry", "skopeo"];
const MAIN = new URL("../../main.ts", import.meta.url).pathname;

integrationTest("skopeo reads the archive both ways; a push of it keeps the digest", async () => {
  await using registry = await startRegistry();
  await using dir = await tempDir();
  const { fixture, digest } = await seed(registry, "src/app:1", [
    { name: "app:1", layerSizes: [150_000, 40_000] },
  ]);
  const out = `${dir.path}/app.tar`;
  const result = await pull([`${registry.url}/src/app:1`, "-o", out]);
  assertEquals(result.code, 0, result.stderr);
  assertEquals(result.stdout, `${registry.host}/src/app:1@${digest}\n`);
  const image = fixture.images[0]!;
  for (const transport of ["docker-archive", "oci-archive"]) {
    const config = await skopeoConfig(`${transport}:${out}`);
    assertEquals(config.digest, image.configDigest, transport);
    assertEquals(config.diffIds, image.layerDiffIds, transport);
  }
  // Docker 25's layout: blobs first, the JSON files last; names as docker writes them.
  const archive = await readArchive(out);
  assertEquals(archive.names.slice(-4), [
    "index.json",
    "manifest.json",
    "oci-layout",
    "repositories",
  ]);
  assertEquals(archive.index.manifests[0]!.annotations, {
    "io.containerd.image.name": `${registry.host}/src/app:1`,
    "org.opencontainers.image.ref.name": "1",
  });
  assertEquals(archive.manifest[0]!.RepoTags, [`${registry.host}/src/app:1`]);
  assertEquals(archive.manifest[0]!.Config, `blobs/sha256/${image.configDigest.slice(7)}`);
  assertEquals(
    archive.manifest[0]!.Layers,
    image.layerDigests.map((d) => `blobs/sha256/${d.slice(7)}`),
  );
  // Layers are stored as served (gzip), so a push as stored reproduces the manifest digest.
  const pushed = await runCli([
    "-r",
    `${registry.url}/copy/app:1`,
    "-f",
    out,
    "--compression",
    "none",
  ]);
  assertEquals(pushed.code, 0, pushed.stderr);
  assertEquals(pushed.stdout, `${registry.host}/copy/app:1@${digest}\n`);
}, { tools: TOOLS });

integrationTest("several sources make one bundle; push picks each image by name", async () => {
  await using registry = await startRegistry();
  await using dir = await tempDir();
  const app = await seed(registry, "team/app:1", [{ name: "app:1", layerSizes: [20_000, 5_000] }]);
  // The worker shares the app's first layer: it is stored once.
  const worker = await seed(registry, "team/worker:2", [
    { name: "worker:2", layerSizes: [20_000, 9_000], layerSeeds: ["app:1#0", "w"] },
  ]);
  const out = `${dir.path}/bundle.tar`;
  const result = await pull([
    `${registry.url}/team/app:1`,
    `${registry.url}/team/worker@${worker.digest}`,
    `${registry.url}/team/worker:2`,
    "-o",
    out,
  ]);
  assertEquals(result.code, 0, result.stderr);
  assertEquals(lines(result.stdout), [
    `${registry.host}/team/app:1@${app.digest}`,
    `${registry.host}/team/worker@${worker.digest}`,
    `${registry.host}/team/worker:2@${worker.digest}`,
  ]);
  const archive = await readArchive(out);
  const blobs = archive.names.filter((n) => /^blobs\/sha256\/[a-f0-9]{64}$/.test(n));
  assertEquals(blobs.length, new Set(blobs).size, "each blob once");
  assertEquals(blobs.length, 3 + 2 + 2); // 3 distinct layers, 2 configs, 2 manifests
  assertEquals(archive.manifest.map((m) => m.RepoTags), [
    [`${registry.host}/team/app:1`],
    [`${registry.host}/team/worker:2`],
  ]);
  for (const [name, digest] of [["team/app:1", app.digest], ["team/worker:2", worker.digest]]) {
    const pushed = await runCli([
      "-r",
      `${registry.url}/copy/${name}`,
      "-f",
      out,
      "--image",
      `${registry.host}/${name}`,
    ]);
    assertEquals(pushed.code, 0, pushed.stderr);
    assertEquals(pushed.stdout, `${registry.host}/copy/${name}@${digest}\n`);
  }
  const config = await skopeoConfig(`docker-archive:${out}:${registry.host}/team/worker:2`);
  assertEquals(config.digest, worker.fixture.images[0]!.configDigest);
}, { tools: TOOLS });

integrationTest("--platform picks one image of an index; all keeps the index", async () => {
  await using registry = await startRegistry();
  await using dir = await tempDir();
  const { fixture, digest } = await seed(registry, "multi/app:1", [
    { name: "app-amd64:1", architecture: "amd64", layerSizes: [10_000] },
    { name: "app-arm64:1", architecture: "arm64", layerSizes: [12_000] },
  ], { index: { refName: "1" } });
  const [amd64, arm64] = fixture.images as [typeof fixture.images[0], typeof fixture.images[0]];
  const source = `${registry.url}/multi/app:1`;

  const one = await pull([source, "-o", `${dir.path}/arm.tar`, "--platform", "linux/arm64"]);
  assertEquals(one.code, 0, one.stderr);
  assertEquals(one.stdout, `${registry.host}/multi/app:1@${arm64.manifestDigest}\n`);
  assertEquals(
    (await skopeoConfig(`docker-archive:${dir.path}/arm.tar`)).digest,
    arm64.configDigest,
  );
  const armArchive = await readArchive(`${dir.path}/arm.tar`);
  assert(
    !armArchive.names.includes(`blobs/sha256/${amd64.layerDigests[0]!.slice(7)}`),
    "no amd64 layer",
  );

  // No --platform: this machine's (the tests run on linux/amd64 or linux/arm64).
  const host = Deno.build.arch === "aarch64" ? arm64 : amd64;
  const mine = await pull([source, "-o", `${dir.path}/host.tar`]);
  assertEquals(mine.stdout, `${registry.host}/multi/app:1@${host.manifestDigest}\n`, mine.stderr);

  const all = await pull([source, "-o", `${dir.path}/all.tar`, "--platform", "all"]);
  assertEquals(all.code, 0, all.stderr);
  assertEquals(all.stdout, `${registry.host}/multi/app:1@${digest}\n`);
  const archive = await readArchive(`${dir.path}/all.tar`);
  assertEquals(archive.index.manifests[0]!.digest, digest);
  // manifest.json describes single images only: this machine's platform.
  assertEquals(archive.manifest.length, 1);
  assertEquals(archive.manifest[0]!.Config, `blobs/sha256/${host.configDigest.slice(7)}`);
  assertEquals((await skopeoConfig(`oci-archive:${dir.path}/all.tar`)).digest, host.configDigest);
  const pushed = await runCli(["-r", `${registry.url}/copy/app:1`, "-f", `${dir.path}/all.tar`]);
  assertEquals(pushed.stdout, `${registry.host}/copy/app:1@${digest}\n`, pushed.stderr);

  const missing = await pull([source, "-o", `${dir.path}/s390x.tar`, "--platform", "linux/s390x"]);
  assertEquals(missing.code, 1);
  assertEquals(lines(missing.stderr).length, 1, missing.stderr);
  assertStringIncludes(
    missing.stderr,
    "has no linux/s390x variant; it has linux/amd64, linux/arm64",
  );
  assertEquals(missing.stdout, "");
  assert(!(await exists(`${dir.path}/s390x.tar`)));
}, { tools: TOOLS });

integrationTest(
  "pull -o - | push -f - copies an image between registries, digest kept",
  async () => {
    await using source = await startRegistry();
    await using target = await startRegistry();
    const { digest } = await seed(source, "src/app:1", [{
      name: "app:1",
      layerSizes: [300_000, 2_000],
    }]);
    const env = { ...Deno.env.toObject(), NO_COLOR: "1", DOCKER_PUSHER_COMPRESSION: "" };
    const script = `set -o pipefail; "${Deno.execPath()}" run -A --quiet ${MAIN} pull ` +
      `${source.url}/src/app:1 -o - | "${Deno.execPath()}" run -A --quiet ${MAIN} push -f - ` +
      `-r ${target.url}/dst/app:1 --compression none`;
    const output = await new Deno.Command("bash", {
      args: ["-c", script],
      env,
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const stderr = new TextDecoder().decode(output.stderr);
    assertEquals(output.code, 0, stderr);
    assertEquals(new TextDecoder().decode(output.stdout), `${target.host}/dst/app:1@${digest}\n`);
    assertEquals((await target.fetchManifest("dst/app", "1")).digest, digest);
  },
  { tools: ["docker-registry"] },
);

integrationTest(
  "pull A B -o - | push -f - --all copies a bundle between registries, digests kept",
  async () => {
    await using source = await startRegistry();
    await using target = await startRegistry();
    // The app's first layer is over what a stream keeps in memory: it passes into the prefix.
    const app = await seed(source, "src/app:1", [{
      name: "app:1",
      layerSizes: [1_300_000, 2_000],
    }]);
    const tool = await seed(source, "team/tool:2", [{ name: "tool:2", layerSizes: [5_000] }]);
    const env = { ...Deno.env.toObject(), NO_COLOR: "1", DOCKER_PUSHER_COMPRESSION: "" };
    const script = `set -o pipefail; "${Deno.execPath()}" run -A --quiet ${MAIN} pull ` +
      `${source.url}/src/app:1 ${source.url}/team/tool:2 -o - | ` +
      `"${Deno.execPath()}" run -A --quiet ${MAIN} push -f - --all ` +
      `-r ${target.url}/mirror --compression none`;
    const output = await new Deno.Command("bash", {
      args: ["-c", script],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assertEquals(output.code, 0, stderr);
    // Images are named as pulled (`127.0.0.1:PORT/src/app:1`): the registry host is dropped.
    assertEquals(
      lines(new TextDecoder().decode(output.stdout)).sort(),
      [
        `${target.host}/mirror/src/app:1@${app.digest}`,
        `${target.host}/mirror/team/tool:2@${tool.digest}`,
      ],
    );
    assertEquals((await target.fetchManifest("mirror/src/app", "1")).digest, app.digest);
    assertEquals((await target.fetchManifest("mirror/team/tool", "2")).digest, tool.digest);
  },
  { tools: ["docker-registry"] },
);

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/**
 * Docker itself reads what we push and loads what we pull (issue 19): archives from a real
 * `docker save` (one image, two, through a pipe, gzip'd) go up with our push and come back with
 * `docker pull` as the same image (its ID is the config digest, and the same diff IDs); our
 * pulls go into `docker load`; a `--multi-arch` push serves each platform to
 * `docker pull --platform`. The registry is the real one on 127.0.0.1, which Docker treats as an
 * insecure registry by default, so plain HTTP works without configuring the daemon.
 */
import { assertEquals } from "../helpers/assert.ts";
import { runCli } from "../helpers/cli.ts";
import {
  DOCKER,
  docker,
  DOCKER_TEST_TOOLS,
  type DockerImages,
  dockerImages,
  uniqueName,
} from "../helpers/docker.ts";
import { type FixtureImageInfo, writeDockerSaveLegacy } from "../helpers/image_fixtures.ts";
import { integrationTest, startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { seed, seedPullSources, tempDir } from "../pull/_support.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const TOOLS = ["docker-registry", ...DOCKER_TEST_TOOLS];

/**
 * Loads fixture images named `<unique>/<name>` into Docker (content seeded with the unique
 * name, so no image of an earlier run has the same ID), returning what the fixture wrote.
 */
async function loadFixtures(
  images: DockerImages,
  dir: string,
  specs: { name: string; architecture?: string }[],
): Promise<FixtureImageInfo[]> {
  const unique = uniqueName();
  const fixture = await writeDockerSaveLegacy(
    `${dir}/fixture-${unique}.tar`,
    specs.map(({ name, architecture }) => ({
      name: `${unique}/${name}`,
      layerSizes: [3000, 1500],
      layerSeeds: [`${unique}/${name}#0`, `${unique}/${name}#1`],
      ...(architecture === undefined ? {} : { architecture }),
    })),
  );
  assertEquals(
    (await images.load(fixture.path)).sort(),
    fixture.images.map((i) => i.name).sort(),
  );
  return fixture.images;
}

/** Our push, with the default compression (gzip), as a user runs it. */
async function push(args: string[]): Promise<void> {
  const result = await runCli(args, { env: { DOCKER_PUSHER_COMPRESSION: "" } });
  assertEquals(result.code, 0, result.stderr);
}

/** `bash -c script` with pipefail, `$DIP` standing for our CLI; its stdout. */
async function pipeline(script: string, dir: string): Promise<string> {
  const output = await new Deno.Command("bash", {
    args: ["-c", `set -euo pipefail\n${script}`],
    env: {
      DIP: `${Deno.execPath()} run -A --quiet ${MAIN}`,
      DOCKER,
      NO_COLOR: "1",
      XDG_STATE_HOME: `${dir}/state`,
      XDG_CACHE_HOME: `${dir}/cache`,
      DOCKER_PUSHER_COMPRESSION: "",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assertEquals(output.code, 0, `${script}\n${stderr}`);
  return new TextDecoder().decode(output.stdout);
}

/**
 * Removes the local image, pulls `ref` from the registry with Docker and checks that it is the
 * fixture's image: the same ID (config digest) and diff IDs.
 */
async function pullBackEqual(
  images: DockerImages,
  ref: string,
  expected: FixtureImageInfo,
): Promise<void> {
  await images.remove(expected.name);
  await images.pull(ref);
  const pulled = await images.inspect(ref);
  assertEquals(pulled.id, expected.configDigest, ref);
  assertEquals(pulled.diffIds, expected.layerDiffIds, ref);
}

function repoOf(registry: TestRegistry, name: string): string {
  return `${registry.host}/${name}`;
}

integrationTest(
  "docker save of one image → our push → docker pull: same ID and diff IDs",
  async () => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    await using images = await dockerImages();
    const [app] = await loadFixtures(images, dir.path, [{ name: "app:1" }]);
    await docker(["save", "-o", `${dir.path}/app.tar`, app!.name]);
    const ref = repoOf(registry, "one/app:1");
    await push(["-r", `http://${ref}`, "-f", `${dir.path}/app.tar`]);
    await pullBackEqual(images, ref, app!);
  },
  { tools: TOOLS },
);

integrationTest("docker save of two images → push --all → docker pull of each", async () => {
  await using registry = await startRegistry();
  await using dir = await tempDir();
  await using images = await dockerImages();
  const fixtures = await loadFixtures(images, dir.path, [{ name: "app:1" }, { name: "tool:2" }]);
  await docker(["save", "-o", `${dir.path}/two.tar`, ...fixtures.map((f) => f.name)]);
  await push(["--all", "-r", `http://${registry.host}/two`, "-f", `${dir.path}/two.tar`]);
  // --all pushes each image to <prefix>/<its repository>:<its tag>.
  for (const fixture of fixtures) {
    await pullBackEqual(images, repoOf(registry, `two/${fixture.name}`), fixture);
  }
}, { tools: TOOLS });

integrationTest("docker save | push -f -, plain and gzip'd → docker pull: same image", async () => {
  await using registry = await startRegistry();
  await using dir = await tempDir();
  await using images = await dockerImages();
  const [app] = await loadFixtures(images, dir.path, [{ name: "app:1" }]);
  for (const [tag, filter] of [["plain", ""], ["gzip", "| gzip -c"]] as const) {
    const ref = repoOf(registry, `piped/app:${tag}`);
    await pipeline(
      `"$DOCKER" save ${app!.name} ${filter} | $DIP push -f - -r http://${ref}`,
      dir.path,
    );
    images.track(ref);
    // The image pushed is the one saved: pulled back over the removed original.
    await images.remove(app!.name);
    await images.pull(ref);
    const pulled = await images.inspect(ref);
    assertEquals([pulled.id, pulled.diffIds], [app!.configDigest, app!.layerDiffIds], tag);
    // Back under its own name for the next round's docker save.
    await docker(["tag", ref, images.track(app!.name)]);
  }
}, { tools: [...TOOLS, "gzip"] });

integrationTest(
  "our pull of one image, of two, and with --platform all → docker load",
  async () => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    await using images = await dockerImages();
    const unique = uniqueName();
    const { app, tool, multi } = await seedPullSources(registry, unique);
    const source = (name: string) => `${registry.url}/${unique}/${name}`;
    const cases: [string, string[], FixtureImageInfo[]][] = [
      ["one", [source("app:1")], app.fixture.images],
      ["bundle", [source("app:1"), source("tool:2")], [
        ...app.fixture.images,
        ...tool.fixture.images,
      ]],
      // The whole index is kept; docker load reads manifest.json, which names this machine's
      // platform (linux/amd64 here and on CI).
      ["all", [source("multi:3"), "--platform", "all"], [multi.fixture.images[0]!]],
    ];
    for (const [label, args, expected] of cases) {
      const out = `${dir.path}/${label}.tar`;
      const pulled = await runCli(["pull", ...args, "-o", out]);
      assertEquals(pulled.code, 0, pulled.stderr);
      const loaded = await images.load(out);
      assertEquals(loaded.length, expected.length, `${label}: ${loaded}`);
      for (const [i, name] of loaded.entries()) {
        const image = await images.inspect(name);
        assertEquals([image.id, image.diffIds], [
          expected[i]!.configDigest,
          expected[i]!.layerDiffIds,
        ], `${label}: ${name}`);
      }
      await images.remove(...loaded);
    }
  },
  { tools: TOOLS },
);

integrationTest("our pull -o - | docker load", async () => {
  await using registry = await startRegistry();
  await using dir = await tempDir();
  await using images = await dockerImages();
  const unique = uniqueName();
  const app = await seed(registry, `${unique}/app:1`, [{ name: "app:1", layerSeeds: [unique] }]);
  const stdout = await pipeline(
    `$DIP pull ${registry.url}/${unique}/app:1 -o - | "$DOCKER" load`,
    dir.path,
  );
  const [name] = images.loadedFrom(stdout);
  assertEquals(name, `${registry.host}/${unique}/app:1`, stdout);
  const image = await images.inspect(name!);
  assertEquals(image.id, app.fixture.images[0]!.configDigest);
  assertEquals(image.diffIds, app.fixture.images[0]!.layerDiffIds);
}, { tools: TOOLS });

integrationTest("--multi-arch → docker pull --platform of each platform", async () => {
  await using registry = await startRegistry();
  await using dir = await tempDir();
  await using images = await dockerImages();
  const unique = uniqueName();
  const archives: string[] = [];
  const byArch = new Map<string, FixtureImageInfo>();
  for (const architecture of ["amd64", "arm64"]) {
    const fixture = await writeDockerSaveLegacy(`${dir.path}/${architecture}.tar`, [{
      name: `app:${architecture}`,
      architecture,
      layerSizes: [2000],
      layerSeeds: [`${unique}-${architecture}`],
    }]);
    archives.push("-f", fixture.path);
    byArch.set(architecture, fixture.images[0]!);
  }
  const ref = repoOf(registry, `${unique}/multi:1`);
  await push(["--multi-arch", "-r", `http://${ref}`, ...archives]);
  for (const [architecture, expected] of byArch) {
    await images.pull(ref, `linux/${architecture}`);
    const image = await images.inspect(ref);
    assertEquals(image.architecture, architecture);
    assertEquals(image.id, expected.configDigest);
    assertEquals(image.diffIds, expected.layerDiffIds);
    await images.remove(ref);
  }
}, { tools: TOOLS });

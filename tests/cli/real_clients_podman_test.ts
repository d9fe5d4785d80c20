/**
 * podman reads what we push and loads what we pull (issue 19): `podman save` in docker-archive
 * and oci-archive formats goes up with our push and comes back with `podman pull` as the same
 * image; our pulls (one image, a bundle, `--platform all`, `-o -`) go into `podman load`. podman
 * runs with a store of its own in a temporary directory; unlike Docker it does not take plain
 * HTTP from 127.0.0.1 without `--tls-verify=false`.
 */
import { assertEquals } from "../helpers/assert.ts";
import { runCli } from "../helpers/cli.ts";
import { Podman, PODMAN_TEST_TOOLS, uniqueName } from "../helpers/docker.ts";
import { type FixtureImageInfo, writeDockerSaveLegacy } from "../helpers/image_fixtures.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import { skopeo } from "../helpers/skopeo.ts";
import { seedPullSources, tempDir } from "../pull/_support.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const TOOLS = ["docker-registry", "skopeo", ...PODMAN_TEST_TOOLS];

integrationTest("podman save (docker-archive, oci-archive) → our push → podman pull", async () => {
  await using registry = await startRegistry();
  await using dir = await tempDir();
  await using podman = await Podman.start();
  const unique = uniqueName();
  const fixture = await writeDockerSaveLegacy(`${dir.path}/fixture.tar`, [{
    name: `${unique}/app:1`,
    layerSizes: [3000, 1500],
    layerSeeds: [`${unique}#0`, `${unique}#1`],
  }]);
  const [loaded] = await podman.load(fixture.path);
  assertEquals(loaded, `localhost/${unique}/app:1`);
  const diffIds = fixture.images[0]!.layerDiffIds;
  for (const format of ["docker-archive", "oci-archive"]) {
    const archive = `${dir.path}/${format}.tar`;
    await podman.run(["save", "-q", "--format", format, "-o", archive, loaded!]);
    // The image as saved: podman writes an OCI config of its own into an oci-archive.
    const saved = JSON.parse(await skopeo(["inspect", "--raw", `${format}:${archive}`])) as {
      config: { digest: string };
    };
    const ref = `${registry.host}/${unique}/${format}:1`;
    const pushed = await runCli(["-r", `http://${ref}`, "-f", archive], {
      env: { DOCKER_PUSHER_COMPRESSION: "" },
    });
    assertEquals(pushed.code, 0, pushed.stderr);
    await podman.run(["pull", "-q", "--tls-verify=false", ref]);
    const pulled = await podman.inspect(ref);
    assertEquals(pulled.id, saved.config.digest, format);
    assertEquals(pulled.diffIds, diffIds, format);
  }
}, { tools: TOOLS });

integrationTest(
  "our pull of one image, a bundle, --platform all and -o - → podman load",
  async () => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    await using podman = await Podman.start();
    const unique = uniqueName();
    const { app, tool, multi } = await seedPullSources(registry, unique);
    const name = (image: string) => `${registry.host}/${unique}/${image}`;
    const source = (image: string) => `${registry.url}/${unique}/${image}`;
    const cases: [string, string[], [string, FixtureImageInfo][]][] = [
      ["one", [source("app:1")], [[name("app:1"), app.fixture.images[0]!]]],
      ["bundle", [source("app:1"), source("tool:2")], [
        [name("app:1"), app.fixture.images[0]!],
        [name("tool:2"), tool.fixture.images[0]!],
      ]],
      // podman loads the image manifest.json names: this machine's platform (linux/amd64).
      ["all", [source("multi:3"), "--platform", "all"], [[
        name("multi:3"),
        multi.fixture.images[0]!,
      ]]],
    ];
    for (const [label, args, expected] of cases) {
      const out = `${dir.path}/${label}.tar`;
      const pulled = await runCli(["pull", ...args, "-o", out]);
      assertEquals(pulled.code, 0, pulled.stderr);
      assertEquals((await podman.load(out)).sort(), expected.map(([n]) => n).sort(), label);
      for (const [ref, image] of expected) {
        const loaded = await podman.inspect(ref);
        assertEquals([loaded.id, loaded.diffIds], [image.configDigest, image.layerDiffIds], label);
        await podman.run(["rmi", ref]);
      }
    }

    // Through a pipe: podman load reads the archive from standard input.
    const piped = await new Deno.Command("bash", {
      args: [
        "-c",
        `set -euo pipefail; "$DENO" run -A --quiet "$MAIN" pull "$SOURCE" -o - | podman "$@" load`,
        "bash",
        ...podman.globalArgs,
      ],
      env: {
        DENO: Deno.execPath(),
        MAIN,
        SOURCE: source("app:1"),
        NO_COLOR: "1",
        TMPDIR: podman.dir,
        XDG_STATE_HOME: `${dir.path}/state`,
        XDG_CACHE_HOME: `${dir.path}/cache`,
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(piped.code, 0, new TextDecoder().decode(piped.stderr));
    const loaded = await podman.inspect(name("app:1"));
    assertEquals(loaded.id, app.fixture.images[0]!.configDigest);
  },
  { tools: TOOLS },
);

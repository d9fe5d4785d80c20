/**
 * What `push -f` and `inspect -f` take, as a user gives it, against a real registry:
 * - an image directory written by the real tools (skopeo `oci:` and `dir:`, podman
 *   `save --format oci-dir` and `docker-dir`, an unpacked skopeo docker-archive with its
 *   symlinks) is pushed from its files, and skopeo reads it back with the config and diff IDs;
 * - an archive whose shape we can't push fails with one `Error:` line before the registry sees
 *   a single request of ours; a pipe stops at a malformed table of contents before the layer
 *   behind it goes up;
 * - `--image` finds a Docker 25 save's image by the name only its `manifest.json` gives.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { type CliResult, lines, runCli } from "../helpers/cli.ts";
import { run } from "../helpers/command.ts";
import { Podman } from "../helpers/docker.ts";
import {
  writeDocker25Save,
  writeDockerSaveLegacy,
  writeOciArchive,
} from "../helpers/image_fixtures.ts";
import { seededBytes } from "../helpers/random.ts";
import { integrationTest, startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { pullBack, skopeoCopy } from "../helpers/skopeo.ts";
import { tarBytes } from "../helpers/tar_writer.ts";

/** Above the 1 MiB a stream holds: such a layer goes up as a pipe passes it. */
const LARGE = 1_200_000;

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dip-archive-inputs-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function target(registry: TestRegistry, repoAndTag: string): string {
  return `http://${registry.host}/${repoAndTag}`;
}

/** Requests our CLI sent (the helper's own queries are left out). */
async function ours(registry: TestRegistry): Promise<string[]> {
  return (await registry.requests())
    .filter((r) => r.userAgent.startsWith("docker-image-pusher"))
    .map((r) => `${r.method} ${r.path}`);
}

/** A failure as users must see it: exit 1, nothing on stdout, one `Error:` line, no trace. */
function assertOneLineError(result: CliResult, says: string): void {
  assertEquals(result.code, 1, `stderr:\n${result.stderr}`);
  assertEquals(result.stdout, "");
  const errors = lines(result.stderr).filter((l) => l.startsWith("Error:"));
  assertEquals(errors.length, 1, result.stderr);
  assertStringIncludes(errors[0]!, says);
  assert(!result.stderr.includes("    at "), `a stack trace:\n${result.stderr}`);
}

/** The config digest the OCI layout at `dir` names for its only manifest. */
async function layoutConfig(dir: string): Promise<string> {
  const index = JSON.parse(await Deno.readTextFile(`${dir}/index.json`));
  const hex = (index.manifests[0].digest as string).slice(7);
  const manifest = JSON.parse(await Deno.readTextFile(`${dir}/blobs/sha256/${hex}`));
  return manifest.config.digest;
}

integrationTest(
  "-f DIR: directories skopeo and podman write are pushed and read back intact",
  async () => {
    await withTempDir(async (dir) => {
      await using registry = await startRegistry();
      await using podman = await Podman.start();
      const { images: [written] } = await writeDockerSaveLegacy(`${dir}/app.tar`, [
        { name: "app:1", layerSizes: [LARGE, 2000] },
      ]);
      await skopeoCopy(`docker-archive:${dir}/app.tar`, `oci:${dir}/skopeo-oci:app:1`);
      await skopeoCopy(`docker-archive:${dir}/app.tar`, `dir:${dir}/skopeo-dir`);
      // skopeo's docker-archive: <digest>.tar layers, <id>/layer.tar symlinks to them.
      await skopeoCopy(`docker-archive:${dir}/app.tar`, `docker-archive:${dir}/sk.tar:app:1`);
      await Deno.mkdir(`${dir}/unpacked`);
      await run("tar", ["xf", `${dir}/sk.tar`, "-C", `${dir}/unpacked`]);
      const [loaded] = await podman.load(`${dir}/app.tar`);
      await podman.run(["save", "--format", "oci-dir", "-o", `${dir}/podman-oci`, loaded!]);
      await podman.run(["save", "--format", "docker-dir", "-o", `${dir}/podman-dir`, loaded!]);

      // skopeo and podman write an OCI layout with the config converted to OCI's.
      const cases: [string, string][] = [
        ["skopeo-oci", await layoutConfig(`${dir}/skopeo-oci`)],
        ["skopeo-dir", written!.configDigest],
        ["unpacked", written!.configDigest],
        ["podman-oci", await layoutConfig(`${dir}/podman-oci`)],
        ["podman-dir", written!.configDigest],
      ];
      for (const [name, configDigest] of cases) {
        const result = await runCli(["-r", target(registry, `${name}:1`), "-f", `${dir}/${name}`]);
        assertEquals(result.code, 0, `${name}: ${result.stderr}`);
        assertEquals(lines(result.stdout).length, 1, name);
        const pulled = await pullBack(registry, name, "1");
        assertEquals(pulled.configDigest, configDigest, name);
        assertEquals(pulled.layerDiffIds, written!.layerDiffIds, name);
      }
      assert(
        (await Deno.lstat(`${dir}/unpacked/manifest.json`)).isFile &&
          [...Deno.readDirSync(`${dir}/unpacked`)].some((e) => e.isDirectory),
        "the unpacked skopeo archive has its <id>/ directories",
      );

      const inspected = await runCli(["inspect", "-f", `${dir}/skopeo-dir`]);
      assertEquals(inspected.code, 0, inspected.stderr);
      assertStringIncludes(
        inspected.stdout,
        `Archive:  ${dir}/skopeo-dir (a directory, read in place`,
      );
      assertStringIncludes(inspected.stdout, "[dir]");
    });
  },
  { tools: ["docker-registry", "skopeo", "podman", "tar"] },
);

integrationTest(
  "archives we can't push fail in one line before the registry sees a request",
  async () => {
    await withTempDir(async (dir) => {
      await using registry = await startRegistry();
      await writeDockerSaveLegacy(`${dir}/app.tar`, [{ name: "app:1", layerSizes: [3000, 2000] }]);
      await skopeoCopy(`docker-archive:${dir}/app.tar`, `dir:${dir}/good-dir`);
      const manifest = JSON.parse(await Deno.readTextFile(`${dir}/good-dir/manifest.json`));
      const layerHex = (manifest.layers[0].digest as string).slice(7);
      const save = JSON.parse(
        new TextDecoder().decode(
          (await run("tar", ["xOf", `${dir}/app.tar`, "manifest.json"])).stdoutBytes,
        ),
      );
      const saveLayer = save[0].Layers[1] as string;

      // A tarred dir: with a layer left out.
      await run("cp", ["-r", `${dir}/good-dir`, `${dir}/dir-no-layer`]);
      await Deno.remove(`${dir}/dir-no-layer/${layerHex}`);
      await run("tar", ["cf", `${dir}/dir-no-layer.tar`, "-C", `${dir}/dir-no-layer`, "."]);
      // A docker save whose manifest.json names a layer the tar lacks.
      await Deno.mkdir(`${dir}/save`);
      await run("tar", ["xf", `${dir}/app.tar`, "-C", `${dir}/save`]);
      await Deno.remove(`${dir}/save/${saveLayer}`);
      await run("tar", ["cf", `${dir}/save-no-layer.tar`, "-C", `${dir}/save`, "."]);
      // A dir: directory with a layer cut short.
      await run("cp", ["-r", `${dir}/good-dir`, `${dir}/dir-cut`]);
      await Deno.truncate(`${dir}/dir-cut/${layerHex}`, 1024);
      // A directory that is no image.
      await Deno.mkdir(`${dir}/photos`);
      await Deno.writeTextFile(`${dir}/photos/cat.jpg`, "meow");

      const cases: [string, string][] = [
        ["dir-no-layer.tar", `layer sha256:${layerHex} is missing (no file ${layerHex})`],
        ["save-no-layer.tar", `"${saveLayer}" not found in archive`],
        ["dir-cut", `is 1024 bytes in ${layerHex} but its descriptor says`],
        ["photos", "is a directory but not an image layout"],
      ];
      for (const [name, says] of cases) {
        const result = await runCli(["-r", target(registry, "app:1"), "-f", `${dir}/${name}`]);
        assertOneLineError(result, says);
        assertEquals(await ours(registry), [], `${name}: the registry saw requests`);
      }
    });
  },
  { tools: ["docker-registry", "skopeo", "tar"] },
);

integrationTest(
  "a pipe stops at a malformed manifest.json before the layer behind it goes up",
  async () => {
    await withTempDir(async (dir) => {
      await using registry = await startRegistry();
      const bytes = await tarBytes(async (tar) => {
        await tar.addFile("manifest.json", new TextEncoder().encode('{"Config":"c.json"}'));
        await tar.addFile("layer.tar", seededBytes("layer", LARGE));
      });
      await Deno.writeFile(`${dir}/bad.tar`, bytes);
      const result = await runCli(["-r", target(registry, "app:1"), "-f", "-"], {
        stdinFile: `${dir}/bad.tar`,
      });
      assertOneLineError(result, "standard input: manifest.json: the top level must be an array");
      // A pipe is read after the registry answered (a layer may come first and go up at
      // once): the ping is all it saw.
      assertEquals(await ours(registry), ["GET /v2/"], "no blob went up");
    });
  },
);

integrationTest(
  "--image finds a Docker 25 save's image by the name only manifest.json gives",
  async () => {
    await withTempDir(async (dir) => {
      await using registry = await startRegistry();
      const { images } = await writeDocker25Save(`${dir}/save.tar`, [
        { name: "app:1", layerSizes: [1000] },
        { name: "tool:2", layerSizes: [1200] },
      ]);
      await Deno.mkdir(`${dir}/save`);
      await run("tar", ["xf", `${dir}/save.tar`, "-C", `${dir}/save`]);
      const manifest = JSON.parse(await Deno.readTextFile(`${dir}/save/manifest.json`));
      manifest[1].RepoTags = ["legacy/tool:9"];
      await Deno.writeTextFile(`${dir}/save/manifest.json`, JSON.stringify(manifest));
      const result = await runCli([
        "-r",
        target(registry, "picked:1"),
        "-f",
        `${dir}/save`,
        "--image",
        "legacy/tool:9",
      ]);
      assertEquals(result.code, 0, result.stderr);
      assertStringIncludes(result.stderr, 'manifest.json names this image "legacy/tool:9"');
      assertEquals((await pullBack(registry, "picked", "1")).configDigest, images[1]!.configDigest);
    });
  },
  { tools: ["docker-registry", "tar"] },
);

integrationTest(
  "a dir: of a multi-platform image (skopeo copy --all) pushes its index unchanged",
  async () => {
    await withTempDir(async (dir) => {
      await using registry = await startRegistry();
      const written = await writeOciArchive(`${dir}/multi.tar`, [
        { name: "app:amd64", architecture: "amd64" },
        { name: "app:arm64", architecture: "arm64" },
      ], { index: { refName: "1" } });
      await skopeoCopy(`oci-archive:${dir}/multi.tar:1`, `docker://${registry.host}/source:1`, {
        args: ["--all"],
      });
      // manifest.json is the index; each platform's manifest is <hex>.manifest.json.
      await skopeoCopy(`docker://${registry.host}/source:1`, `dir:${dir}/multi`, {
        args: ["--all"],
      });
      const result = await runCli(["-r", target(registry, "copy:1"), "-f", `${dir}/multi`]);
      assertEquals(result.code, 0, result.stderr);
      const served = await registry.fetchManifest("copy", "1");
      assertEquals(served.digest, written.indexDigest);
      for (const image of written.images) {
        const pulled = await pullBack(registry, "copy", image.manifestDigest!);
        assertEquals(pulled.configDigest, image.configDigest);
        assertEquals(pulled.layerDigests, image.layerDigests);
      }
    });
  },
  { tools: ["docker-registry", "skopeo"] },
);

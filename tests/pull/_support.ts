/** Helpers for pull tests: seeding the registry with our own push, temp dirs, skopeo reads. */
import { createHash } from "node:crypto";
import { assertEquals } from "../helpers/assert.ts";
import { type CliOptions, type CliResult, runCli } from "../helpers/cli.ts";
import {
  type FixtureArchive,
  type FixtureImage,
  type OciArchiveOptions,
  writeOciArchive,
} from "../helpers/image_fixtures.ts";
import { skopeo } from "../helpers/skopeo.ts";
import type { TestRegistry } from "../helpers/registry.ts";

export interface TempDir extends AsyncDisposable {
  path: string;
}

export async function tempDir(prefix = "dip-pull-"): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

/**
 * Pushes an OCI archive of `images` to `registry/repo:tag` with our push (layers as stored),
 * returning the fixture and the manifest digest the registry has.
 */
export async function seed(
  registry: TestRegistry,
  target: string,
  images: FixtureImage[],
  options: OciArchiveOptions = {},
): Promise<{ fixture: FixtureArchive; digest: string }> {
  await using dir = await tempDir("dip-seed-");
  const fixture = await writeOciArchive(`${dir.path}/seed.tar`, images, options);
  const result = await runCli(["-r", `${registry.url}/${target}`, "-f", `${dir.path}/seed.tar`]);
  assertEquals(result.code, 0, result.stderr);
  const [repo, tag] = target.split(":") as [string, string];
  return { fixture, digest: (await registry.fetchManifest(repo, tag)).digest };
}

type Seeded = Awaited<ReturnType<typeof seed>>;

/**
 * What the real-client tests pull, in `registry` under `<unique>/`: `app:1` and `tool:2` (one
 * image each) and `multi:3` (an index of linux/amd64 and linux/arm64), their content seeded with
 * `unique` so that no client has them already.
 */
export async function seedPullSources(
  registry: TestRegistry,
  unique: string,
): Promise<{ app: Seeded; tool: Seeded; multi: Seeded }> {
  const app = await seed(registry, `${unique}/app:1`, [{ name: "app:1", layerSeeds: [unique] }]);
  const tool = await seed(registry, `${unique}/tool:2`, [{
    name: "tool:2",
    layerSeeds: [`${unique}-tool`],
  }]);
  const multi = await seed(registry, `${unique}/multi:3`, [
    { name: "m:amd64", architecture: "amd64", layerSeeds: [`${unique}-amd64`] },
    { name: "m:arm64", architecture: "arm64", layerSeeds: [`${unique}-arm64`] },
  ], { index: { refName: "3" } });
  return { app, tool, multi };
}

/** `docker-image-pusher pull …args`. */
export function pull(args: string[], options?: CliOptions): Promise<CliResult> {
  return runCli(["pull", ...args], options);
}

/** The config digest and diff IDs skopeo reads from `ref` (`docker-archive:…`, `oci-archive:…`). */
export async function skopeoConfig(ref: string): Promise<{ digest: string; diffIds: string[] }> {
  const text = await skopeo(["inspect", "--raw", "--config", ref]);
  const bytes = new TextEncoder().encode(text);
  const json = JSON.parse(text) as { rootfs: { diff_ids: string[] } };
  return {
    digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
    diffIds: json.rootfs.diff_ids,
  };
}

/** The archive's entries and its `index.json` and `manifest.json`, read with GNU tar. */
export async function readArchive(path: string): Promise<{
  names: string[];
  index: {
    manifests: { digest: string; annotations?: Record<string, string> }[];
    mediaType?: string;
  };
  manifest: { Config: string; RepoTags: string[]; Layers: string[] }[];
}> {
  const tar = async (args: string[]) =>
    new TextDecoder().decode((await new Deno.Command("tar", { args }).output()).stdout);
  return {
    names: (await tar(["tf", path])).trim().split("\n"),
    index: JSON.parse(await tar(["xOf", path, "index.json"])),
    manifest: JSON.parse(await tar(["xOf", path, "manifest.json"])),
  };
}

/**
 * Runs of many images, as a user would run them (the CLI as a subprocess, a real registry,
 * skopeo pulling back): `--all` on multi-image saves from before and after Docker 25, several
 * archives sharing layers (each shared blob uploaded once, counted from the registry's log),
 * `--multi-arch` tags checked per platform with skopeo's `--override-arch`, `--tag`, two
 * registries with one failing, and the `--output json` report against its schema.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { type CliResult, lines, runCli } from "../helpers/cli.ts";
import {
  type FixtureArchive,
  writeDocker25Save,
  writeDockerSaveLegacy,
  writeOciArchive,
} from "../helpers/image_fixtures.ts";
import {
  integrationTest,
  type LoggedRequest,
  startRegistry,
  type TestRegistry,
} from "../helpers/registry.ts";
import { pullBack, skopeo } from "../helpers/skopeo.ts";
import { run } from "../helpers/command.ts";
import { startFaultProxy } from "../helpers/fault_proxy.ts";

const DIGEST = "sha256:[0-9a-f]{64}";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const TOOLS = ["docker-registry", "skopeo"];

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dip-push-many-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function assertOk(result: CliResult): void {
  assertEquals(result.code, 0, `exit ${result.code}; stderr:\n${result.stderr}`);
}

/** stdout's lines as `reference → digest`, sorted. */
function pushedRefs(result: CliResult): Map<string, string> {
  const refs = new Map<string, string>();
  for (const line of lines(result.stdout)) {
    const match = new RegExp(`^(.+)@(${DIGEST})$`).exec(line);
    assert(match !== null, `not a result line: ${JSON.stringify(line)}`);
    refs.set(match[1]!, match[2]!);
  }
  return refs;
}

/** Blob uploads the registry completed (the final PUT of a session), by digest. */
function completedUploads(log: LoggedRequest[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of log) {
    if (r.method !== "PUT" || !r.path.includes("/blobs/uploads/") || r.status !== 201) continue;
    const digest = new URL(r.uri, "http://x").searchParams.get("digest")!;
    counts.set(digest, (counts.get(digest) ?? 0) + 1);
  }
  return counts;
}

/** Cross-repository mounts the registry granted. */
function mounts(log: LoggedRequest[]): { digest: string; from: string; into: string }[] {
  return log.filter((r) => r.method === "POST" && r.uri.includes("mount=") && r.status === 201)
    .map((r) => {
      const params = new URL(r.uri, "http://x").searchParams;
      return {
        digest: params.get("mount")!,
        from: params.get("from")!,
        into: r.path.replace(/^\/v2\//, "").replace(/\/blobs\/uploads\/$/, ""),
      };
    });
}

/** Pulls `repo:tag` back and checks it is the archive's image, config and layers. */
async function assertImage(
  registry: TestRegistry,
  repo: string,
  tag: string,
  archive: FixtureArchive,
  name: string,
): Promise<void> {
  const info = archive.images.find((i) => i.name === name)!;
  const pulled = await pullBack(registry, repo, tag);
  assertEquals(pulled.configDigest, info.configDigest, `${repo}:${tag} config`);
  assertEquals(pulled.layerDiffIds, info.layerDiffIds, `${repo}:${tag} layers`);
}

integrationTest(
  "--all: a docker save from before 25 goes up, every image under its names",
  async () => {
    await withTempDir(async (dir) => {
      await using registry = await startRegistry();
      // app and tool share their first layer; app has two tags; x has a registry host in its name.
      const archive = await writeDockerSaveLegacy(`${dir}/bundle.tar`, [
        { name: "app:1", layerSizes: [40_000, 2_000], layerSeeds: ["base", "app"] },
        { name: "tool:2", layerSizes: [40_000, 3_000], layerSeeds: ["base", "tool"] },
        { name: "registry.example.com/team/x:3", layerSizes: [5_000] },
      ]);
      const result = await runCli([
        "--all",
        "-r",
        `http://${registry.host}/mirror`,
        "-f",
        archive.path,
        "--compression",
        "none",
      ]);
      assertOk(result);
      const refs = pushedRefs(result);
      assertEquals([...refs.keys()].sort(), [
        `${registry.host}/mirror/library/app:1`,
        `${registry.host}/mirror/library/tool:2`,
        `${registry.host}/mirror/team/x:3`,
      ]);
      await assertImage(registry, "mirror/library/app", "1", archive, "app:1");
      await assertImage(registry, "mirror/library/tool", "2", archive, "tool:2");
      await assertImage(registry, "mirror/team/x", "3", archive, "registry.example.com/team/x:3");
      // The shared base layer went up once, and was mounted into the other repository.
      const log = await registry.requests();
      const base = archive.images[0]!.layerDigests[0]!;
      assertEquals(completedUploads(log).get(base), 1);
      const mounted = mounts(log).filter((m) => m.digest === base);
      assertEquals(mounted.length, 1, JSON.stringify(mounts(log)));
      // Its log says so: one upload, one mount, and the mount never announced as an upload.
      const said = lines(result.stderr).filter((l) => l.includes(base.slice(7, 19)));
      assertEquals(said.filter((l) => l.startsWith("Uploading ")).length, 1, result.stderr);
      assertEquals(said.filter((l) => l.startsWith("Mounted ")).length, 1, result.stderr);
      assertStringIncludes(result.stderr, "Summary: 3 push(es)");
    });
  },
  { tools: TOOLS },
);

integrationTest(
  "--all: a Docker 25 save, compressed once; a dry run prints the mapping",
  async () => {
    await withTempDir(async (dir) => {
      await using registry = await startRegistry();
      const archive = await writeDocker25Save(`${dir}/bundle.tar`, [
        { name: "app:1", layerSizes: [60_000, 2_000], layerSeeds: ["base", "app"] },
        { name: "app:2", layerSizes: [60_000, 2_500], layerSeeds: ["base", "app2"] },
        { name: "example/web:latest", layerSizes: [60_000], layerSeeds: ["base"] },
      ]);
      const args = [
        "--all",
        "-r",
        `http://${registry.host}/m`,
        "-f",
        archive.path,
        "--compression",
        "gzip",
      ];
      const dry = await runCli([...args, "--dry-run"]);
      assertOk(dry);
      assertEquals(dry.stdout, "");
      for (const target of ["m/library/app:1", "m/library/app:2", "m/example/web:latest"]) {
        assertStringIncludes(dry.stderr, `→ ${registry.host}/${target}`);
      }
      assertStringIncludes(dry.stderr, "Dry run: 3 push(es)");
      // The shared base would go up once: the other repository would mount it.
      const dryLines = lines(dry.stderr).filter((l) => l.includes("would push"));
      const mounting = /\b1( blob\(s\))? \([^)]*\) would be mounted/;
      assertEquals(dryLines.filter((l) => mounting.test(l)).length, 1, dryLines.join("\n"));
      const uploaded = dryLines.map((l) =>
        Number(/: (\d+) blob\(s\) \([^)]*\) would be uploaded/.exec(l)?.[1] ?? 0)
      );
      assertEquals(uploaded.reduce((a, b) => a + b, 0), 6, dryLines.join("\n"));
      assertEquals(await registry.listTags("m/library/app"), []);

      const result = await runCli(args);
      assertOk(result);
      assertEquals([...pushedRefs(result).keys()].sort(), [
        `${registry.host}/m/example/web:latest`,
        `${registry.host}/m/library/app:1`,
        `${registry.host}/m/library/app:2`,
      ]);
      await assertImage(registry, "m/library/app", "1", archive, "app:1");
      await assertImage(registry, "m/library/app", "2", archive, "app:2");
      await assertImage(registry, "m/example/web", "latest", archive, "example/web:latest");
      // The base layer, compressed on the way, went up once; the other repository mounted it.
      const uploads = completedUploads(await registry.requests());
      assertEquals([...uploads.values()].every((n) => n === 1), true, JSON.stringify([...uploads]));
      // base + app + app2 layers, three configs.
      assertEquals(uploads.size, 6, JSON.stringify([...uploads]));
    });
  },
  { tools: TOOLS },
);

integrationTest("two archives with shared layers: each shared blob goes up once", async () => {
  await withTempDir(async (dir) => {
    await using registry = await startRegistry();
    const a = await writeDockerSaveLegacy(`${dir}/a.tar`, [
      { name: "a:1", layerSizes: [30_000, 1_000], layerSeeds: ["shared", "a"] },
    ]);
    const b = await writeDocker25Save(`${dir}/b.tar`, [
      { name: "b:1", layerSizes: [30_000, 1_500], layerSeeds: ["shared", "b"] },
      { name: "c:1", layerSizes: [30_000], layerSeeds: ["shared"] },
    ]);
    const result = await runCli([
      "--all",
      "-r",
      `http://${registry.host}`,
      "-f",
      a.path,
      "-f",
      b.path,
      "--compression",
      "none",
      "--max-concurrent",
      "4",
    ]);
    assertOk(result);
    assertEquals(pushedRefs(result).size, 3);
    await assertImage(registry, "library/a", "1", a, "a:1");
    await assertImage(registry, "library/b", "1", b, "b:1");
    await assertImage(registry, "library/c", "1", b, "c:1");
    const log = await registry.requests();
    const shared = a.images[0]!.layerDigests[0]!;
    assertEquals(completedUploads(log).get(shared), 1);
    assertEquals(mounts(log).filter((m) => m.digest === shared).length, 2);
  });
}, { tools: TOOLS });

integrationTest("--multi-arch joins per-platform archives into one tag", async () => {
  await withTempDir(async (dir) => {
    await using registry = await startRegistry();
    const amd = await writeDockerSaveLegacy(`${dir}/amd64.tar`, [
      { name: "app:amd64", architecture: "amd64", layerSizes: [8_000] },
    ]);
    const arm = await writeDockerSaveLegacy(`${dir}/arm64.tar`, [
      { name: "app:arm64", architecture: "arm64", layerSizes: [9_000] },
    ]);
    const target = `http://${registry.host}/app:1`;
    const args = ["-r", target, "--multi-arch", "-f", amd.path, "-f", arm.path];
    const result = await runCli([...args, "--compression", "none"]);
    assertOk(result);
    const [ref, digest] = [...pushedRefs(result)][0]!;
    assertEquals(ref, `${registry.host}/app:1`);
    const index = await registry.fetchManifest("app", "1");
    assertEquals(index.digest, digest);
    // Docker v2 schema 2 children: a Docker manifest list.
    assertEquals(index.mediaType, DOCKER_LIST);
    for (const [arch, archive] of [["amd64", amd], ["arm64", arm]] as const) {
      // What a client on that platform gets: skopeo picks the child, we pull it back.
      const chosen = `${dir}/chosen-${arch}`;
      await skopeo([
        "copy",
        "--src-tls-verify=false",
        "--override-os",
        "linux",
        "--override-arch",
        arch,
        `docker://${registry.host}/app:1`,
        `dir:${chosen}`,
      ]);
      const manifest = await Deno.readFile(`${chosen}/manifest.json`);
      const childDigest = `sha256:${
        Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", manifest)))
          .map((b) => b.toString(16).padStart(2, "0")).join("")
      }`;
      const config = JSON.parse(
        await Deno.readTextFile(
          `${chosen}/${archive.images[0]!.configDigest.slice("sha256:".length)}`,
        ),
      ) as { architecture: string };
      assertEquals(config.architecture, arch);
      const pulled = await pullBack(registry, "app", childDigest);
      assertEquals(pulled.configDigest, archive.images[0]!.configDigest);
      assertEquals(pulled.layerDiffIds, archive.images[0]!.layerDiffIds);
    }

    // OCI children make an OCI index.
    const ociAmd = await writeOciArchive(`${dir}/oci-amd64.tar`, [
      { name: "app:1", architecture: "amd64", layerSizes: [4_000] },
    ]);
    const ociArm = await writeOciArchive(`${dir}/oci-arm64.tar`, [
      { name: "app:1", architecture: "arm64", layerSizes: [4_000] },
    ]);
    const oci = await runCli([
      "-r",
      `http://${registry.host}/oci:1`,
      "--multi-arch",
      "-f",
      ociAmd.path,
      "-f",
      ociArm.path,
    ]);
    assertOk(oci);
    const ociIndex = await registry.fetchManifest("oci", "1");
    assertEquals(ociIndex.mediaType, OCI_INDEX);
    const platforms = (ociIndex.json.manifests as { platform: { architecture: string } }[])
      .map((m) => m.platform.architecture);
    assertEquals(platforms, ["amd64", "arm64"]);

    // Two images for one platform: a usage error naming both, and nothing pushed.
    const twice = await runCli([
      "-r",
      `http://${registry.host}/dup:1`,
      "--multi-arch",
      "-f",
      amd.path,
      "-f",
      ociAmd.path,
    ]);
    assertEquals(twice.code, 2, twice.stderr);
    assertStringIncludes(twice.stderr, "amd64.tar");
    assertStringIncludes(twice.stderr, "oci-amd64.tar");
    assertEquals(twice.stdout, "");
    const touched = (await registry.requests()).filter((r) => r.path.startsWith("/v2/dup/"));
    assertEquals(touched, []);
  });
}, { tools: TOOLS });

integrationTest("--tag pushes more tags of one manifest, uploading nothing twice", async () => {
  await withTempDir(async (dir) => {
    await using registry = await startRegistry();
    const archive = await writeDockerSaveLegacy(`${dir}/app.tar`, [
      { name: "app:1", layerSizes: [10_000, 20_000] },
    ]);
    const result = await runCli([
      "-r",
      `http://${registry.host}/app:1`,
      "--tag",
      "latest",
      "--tag",
      "stable",
      "-f",
      archive.path,
    ]);
    assertOk(result);
    const refs = pushedRefs(result);
    assertEquals(
      [...refs.keys()],
      ["app:1", "app:latest", "app:stable"].map((r) => `${registry.host}/${r}`),
    );
    assertEquals(new Set(refs.values()).size, 1);
    assertEquals(await registry.listTags("app"), ["1", "latest", "stable"]);
    for (const tag of ["1", "latest", "stable"]) {
      assertEquals((await registry.fetchManifest("app", tag)).digest, [...refs.values()][0]);
    }
    const log = await registry.requests();
    // Two layers and a config, each uploaded once; three manifest PUTs.
    assertEquals([...completedUploads(log).values()], [1, 1, 1]);
    assertEquals(log.filter((r) => r.method === "PUT" && r.path.includes("/manifests/")).length, 3);
  });
}, { tools: TOOLS });

/** A port nothing listens on. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

integrationTest("two registries at once: one failing does not stop the other", async () => {
  await withTempDir(async (dir) => {
    await using registry = await startRegistry();
    const archive = await writeDockerSaveLegacy(`${dir}/app.tar`, [
      { name: "app:1", layerSizes: [10_000] },
    ]);
    const dead = `127.0.0.1:${closedPort()}`;
    const args = [
      "-r",
      `http://${dead}/app:1`,
      "-r",
      `http://${registry.host}/app:1`,
      "-f",
      archive.path,
      "--retry-attempts",
      "0",
    ];
    const result = await runCli(args);
    assertEquals(result.code, 1, result.stderr);
    assertEquals([...pushedRefs(result).keys()], [`${registry.host}/app:1`]);
    await assertImage(registry, "app", "1", archive, "app:1");
    assertStringIncludes(result.stderr, `✗ app:1 (${archive.path}) → ${dead}/app:1`);
    assertStringIncludes(result.stderr, `✓ app:1 (${archive.path}) → ${registry.host}/app:1`);
    assert(lines(result.stderr).some((l) => l.startsWith("Error: 1 of 2 pushes failed")));

    const json = await runCli([...args, "--output", "json"]);
    assertEquals(json.code, 1, json.stderr);
    const report = JSON.parse(json.stdout) as PushReport;
    checkReport(report);
    assertEquals(report.success, false);
    assertEquals(report.images.map((i) => i.status), ["failed", "pushed"]);
    assertEquals(report.errors.length, 1);
    assertStringIncludes(report.errors[0]!.target!, dead);
    assertEquals(report.images[1]!.blobs.skipped.count, 2, "the second run found every blob");
  });
}, { tools: TOOLS });

integrationTest(
  "two registries, one down: it gets no upload after its ping failed, and its platforms are said",
  async () => {
    await withTempDir(async (dir) => {
      await using registry = await startRegistry();
      const archive = await writeDockerSaveLegacy(`${dir}/app.tar`, [
        { name: "app:1", layerSizes: [10_000, 20_000], architecture: "arm64" },
      ]);
      const dead = `127.0.0.1:${closedPort()}`;
      // gzip (the default) to two registries compresses each layer once for both: the fan-out
      // must not count the registry that never answered.
      const result = await runCli([
        "-r",
        `http://${dead}/app:1`,
        "-r",
        `http://${registry.host}/app:1`,
        "-f",
        archive.path,
        "--retry-attempts",
        "1",
        "--compression",
        "gzip",
        "--verbose",
        "--output",
        "json",
      ]);
      assertEquals(result.code, 1, result.stderr);
      const toDead = lines(result.stderr).filter((l) => l.includes(`http://${dead}/`));
      assert(toDead.length > 0, result.stderr);
      for (const line of toDead) {
        assert(/GET http:\/\/[^ ]+\/v2\/ /.test(line), `not the ping: ${line}\n${result.stderr}`);
      }
      const report = JSON.parse(result.stdout) as PushReport;
      checkReport(report);
      assertEquals(report.images.map((i) => i.status), ["failed", "pushed"]);
      assertEquals(report.images.map((i) => i.platforms), [["linux/arm64"], ["linux/arm64"]]);
      await assertImage(registry, "app", "1", archive, "app:1");
    });
  },
  { tools: TOOLS },
);

integrationTest("--all -q still says which untagged image it left out", async () => {
  await withTempDir(async (dir) => {
    await using registry = await startRegistry();
    const tagged = await writeDockerSaveLegacy(`${dir}/tagged.tar`, [
      { name: "app:1", layerSizes: [1_000] },
    ]);
    const untagged = await writeOciArchive(`${dir}/untagged.tar`, [
      { name: "tool:1", layerSizes: [1_500] },
    ], { refName: "none" });
    const result = await runCli([
      "--all",
      "-q",
      "-r",
      `http://${registry.host}/m`,
      "-f",
      tagged.path,
      "-f",
      untagged.path,
    ]);
    assertOk(result);
    assertEquals([...pushedRefs(result).keys()], [`${registry.host}/m/library/app:1`]);
    const digest = untagged.images[0]!.manifestDigest!;
    assertEquals(lines(result.stderr), [
      "Summary: 1 push(es), 1 image(s) skipped",
      `  - skipped ${digest} (${untagged.path}): untagged; name it with --image to push it by ` +
      "digest",
    ]);
  });
}, { tools: TOOLS });

integrationTest("--output json: one document on stdout, as the README documents it", async () => {
  await withTempDir(async (dir) => {
    await using registry = await startRegistry();
    const archive = await writeDockerSaveLegacy(`${dir}/bundle.tar`, [
      { name: "app:1", layerSizes: [30_000, 1_000], layerSeeds: ["base", "app"] },
      { name: "tool:1", layerSizes: [30_000], layerSeeds: ["base"], architecture: "arm64" },
    ]);
    const result = await runCli([
      "--all",
      "-r",
      `http://${registry.host}/m`,
      "--tag",
      "stable",
      "-f",
      archive.path,
      "--output",
      "json",
      "--compression",
      "gzip",
    ]);
    assertOk(result);
    const report = JSON.parse(result.stdout) as PushReport;
    checkReport(report);
    assertEquals(report.success, true);
    const byRepo = new Map(report.images.map((i) => [i.target.repository, i]));
    const app = byRepo.get("m/library/app")!;
    const tool = byRepo.get("m/library/tool")!;
    assertEquals(app.target.tags, ["1", "stable"]);
    assertEquals(app.sources[0]!.archive, archive.path);
    assertEquals(app.sources[0]!.name, "app:1");
    assertEquals(app.platforms, ["linux/amd64"]);
    assertEquals(tool.platforms, ["linux/arm64"]);
    assertEquals(app.compression.codec, "gzip");
    assertEquals(app.compression.layers + tool.compression.layers, 2, "each layer compressed once");
    assertEquals(app.target.references, [
      `${registry.host}/m/library/app:1@${app.digest}`,
      `${registry.host}/m/library/app:stable@${app.digest}`,
    ]);
    assertEquals((await registry.fetchManifest("m/library/app", "stable")).digest, app.digest);
    // Shared base: uploaded by one, mounted by the other.
    const moved = app.blobs.uploaded.count + tool.blobs.uploaded.count;
    assertEquals(moved, 4, JSON.stringify([app.blobs, tool.blobs]));
    assertEquals(app.blobs.mounted.count + tool.blobs.mounted.count, 1);
  });
}, { tools: TOOLS });

/** The report's documented fields (README, "JSON report"). */
interface PushReport {
  schemaVersion: number;
  success: boolean;
  dryRun: boolean;
  durationMs: number;
  images: {
    sources: { archive: string; name: string | null; names: string[]; digest: string }[];
    target: { registry: string; repository: string; tags: string[]; references: string[] };
    status: "pushed" | "planned" | "failed";
    kind: "image" | "multi-arch";
    digest: string | null;
    mediaType: string | null;
    platforms: string[];
    blobs: Record<
      "uploaded" | "skipped" | "mounted",
      { count: number; bytes: number; archiveBytes: number }
    >;
    compression: {
      codec: string;
      level: number | "auto" | null;
      layers: number;
      bytes: number;
      compressedBytes: number;
    };
    referrers: {
      digest: string;
      kind: string;
      artifactType: string;
      subject: string;
      tag: string | null;
    }[];
    keptAsStoredFor: string[];
    durationMs: number;
    error: { message: string; status: number | null; codes: string[] } | null;
  }[];
  skipped: { archive: string; digest: string; reason: string }[];
  errors: {
    target: string | null;
    image: string | null;
    message: string;
    status: number | null;
    codes: string[];
  }[];
}

/** Checks every field's presence and type, and that no field is undocumented. */
function checkReport(report: PushReport): void {
  const keys = (value: object) => Object.keys(value).sort();
  assertEquals(
    keys(report),
    ["dryRun", "durationMs", "errors", "images", "schemaVersion", "skipped", "success"],
  );
  assertEquals(report.schemaVersion, 1);
  assertEquals(typeof report.durationMs, "number");
  for (const image of report.images) {
    assertEquals(keys(image), [
      "blobs",
      "compression",
      "digest",
      "durationMs",
      "error",
      "keptAsStoredFor",
      "kind",
      "mediaType",
      "platforms",
      "referrers",
      "sources",
      "status",
      "target",
    ]);
    for (const referrer of image.referrers) {
      assertEquals(keys(referrer), ["artifactType", "digest", "kind", "subject", "tag"]);
    }
    for (const source of image.sources) {
      assertEquals(keys(source), ["archive", "digest", "name", "names"]);
      assert(new RegExp(`^${DIGEST}$`).test(source.digest));
    }
    assertEquals(keys(image.target), ["references", "registry", "repository", "tags"]);
    assertEquals(keys(image.blobs), ["mounted", "skipped", "uploaded"]);
    for (const tally of Object.values(image.blobs)) {
      assertEquals(keys(tally), ["archiveBytes", "bytes", "count"]);
    }
    assertEquals(
      keys(image.compression),
      ["bytes", "codec", "compressedBytes", "layers", "level"],
    );
    if (image.status === "failed") {
      assertEquals(keys(image.error!), ["codes", "message", "status"]);
    } else {
      assertEquals(image.error, null);
      assert(new RegExp(`^${DIGEST}$`).test(image.digest!), String(image.digest));
      assertEquals(typeof image.mediaType, "string");
    }
  }
  for (const error of report.errors) {
    assertEquals(keys(error), ["codes", "image", "message", "status", "target"]);
  }
}

Deno.test("the README documents every field of the JSON report", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const start = readme.indexOf("\n### Many images in one run");
  assert(start >= 0, "README has a Many images section");
  const section = readme.slice(start, readme.indexOf("\n### ", start + 1));
  const fields = [
    "schemaVersion",
    "success",
    "dryRun",
    "durationMs",
    "images[]",
    "images[].sources[]",
    "archive",
    "name",
    "names",
    "digest",
    "images[].target",
    "registry",
    "repository",
    "tags",
    "references",
    "images[].status",
    "images[].kind",
    "images[].digest",
    ".mediaType",
    "images[].platforms",
    "images[].blobs",
    "uploaded",
    "skipped",
    "mounted",
    "archiveBytes",
    "images[].compression",
    "codec",
    "level",
    "layers",
    "bytes",
    "compressedBytes",
    "images[].referrers[]",
    "artifactType",
    "subject",
    "images[].keptAsStoredFor",
    "images[].durationMs",
    ".error",
    "skipped[]",
    "reason",
    "errors[]",
    "target",
    "image",
    "message",
    "status",
    "codes",
  ];
  for (const field of fields) assertStringIncludes(section, `\`${field}\``);
});

integrationTest(
  "--all from a pipe and from a .tar.gz: layers pass into the prefix, images mount them",
  async () => {
    await withTempDir(async (dir) => {
      await using registry = await startRegistry();
      // The base is over the 1 MiB a stream keeps in memory: it is sent as it passes.
      const archive = await writeDockerSaveLegacy(`${dir}/bundle.tar`, [
        { name: "app:1", layerSizes: [1_200_000, 2_000], layerSeeds: ["base", "app"] },
        { name: "example/tool:2", layerSizes: [1_200_000, 3_000], layerSeeds: ["base", "tool"] },
      ]);
      const piped = await runCli(
        ["--all", "-r", `http://${registry.host}/m`, "-f", "-", "--output", "json"],
        { stdinFile: archive.path },
      );
      assertOk(piped);
      const report = JSON.parse(piped.stdout) as PushReport;
      checkReport(report);
      assertEquals(report.images.map((i) => i.target.repository).sort(), [
        "m/example/tool",
        "m/library/app",
      ]);
      await assertImage(registry, "m/library/app", "1", archive, "app:1");
      await assertImage(registry, "m/example/tool", "2", archive, "example/tool:2");
      // Every layer went up once, into the prefix, and each image's repository mounted it.
      const log = await registry.requests();
      const uploads = completedUploads(log);
      assertEquals([...uploads.values()].every((n) => n === 1), true, JSON.stringify([...uploads]));
      const base = archive.images[0]!.layerDigests[0]!;
      assertEquals(
        mounts(log).filter((m) => m.digest === base).map((m) => [m.from, m.into]).sort(),
        [["m", "m/example/tool"], ["m", "m/library/app"]],
      );
      const counted = report.images.reduce((n, i) => n + i.blobs.uploaded.count, 0);
      assertEquals(counted, 5, "each streamed blob counted as uploaded once (3 layers, 2 configs)");

      // A compressed archive is a stream too; with no prefix there is nowhere to put its layers.
      await run("gzip", ["-k", archive.path]);
      const gz = await runCli([
        "--all",
        "-r",
        `http://${registry.host}/z`,
        "-f",
        `${archive.path}.gz`,
        "--compression",
        "gzip",
      ]);
      assertOk(gz);
      assertEquals(pushedRefs(gz).size, 2);
      await assertImage(registry, "z/library/app", "1", archive, "app:1");
      const bare = await runCli(["--all", "-r", registry.host, "-f", `${archive.path}.gz`]);
      assertEquals(bare.code, 2, bare.stderr);
      assertStringIncludes(bare.stderr, "needs a prefix");
    });
  },
  { tools: TOOLS },
);

integrationTest(
  "--multi-arch merges an input that holds an index with per-platform ones",
  async () => {
    await withTempDir(async (dir) => {
      await using registry = await startRegistry();
      const both = await writeOciArchive(`${dir}/both.tar`, [
        { name: "app:amd64", architecture: "amd64", layerSizes: [3_000] },
        { name: "app:arm64", architecture: "arm64", layerSizes: [3_500] },
      ], { index: { refName: "1" } });
      const s390x = await writeOciArchive(`${dir}/s390x.tar`, [
        { name: "app:1", architecture: "s390x", layerSizes: [4_000] },
      ]);
      const result = await runCli([
        "-r",
        `http://${registry.host}/merged:1`,
        "--multi-arch",
        "-f",
        both.path,
        "-f",
        s390x.path,
        "--output",
        "json",
      ]);
      assertOk(result);
      const report = JSON.parse(result.stdout) as PushReport;
      checkReport(report);
      assertEquals(report.images.length, 1);
      assertEquals(report.images[0]!.kind, "multi-arch");
      assertEquals(report.images[0]!.platforms, ["linux/amd64", "linux/arm64", "linux/s390x"]);
      const index = await registry.fetchManifest("merged", "1");
      assertEquals(index.digest, report.images[0]!.digest);
      const manifests = index.json.manifests as {
        digest: string;
        platform: { architecture: string };
      }[];
      assertEquals(manifests.map((m) => m.platform.architecture), ["amd64", "arm64", "s390x"]);
      const expected = [...both.images, ...s390x.images];
      for (const [i, m] of manifests.entries()) {
        const pulled = await pullBack(registry, "merged", m.digest);
        assertEquals(pulled.configDigest, expected[i]!.configDigest);
      }
    });
  },
  { tools: TOOLS },
);

Deno.test("--output json: a run that fails before any push still prints its document", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/broken.tar`, "not a tar at all".repeat(100));
    const result = await runCli([
      "-r",
      "http://127.0.0.1:9/app:1",
      "-f",
      `${dir}/broken.tar`,
      "--output",
      "json",
    ]);
    assertEquals(result.code, 1, result.stderr);
    const report = JSON.parse(result.stdout) as PushReport;
    checkReport(report);
    assertEquals([report.success, report.images, report.errors.length], [false, [], 1]);
    assertEquals([report.errors[0]!.target, report.errors[0]!.image], [null, null]);
    assertStringIncludes(report.errors[0]!.message, "broken.tar");
    assert(lines(result.stderr).some((l) => l.startsWith("Error: ")), result.stderr);
  });
});

for (const mode of ["buffering", "pass-through"] as const) {
  integrationTest(
    `--all through 503s, 429s and cut bodies (${mode}): every image intact`,
    async () => {
      await withTempDir(async (dir) => {
        await using registry = await startRegistry();
        const archive = await writeDockerSaveLegacy(`${dir}/bundle.tar`, [
          { name: "app:1", layerSizes: [600_000, 40_000], layerSeeds: ["base", "app"] },
          { name: "tool:2", layerSizes: [600_000, 50_000], layerSeeds: ["base", "tool"] },
          { name: "web:3", layerSizes: [600_000, 30_000], layerSeeds: ["base", "web"] },
        ]);
        await using proxy = startFaultProxy({
          upstream: registry.url,
          mode,
          seed: 7,
          rate503: 0.15,
          rate429: 0.05,
          rateCut: 0.2,
        });
        const result = await runCli([
          "--all",
          "-r",
          `http://${proxy.host}/m`,
          "-f",
          archive.path,
          "--compression",
          "gzip",
          "--retry-attempts",
          "10",
        ], { deadlineMs: 90_000 });
        assertOk(result);
        const faults = proxy.faultCounts();
        assert(faults["503"] + faults["429"] + faults.cut > 0, proxy.summary());
        assertEquals(pushedRefs(result).size, 3);
        await assertImage(registry, "m/library/app", "1", archive, "app:1");
        await assertImage(registry, "m/library/tool", "2", archive, "tool:2");
        await assertImage(registry, "m/library/web", "3", archive, "web:3");
      });
    },
    { tools: TOOLS },
  );
}

Deno.test("a run whose pushes all fail for one reason says the reason once", async () => {
  await withTempDir(async (dir) => {
    const archive = await writeDockerSaveLegacy(`${dir}/bundle.tar`, [
      { name: "app:1", layerSizes: [1_000] },
      { name: "tool:1", layerSizes: [1_000] },
    ]);
    const dead = `127.0.0.1:${closedPort()}`;
    const result = await runCli(
      ["--all", "-r", `http://${dead}/m`, "-f", archive.path, "--retry-attempts", "0", "-q"],
    );
    assertEquals(result.code, 1, result.stderr);
    const errors = lines(result.stderr).filter((l) => l.startsWith("Error: "));
    assertEquals(errors.length, 1, result.stderr);
    assert(errors[0]!.startsWith("Error: 2 of 2 pushes failed: "), errors[0]);
    assertEquals(errors[0]!.split(dead).length - 1, 1, `the cause once: ${errors[0]}`);
    // The summary still names each push.
    assertEquals(lines(result.stderr).filter((l) => l.trimStart().startsWith("✗")).length, 2);
  });
});

/**
 * Archives read front to back, once: through a real pipe (`-f -`) and as `.tar.gz` (pigz,
 * several members) and `.tar.zst` (several frames) files, in every archive format. Each push
 * must store exactly what a push of the plain tar file stores (the same manifest digest, with
 * `--compression none`), and skopeo pulls it back with the config digest and diff IDs the
 * archive holds.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { type CliResult, lines, runCli } from "../helpers/cli.ts";
import { run } from "../helpers/command.ts";
import {
  writeDocker25Save,
  writeDockerSaveLegacy,
  writeOciArchive,
} from "../helpers/image_fixtures.ts";
import { startFaultProxy } from "../helpers/fault_proxy.ts";
import { integrationTest, startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { goDiffIds, pullBack, skopeoArchive, umociImage } from "../helpers/skopeo.ts";

const TOOLS = ["docker-registry", "skopeo", "umoci", "pigz", "zstd"];
const LAYERS = [2_500_000, 1_500_000, 700];

type Writer = (path: string) => Promise<{ configDigest: string; layerDiffIds: string[] }>;

const FORMATS: Record<string, Writer> = {
  "docker save before 25": async (path) =>
    (await writeDockerSaveLegacy(path, [{ name: "app:1", layerSizes: LAYERS }])).images[0]!,
  "docker save 25+ (symlinked layers)": async (path) =>
    (await writeDocker25Save(path, [{ name: "app:1", layerSizes: LAYERS }], {
      layerSymlinks: true,
    })).images[0]!,
  "OCI archive (gzip layers)": async (path) =>
    (await writeOciArchive(path, [{ name: "app:1", layerSizes: LAYERS }])).images[0]!,
  "skopeo docker-archive": async (path) => {
    const dir = `${path}.d`;
    await Deno.mkdir(`${dir}/l1/data`, { recursive: true });
    await Deno.writeFile(
      `${dir}/l1/data/blob.bin`,
      new Uint8Array(2_000_000).map((_, i) => (i * 31 + 7) & 0xff),
    );
    const image = await umociImage(`${dir}/layout`, "v1", [`${dir}/l1`]);
    await skopeoArchive("docker-archive", `${dir}/layout`, "v1", path, { name: "app" });
    return image;
  },
};

function target(registry: TestRegistry, repo: string): string {
  return `http://${registry.host}/${repo}:1`;
}

function pushedDigest(result: CliResult): string {
  assertEquals(result.code, 0, result.stderr);
  const out = lines(result.stdout);
  assertEquals(out.length, 1, result.stdout);
  return out[0]!.slice(out[0]!.indexOf("@") + 1);
}

for (const [format, write] of Object.entries(FORMATS)) {
  integrationTest(`stream: ${format} through a pipe, as .tar.gz and as .tar.zst`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "dip-stream-" });
    try {
      const tar = `${dir}/app.tar`;
      const image = await write(tar);
      // pigz -b 64 makes many members; zstd -B 1MiB splits the stream into several frames.
      await run("sh", ["-c", `pigz -c -b 64 '${tar}' > '${tar}.gz'`]);
      await run("sh", ["-c", `zstd -q -c -B1MiB --no-progress '${tar}' > '${tar}.zst'`]);
      await using registry = await startRegistry();
      const fromFile = pushedDigest(await runCli(["-r", target(registry, "file/app"), "-f", tar]));

      const piped = await runCli(["-r", target(registry, "pipe/app"), "-f", "-"], {
        stdinFile: tar,
      });
      assertEquals(pushedDigest(piped), fromFile, "the pipe stores what the file stores");
      const pulled = await pullBack(registry, "pipe/app", "1");
      assertEquals(pulled.configDigest, image.configDigest);
      assertEquals(pulled.layerDiffIds, image.layerDiffIds);

      for (const suffix of [".gz", ".zst"]) {
        const repo = `compressed${suffix.replace(".", "-")}/app`;
        const result = await runCli(["-r", target(registry, repo), "-f", `${tar}${suffix}`]);
        assertEquals(pushedDigest(result), fromFile, `${suffix} stores what the file stores`);
        assertEquals(await goDiffIds(registry, `${repo}:1`), image.layerDiffIds);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }, { tools: TOOLS });
}

integrationTest("stream: one image picked out of a gzip'd multi-image stream", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dip-stream-" });
  try {
    const tar = `${dir}/bundle.tar`;
    const { images } = await writeDockerSaveLegacy(tar, [
      { name: "one:1", layerSizes: [1_500_000, 300] },
      { name: "two:2", layerSizes: [1_200_000, 400] },
    ]);
    await run("sh", ["-c", `gzip -c '${tar}' | cat > '${tar}.gz'`]);
    await using registry = await startRegistry();
    const result = await runCli(
      ["-r", target(registry, "multi/two"), "-f", "-", "--image", "two:2"],
      { stdinFile: `${tar}.gz` },
    );
    pushedDigest(result);
    const pulled = await pullBack(registry, "multi/two", "1");
    assertEquals(pulled.configDigest, images[1]!.configDigest);
    assertEquals(pulled.layerDiffIds, images[1]!.layerDiffIds);
    // The other image's large layer went up as the stream passed: said so.
    assertStringIncludes(result.stderr, "of other images in the stream went up too");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { tools: ["docker-registry", "skopeo"] });

integrationTest(
  "stream: a dry run reads and checks the whole stream and sends nothing",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "dip-stream-" });
    try {
      const tar = `${dir}/app.tar`;
      await writeDocker25Save(tar, [{ name: "app:1", layerSizes: [2_000_000, 500] }]);
      await run("sh", ["-c", `zstd -q -c '${tar}' > '${tar}.zst'`]);
      await using registry = await startRegistry();
      const before = (await registry.requests()).length;
      const result = await runCli([
        "-r",
        target(registry, "dry/app"),
        "-f",
        `${tar}.zst`,
        "--dry-run",
      ]);
      assertEquals(result.code, 0, result.stderr);
      assertStringIncludes(result.stderr, "Dry run: 3 blob(s)");
      const log = (await registry.requests()).slice(before);
      assert(
        log.every((r) => r.method === "GET" || r.method === "HEAD"),
        log.map((r) => `${r.method} ${r.path}`).join("\n"),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { tools: ["docker-registry", "zstd"] },
);

for (const format of ["docker save 25+", "docker save before 25"]) {
  integrationTest(
    `stream: a re-push of an unchanged .tar.gz (${format}) sends no layer bytes`,
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "dip-stream-" });
      try {
        const tar = `${dir}/app.tar`;
        const layerSizes = [2_000_000, 1_500_000];
        if (format === "docker save 25+") {
          await writeDocker25Save(tar, [{ name: "app:1", layerSizes }]);
        } else await writeDockerSaveLegacy(tar, [{ name: "app:1", layerSizes }]);
        await run("sh", ["-c", `gzip -c '${tar}' > '${tar}.gz'`]);
        await using registry = await startRegistry();
        // The same cache as a user's re-run has; the default compression (gzip).
        const env = { XDG_CACHE_HOME: `${dir}/cache`, DOCKER_PUSHER_COMPRESSION: "" };
        const args = ["-r", target(registry, "again/app"), "-f", `${tar}.gz`];
        const digest = pushedDigest(await runCli(args, { env }));
        const before = (await registry.requests()).length;
        assertEquals(pushedDigest(await runCli(args, { env })), digest);
        const log = (await registry.requests()).slice(before);
        const uploads = log.filter((r) => r.path.includes("/blobs/uploads/"));
        assertEquals(uploads.map((r) => `${r.method} ${r.path}`), [], "nothing was uploaded");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
    { tools: ["docker-registry"] },
  );
}

integrationTest(
  "stream: failed requests of a piped layer are sent again from what is held",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "dip-stream-" });
    try {
      const tar = `${dir}/app.tar`;
      const { images } = await writeDockerSaveLegacy(tar, [
        { name: "app:1", layerSizes: [12_000_000, 300] },
      ]);
      await using registry = await startRegistry();
      // A buffering front end: 503s, 429s and cut bodies on the layer's segments.
      await using proxy = startFaultProxy({
        upstream: registry.url,
        mode: "buffering",
        seed: 3,
        rate503: 0.2,
        rate429: 0.1,
        rateCut: 0.2,
        faultsOn: { methods: ["PATCH"] },
      });
      for (const compression of ["none", "gzip"]) {
        const repo = `held/${compression}`;
        const result = await runCli(
          ["-r", `http://${proxy.host}/${repo}:1`, "-f", "-", "--chunk-size", "1MiB"],
          {
            stdinFile: tar,
            env: { DOCKER_PUSHER_COMPRESSION: compression },
            deadlineMs: 60_000,
          },
        );
        pushedDigest(result);
        assertEquals(await goDiffIds(registry, `${repo}:1`), images[0]!.layerDiffIds);
      }
      const counts = proxy.faultCounts();
      assert(counts["503"] > 0 && counts["429"] > 0 && counts.cut > 0, proxy.summary());
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { tools: ["docker-registry", "skopeo"] },
);

integrationTest("stream: a piped layer whose session is lost fails clearly", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dip-stream-" });
  try {
    const tar = `${dir}/app.tar`;
    await writeDockerSaveLegacy(tar, [{ name: "app:1", layerSizes: [8_000_000, 300] }]);
    await using registry = await startRegistry();
    // A front end passing bodies through: the first cut segment costs the session.
    await using proxy = startFaultProxy({
      upstream: registry.url,
      mode: "pass-through",
      seed: 1,
      rateCut: 1,
      cutChunkedMaxBytes: 512 * 1024,
      maxFaults: 1,
      faultsOn: { methods: ["PATCH"] },
    });
    const result = await runCli(
      ["-r", `http://${proxy.host}/lost/app:1`, "-f", "-", "--chunk-size", "1MiB"],
      { stdinFile: tar, deadlineMs: 60_000 },
    );
    assertEquals(result.code, 1, result.stderr);
    assertEquals(proxy.faultCounts().cut, 1, proxy.summary());
    const last = lines(result.stderr).at(-1) ?? "";
    assertStringIncludes(last, "could not be sent, and a stream cannot be read again");
    // Why, and what to do, without --verbose.
    assertStringIncludes(last, "the registry discarded the upload session");
    assertStringIncludes(last, "run the same command again");
    assert(
      !(await registry.requests()).some((r) =>
        r.method === "PUT" && r.path.includes("/manifests/")
      ),
      "no manifest was pushed",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { tools: ["docker-registry"] });

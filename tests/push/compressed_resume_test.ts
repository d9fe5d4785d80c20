/**
 * Large layers compressed on the fly go up in segments and resume like chunks do: killed
 * mid-push, the next run makes the same compressed stream again (the level of every block was
 * saved), asks the registry where the session stands and sends only the rest; 503s and 429s on
 * segments are retried from the registry's offset within the run.
 */
import { CODER } from "../../src/compress/codec.ts";
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { type RunningCli, startCli } from "../helpers/cli.ts";
import { type FaultProxy, startFaultProxy } from "../helpers/fault_proxy.ts";
import { writeDockerSaveLegacy } from "../helpers/image_fixtures.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import { goDiffIds } from "../helpers/skopeo.ts";

const MiB = 1024 * 1024;
const SEGMENT = 8 * MiB;
/** Text-like layer: about 96 MB that compresses, so the stream differs from the input. */
const LAYER_BYTES = 96_000_000;
const TOOLS = ["docker-registry", "skopeo"];
const UPLOAD = /\/blobs\/uploads\//;

function args(host: string, repo: string, archive: string): string[] {
  return [
    "-r",
    `http://${host}/${repo}:1`,
    "-f",
    archive,
    "--large-layer-threshold",
    "1MiB",
    "--chunk-size",
    "8MiB",
  ];
}

function start(argv: string[], home: string): RunningCli {
  return startCli(argv, {
    env: {
      XDG_STATE_HOME: `${home}/state`,
      XDG_CACHE_HOME: `${home}/cache`,
      DOCKER_PUSHER_COMPRESSION: "gzip",
    },
    deadlineMs: 90_000,
  });
}

/** Upload body bytes the proxy received from request number `from` on. */
const bytesSince = (proxy: FaultProxy, from: number) =>
  proxy.requests.slice(from).filter((r) => UPLOAD.test(r.path))
    .reduce((sum, r) => sum + r.bodyBytesReceived, 0);

async function savedOffsets(
  home: string,
): Promise<{ digest: string; offset: number; levels?: number[] }[]> {
  const dir = `${home}/state/docker-image-pusher/uploads`;
  const records = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.endsWith(".json")) {
      records.push(JSON.parse(await Deno.readTextFile(`${dir}/${entry.name}`)));
    }
  }
  return records;
}

integrationTest(
  "a compressed layer killed half-way resumes: the re-run sends only the rest",
  async () => {
    await using registry = await startRegistry();
    await using proxy = startFaultProxy({ upstream: registry.url, seed: 1 });
    const home = await Deno.makeTempDir({ prefix: "dip-cresume-" });
    try {
      const archive = await writeDockerSaveLegacy(`${home}/app.tar`, [
        { name: "app:1", layerSizes: [LAYER_BYTES] },
      ]);
      const argv = args(proxy.host, "cz/kill", archive.path);
      const first = start(argv, home);
      const moment = proxy.whenReceived(4 * SEGMENT + SEGMENT / 8);
      const which = await Promise.race([
        moment.then(() => "moment"),
        first.done.then(() => "done"),
      ]);
      assertEquals(which, "moment", "the first run was still going");
      first.child.kill("SIGKILL");
      await first.done;
      const saved = await savedOffsets(home);
      assertEquals(saved.length, 1, JSON.stringify(saved));
      const record = saved[0]!;
      assert(record.digest.startsWith(archive.images[0]!.layerDigests[0]!), record.digest);
      // Saved per setting and coder: another coder would make other bytes from the same levels.
      assertStringIncludes(record.digest, `gzip:auto coder ${CODER}`);
      assert(record.offset >= 3 * SEGMENT, `saved offset ${record.offset}`);
      assert(Array.isArray(record.levels) && record.levels.length > 0, "block levels saved");

      const from = proxy.requests.length;
      const rerun = await start(argv, home).done;
      assertEquals(rerun.code, 0, rerun.stderr);
      assertStringIncludes(rerun.stderr, "Resuming the saved upload of");
      assert(!rerun.stderr.includes("from the start"), rerun.stderr);
      const { json } = await registry.fetchManifest("cz/kill", "1");
      const layer = (json.layers as { size: number; mediaType: string }[])[0]!;
      assertEquals(layer.mediaType, "application/vnd.docker.image.rootfs.diff.tar.gzip");
      // The re-run sent the rest of the layer's compressed stream and nothing else (the config
      // went up in the first run).
      assertEquals(bytesSince(proxy, from), layer.size - record.offset, proxy.summary());
      assertEquals(await goDiffIds(registry, "cz/kill:1"), archive.images[0]!.layerDiffIds);
      assertEquals(await savedOffsets(home), [], "nothing left saved");
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
  { tools: TOOLS },
);

integrationTest("503s and 429s on segments: each retried from the registry's offset", async () => {
  await using registry = await startRegistry();
  await using proxy = startFaultProxy({
    upstream: registry.url,
    seed: 7,
    rate503: 0.25,
    rate429: 0.1,
    faultsOn: { methods: ["PATCH"] },
  });
  const home = await Deno.makeTempDir({ prefix: "dip-cresume-" });
  try {
    const archive = await writeDockerSaveLegacy(`${home}/app.tar`, [
      { name: "app:1", layerSizes: [40_000_000] },
    ]);
    const argv = [...args(proxy.host, "cz/faults", archive.path), "--retry-attempts", "10"];
    const result = await start(argv, home).done;
    assertEquals(result.code, 0, result.stderr);
    const counts = proxy.faultCounts();
    assert(counts["503"] + counts["429"] > 0, proxy.summary());
    const { json } = await registry.fetchManifest("cz/faults", "1");
    const layer = (json.layers as { size: number }[])[0]!;
    const config = (json.config as { size: number }).size;
    // Every byte forwarded to the registry once: refused segments were sent again, from where
    // the registry stood, and nothing else was.
    const forwarded = proxy.requests.filter((r) => UPLOAD.test(r.path))
      .reduce((sum, r) => sum + r.forwardedBytes, 0);
    assertEquals(forwarded, layer.size + config, proxy.summary());
    assertEquals(await goDiffIds(registry, "cz/faults:1"), archive.images[0]!.layerDiffIds);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}, { tools: TOOLS });

/**
 * Front ends that pass request bodies through as they arrive (Harbor's nginx with
 * `proxy_request_buffering off`, a registry reached directly): a body cut off mid-way reaches
 * the CNCF registry in part, and the registry then discards the whole upload session (404
 * BLOB_UPLOAD_INVALID at the session's next request); so does a request whose answer never
 * reached the client. The fault proxy in pass-through mode stands for such a front end, in
 * front of the real registry.
 *
 * Within a run, a lost session starts the blob again (up to `--retry-attempts` times) and, in
 * the default `auto` mode, the rest goes in one request; a re-run after an answer was lost
 * starts the blob again with one notice saying why. The seeds are fixed, chosen so that the
 * faults each test needs happen (asserted), and the draws repeat from run to run.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { type CliResult, runCli } from "../helpers/cli.ts";
import { type FaultProxy, startFaultProxy } from "../helpers/fault_proxy.ts";
import { makeBigLayerArchive, writeDockerSaveLegacy } from "../helpers/image_fixtures.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import { goDiffIds } from "../helpers/skopeo.ts";

const MiB = 1024 * 1024;
const TOOLS = ["docker-registry", "skopeo"];
const LOST = "discarded the upload session";
const AGAIN = "starting the blob again in a new session";
const ONE_REQUEST = "lost an upload session; sending each blob in one request from now on";

async function push(
  proxy: FaultProxy,
  repo: string,
  archive: string,
  home: string,
  extra: string[],
  compression = "none",
): Promise<CliResult> {
  return await runCli([
    "-r",
    `http://${proxy.host}/${repo}:1`,
    "-f",
    archive,
    "--large-layer-threshold",
    "1MiB",
    ...extra,
  ], {
    env: {
      XDG_STATE_HOME: `${home}/state`,
      XDG_CACHE_HOME: `${home}/cache`,
      DOCKER_PUSHER_COMPRESSION: compression,
    },
    deadlineMs: 120_000,
  });
}

function context(proxy: FaultProxy, result: CliResult): string {
  return `${proxy.summary()}\n--- stderr ---\n${result.stderr}`;
}

async function withHome(fn: (home: string) => Promise<void>): Promise<void> {
  const home = await Deno.makeTempDir({ prefix: "dip-pass-through-" });
  try {
    await fn(home);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

for (
  const { compression, seed } of [
    { compression: "none", seed: 3 },
    { compression: "gzip", seed: 1 },
  ]
) {
  integrationTest(
    `pass-through: a cut chunk loses the session; the blob starts again, in one request (${compression})`,
    async () => {
      await withHome(async (home) => {
        const { images } = compression === "none"
          ? await makeBigLayerArchive(`${home}/app.tar`, 160 * MiB, "docker-legacy")
          : await writeDockerSaveLegacy(`${home}/app.tar`, [
            { name: "app:1", layerSizes: [64_000_000] },
          ]);
        await using registry = await startRegistry();
        await using proxy = startFaultProxy({
          upstream: registry.url,
          mode: "pass-through",
          seed,
          rate503: 0.1,
          rateCut: 0.05,
        });
        const result = await push(
          proxy,
          "pt/cut",
          `${home}/app.tar`,
          home,
          ["--chunk-size", "8MiB", "--retry-attempts", "10"],
          compression,
        );
        const why = context(proxy, result);
        assertEquals(result.code, 0, why);
        assert(proxy.faultCounts().cut > 0, `a body was cut; ${why}`);
        assertStringIncludes(result.stderr, LOST, why);
        assertStringIncludes(result.stderr, AGAIN, why);
        assertEquals(result.stderr.split(ONE_REQUEST).length - 1, 1, why);
        assertEquals(await goDiffIds(registry, "pt/cut:1"), images[0]!.layerDiffIds);
      });
    },
    { tools: TOOLS },
  );
}

for (const compression of ["none", "gzip"]) {
  integrationTest(
    `pass-through: an answer lost before an interruption; the re-run starts that blob again (${compression})`,
    async () => {
      await withHome(async (home) => {
        const { images } = await writeDockerSaveLegacy(`${home}/app.tar`, [
          { name: "app:1", layerSizes: [40_000_000] },
        ]);
        await using registry = await startRegistry();
        // The answer to one PATCH after the first is lost: the registry holds that chunk, the
        // saved progress doesn't. With no retries, the run stops there, as if killed.
        await using proxy = startFaultProxy({
          upstream: registry.url,
          mode: "pass-through",
          seed: 1,
          rateLostAnswer: 0.5,
          maxFaults: 1,
          faultsOn: { methods: ["PATCH"] },
        });
        const argv = ["--chunk-size", "4MiB", "--retry-attempts", "0"];
        const first = await push(proxy, "pt/lost", `${home}/app.tar`, home, argv, compression);
        assertEquals(first.code, 1, context(proxy, first));
        assertEquals(proxy.faultCounts()["lost-answer"], 1, proxy.summary());
        const lost = proxy.requests.findIndex((r) => r.outcome === "lost-answer");
        assert(
          proxy.requests.slice(0, lost).some((r) => r.method === "PATCH" && r.status === 202),
          `an earlier PATCH was confirmed, so progress was saved; ${proxy.summary()}`,
        );

        const rerun = await push(proxy, "pt/lost", `${home}/app.tar`, home, argv, compression);
        const why = context(proxy, rerun);
        assertEquals(rerun.code, 0, why);
        const notices = rerun.stderr.split("\n").filter((l) => l.includes("from the start"));
        assertEquals(notices.length, 1, why);
        assertStringIncludes(
          notices[0]!,
          "the registry discarded the saved upload session (404 BLOB_UPLOAD_INVALID): it holds " +
            "other bytes than were confirmed to us",
        );
        assertEquals(await goDiffIds(registry, "pt/lost:1"), images[0]!.layerDiffIds);
      });
    },
    { tools: TOOLS },
  );
}

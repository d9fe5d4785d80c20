/**
 * Faults survived: the CLI pushes through the fault proxy in front of the real registry while
 * 15% of requests get 503, 5% get 429 (`Retry-After: 1`) and 20% of upload bodies are cut off
 * part-way, and still exits 0 with an image skopeo pulls back intact from the registry.
 *
 * The proxy is store-and-forward (as nginx with its default request buffering), so a cut body
 * never reaches the registry and upload sessions survive: every blob byte reaches the registry
 * exactly once, and no blob has to start again. The seeds are fixed and were chosen so that
 * every kind of fault happens in each push; the draws are keyed per request (see
 * `fault_proxy.ts`), so they repeat run after run. Each test asserts the faults happened.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { type CliResult, lines, runCli } from "../helpers/cli.ts";
import { type FaultProxy, startFaultProxy } from "../helpers/fault_proxy.ts";
import {
  type FixtureImageInfo,
  makeBigLayerArchive,
  writeDockerSaveLegacy,
} from "../helpers/image_fixtures.ts";
import {
  integrationTest,
  type LoggedRequest,
  startRegistry,
  type TestRegistry,
} from "../helpers/registry.ts";
import { pullBack } from "../helpers/skopeo.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 ** 3;
const CHUNK = 64 * MiB;
const TOOLS = ["docker-registry", "skopeo"];
const FAULTS = { rate503: 0.15, rate429: 0.05, rateCut: 0.2 } as const;
const UPLOAD = /\/blobs\/uploads\//;
const MANIFEST = /\/manifests\//;

/**
 * Seeds: the first ones (counting from 1) whose push meets 503s, 429s and cuts alike (asserted
 * below). For the 3-layer image, seeds 2 and 3 miss cuts; seeds 1, 4 and 5 give 1/5/2 503s,
 * 1/2/3 429s and 1/4/1 cuts. For the 1 GiB layer, seed 1 gives 4×503, 1×429 and 7 cut chunks.
 * The draws are keyed per request, so these counts repeat from run to run.
 */
const SEEDS_SMALL = [1, 4, 5];
const SEED_BIG = 1;
/** A push that takes longer than this has hung: it is killed and the test fails. */
const DEADLINE_MS = 90_000;

/** A temporary directory for the archive and the pusher's state, removed with `await using`. */
async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "dip-faults-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

/**
 * Runs the CLI against `proxy` with its state in `stateHome` and `--retry-attempts 10`, killed
 * after `deadlineMs`, so a hang fails the test instead of stalling it for the CLI's two-hour
 * inactivity timeout.
 */
async function push(
  proxy: FaultProxy,
  repo: string,
  archive: string,
  stateHome: string,
  args: string[],
  deadlineMs = DEADLINE_MS,
): Promise<CliResult> {
  return await runCli(
    [
      "-r",
      `http://${proxy.host}/${repo}:1`,
      "-f",
      archive,
      "--retry-attempts",
      "10",
      ...args,
    ],
    { env: { XDG_STATE_HOME: stateHome }, deadlineMs },
  );
}

/** Exit 0 and the one result line naming the pushed tag. */
function assertPushed(result: CliResult, proxy: FaultProxy, repo: string): void {
  const context = `${proxy.summary()}\n--- stderr ---\n${result.stderr}`;
  assert(!result.hung, `the push hung and was killed; ${context}`);
  assertEquals(result.code, 0, `the push failed; ${context}`);
  const out = lines(result.stdout);
  assertEquals(out.length, 1, `stdout: ${result.stdout}`);
  assert(out[0]!.startsWith(`${proxy.host}/${repo}:1@sha256:`), `stdout: ${result.stdout}`);
}

/** skopeo pulls the tag back from the registry itself: config and every layer match. */
async function assertRoundTrip(
  registry: TestRegistry,
  repo: string,
  image: FixtureImageInfo,
): Promise<void> {
  const pulled = await pullBack(registry, repo, "1");
  assertEquals(pulled.configDigest, image.configDigest);
  assertEquals(pulled.layerDiffIds, image.layerDiffIds);
  assertEquals(pulled.layerDigests, image.layerDigests);
}

/**
 * The registry's access log: every blob committed once, and no manifest PUT before the last
 * blob PUT. Returns the blob PUTs.
 */
function assertBlobsBeforeManifest(log: LoggedRequest[], blobs: number): LoggedRequest[] {
  const blobPuts = log.filter((r) => r.method === "PUT" && UPLOAD.test(r.path));
  const lastBlobPut = log.findLastIndex((r) => r.method === "PUT" && UPLOAD.test(r.path));
  const firstManifestPut = log.findIndex((r) => r.method === "PUT" && MANIFEST.test(r.path));
  assert(firstManifestPut >= 0, "no manifest PUT reached the registry");
  assert(
    firstManifestPut > lastBlobPut,
    `a manifest PUT (request ${firstManifestPut}) reached the registry before a blob PUT ` +
      `(request ${lastBlobPut}):\n${
        log.map((r) => `${r.method} ${r.path} ${r.status}`).join("\n")
      }`,
  );
  assertEquals(
    blobPuts.filter((r) => r.status === 201).length,
    blobs,
    "each blob is committed exactly once",
  );
  return blobPuts;
}

/** Sizes of the config and layers the registry's manifest names. */
async function blobSizes(registry: TestRegistry, repo: string): Promise<number[]> {
  const { json } = await registry.fetchManifest(repo, "1");
  const config = json.config as { size: number };
  const layers = json.layers as { size: number }[];
  return [config.size, ...layers.map((l) => l.size)];
}

/** Body bytes the proxy forwarded to upload sessions (PATCH and PUT). */
function uploadBytesForwarded(proxy: FaultProxy): number {
  return proxy.requests
    .filter((r) => UPLOAD.test(r.path))
    .reduce((sum, r) => sum + r.forwardedBytes, 0);
}

/** Every fault kind happened at least once. */
function assertEveryFaultKind(proxy: FaultProxy): void {
  const counts = proxy.faultCounts();
  assert(
    counts["503"] > 0 && counts["429"] > 0 && counts.cut > 0,
    `the run should meet every kind of fault; ${proxy.summary()}`,
  );
  assertEquals(proxy.errors, [], proxy.summary());
}

function report(what: string, proxy: FaultProxy, ms: number): void {
  const counts = proxy.faultCounts();
  // deno-lint-ignore no-console -- the measured figures go in a report
  console.log(
    `${what}: ${(ms / 1000).toFixed(1)} s, ${proxy.requests.length} requests, ` +
      `503×${counts["503"]}, 429×${counts["429"]}, cut×${counts.cut}; body bytes received ` +
      `${proxy.bytesReceived()}, forwarded ${proxy.forwardedBytes()} (seed ${proxy.seed})`,
  );
}

integrationTest(
  "faults: a 3-layer image goes up in single PUTs through 503s, 429s and cut bodies",
  async () => {
    await using dir = await tempDir();
    const archive = `${dir.path}/app.tar`;
    const { images } = await writeDockerSaveLegacy(archive, [
      { name: "app:1", layerSizes: [300 * KiB, 400 * KiB, 500 * KiB] },
    ]);
    const image = images[0]!;
    await using registry = await startRegistry();
    for (const seed of SEEDS_SMALL) {
      const repo = `faults/small-${seed}`;
      await using proxy = startFaultProxy({ upstream: registry.url, seed, ...FAULTS });
      const before = (await registry.requests()).length;

      const started = performance.now();
      const result = await push(proxy, repo, archive, `${dir.path}/state`, []);
      report(`3-layer monolithic push, seed ${seed}`, proxy, performance.now() - started);

      assertPushed(result, proxy, repo);
      assertEveryFaultKind(proxy);
      assert(
        proxy.requests.every((r) => r.method !== "PATCH"),
        "small layers go up in one PUT each",
      );
      const sizes = await blobSizes(registry, repo);
      assertBlobsBeforeManifest((await registry.requests()).slice(before), sizes.length);
      // Store-and-forward: no cut or refused body reached the registry, so each blob's bytes
      // went through exactly once, however often the client had to send them.
      const total = sizes.reduce((a, b) => a + b, 0);
      assertEquals(uploadBytesForwarded(proxy), total, proxy.summary());
      assert(proxy.bytesReceived() > total, `faults cost resent bytes; ${proxy.summary()}`);
      await assertRoundTrip(registry, repo, image);
    }
  },
  { tools: TOOLS },
);

integrationTest(
  "faults: a 1 GiB layer goes up in 64 MiB chunks through 503s, 429s and cut bodies",
  async () => {
    await using dir = await tempDir();
    const archive = `${dir.path}/big.tar`;
    const { images } = await makeBigLayerArchive(archive, GiB, "docker-legacy");
    const image = images[0]!;
    await using registry = await startRegistry();
    await using proxy = startFaultProxy({ upstream: registry.url, seed: SEED_BIG, ...FAULTS });

    const started = performance.now();
    const result = await push(proxy, "faults/big", archive, `${dir.path}/state`, [
      "--large-layer-threshold",
      "1",
      "--chunk-size",
      "64MiB",
    ]);
    report("1 GiB chunked push", proxy, performance.now() - started);

    assertPushed(result, proxy, "faults/big");
    assertEveryFaultKind(proxy);
    const patchCuts = proxy.requests.filter((r) => r.method === "PATCH" && r.outcome === "cut");
    assert(patchCuts.length > 0, `some chunks were cut; ${proxy.summary()}`);
    // Sessions survived every fault: chunks continued from the registry's offset, and no blob
    // was started again.
    assert(
      !/from the start|discarded the upload session/.test(result.stderr),
      `no upload session was lost; stderr:\n${result.stderr}`,
    );
    const sizes = await blobSizes(registry, "faults/big");
    const log = await registry.requests();
    assertBlobsBeforeManifest(log, 2);
    const layerSize = sizes[1]!;
    // Every blob goes up in chunks here (the threshold is 1 byte), the config in one.
    const forwardedPatches = proxy.requests.filter((r) =>
      r.method === "PATCH" && r.outcome === "forwarded"
    );
    assertEquals(
      forwardedPatches.length,
      Math.ceil(layerSize / CHUNK) + Math.ceil(sizes[0]! / CHUNK),
      `each chunk reached the registry once; ${proxy.summary()}`,
    );
    assertEquals(uploadBytesForwarded(proxy), layerSize + sizes[0]!, proxy.summary());
    assert(
      !log.some((r) => UPLOAD.test(r.path) && r.status >= 400),
      "the registry never refused an upload request",
    );
    await assertRoundTrip(registry, "faults/big", image);
  },
  { tools: TOOLS },
);

integrationTest(
  "faults: 503s on blob HEAD checks don't use up the connection pool",
  async () => {
    // Three 503s on the first blob's existence check, then the registry answers. With
    // --max-concurrent 1 the pool holds 3 keep-alive sockets (--max-concurrent + 2): a HEAD
    // error response that is never drained keeps its socket (and its inactivity watchdog) for
    // the whole --timeout, and the fourth HEAD waits for a free socket until then.
    await using dir = await tempDir();
    const archive = `${dir.path}/app.tar`;
    const { images } = await writeDockerSaveLegacy(archive, [
      { name: "app:1", layerSizes: [1000, 2000] },
    ]);
    await using registry = await startRegistry();
    await using proxy = startFaultProxy({
      upstream: registry.url,
      seed: 1,
      rate503: 1,
      maxFaults: 3,
      faultsOn: { methods: ["HEAD"] },
    });
    const result = await push(
      proxy,
      "faults/head",
      archive,
      `${dir.path}/state`,
      ["--max-concurrent", "1"],
      // Three backoffs (at most 0.5 + 1 + 2 s) and three tiny blobs take a few seconds.
      20_000,
    );
    assertEquals(proxy.faultCounts()["503"], 3, proxy.summary());
    assertPushed(result, proxy, "faults/head");
    await assertRoundTrip(registry, "faults/head", images[0]!);
  },
  { tools: TOOLS },
);

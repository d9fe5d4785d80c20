/**
 * `pull` through the fault proxy in front of the real registry: 503s, 429s (`Retry-After: 1`)
 * and blob answers cut part-way. With `--retry-attempts 10` the pull ends, to a file and to
 * standard output, with an archive skopeo reads (config digest and diff IDs intact) whose
 * every blob hashes to its name; and the blob GETs cost the blobs' sizes: each cut answer
 * went on from the cut with a Range request answered 206, none started over, and no blob was
 * asked for past its end (distribution answers `Range: bytes=<size>-` with a broken 416).
 * "The sizes" exactly: every byte that arrived before a cut is kept (see
 * {@linkcode LOST_PER_CUT}).
 */
import { createHash } from "node:crypto";
import { assert, assertEquals } from "../helpers/assert.ts";
import { type FaultProxy, type FaultProxyRecord, startFaultProxy } from "../helpers/fault_proxy.ts";
import { integrationTest, startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { pull, readArchive, seed, skopeoConfig, tempDir } from "../pull/_support.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const MiB = 1024 * 1024;
const TOOLS = ["docker-registry", "skopeo"];
/** Three layers of a few MB (random payload, so gzip leaves them about this size). */
const LAYER_SIZES = [4 * MiB, 3 * MiB + 4321, 2 * MiB + 777];
const BLOB_PATH = /^\/v2\/.+\/blobs\/(sha256:[a-f0-9]{64})$/;
/**
 * Draws of this seed give, for this image, 503s, 429s and cut blob answers (configs and
 * layers) to both pulls; `maxFaults` bounds them so the pulls end in seconds.
 */
const FAULTS = {
  seed: 3,
  rate503: 0.2,
  rate429: 0.08,
  rateCutResponse: 0.35,
  maxFaults: 16,
};

interface Seeded {
  registry: TestRegistry;
  configDigest: string;
  diffIds: string[];
  /** Every blob a pull GETs (config and layers), by digest, with its size. */
  blobs: Map<string, number>;
}

async function seedImage(registry: TestRegistry, repo: string): Promise<Seeded> {
  const { fixture } = await seed(registry, `${repo}:1`, [
    { name: "faults:1", layerSizes: LAYER_SIZES },
  ]);
  const manifest = (await registry.fetchManifest(repo, "1")).json as {
    config: { digest: string; size: number };
    layers: { digest: string; size: number }[];
  };
  const blobs = new Map([manifest.config, ...manifest.layers].map((b) => [b.digest, b.size]));
  const image = fixture.images[0]!;
  return { registry, configDigest: image.configDigest, diffIds: image.layerDiffIds, blobs };
}

/**
 * Bytes the client may lose per cut answer. None: downloads go over fetch
 * (`src/registry/fetch_transport.ts`), which hands over every byte received before it reports
 * the cut, and `downloadBlob` writes what it gathered before retrying. (Over node:http it was up
 * to 128 KiB: Node's IncomingMessage, destroyed with `aborted` when the socket ended short,
 * dropped what it buffered, 4–63 KB measured.)
 */
const LOST_PER_CUT = 0;

/**
 * The blob GETs cost each blob's size: per blob, the first answer relayed is a 200 and every
 * later one a 206 (a resume with Range, never a start over, never a range past the end: no
 * 416), and the bytes relayed add up to the size, give or take what the client lost per cut.
 */
function assertNoBytesTwice(proxy: FaultProxy, blobs: Map<string, number>): void {
  const context = proxy.summary();
  const gets = proxy.requests.filter((r) => r.method === "GET" && BLOB_PATH.test(r.path));
  assert(!proxy.requests.some((r) => r.status === 416), `a blob asked past its end; ${context}`);
  const byDigest = new Map<string, FaultProxyRecord[]>();
  for (const record of gets) {
    const digest = BLOB_PATH.exec(record.path)![1]!;
    byDigest.set(digest, [...(byDigest.get(digest) ?? []), record]);
  }
  assertEquals([...byDigest.keys()].sort(), [...blobs.keys()].sort(), context);
  for (const [digest, records] of byDigest) {
    const relayed = records.filter((r) => r.fault !== "503" && r.fault !== "429");
    const statuses = relayed.map((r) => r.status);
    assertEquals(statuses, [200, ...relayed.slice(1).map(() => 206)], `${digest}; ${context}`);
    const size = blobs.get(digest)!;
    const bytes = relayed.reduce((sum, r) => sum + r.responseBytesRelayed, 0);
    const cuts = relayed.filter((r) => r.fault === "cut-response").length;
    assert(
      bytes >= size && bytes - size <= cuts * LOST_PER_CUT,
      `${digest}: ${bytes} bytes relayed for ${size} after ${cuts} cut(s); ${context}`,
    );
  }
  assert(
    gets.filter((r) => r.fault === "503" || r.fault === "429")
      .every((r) => r.responseBytesRelayed === 0),
    `injected answers relayed no blob bytes; ${context}`,
  );
}

/** Each kind of fault happened; the proxy itself had no trouble. */
function assertEveryFault(proxy: FaultProxy): void {
  const counts = proxy.faultCounts();
  assert(counts["503"] > 0, `no 503; ${proxy.summary()}`);
  assert(counts["429"] > 0, `no 429; ${proxy.summary()}`);
  assert(counts["cut-response"] > 0, `no cut answer; ${proxy.summary()}`);
  assertEquals(proxy.errors, []);
}

/** skopeo reads the archive as docker-archive; every `blobs/sha256/<hex>` hashes to `<hex>`. */
async function assertArchiveIntact(path: string, image: Seeded): Promise<void> {
  const config = await skopeoConfig(`docker-archive:${path}`);
  assertEquals(config.digest, image.configDigest);
  assertEquals(config.diffIds, image.diffIds);
  await using dir = await tempDir("dip-faults-x-");
  const untar = await new Deno.Command("tar", { args: ["xf", path, "-C", dir.path] }).output();
  assert(untar.success, new TextDecoder().decode(untar.stderr));
  const names = (await readArchive(path)).names.filter((n) => /^blobs\/sha256\/\w{64}$/.test(n));
  for (const digest of image.blobs.keys()) {
    assert(names.includes(`blobs/sha256/${digest.slice(7)}`), `${digest} missing`);
  }
  for (const name of names) {
    const bytes = await Deno.readFile(`${dir.path}/${name}`);
    assertEquals(createHash("sha256").update(bytes).digest("hex"), name.slice(13), name);
  }
}

integrationTest(
  "pull through 503s, 429s and cut blob answers: every blob resumed, none read twice",
  async () => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    const image = await seedImage(registry, "faults/app");
    await using proxy = startFaultProxy({ upstream: registry.url, ...FAULTS });
    const out = `${dir.path}/app.tar`;
    const result = await pull([
      `${proxy.url}/faults/app:1`,
      "-o",
      out,
      "--retry-attempts",
      "10",
    ], { deadlineMs: 120_000 });
    assertEquals(result.code, 0, `${result.stderr}\n${proxy.summary()}`);
    assertEveryFault(proxy);
    assertNoBytesTwice(proxy, image.blobs);
    await assertArchiveIntact(out, image);
  },
  { tools: TOOLS },
);

integrationTest(
  "pull -o - through 503s, 429s and cut blob answers: the same archive, streamed",
  async () => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    const image = await seedImage(registry, "faults/app");
    // The archive without faults, to compare the streamed one with.
    const plain = await pull([`${registry.url}/faults/app:1`, "-o", `${dir.path}/plain.tar`]);
    assertEquals(plain.code, 0, plain.stderr);

    await using proxy = startFaultProxy({ upstream: registry.url, ...FAULTS });
    const out = `${dir.path}/streamed.tar`;
    const script = `exec "${Deno.execPath()}" run -A --quiet "${MAIN}" pull ` +
      `"${proxy.url}/faults/app:1" -o - --retry-attempts 10 > "${out}"`;
    const env = { ...Deno.env.toObject(), NO_COLOR: "1" };
    const child = new Deno.Command("bash", {
      args: ["-c", script],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    const output = await child.output().finally(() => clearTimeout(timer));
    const stderr = new TextDecoder().decode(output.stderr);
    assertEquals(output.code, 0, `${stderr}\n${proxy.summary()}`);
    assertEquals(output.stdout.length, 0);
    assertEveryFault(proxy);
    assertNoBytesTwice(proxy, image.blobs);
    await assertArchiveIntact(out, image);
    // The archive a file pull without faults writes, but for the host in the images' names.
    const [streamed, plainArchive] = [
      await readArchive(out),
      await readArchive(`${dir.path}/plain.tar`),
    ];
    assertEquals(streamed.names, plainArchive.names);
    const renamed = (value: unknown) =>
      JSON.parse(JSON.stringify(value).replaceAll(proxy.host, registry.host));
    assertEquals(renamed(streamed.index), plainArchive.index);
    assertEquals(renamed(streamed.manifest), plainArchive.manifest);
  },
  { tools: TOOLS },
);

integrationTest(
  "pull: a cut config answer goes on from the cut (it failed the pull before)",
  async () => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    const image = await seedImage(registry, "faults/app");
    // Every answer for the config is cut, twice; nothing else.
    await using proxy = startFaultProxy({
      upstream: registry.url,
      seed: 1,
      rateCutResponse: 1,
      cutResponsePaths: new RegExp(`/blobs/${image.configDigest}$`),
      maxFaults: 2,
    });
    const out = `${dir.path}/app.tar`;
    const result = await pull([`${proxy.url}/faults/app:1`, "-o", out], { deadlineMs: 60_000 });
    assertEquals(result.code, 0, `${result.stderr}\n${proxy.summary()}`);
    assertEquals(proxy.faultCounts()["cut-response"], 2, proxy.summary());
    const config = proxy.requests.filter((r) => r.path.endsWith(`/blobs/${image.configDigest}`));
    assertEquals(config.map((r) => [r.status, r.fault]), [
      [200, "cut-response"],
      [206, "cut-response"],
      [206, undefined],
    ]);
    assertNoBytesTwice(proxy, image.blobs);
    await assertArchiveIntact(out, image);
  },
  { tools: TOOLS },
);

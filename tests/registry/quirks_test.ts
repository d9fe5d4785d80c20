/**
 * Registry quirks, each pushed through by the CLI (a subprocess) against the real registry
 * behind the recording proxy of `proxy.ts`, which relays it the way other registries behave:
 * odd upload `Location`s, refused PATCHes, body-size caps, 401/403 for missing blobs, manifest
 * responses without a digest. Every push must exit 0 and round-trip (skopeo pulls it back from
 * the registry directly); the behaviour itself is read from the proxy's and registry's logs.
 * Cross-repository mounts, an `access_token`-only token server, and a read-only registry (the
 * one push here that must fail, in one line) are here too.
 */
import { resolveLocation } from "../../src/registry/location.ts";
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { type CliOptions, type CliResult, lines, runCli } from "../helpers/cli.ts";
import { type FixtureImageInfo, writeDockerSaveLegacy } from "../helpers/image_fixtures.ts";
import { MIRROR_PREFIX, type ProxyRequest, startProxy } from "../helpers/proxy.ts";
import {
  integrationTest,
  type LoggedRequest,
  startRegistry,
  type TestRegistry,
} from "../helpers/registry.ts";
import { pullBack } from "../helpers/skopeo.ts";
import { startTokenServer } from "../helpers/token_server.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const PASSWORD = "pw-Qu1rk#s";
const USER = { username: "alice", password: PASSWORD };
const LOGIN = ["-u", "alice", "--password-stdin"];
const AS_ALICE: CliOptions = { stdin: PASSWORD };
/** Chunk every layer of 64 KiB or more, in 64 KiB chunks: many PATCHes, many Locations. */
const SMALL_CHUNKS = ["--large-layer-threshold", "64KiB", "--chunk-size", "64KiB"];
const UPLOAD = /\/blobs\/uploads\//;
const TOOLS = ["docker-registry", "skopeo"];

interface Archive extends AsyncDisposable {
  path: string;
  /** A directory of its own for the pusher's saved state (`XDG_STATE_HOME`). */
  stateDir: string;
  image: FixtureImageInfo;
  /** Config plus layers. */
  blobs: number;
}

async function makeArchive(layerSizes: number[], name = "app:1"): Promise<Archive> {
  const dir = await Deno.makeTempDir({ prefix: "dip-quirks-" });
  const { images } = await writeDockerSaveLegacy(`${dir}/app.tar`, [{ name, layerSizes }]);
  return {
    path: `${dir}/app.tar`,
    stateDir: `${dir}/state`,
    image: images[0]!,
    blobs: layerSizes.length + 1,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** `-r <origin>/<repo>:1 -f <archive> …args`, keeping any saved state out of `$HOME`. */
function push(
  origin: string,
  repo: string,
  archive: Archive,
  args: string[] = [],
  options: CliOptions = {},
): Promise<CliResult> {
  return runCli(["-r", `${origin}/${repo}:1`, "-f", archive.path, ...args], {
    ...options,
    env: { XDG_STATE_HOME: archive.stateDir, ...options.env },
  });
}

/** Asserts exit 0 and the one result line; returns the digest it names. */
function pushed(result: CliResult, host: string, repo: string): string {
  assertEquals(result.code, 0, result.stderr);
  const match = new RegExp(`^${host.replaceAll(".", "\\.")}/${repo}:1@(sha256:[0-9a-f]{64})\\n$`)
    .exec(result.stdout);
  assert(match !== null, `unexpected stdout: ${JSON.stringify(result.stdout)}`);
  return match[1]!;
}

/** Pulls `repo:1` back from the registry itself and compares it with the archive's image. */
async function roundTrips(
  registry: TestRegistry,
  repo: string,
  archive: Archive,
  digest: string,
): Promise<void> {
  const pulled = await pullBack(registry, repo, "1");
  assertEquals(pulled.manifestDigest, digest, "stdout names the manifest the registry serves");
  assertEquals(pulled.configDigest, archive.image.configDigest);
  assertEquals(pulled.layerDiffIds, archive.image.layerDiffIds);
}

const notices = (stderr: string) => lines(stderr).filter((l) => l.startsWith("Notice:"));
const sum = (numbers: number[]) => numbers.reduce((a, b) => a + b, 0);
const patches = (requests: ProxyRequest[]) => requests.filter((r) => r.method === "PATCH");
/** Blob upload PUTs (`PUT …/blobs/uploads/…?digest=`) the proxy saw. */
const blobPuts = (requests: ProxyRequest[]) =>
  requests.filter((r) => r.method === "PUT" && UPLOAD.test(r.path));
const digestOf = (r: ProxyRequest) => new URLSearchParams(r.search).get("digest");
/** Registry log entries of `repo`. */
const ofRepo = (log: LoggedRequest[], repo: string) =>
  log.filter((r) => r.path.startsWith(`/v2/${repo}/`));

// --- Upload Locations. -------------------------------------------------------------------------

integrationTest("relative upload Location (/v2/…): resolved against the request URL", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive([100_000, 300_000]);
  await using proxy = startProxy({ upstream: registry.url, quirks: { location: "relative" } });
  const digest = pushed(await push(proxy.url, "app", archive, SMALL_CHUNKS), proxy.host, "app");

  const answered = proxy.requests.filter((r) =>
    (r.method === "POST" || r.method === "PATCH") && r.status === 202
  );
  assert(patches(answered).length >= 5, "the 300 KB layer went up in 64 KiB chunks");
  for (const r of answered) {
    const location = r.responseHeaders.get("location") ?? "";
    assert(location.startsWith("/v2/app/blobs/uploads/"), `${r.method}: ${location}`);
  }
  assertEquals(blobPuts(proxy.requests).filter((r) => r.status === 201).length, archive.blobs);
  await roundTrips(registry, "app", archive, digest);
});

integrationTest("absolute upload Location on another path: followed there", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive([100_000, 300_000]);
  await using proxy = startProxy({
    upstream: registry.url,
    quirks: { location: "absolute-other-path" },
  });
  const digest = pushed(await push(proxy.url, "app", archive, SMALL_CHUNKS), proxy.host, "app");

  const mirror = `${MIRROR_PREFIX}/v2/app/blobs/uploads/`;
  const posts = proxy.requests.filter((r) => r.method === "POST");
  assertEquals(posts.length, archive.blobs);
  for (const r of posts) {
    assertEquals(r.path, "/v2/app/blobs/uploads/");
    assertStringIncludes(r.responseHeaders.get("location") ?? "", `${proxy.url}${mirror}`);
  }
  const sessionRequests = [...patches(proxy.requests), ...blobPuts(proxy.requests)];
  assert(patches(sessionRequests).length >= 5, "chunks were sent");
  for (const r of sessionRequests) assert(r.path.startsWith(mirror), `${r.method} ${r.path}`);
  const mirrored = proxy.requests.filter((r) => r.path.startsWith(MIRROR_PREFIX));
  assert(mirrored.every((r) => r.status < 400), "the mirror path serves the sessions");
  await roundTrips(registry, "app", archive, digest);
});

integrationTest("upload Location on another host: followed, without Authorization", async () => {
  await using registry = await startRegistry({ htpasswd: USER });
  await using archive = await makeArchive([100_000, 300_000]);
  await using proxy = startProxy({
    upstream: registry.url,
    quirks: {
      location: "other-host",
      otherHostAuthorization: `Basic ${btoa(`alice:${PASSWORD}`)}`,
    },
  });
  const result = await push(proxy.url, "app", archive, [...LOGIN, ...SMALL_CHUNKS], AS_ALICE);
  const digest = pushed(result, proxy.host, "app");

  const main = proxy.requests.filter((r) => r.listener === "main");
  const other = proxy.requests.filter((r) => r.listener === "other");
  const posts = main.filter((r) => r.method === "POST");
  assertEquals(posts.length, archive.blobs);
  for (const r of posts) {
    assert(r.headers.has("authorization"), "the registry's own host gets credentials");
    assert(r.responseHeaders.get("location")!.startsWith(`${proxy.otherUrl}/v2/app/`));
  }
  assertEquals([patches(main).length, blobPuts(main).length], [0, 0], "uploads left main");
  assert(patches(other).length >= 5, "chunks went to the other host");
  assertEquals(blobPuts(other).filter((r) => r.status === 201).length, archive.blobs);
  for (const r of other) {
    assertEquals(r.headers.get("authorization"), null, `${r.method} ${r.path} got credentials`);
  }
  await roundTrips(registry, "app", archive, digest);
}, { tools: [...TOOLS, "htpasswd"] });

Deno.test("a Location naming the default port is on the registry's own host", () => {
  // The client sends credentials only where `URL.host` equals the registry's: `:443` on https
  // (and `:80` on http) must not look like another host.
  assertEquals(new URL("https://reg:443/x").host, new URL("https://reg/").host);
  assertEquals(new URL("http://reg:80/x").host, new URL("http://reg/").host);
  const location = resolveLocation(
    "https://reg:443/v2/app/blobs/uploads/u?_state=s",
    new URL("https://reg/v2/app/blobs/uploads/"),
    "start upload",
  );
  assertEquals(location.host, new URL("https://reg/").host);
});

// --- PATCH refused. ----------------------------------------------------------------------------

/** Three layers over the 64 KiB threshold, so three chunked uploads start at once. */
const THREE_BIG = [100_000, 200_000, 300_000];
const THRESHOLD_64K = ["--large-layer-threshold", "64KiB"];

integrationTest("PATCH refused (405), auto: one notice, then one PUT per blob", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive(THREE_BIG);
  // PATCHes wait 200 ms before the 405, so the three concurrent uploads all meet it.
  await using proxy = startProxy({
    upstream: registry.url,
    quirks: { refusePatch: 405 },
    delay: { method: "PATCH", ms: 200 },
  });
  const result = await push(proxy.url, "app", archive, THRESHOLD_64K);
  const digest = pushed(result, proxy.host, "app");

  const said = notices(result.stderr);
  assertEquals(said.length, 1, `one notice about the fallback:\n${result.stderr}`);
  assertStringIncludes(said[0]!, "405");
  assertStringIncludes(said[0]!, "one request");
  const refused = patches(proxy.requests);
  assert(refused.length >= 1 && refused.length <= 3, `${refused.length} PATCHes`);
  assert(refused.every((r) => r.status === 405));
  assertEquals(ofRepo(await registry.requests(), "app").filter((r) => r.method === "PATCH"), []);
  // Every blob went up whole in one PUT.
  const puts = blobPuts(proxy.requests).filter((r) => r.status === 201);
  assertEquals(puts.length, archive.blobs);
  for (const put of puts) {
    const size = (await registry.fetchBlob("app", digestOf(put)!)).length;
    assertEquals(put.bodyBytes, size, `PUT of ${digestOf(put)}`);
  }
  await roundTrips(registry, "app", archive, digest);
});

integrationTest("PATCH refused (405), --chunked: exit 1, suggesting --no-chunked", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive(THREE_BIG);
  await using proxy = startProxy({ upstream: registry.url, quirks: { refusePatch: 405 } });
  const result = await push(proxy.url, "app", archive, [...THRESHOLD_64K, "--chunked"]);
  assertEquals([result.code, result.stdout], [1, ""], result.stderr);
  assertStringIncludes(result.stderr, "405");
  assertStringIncludes(result.stderr, "--no-chunked");
  assertEquals(blobPuts(proxy.requests).filter((r) => r.bodyBytes >= 64 * KiB), []);
  assertEquals(await registry.listTags("app"), []);
}, { tools: ["docker-registry"] });

integrationTest("PATCH refused (405), --no-chunked: no PATCH is ever sent", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive(THREE_BIG);
  await using proxy = startProxy({ upstream: registry.url, quirks: { refusePatch: 405 } });
  const args = ["--large-layer-threshold", "1", "--no-chunked"];
  const result = await push(proxy.url, "app", archive, args);
  const digest = pushed(result, proxy.host, "app");
  assertEquals(patches(proxy.requests), []);
  assertEquals(notices(result.stderr), []);
  assertEquals(blobPuts(proxy.requests).filter((r) => r.status === 201).length, archive.blobs);
  await roundTrips(registry, "app", archive, digest);
});

// --- A registry that takes no writes. ------------------------------------------------------------

/**
 * A real registry in read-only mode (distribution's `storage.maintenance.readonly`), which
 * answers every write with a bare 405. The helper writes the config file; distribution reads
 * `REGISTRY_*` variables over it, and the registry process inherits ours while it starts.
 */
async function startReadOnlyRegistry(): Promise<TestRegistry> {
  const name = "REGISTRY_STORAGE_MAINTENANCE_READONLY";
  Deno.env.set(name, '{"enabled": true}');
  try {
    return await startRegistry();
  } finally {
    Deno.env.delete(name);
  }
}

integrationTest(
  "read-only registry (405 on the POST): one line naming it, nothing retried",
  async () => {
    await using registry = await startReadOnlyRegistry();
    await using archive = await makeArchive([100_000, 200_000]);
    // Layers compressed on the way (the default), and sent as stored: neither falls back.
    for (const args of [[], ["--compression", "none"]]) {
      const before = (await registry.requests()).length;
      const result = await push(registry.url, "app", archive, args);
      assertEquals([result.code, result.stdout], [1, ""], result.stderr);
      const errors = lines(result.stderr).filter((l) => l.startsWith("Error:"));
      assertEquals(errors.length, 1, result.stderr);
      assertStringIncludes(errors[0]!, `${registry.host} refused writes to app: POST `);
      assertStringIncludes(errors[0]!, "read-only");
      assertEquals(notices(result.stderr), [], "no fallback to another way of sending");
      assert(!/Retrying/.test(result.stderr), result.stderr);
      // One POST per blob at most (those under way when the first 405 came), each refused.
      const log = ofRepo((await registry.requests()).slice(before), "app");
      const posts = log.filter((r) => r.method === "POST");
      assert(posts.length >= 1 && posts.length <= archive.blobs, `${posts.length} POSTs`);
      assert(posts.every((r) => r.status === 405), JSON.stringify(posts));
      assertEquals(log.filter((r) => r.method === "PATCH" || r.method === "PUT"), []);
    }
    assertEquals(await registry.listTags("app"), []);
  },
  { tools: ["docker-registry"] },
);

integrationTest(
  "read-only registry that has every blob (405 on the manifest PUT): one line naming it",
  async () => {
    // The same storage, served once writable (to put the blobs there) and once read-only.
    await using writable = await startRegistry();
    await using archive = await makeArchive([100_000, 200_000]);
    pushed(
      await push(writable.url, "app", archive, ["--compression", "none"]),
      writable.host,
      "app",
    );
    const name = "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY";
    Deno.env.set(name, writable.storageDir);
    let registry: TestRegistry;
    try {
      registry = await startReadOnlyRegistry();
    } finally {
      Deno.env.delete(name);
    }
    await using _ = registry;
    // Into the repository that has the blobs: every HEAD finds its blob, the manifest is a write.
    const result = await push(registry.url, "app", archive, ["--compression", "none"]);
    assertEquals([result.code, result.stdout], [1, ""], result.stderr);
    const errors = lines(result.stderr).filter((l) => l.startsWith("Error:"));
    assertEquals(errors.length, 1, result.stderr);
    assertStringIncludes(errors[0]!, `${registry.host} refused writes to app: PUT `);
    assertStringIncludes(errors[0]!, "read-only");
    assert(!/Retrying/.test(result.stderr), result.stderr);
    const writes = ofRepo(await registry.requests(), "app").filter((r) =>
      r.method !== "GET" && r.method !== "HEAD"
    );
    assertEquals(writes.map((r) => `${r.method} ${r.status}`), ["PUT 405"]);
  },
  { tools: ["docker-registry"] },
);

// --- Body-size caps (413). ---------------------------------------------------------------------

integrationTest("413 on chunks over 1.5 MiB: chunks halve to 1 MiB, nothing resent", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive([5 * MiB + 4321]);
  await using proxy = startProxy({
    upstream: registry.url,
    quirks: { maxBodyBytes: 1.5 * MiB },
  });
  const args = ["--large-layer-threshold", "64KiB", "--chunk-size", "4MiB"];
  const result = await push(proxy.url, "app", archive, args);
  const digest = pushed(result, proxy.host, "app");

  const layer = archive.image.layerDigests[0]!;
  const size = (await registry.fetchBlob("app", layer)).length;
  const sent = patches(proxy.requests);
  const refused = sent.filter((r) => r.status === 413);
  const accepted = sent.filter((r) => r.status === 202);
  assertEquals(sent.length, refused.length + accepted.length);
  // 4 MiB refused, then 2 MiB refused, then 1 MiB chunks.
  assertEquals(refused.map((r) => r.bodyBytes), [4 * MiB, 2 * MiB]);
  assert(sent.indexOf(refused[1]!) < sent.indexOf(accepted[0]!), "no chunk accepted before");
  assert(accepted.every((r) => r.bodyBytes <= 1.5 * MiB), "accepted chunks fit the cap");
  assertEquals(accepted.map((r) => r.bodyBytes), [
    ...Array(Math.floor(size / MiB)).fill(MiB),
    size % MiB,
  ]);
  // The registry got every byte once: after each 413 the upload went on from the offset the
  // registry reported (0 here, as nothing had been accepted yet), not from a new session.
  assertEquals(sum(accepted.map((r) => r.bodyBytes)), size);
  assertEquals(proxy.requests.filter((r) => r.method === "POST").length, archive.blobs);
  const statusQueries = proxy.requests.filter((r) => r.method === "GET" && UPLOAD.test(r.path));
  assertEquals(statusQueries.length, 2, "one upload status query per 413");
  // Total on the wire: the blob once plus the two refused bodies (6 MiB).
  assertEquals(sum(sent.map((r) => r.bodyBytes)), size + 6 * MiB);
  const said = notices(result.stderr);
  assertEquals(said.length, 2, result.stderr);
  for (const line of said) assertStringIncludes(line, "413");
  await roundTrips(registry, "app", archive, digest);
});

integrationTest(
  "413 after accepted chunks: the upload resumes at the registry's offset",
  async () => {
    await using registry = await startRegistry();
    await using archive = await makeArchive([5 * MiB + 4321]);
    // The third PATCH (the tail after 4 MiB accepted) is refused once.
    await using proxy = startProxy({
      upstream: registry.url,
      faults: [{ method: "PATCH", occurrences: [3], status: 413 }],
    });
    const args = ["--large-layer-threshold", "64KiB", "--chunk-size", "2MiB"];
    const digest = pushed(await push(proxy.url, "app", archive, args), proxy.host, "app");

    const size = (await registry.fetchBlob("app", archive.image.layerDigests[0]!)).length;
    const sent = patches(proxy.requests);
    const ranges = sent.map((r) => `${r.headers.get("content-range")} ${r.status}`);
    const tail = size - 1;
    assertEquals(ranges, [
      `0-${2 * MiB - 1} 202`,
      `${2 * MiB}-${4 * MiB - 1} 202`,
      `${4 * MiB}-${tail} 413`,
      `${4 * MiB}-${5 * MiB - 1} 202`,
      `${5 * MiB}-${tail} 202`,
    ]);
    assertEquals(sum(sent.filter((r) => r.status === 202).map((r) => r.bodyBytes)), size);
    assert(sum(sent.map((r) => r.bodyBytes)) < 1.5 * size, "not resent from zero");
    await roundTrips(registry, "app", archive, digest);
  },
);

integrationTest("413 on a monolithic PUT: auto mode switches that blob to chunks", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive([3 * MiB + 4321]);
  await using proxy = startProxy({ upstream: registry.url, quirks: { maxBodyBytes: 2 * MiB } });
  // The default threshold (1 GiB): the 3 MiB layer starts as one PUT.
  const result = await push(proxy.url, "app", archive);
  const digest = pushed(result, proxy.host, "app");

  const layer = archive.image.layerDigests[0]!;
  const size = (await registry.fetchBlob("app", layer)).length;
  const puts = blobPuts(proxy.requests).filter((r) => digestOf(r) === layer);
  assertEquals(puts[0]!.status, 413, "the monolithic PUT was refused");
  assertEquals(puts[0]!.bodyBytes, size);
  assertEquals(puts.at(-1)!.status, 201);
  const sent = patches(proxy.requests);
  const accepted = sent.filter((r) => r.status === 202);
  assertEquals(sum(accepted.map((r) => r.bodyBytes)), size);
  assert(accepted.every((r) => r.bodyBytes <= 2 * MiB));
  // Chunks start at half the refused body, not at the 64 MiB default: no chunk is refused, so
  // the blob costs one refused PUT plus itself.
  const refused = sent.filter((r) => r.status === 413);
  assertEquals(refused.length, 0, "no PATCH is refused");
  assert(accepted.every((r) => r.bodyBytes <= Math.ceil(size / 2)), "chunks of half the PUT");
  const said = notices(result.stderr);
  assertEquals(said.length, 1, result.stderr);
  assertStringIncludes(said[0]!, "in chunks");
  await roundTrips(registry, "app", archive, digest);
});

// --- HEAD on missing blobs. --------------------------------------------------------------------

for (const [status, auth] of [[401, "anonymous"], [401, "basic"], [403, "anonymous"]] as const) {
  integrationTest(
    `HEAD answering ${status} for missing blobs (${auth}): uploaded anyway`,
    async () => {
      await using registry = await startRegistry(auth === "basic" ? { htpasswd: USER } : {});
      await using archive = await makeArchive([100_000, 200_000]);
      await using proxy = startProxy({ upstream: registry.url, quirks: { headMissing: status } });
      const login = auth === "basic" ? LOGIN : [];
      const result = await push(proxy.url, "app", archive, login, login.length ? AS_ALICE : {});
      const digest = pushed(result, proxy.host, "app");

      const heads = proxy.requests.filter((r) => r.method === "HEAD" && r.path.includes("/blobs/"));
      assert(heads.length >= archive.blobs, "every blob was checked");
      assert(heads.length <= 2 * archive.blobs, `no HEAD loop: ${heads.length} HEADs`);
      assert(heads.every((r) => r.status === status), "every blob was missing");
      assertEquals(blobPuts(proxy.requests).filter((r) => r.status === 201).length, archive.blobs);
      await roundTrips(registry, "app", archive, digest);
    },
    { tools: auth === "basic" ? [...TOOLS, "htpasswd"] : TOOLS },
  );
}

// --- Manifests and tokens. ---------------------------------------------------------------------

integrationTest("manifest PUT without Docker-Content-Digest: stdout has our digest", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive([100_000]);
  await using proxy = startProxy({
    upstream: registry.url,
    quirks: { stripManifestDigest: true },
  });
  const digest = pushed(await push(proxy.url, "app", archive), proxy.host, "app");
  const manifestPut = proxy.requests.find((r) =>
    r.method === "PUT" && r.path.includes("/manifests/")
  );
  assertEquals(manifestPut?.status, 201);
  assertEquals(manifestPut?.responseHeaders.get("docker-content-digest"), null);
  assertEquals(digest, (await registry.fetchManifest("app", "1")).digest);
  await roundTrips(registry, "app", archive, digest);
});

/** A token server (alice pushes; helper is the test helper's own account) and its registry. */
async function tokenRegistry(accessTokenOnly = false) {
  const tokens = await startTokenServer({
    users: { alice: PASSWORD, helper: "helper-pw" },
    accessTokenOnly,
  });
  try {
    const registry = await startRegistry({
      token: {
        realm: tokens.realm,
        service: tokens.service,
        issuer: tokens.issuer,
        rootCertBundle: tokens.certPath,
        credentials: { username: "helper", password: "helper-pw" },
      },
    });
    return {
      tokens,
      registry,
      async [Symbol.asyncDispose]() {
        await registry.stop();
        await tokens.close();
      },
    };
  } catch (error) {
    await tokens.close();
    throw error;
  }
}

integrationTest("token server answering access_token only: push works", async () => {
  await using env = await tokenRegistry(true);
  const { registry, tokens } = env;
  await using archive = await makeArchive([100_000]);
  const result = await push(registry.url, "app", archive, LOGIN, AS_ALICE);
  const digest = pushed(result, registry.host, "app");
  const alice = tokens.requests.filter((r) => r.account === "alice");
  assert(alice.length >= 1 && alice.every((r) => r.status === 200), JSON.stringify(alice));
  await roundTrips(registry, "app", archive, digest);
}, { tools: [...TOOLS, "openssl"] });

// --- Cross-repository mounts. ------------------------------------------------------------------

/** The registry's POSTs for `repo` after `since`, with their `mount`/`from` parameters. */
async function mountPosts(registry: TestRegistry, repo: string, since: number) {
  const log = ofRepo((await registry.requests()).slice(since), repo);
  return {
    log,
    posts: log.filter((r) => r.method === "POST").map((r) => {
      const query = new URL(r.uri, "http://x").searchParams;
      return { mount: query.get("mount"), from: query.get("from"), status: r.status };
    }),
  };
}

const blobUploads = (log: LoggedRequest[]) =>
  log.filter((r) => (r.method === "PATCH" || r.method === "PUT") && UPLOAD.test(r.path));

integrationTest("--mount-from: blobs mounted (201), none uploaded", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive([100_000, 200_000]);
  const base = pushed(await push(registry.url, "team/base", archive), registry.host, "team/base");
  const before = (await registry.requests()).length;

  const result = await push(registry.url, "team/app", archive, ["--mount-from", "team/base"]);
  const digest = pushed(result, registry.host, "team/app");
  assertEquals(digest, base);
  const { log, posts } = await mountPosts(registry, "team/app", before);
  const blobs = [archive.image.configDigest, ...archive.image.layerDigests];
  assertEquals(
    posts.sort((a, b) => a.mount!.localeCompare(b.mount!)),
    blobs.sort().map((mount) => ({ mount, from: "team/base", status: 201 })),
  );
  assertEquals(blobUploads(log), [], "nothing uploaded to team/app");
  assertEquals(lines(result.stderr).filter((l) => l.startsWith("Mounted ")).length, blobs.length);
  await roundTrips(registry, "team/app", archive, digest);
});

integrationTest(
  "--mount-from a repository without the blobs: uploaded normally (202)",
  async () => {
    await using registry = await startRegistry();
    await using archive = await makeArchive([100_000, 200_000]);
    await using other = await makeArchive([50_000], "other:1");
    pushed(await push(registry.url, "team/empty", other), registry.host, "team/empty");
    const before = (await registry.requests()).length;

    const result = await push(registry.url, "team/app", archive, ["--mount-from", "team/empty"]);
    const digest = pushed(result, registry.host, "team/app");
    const { log, posts } = await mountPosts(registry, "team/app", before);
    assertEquals(posts.length, archive.blobs);
    for (const post of posts) assertEquals([post.from, post.status], ["team/empty", 202]);
    assertEquals(blobUploads(log).filter((r) => r.status === 201).length, archive.blobs);
    await roundTrips(registry, "team/app", archive, digest);
  },
);

integrationTest("--mount-from in token mode: the token asks for pull on the source", async () => {
  await using env = await tokenRegistry();
  const { registry, tokens } = env;
  await using archive = await makeArchive([100_000]);
  pushed(
    await push(registry.url, "team/base", archive, LOGIN, AS_ALICE),
    registry.host,
    "team/base",
  );
  const tokensBefore = tokens.requests.length;
  const before = (await registry.requests()).length;

  const args = [...LOGIN, "--mount-from", "team/base"];
  const result = await push(registry.url, "team/app", archive, args, AS_ALICE);
  const digest = pushed(result, registry.host, "team/app");
  const asked = tokens.requests.slice(tokensBefore).filter((r) => r.account === "alice");
  assert(asked.length >= 1, "alice asked for a token");
  for (const request of asked) {
    assert(request.scopes.includes("repository:team/app:push,pull"), request.scopes.join(" "));
    assert(request.scopes.includes("repository:team/base:pull"), request.scopes.join(" "));
  }
  const { log, posts } = await mountPosts(registry, "team/app", before);
  const mounted = posts.filter((p) => p.status === 201);
  assertEquals(mounted.length, archive.blobs, JSON.stringify(posts));
  assert(mounted.every((p) => p.from === "team/base"));
  assertEquals(blobUploads(log), []);
  await roundTrips(registry, "team/app", archive, digest);
}, { tools: [...TOOLS, "openssl"] });

Deno.test("--mount-from naming the target repository is a usage error (exit 2)", async () => {
  const args = ["-r", "127.0.0.1:1/team/app:1", "-f", "/nonexistent/app.tar"];
  const result = await runCli([...args, "--mount-from", "team/app"]);
  assertEquals([result.code, result.stdout], [2, ""], result.stderr);
  assertStringIncludes(result.stderr, "--mount-from");
});

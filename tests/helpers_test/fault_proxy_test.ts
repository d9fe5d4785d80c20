/**
 * The fault proxy against the real registry: plain forwarding (Location rewriting, keep-alive,
 * byte counts), each injected fault (503, 429 with Retry-After, cut bodies), the fault filter,
 * the seeded draws, and what it refuses (chunked bodies) or sees (a client hanging up).
 */
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { type FaultProxy, requestKey, startFaultProxy } from "../helpers/fault_proxy.ts";
import { seededBytes, sha256Digest } from "../helpers/random.ts";
import { integrationTest, startRegistry, type TestRegistry } from "../helpers/registry.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const TOOLS = ["docker-registry"];
const REPO = "proxied/app";

/** Reproducible bytes as a plain Uint8Array (seededBytes gives a node Buffer). */
function bytes(seed: string, size: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(seededBytes(seed, size));
}

/** A fetch with its own connection pool, closed with `using`. */
function httpClient(): { fetch: typeof fetch } & Disposable {
  const client = Deno.createHttpClient({});
  return {
    fetch: (input, init) => fetch(input, { ...init, client }),
    [Symbol.dispose]: () => client.close(),
  };
}

/** `POST …/blobs/uploads/` through the proxy: the session's Location, absolute. */
async function startUpload(http: { fetch: typeof fetch }, proxy: FaultProxy): Promise<URL> {
  const response = await http.fetch(`${proxy.url}/v2/${REPO}/blobs/uploads/`, { method: "POST" });
  await response.body?.cancel();
  assertEquals(response.status, 202, proxy.summary());
  const location = response.headers.get("location");
  assert(location !== null, "POST answered no Location");
  return new URL(location, proxy.url);
}

/** The next offset an upload session reports (`GET`, `Range: 0-<last>`). */
async function sessionOffset(http: { fetch: typeof fetch }, location: URL): Promise<number> {
  const response = await http.fetch(location);
  await response.body?.cancel();
  assertEquals(response.status, 204, `GET ${location}`);
  const range = response.headers.get("range") ?? "";
  const end = Number(/^0-(\d+)$/.exec(range)?.[1]);
  // distribution reports `0-0` for an empty session.
  return end === 0 ? 0 : end + 1;
}

function withDigest(location: URL, digest: string): string {
  const url = new URL(location);
  url.search = `${url.search}&digest=${encodeURIComponent(digest)}`;
  return url.href;
}

/** Requests the registry logged, as "METHOD path status", readiness polls left out. */
async function registryLog(registry: TestRegistry): Promise<string[]> {
  return (await registry.requests())
    .filter((r) => r.path !== "/v2/")
    .map((r) => `${r.method} ${r.path.replace(/uploads\/[^/]+$/, "uploads/<id>")} ${r.status}`);
}

integrationTest("fault proxy forwards requests, rewrites Location and counts bytes", async () => {
  await using registry = await startRegistry();
  await using proxy = startFaultProxy({ upstream: registry.url, seed: 1 });
  using http = httpClient();
  assert(/^127\.0\.0\.1:\d+$/.test(proxy.host), proxy.host);
  assertEquals(proxy.url, `http://${proxy.host}`);

  const ping = await http.fetch(`${proxy.url}/v2/`);
  assertEquals(ping.status, 200);
  assertEquals(await ping.json(), {});

  // Chunked upload: POST, PATCH, GET, PUT, all through the proxy and on one connection.
  const blob = bytes("forward", 300 * KiB + 5);
  const digest = sha256Digest(blob);
  const location = await startUpload(http, proxy);
  assertEquals(location.origin, proxy.url, "the registry's absolute Location points at the proxy");
  assert(location.search.includes("_state="), location.href);
  const patch = await http.fetch(location, {
    method: "PATCH",
    headers: {
      "content-type": "application/octet-stream",
      "content-range": `0-${blob.length - 1}`,
    },
    body: blob,
  });
  await patch.body?.cancel();
  assertEquals(patch.status, 202);
  const next = new URL(patch.headers.get("location")!, location);
  assertEquals(next.origin, proxy.url);
  assertEquals(await sessionOffset(http, next), blob.length);
  const put = await http.fetch(withDigest(next, digest), { method: "PUT" });
  await put.body?.cancel();
  assertEquals(put.status, 201);
  assertEquals(put.headers.get("docker-content-digest"), digest);
  assertEquals(new URL(put.headers.get("location")!).origin, proxy.url);

  // HEAD keeps the registry's Content-Length; a 404 is relayed with its body.
  const head = await http.fetch(`${proxy.url}/v2/${REPO}/blobs/${digest}`, { method: "HEAD" });
  assertEquals(head.status, 200);
  assertEquals(head.headers.get("content-length"), String(blob.length));
  const missing = await http.fetch(`${proxy.url}/v2/${REPO}/manifests/nope`);
  assertEquals(missing.status, 404);
  assert((await missing.text()).includes("MANIFEST_UNKNOWN"));
  // A GET of the blob streams back through the proxy intact.
  const get = await http.fetch(`${proxy.url}/v2/${REPO}/blobs/${digest}`);
  assertEquals(new Uint8Array(await get.arrayBuffer()), blob);

  assertEquals(
    proxy.requests.map((r) => `${r.method} ${r.outcome} ${r.status}`),
    [
      "GET forwarded 200",
      "POST forwarded 202",
      "PATCH forwarded 202",
      "GET forwarded 204",
      "PUT forwarded 201",
      "HEAD forwarded 200",
      "GET forwarded 404",
      "GET forwarded 200",
    ],
  );
  const patchRecord = proxy.requests[2]!;
  assertEquals(patchRecord.contentLength, blob.length);
  assertEquals(patchRecord.bodyBytesReceived, blob.length);
  assertEquals(patchRecord.forwardedBytes, blob.length);
  assertEquals(patchRecord.path, location.pathname);
  assertEquals(patchRecord.target, location.pathname + location.search);
  assertEquals(proxy.bytesReceived(), blob.length);
  assertEquals(proxy.forwardedBytes(), blob.length);
  assertEquals(proxy.faultCounts(), { "503": 0, "429": 0, cut: 0 });
  assertEquals(proxy.errors, []);
  assertEquals(await registryLog(registry), [
    `POST /v2/${REPO}/blobs/uploads/ 202`,
    `PATCH /v2/${REPO}/blobs/uploads/<id> 202`,
    `GET /v2/${REPO}/blobs/uploads/<id> 204`,
    `PUT /v2/${REPO}/blobs/uploads/<id> 201`,
    `HEAD /v2/${REPO}/blobs/${digest} 200`,
    `GET /v2/${REPO}/manifests/nope 404`,
    `GET /v2/${REPO}/blobs/${digest} 200`,
  ]);
}, { tools: TOOLS });

integrationTest(
  "fault proxy injects 503 after reading the whole body, forwarding nothing",
  async () => {
    await using registry = await startRegistry();
    await using proxy = startFaultProxy({ upstream: registry.url, seed: 2, rate503: 1 });
    using http = httpClient();
    const body = bytes("503", 100 * KiB);
    for (let i = 0; i < 3; i++) {
      // Keep-alive: every answer leaves the connection usable for the next request.
      const response = await http.fetch(`${proxy.url}/v2/${REPO}/blobs/uploads/x`, {
        method: "PATCH",
        body,
      });
      assertEquals(response.status, 503);
      assertEquals(response.headers.get("retry-after"), null);
      const json = await response.json() as { errors: { code: string; message: string }[] };
      assertEquals(json.errors[0]?.code, "UNAVAILABLE");
      assert(json.errors[0]!.message.includes("seed 2"), json.errors[0]!.message);
    }
    const head = await http.fetch(`${proxy.url}/v2/`, { method: "HEAD" });
    assertEquals(head.status, 503);
    for (const record of proxy.requests) {
      assertEquals(record.outcome, "injected");
      assertEquals(record.fault, "503");
      assertEquals(record.status, 503);
      assertEquals(record.forwardedBytes, 0);
    }
    assertEquals(proxy.requests.map((r) => r.bodyBytesReceived), [
      body.length,
      body.length,
      body.length,
      0,
    ]);
    assertEquals(proxy.bytesReceived(), 3 * body.length);
    assertEquals(proxy.forwardedBytes(), 0);
    assertEquals(proxy.faultCounts(), { "503": 4, "429": 0, cut: 0 });
    assertEquals(await registryLog(registry), [], "nothing reached the registry");
    assert(
      proxy.summary().includes("seed 2") && proxy.summary().includes("503×4"),
      proxy.summary(),
    );
  },
  { tools: TOOLS },
);

integrationTest("fault proxy injects 429 with Retry-After: 1", async () => {
  await using registry = await startRegistry();
  await using proxy = startFaultProxy({ upstream: registry.url, seed: 3, rate429: 1 });
  using http = httpClient();
  const response = await http.fetch(`${proxy.url}/v2/${REPO}/blobs/uploads/`, { method: "POST" });
  assertEquals(response.status, 429);
  assertEquals(response.headers.get("retry-after"), "1");
  const json = await response.json() as { errors: { code: string }[] };
  assertEquals(json.errors[0]?.code, "TOOMANYREQUESTS");
  assertEquals(proxy.requests.map((r) => [r.outcome, r.fault, r.status]), [[
    "injected",
    "429",
    429,
  ]]);
  assertEquals(proxy.faultCounts(), { "503": 0, "429": 1, cut: 0 });
  assertEquals(await registryLog(registry), []);
}, { tools: TOOLS });

integrationTest(
  "fault proxy cuts upload bodies part-way and the registry's session survives",
  async () => {
    await using registry = await startRegistry();
    const cutEverything = startFaultProxy({
      upstream: registry.url,
      seed: 4,
      rateCut: 1,
      cutMinBodyBytes: 64 * KiB,
    });
    await using proxy = cutEverything;
    using http = httpClient();
    // The POST has no body and is never cut; the session it opens is a real one.
    const location = await startUpload(http, proxy);
    const blob = bytes("cut", 1 * MiB);
    const patch = () =>
      http.fetch(location, {
        method: "PATCH",
        headers: { "content-range": `0-${blob.length - 1}` },
        body: blob,
      });
    for (let i = 0; i < 3; i++) {
      await assertRejects(patch, TypeError);
    }
    // fetch (hyper) may send a request again on a fresh connection when a reused one is
    // closed under it, so there can be more cut requests than failed calls.
    const cuts = proxy.requests.filter((r) => r.method === "PATCH");
    assert(cuts.length >= 3, proxy.summary());
    for (const cut of cuts) {
      assertEquals(cut.outcome, "cut");
      assertEquals(cut.fault, "cut");
      assertEquals(cut.status, undefined);
      assertEquals(cut.forwardedBytes, 0);
      assertEquals(cut.contentLength, blob.length);
      assert(
        cut.bodyBytesReceived >= 0.1 * blob.length && cut.bodyBytesReceived <= 0.9 * blob.length,
        `cut after ${cut.bodyBytesReceived} of ${blob.length} bytes; ${proxy.summary()}`,
      );
    }
    // Seeded: the cut points differ from each other.
    assertEquals(
      new Set(cuts.map((c) => c.bodyBytesReceived)).size,
      cuts.length,
      proxy.summary(),
    );
    assertEquals(proxy.bytesReceived(), cuts.reduce((sum, c) => sum + c.bodyBytesReceived, 0));
    assertEquals(proxy.forwardedBytes(), 0);
    assertEquals(proxy.faultCounts(), { "503": 0, "429": 0, cut: cuts.length });

    // Nothing of the cut bodies reached the registry: the session is intact at offset 0, and a
    // body below the cut threshold goes through it.
    assertEquals(await sessionOffset(http, location), 0);
    const small = bytes("small", 10 * KiB);
    const ok = await http.fetch(location, {
      method: "PATCH",
      headers: { "content-range": `0-${small.length - 1}` },
      body: small,
    });
    await ok.body?.cancel();
    assertEquals(ok.status, 202);
    assertEquals(await registryLog(registry), [
      `POST /v2/${REPO}/blobs/uploads/ 202`,
      `GET /v2/${REPO}/blobs/uploads/<id> 204`,
      `PATCH /v2/${REPO}/blobs/uploads/<id> 202`,
    ]);
    assertEquals(proxy.errors, []);
  },
  { tools: TOOLS },
);

integrationTest("fault proxy only cuts PATCH/PUT bodies on upload paths", async () => {
  await using registry = await startRegistry();
  await using proxy = startFaultProxy({ upstream: registry.url, seed: 5, rateCut: 1 });
  using http = httpClient();
  // A manifest PUT has a body but is no upload: forwarded (and refused by the registry).
  const manifest = await http.fetch(`${proxy.url}/v2/${REPO}/manifests/1`, {
    method: "PUT",
    headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
    body: bytes("manifest", 8 * KiB),
  });
  await manifest.body?.cancel();
  assertEquals(manifest.status, 400);
  // A POST on the upload path is not cut either.
  await startUpload(http, proxy);
  assertEquals(proxy.requests.map((r) => r.outcome), ["forwarded", "forwarded"]);
  assertEquals(proxy.faultCounts().cut, 0);
}, { tools: TOOLS });

integrationTest("fault proxy injects faults only where faultsOn admits them", async () => {
  await using registry = await startRegistry();
  await using proxy = startFaultProxy({
    upstream: registry.url,
    seed: 6,
    rate503: 1,
    faultsOn: { methods: ["PATCH"], path: /\/blobs\/uploads\// },
  });
  using http = httpClient();
  const location = await startUpload(http, proxy);
  const patch = await http.fetch(location, { method: "PATCH", body: bytes("f", 1000) });
  await patch.body?.cancel();
  assertEquals(patch.status, 503);
  const other = await http.fetch(`${proxy.url}/v2/other/blobs/x`, { method: "PATCH" });
  await other.body?.cancel();
  assertEquals(other.status, 404, "a PATCH outside the upload path is forwarded");
  assertEquals(
    proxy.requests.map((r) => `${r.method} ${r.outcome} ${r.status}`),
    ["POST forwarded 202", "PATCH injected 503", "PATCH forwarded 404"],
  );
}, { tools: TOOLS });

integrationTest("fault proxy draws faults from its seed at the configured rates", async () => {
  await using registry = await startRegistry();
  const run = async (seed: number) => {
    await using proxy = startFaultProxy({
      upstream: registry.url,
      seed,
      rate503: 0.3,
      rate429: 0.1,
    });
    using http = httpClient();
    const statuses: number[] = [];
    for (let i = 0; i < 200; i++) {
      const response = await http.fetch(`${proxy.url}/v2/`, { method: "HEAD" });
      statuses.push(response.status);
    }
    return { statuses, counts: proxy.faultCounts(), summary: proxy.summary() };
  };
  const first = await run(42);
  const again = await run(42);
  const other = await run(43);
  assertEquals(again.statuses, first.statuses, "the same seed gives the same faults");
  assert(
    other.statuses.join() !== first.statuses.join(),
    "another seed gives other faults",
  );
  const { counts, summary } = first;
  assert(counts["503"] >= 40 && counts["503"] <= 80, summary);
  assert(counts["429"] >= 8 && counts["429"] <= 35, summary);
  assertEquals(first.statuses.filter((s) => s === 200).length, 200 - counts["503"] - counts["429"]);
  assertEquals(counts.cut, 0, "no bodies, no cuts");
}, { tools: TOOLS });

integrationTest("fault proxy uses a random seed unless given one", async () => {
  await using registry = await startRegistry();
  await using a = startFaultProxy({ upstream: registry.url });
  await using b = startFaultProxy({ upstream: registry.url });
  assert(Number.isInteger(a.seed) && a.seed >= 0 && a.seed < 2 ** 32, String(a.seed));
  assert(a.seed !== b.seed, `two random seeds: ${a.seed}, ${b.seed}`);
  assert(a.summary().startsWith(`fault proxy seed ${a.seed}:`), a.summary());
  // Rates outside 0..1, or adding up to more than 1, are mistakes.
  for (const bad of [{ rate503: -0.1 }, { rateCut: 1.5 }, { rate503: 0.6, rate429: 0.6 }]) {
    let error: unknown;
    try {
      await startFaultProxy({ upstream: registry.url, ...bad }).close();
    } catch (e) {
      error = e;
    }
    assert(error instanceof RangeError, `${JSON.stringify(bad)} should be refused`);
  }
}, { tools: TOOLS });

integrationTest(
  "fault proxy decodes a chunked request body and forwards it with its length",
  async () => {
    await using registry = await startRegistry();
    await using proxy = startFaultProxy({ upstream: registry.url, seed: 7 });
    using http = httpClient();
    const started = await http.fetch(`${proxy.url}/v2/${REPO}/blobs/uploads/`, { method: "POST" });
    await started.body?.cancel();
    assertEquals(started.status, 202);
    const body = bytes("chunked", 300 * KiB);
    // fetch sends a stream body with chunked transfer encoding.
    const patched = await http.fetch(new URL(started.headers.get("location")!, proxy.url), {
      method: "PATCH",
      body: ReadableStream.from([body.subarray(0, 1000), body.subarray(1000)]),
    });
    await patched.body?.cancel();
    assertEquals(patched.status, 202);
    assertEquals(patched.headers.get("range"), `0-${body.length - 1}`);
    const patch = proxy.requests.find((r) => r.method === "PATCH")!;
    assertEquals([patch.bodyBytesReceived, patch.forwardedBytes], [body.length, body.length]);
  },
  { tools: TOOLS },
);

integrationTest("fault proxy counts a body the client abandons and forwards nothing", async () => {
  await using registry = await startRegistry();
  await using proxy = startFaultProxy({ upstream: registry.url, seed: 8 });
  const received = proxy.whenReceived(100 * KiB);
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: Number(proxy.host.split(":")[1]),
  });
  try {
    const head = `PATCH /v2/${REPO}/blobs/uploads/abc HTTP/1.1\r\nHost: ${proxy.host}\r\n` +
      `Content-Length: ${1 * MiB}\r\n\r\n`;
    const body = bytes("abandoned", 100 * KiB);
    const message = new Uint8Array([...new TextEncoder().encode(head), ...body]);
    for (let at = 0; at < message.length;) at += await conn.write(message.subarray(at));
    await received;
  } finally {
    conn.close();
  }
  // The proxy notices the hang-up on its next read.
  for (let i = 0; i < 200 && proxy.requests[0]?.outcome === "pending"; i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const [record] = proxy.requests;
  assertEquals(record?.outcome, "client-closed");
  assertEquals(record?.bodyBytesReceived, 100 * KiB);
  assertEquals(record?.forwardedBytes, 0);
  assertEquals(record?.status, undefined);
  assertEquals(proxy.bytesReceived(), 100 * KiB);
  assertEquals(await registryLog(registry), []);
  assertEquals(proxy.errors, []);
}, { tools: TOOLS });

Deno.test("requestKey leaves out the repository and upload id, keeps a closing PUT's digest", () => {
  const digest = `sha256:${"a".repeat(64)}`;
  assertEquals(
    requestKey("PATCH", "/v2/team/app/blobs/uploads/0b1c-uuid?_state=abc"),
    "PATCH /v2/<name>/blobs/uploads/<id>",
  );
  assertEquals(
    requestKey("PUT", `/v2/app/blobs/uploads/x?_state=s&digest=${encodeURIComponent(digest)}`),
    `PUT /v2/<name>/blobs/uploads/<id> digest=${encodeURIComponent(digest)}`,
  );
  assertEquals(requestKey("POST", "/v2/a/b/c/blobs/uploads/"), "POST /v2/<name>/blobs/uploads/");
  assertEquals(requestKey("HEAD", `/v2/app/blobs/${digest}`), `HEAD /v2/<name>/blobs/${digest}`);
  assertEquals(requestKey("PUT", "/v2/app/manifests/1"), "PUT /v2/<name>/manifests/1");
  assertEquals(requestKey("GET", "/v2/"), "GET /v2/");
  assertEquals(
    requestKey("PATCH", "/v2/app/blobs/uploads/u?_state=s", "0-1023"),
    "PATCH /v2/<name>/blobs/uploads/<id> range=0-1023",
  );
});

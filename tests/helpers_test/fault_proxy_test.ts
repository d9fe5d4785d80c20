/**
 * The fault proxy against the real registry, in both modes: plain forwarding (Location
 * rewriting, keep-alive, byte counts), each injected fault (503, 429 with Retry-After, cut
 * bodies of known and unknown length, lost answers, cut download answers), the fault filter,
 * the seeded draws, and what it sees (a client hanging up). What becomes of the registry's
 * upload session after a cut is the difference between the modes: buffering, it survives;
 * passing through, distribution cancels it, as it does after a lost answer in either mode.
 * A cut download is resumed with `Range`, which distribution answers with 206.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "../helpers/assert.ts";
import {
  FAULT_PROXY_MODE_ENV,
  FAULT_PROXY_MODES,
  type FaultProxy,
  type FaultProxyMode,
  requestKey,
  startFaultProxy,
} from "../helpers/fault_proxy.ts";
import { seededBytes, sha256Digest } from "../helpers/random.ts";
import {
  integrationTest,
  MANIFEST_ACCEPT,
  startRegistry,
  type TestRegistry,
} from "../helpers/registry.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const TOOLS = ["docker-registry"];
const REPO = "proxied/app";
const NO_FAULTS = { "503": 0, "429": 0, cut: 0, "lost-answer": 0, "cut-response": 0 };

/** Reproducible bytes as a plain Uint8Array (seededBytes gives a node Buffer). */
function bytes(seed: string, size: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(seededBytes(seed, size));
}

/** The same bytes as a stream of 64 KiB pieces: fetch sends it chunked, length unknown. */
function stream(body: Uint8Array): ReadableStream<Uint8Array> {
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < body.length; at += 64 * KiB) pieces.push(body.subarray(at, at + 64 * KiB));
  return ReadableStream.from(pieces);
}

/** A fetch with its own connection pool, closed with `using`. */
function httpClient(): { fetch: typeof fetch } & Disposable {
  const client = Deno.createHttpClient({});
  return {
    fetch: (input, init) => fetch(input, { ...init, client }),
    [Symbol.dispose]: () => client.close(),
  };
}

type Http = { fetch: typeof fetch };

/**
 * A request on a connection of its own, for one the proxy is to cut or leave unanswered:
 * fetch (hyper) sends a request again, on a fresh connection, when a reused one closes under
 * it, even a PATCH whose body went out whole.
 */
async function fetchAlone(input: string | URL, init: RequestInit): Promise<Response> {
  using http = httpClient();
  const response = await http.fetch(input, init);
  await response.body?.cancel();
  return response;
}

/** `POST …/blobs/uploads/` through the proxy: the session's Location, absolute. */
async function startUpload(http: Http, proxy: FaultProxy): Promise<URL> {
  const response = await http.fetch(`${proxy.url}/v2/${REPO}/blobs/uploads/`, { method: "POST" });
  await response.body?.cancel();
  assertEquals(response.status, 202, proxy.summary());
  const location = response.headers.get("location");
  assert(location !== null, "POST answered no Location");
  return new URL(location, proxy.url);
}

/** The next offset an upload session reports (`GET`, `Range: 0-<last>`). */
async function sessionOffset(http: Http, location: URL): Promise<number> {
  const response = await http.fetch(location);
  await response.body?.cancel();
  assertEquals(response.status, 204, `GET ${location}`);
  const range = response.headers.get("range") ?? "";
  const end = Number(/^0-(\d+)$/.exec(range)?.[1]);
  // distribution reports `0-0` for an empty session.
  return end === 0 ? 0 : end + 1;
}

/** Status and first error code of an answer, its body read. */
async function statusAndCode(response: Response): Promise<[number, string | undefined]> {
  const text = await response.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { errors?: { code?: string }[] }).errors?.[0]?.code;
  } catch {
    code = undefined;
  }
  return [response.status, code];
}

/**
 * Asserts distribution has cancelled the session: a GET of its Location, and a PATCH
 * continuing it, both answer 404 with BLOB_UPLOAD_INVALID (the `_state` offset no longer
 * matches the bytes it holds; distribution 2.8 answers this to every later request) or
 * BLOB_UPLOAD_UNKNOWN (the session is gone).
 */
async function assertSessionCancelled(
  http: Http,
  location: URL,
  proxy: FaultProxy,
  patchBody: Uint8Array<ArrayBuffer>,
): Promise<void> {
  const gone = (answer: [number, string | undefined]) =>
    answer[0] === 404 &&
    (answer[1] === "BLOB_UPLOAD_INVALID" || answer[1] === "BLOB_UPLOAD_UNKNOWN");
  const get = await statusAndCode(await http.fetch(location));
  assert(gone(get), `GET of the session answered ${get}; ${proxy.summary()}`);
  const patch = await statusAndCode(
    await http.fetch(location, {
      method: "PATCH",
      headers: { "content-range": `0-${patchBody.length - 1}` },
      body: patchBody,
    }),
  );
  assert(gone(patch), `PATCH of the session answered ${patch}; ${proxy.summary()}`);
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

/**
 * Waits until the registry has logged `count` PATCHes: it logs a request once its handler is
 * done, so a cut body's bytes are then stored (or not) for good.
 */
async function registryPatches(registry: TestRegistry, count: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const patches = (await registry.requests()).filter((r) => r.method === "PATCH");
    if (patches.length >= count) return;
    if (Date.now() > deadline) throw new Error(`The registry logged ${patches.length} PATCHes`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Waits until no request is pending in the proxy (a hang-up is seen on its next read). */
async function settled(proxy: FaultProxy): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (proxy.requests.some((r) => r.outcome === "pending")) {
    if (Date.now() > deadline) throw new Error(`Requests still pending; ${proxy.summary()}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Registers one test per mode, named with the mode. */
function eachMode(name: string, fn: (mode: FaultProxyMode) => Promise<void>): void {
  for (const mode of FAULT_PROXY_MODES) {
    integrationTest(`fault proxy (${mode}) ${name}`, () => fn(mode), { tools: TOOLS });
  }
}

eachMode("forwards requests, rewrites Location and counts bytes", async (mode) => {
  await using registry = await startRegistry();
  await using proxy = startFaultProxy({ upstream: registry.url, mode, seed: 1 });
  using http = httpClient();
  assert(/^127\.0\.0\.1:\d+$/.test(proxy.host), proxy.host);
  assertEquals(proxy.url, `http://${proxy.host}`);
  assertEquals(proxy.mode, mode);

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
  const getRecord = proxy.requests.at(-1)!;
  assertEquals([getRecord.responseContentLength, getRecord.responseBytesRelayed], [
    blob.length,
    blob.length,
  ]);
  assertEquals(proxy.requests[5]!.responseContentLength, undefined, "a HEAD has no body");
  assertEquals(proxy.requests[5]!.responseBytesRelayed, 0);

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
  assertEquals(patchRecord.chunked, false);
  assertEquals(patchRecord.bodyBytesReceived, blob.length);
  assertEquals(patchRecord.forwardedBytes, blob.length);
  assertEquals(patchRecord.path, location.pathname);
  assertEquals(patchRecord.target, location.pathname + location.search);
  assertEquals(proxy.bytesReceived(), blob.length);
  assertEquals(proxy.forwardedBytes(), blob.length);
  assertEquals(proxy.faultCounts(), NO_FAULTS);
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
});

eachMode("injects 503 after reading the whole body, forwarding nothing", async (mode) => {
  await using registry = await startRegistry();
  await using proxy = startFaultProxy({ upstream: registry.url, mode, seed: 2, rate503: 1 });
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
  // A chunked body is read whole too.
  const chunked = await http.fetch(`${proxy.url}/v2/${REPO}/blobs/uploads/x`, {
    method: "PATCH",
    body: stream(body),
  });
  await chunked.body?.cancel();
  assertEquals(chunked.status, 503);
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
    body.length,
    0,
  ]);
  assertEquals(proxy.bytesReceived(), 4 * body.length);
  assertEquals(proxy.forwardedBytes(), 0);
  assertEquals(proxy.faultCounts(), { ...NO_FAULTS, "503": 5 });
  assertEquals(await registryLog(registry), [], "nothing reached the registry");
  const summary = proxy.summary();
  assert(summary.startsWith(`fault proxy seed 2 (${mode}):`), summary);
  assert(summary.includes("503×5"), summary);
});

eachMode("injects 429 with Retry-After: 1", async (mode) => {
  await using registry = await startRegistry();
  await using proxy = startFaultProxy({ upstream: registry.url, mode, seed: 3, rate429: 1 });
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
  assertEquals(proxy.faultCounts(), { ...NO_FAULTS, "429": 1 });
  assertEquals(await registryLog(registry), []);
});

integrationTest(
  "fault proxy (buffering) cuts upload bodies part-way and the registry's session survives",
  async () => {
    await using registry = await startRegistry();
    await using proxy = startFaultProxy({
      upstream: registry.url,
      mode: "buffering",
      seed: 4,
      rateCut: 1,
      cutMinBodyBytes: 64 * KiB,
      cutChunkedMaxBytes: 512 * KiB,
    });
    using http = httpClient();
    // The POST has no body and is never cut; the session it opens is a real one.
    const location = await startUpload(http, proxy);
    const blob = bytes("cut", 1 * MiB);
    const patch = (body: BodyInit) =>
      http.fetch(location, {
        method: "PATCH",
        headers: { "content-range": `0-${blob.length - 1}` },
        body,
      });
    for (let i = 0; i < 3; i++) {
      await assertRejects(() => patch(blob), TypeError);
    }
    // A chunked body (length unknown) is cut too, before cutChunkedMaxBytes.
    await assertRejects(() => patch(stream(blob)), TypeError);
    // fetch (hyper) may send a request again on a fresh connection when a reused one is
    // closed under it, so there can be more cut requests than failed calls.
    const cuts = proxy.requests.filter((r) => r.method === "PATCH");
    const known = cuts.filter((r) => !r.chunked);
    const chunked = cuts.filter((r) => r.chunked);
    assert(known.length >= 3 && chunked.length >= 1, proxy.summary());
    for (const cut of cuts) {
      assertEquals(cut.outcome, "cut");
      assertEquals(cut.fault, "cut");
      assertEquals(cut.status, undefined);
      assertEquals(cut.forwardedBytes, 0);
    }
    for (const cut of known) {
      assertEquals(cut.contentLength, blob.length);
      assert(
        cut.bodyBytesReceived >= 0.1 * blob.length && cut.bodyBytesReceived <= 0.9 * blob.length,
        `cut after ${cut.bodyBytesReceived} of ${blob.length} bytes; ${proxy.summary()}`,
      );
    }
    for (const cut of chunked) {
      assertEquals(cut.contentLength, 0);
      assert(
        cut.bodyBytesReceived >= 64 * KiB && cut.bodyBytesReceived < 512 * KiB,
        `chunked body cut after ${cut.bodyBytesReceived} bytes; ${proxy.summary()}`,
      );
    }
    // Seeded: the cut points differ from each other.
    assertEquals(new Set(cuts.map((c) => c.bodyBytesReceived)).size, cuts.length, proxy.summary());
    assertEquals(proxy.bytesReceived(), cuts.reduce((sum, c) => sum + c.bodyBytesReceived, 0));
    assertEquals(proxy.forwardedBytes(), 0);
    assertEquals(proxy.faultCounts(), { ...NO_FAULTS, cut: cuts.length });

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

for (const chunked of [false, true]) {
  integrationTest(
    `fault proxy (pass-through) forwards a cut ${chunked ? "chunked " : ""}body up to the ` +
      "cut, and distribution cancels the session",
    async () => {
      await using registry = await startRegistry();
      await using proxy = startFaultProxy({
        upstream: registry.url,
        mode: "pass-through",
        seed: 4,
        rateCut: 1,
        maxFaults: 1,
        cutMinBodyBytes: 64 * KiB,
        cutChunkedMaxBytes: 512 * KiB,
      });
      using http = httpClient();
      const location = await startUpload(http, proxy);
      const blob = bytes("cut", 1 * MiB);
      await assertRejects(
        () =>
          fetchAlone(location, {
            method: "PATCH",
            headers: { "content-range": `0-${blob.length - 1}` },
            body: chunked ? stream(blob) : blob,
          }),
        TypeError,
      );
      const cut = proxy.requests[1]!;
      assertEquals([cut.method, cut.outcome, cut.fault, cut.status, cut.chunked], [
        "PATCH",
        "cut",
        "cut",
        undefined,
        chunked,
      ]);
      const [low, high] = chunked ? [64 * KiB, 512 * KiB] : [0.1 * blob.length, 0.9 * blob.length];
      assert(
        cut.bodyBytesReceived >= low && cut.bodyBytesReceived < high,
        `cut after ${cut.bodyBytesReceived} bytes; ${proxy.summary()}`,
      );
      // Everything before the cut went on to the registry.
      assertEquals(cut.forwardedBytes, cut.bodyBytesReceived);
      assertEquals(proxy.forwardedBytes(), cut.bodyBytesReceived);
      assertEquals(proxy.faultCounts(), { ...NO_FAULTS, cut: 1 });

      // distribution kept the part it got: the session's `_state` offset (0) no longer
      // matches, so the next request on it (a GET, or a PATCH continuing it; with maxFaults
      // reached these are forwarded whole) finds the session cancelled.
      await registryPatches(registry, 1);
      await assertSessionCancelled(http, location, proxy, blob);
      const log = await registryLog(registry);
      assertEquals(log.slice(-2), [
        `GET /v2/${REPO}/blobs/uploads/<id> 404`,
        `PATCH /v2/${REPO}/blobs/uploads/<id> 404`,
      ]);
      assertEquals(proxy.errors, []);
    },
    { tools: TOOLS },
  );
}

eachMode("loses the answer to a forwarded upload, and the session is cancelled", async (mode) => {
  await using registry = await startRegistry();
  await using proxy = startFaultProxy({
    upstream: registry.url,
    mode,
    seed: 9,
    rateLostAnswer: 1,
    maxFaults: 1,
  });
  using http = httpClient();
  // The POST is no PATCH/PUT: forwarded, and its answer relayed.
  const location = await startUpload(http, proxy);
  const blob = bytes("lost", 300 * KiB);
  await assertRejects(
    () =>
      fetchAlone(location, {
        method: "PATCH",
        headers: { "content-range": `0-${blob.length - 1}` },
        body: blob,
      }),
    TypeError,
  );
  const lost = proxy.requests[1]!;
  assertEquals([lost.method, lost.outcome, lost.fault, lost.status], [
    "PATCH",
    "lost-answer",
    "lost-answer",
    undefined,
  ]);
  assertEquals([lost.bodyBytesReceived, lost.forwardedBytes], [blob.length, blob.length]);
  assertEquals(proxy.faultCounts(), { ...NO_FAULTS, "lost-answer": 1 });
  assert(proxy.summary().includes("lost-answer×1"), proxy.summary());
  // The registry took the whole body and answered before the client's connection closed.
  assertEquals(await registryLog(registry), [
    `POST /v2/${REPO}/blobs/uploads/ 202`,
    `PATCH /v2/${REPO}/blobs/uploads/<id> 202`,
  ]);
  // The client's Location still says offset 0; the registry holds the whole body.
  await assertSessionCancelled(http, location, proxy, blob);
  assertEquals(proxy.errors, []);
});

eachMode("gives lost answers only to PATCH/PUT on upload paths", async (mode) => {
  await using registry = await startRegistry();
  await using proxy = startFaultProxy({ upstream: registry.url, mode, seed: 9, rateLostAnswer: 1 });
  using http = httpClient();
  const location = await startUpload(http, proxy);
  const ping = await http.fetch(`${proxy.url}/v2/`);
  await ping.body?.cancel();
  const manifest = await http.fetch(`${proxy.url}/v2/${REPO}/manifests/1`, {
    method: "PUT",
    headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
    body: "{}",
  });
  await manifest.body?.cancel();
  // A closing PUT with no body loses its answer too.
  await assertRejects(() => fetchAlone(withDigest(location, "sha256:00"), { method: "PUT" }));
  assertEquals(
    proxy.requests.map((r) => `${r.method} ${r.outcome}`),
    ["POST forwarded", "GET forwarded", "PUT forwarded", "PUT lost-answer"],
  );
});

eachMode("only cuts PATCH/PUT bodies on upload paths", async (mode) => {
  await using registry = await startRegistry();
  await using proxy = startFaultProxy({ upstream: registry.url, mode, seed: 5, rateCut: 1 });
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
  const location = await startUpload(http, proxy);
  // A body of known length under cutMinBodyBytes (4096), and a chunked one that ends before
  // its drawn cut point (at least cutMinBodyBytes), go through whole.
  const small = await http.fetch(location, { method: "PATCH", body: bytes("tiny", 4095) });
  await small.body?.cancel();
  assertEquals(small.status, 202);
  const other = await startUpload(http, proxy);
  const streamed = await http.fetch(other, { method: "PATCH", body: stream(bytes("tiny", 4000)) });
  await streamed.body?.cancel();
  assertEquals(streamed.status, 202);
  assertEquals(
    proxy.requests.map((r) => `${r.method} ${r.outcome} ${r.fault}`),
    [
      "PUT forwarded undefined",
      "POST forwarded undefined",
      "PATCH forwarded undefined",
      "POST forwarded undefined",
      "PATCH forwarded undefined",
    ],
  );
  assertEquals(proxy.faultCounts().cut, 0);
});

eachMode("injects faults only where faultsOn admits them", async (mode) => {
  await using registry = await startRegistry();
  await using proxy = startFaultProxy({
    upstream: registry.url,
    mode,
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
});

integrationTest("fault proxy draws faults from its seed at the configured rates", async () => {
  await using registry = await startRegistry();
  const run = async (seed: number, mode: FaultProxyMode) => {
    await using proxy = startFaultProxy({
      upstream: registry.url,
      mode,
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
  const first = await run(42, "buffering");
  const again = await run(42, "buffering");
  const passing = await run(42, "pass-through");
  const other = await run(43, "buffering");
  assertEquals(again.statuses, first.statuses, "the same seed gives the same faults");
  assertEquals(passing.statuses, first.statuses, "the mode does not change the draws");
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
  await using a = startFaultProxy({ upstream: registry.url, mode: "buffering" });
  await using b = startFaultProxy({ upstream: registry.url, mode: "buffering" });
  assert(Number.isInteger(a.seed) && a.seed >= 0 && a.seed < 2 ** 32, String(a.seed));
  assert(a.seed !== b.seed, `two random seeds: ${a.seed}, ${b.seed}`);
  assert(a.summary().startsWith(`fault proxy seed ${a.seed} (buffering):`), a.summary());
  // Rates outside 0..1, or adding up to more than 1, are mistakes.
  for (
    const bad of [
      { rate503: -0.1 },
      { rateCut: 1.5 },
      { rateLostAnswer: 2 },
      { rate503: 0.6, rate429: 0.6 },
      { rateCut: 0.6, rateLostAnswer: 0.6 },
      { rateCutResponse: 1.5 },
      { rate503: 0.5, rateCutResponse: 0.6 },
    ]
  ) {
    assertThrows(() => startFaultProxy({ upstream: registry.url, ...bad }), RangeError);
  }
}, { tools: TOOLS });

Deno.test("fault proxy takes its default mode from FAULT_PROXY_MODE", async () => {
  const saved = Deno.env.get(FAULT_PROXY_MODE_ENV);
  const upstream = "http://127.0.0.1:9";
  try {
    Deno.env.delete(FAULT_PROXY_MODE_ENV);
    await using plain = startFaultProxy({ upstream });
    assertEquals(plain.mode, "buffering");
    Deno.env.set(FAULT_PROXY_MODE_ENV, "pass-through");
    await using passing = startFaultProxy({ upstream });
    assertEquals(passing.mode, "pass-through");
    await using given = startFaultProxy({ upstream, mode: "buffering" });
    assertEquals(given.mode, "buffering", "an explicit mode wins");
    Deno.env.set(FAULT_PROXY_MODE_ENV, "passthrough");
    assertThrows(() => startFaultProxy({ upstream }), RangeError, "FAULT_PROXY_MODE");
  } finally {
    if (saved === undefined) Deno.env.delete(FAULT_PROXY_MODE_ENV);
    else Deno.env.set(FAULT_PROXY_MODE_ENV, saved);
  }
});

eachMode("forwards a chunked request body", async (mode) => {
  await using registry = await startRegistry();
  await using proxy = startFaultProxy({ upstream: registry.url, mode, seed: 7 });
  using http = httpClient();
  const location = await startUpload(http, proxy);
  const body = bytes("chunked", 300 * KiB);
  // fetch sends a stream body with chunked transfer encoding.
  const patched = await http.fetch(location, {
    method: "PATCH",
    body: ReadableStream.from([body.subarray(0, 1000), body.subarray(1000)]),
  });
  await patched.body?.cancel();
  assertEquals(patched.status, 202);
  assertEquals(patched.headers.get("range"), `0-${body.length - 1}`);
  const patch = proxy.requests.find((r) => r.method === "PATCH")!;
  assertEquals(patch.chunked, true);
  assertEquals([patch.bodyBytesReceived, patch.forwardedBytes], [body.length, body.length]);
  // The registry stored the bytes as sent.
  const next = new URL(patched.headers.get("location")!, location);
  const put = await http.fetch(withDigest(next, sha256Digest(body)), { method: "PUT" });
  await put.body?.cancel();
  assertEquals(put.status, 201);
  assertEquals(await registry.fetchBlob(REPO, sha256Digest(body)), body);
});

eachMode("counts a body the client abandons", async (mode) => {
  await using registry = await startRegistry();
  await using proxy = startFaultProxy({ upstream: registry.url, mode, seed: 8 });
  using http = httpClient();
  const location = await startUpload(http, proxy);
  const received = proxy.whenReceived(100 * KiB);
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: Number(proxy.host.split(":")[1]),
  });
  try {
    const head = `PATCH ${location.pathname}${location.search} HTTP/1.1\r\n` +
      `Host: ${proxy.host}\r\nContent-Length: ${1 * MiB}\r\n\r\n`;
    const body = bytes("abandoned", 100 * KiB);
    const message = new Uint8Array([...new TextEncoder().encode(head), ...body]);
    for (let at = 0; at < message.length;) at += await conn.write(message.subarray(at));
    await received;
    if (mode === "pass-through") {
      // Passing through, the bytes go on to the registry as they arrive, before the body is
      // complete (buffering forwards nothing until then).
      const deadline = Date.now() + 10_000;
      while (proxy.forwardedBytes() < 100 * KiB && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      assertEquals(proxy.forwardedBytes(), 100 * KiB, proxy.summary());
      assertEquals(proxy.requests[1]?.outcome, "pending");
    }
  } finally {
    conn.close();
  }
  await settled(proxy);
  const record = proxy.requests[1]!;
  assertEquals(record.outcome, "client-closed");
  assertEquals(record.bodyBytesReceived, 100 * KiB);
  assertEquals(record.status, undefined);
  assertEquals(proxy.bytesReceived(), 100 * KiB);
  assertEquals(proxy.errors, []);
  if (mode === "buffering") {
    assertEquals(record.forwardedBytes, 0);
    assertEquals(await registryLog(registry), [`POST /v2/${REPO}/blobs/uploads/ 202`]);
    assertEquals(await sessionOffset(http, location), 0);
  } else {
    // The registry got the part and kept it, as after a cut.
    assertEquals(record.forwardedBytes, 100 * KiB);
    await registryPatches(registry, 1);
    await assertSessionCancelled(http, location, proxy, bytes("small", 1000));
  }
});

integrationTest(
  "fault proxy (pass-through) relays an answer the registry gives before reading the body",
  async () => {
    // distribution answers a PATCH to a session it doesn't have (404) without reading the
    // body, then closes the connection: the proxy reads the client's body to its end,
    // forwarding what the registry still takes, relays the 404 and keeps the client's
    // connection for the next request.
    await using registry = await startRegistry();
    await using proxy = startFaultProxy({ upstream: registry.url, mode: "pass-through", seed: 1 });
    using http = httpClient();
    const url = `${proxy.url}/v2/${REPO}/blobs/uploads/nonexistent?_state=x`;
    for (let i = 0; i < 2; i++) {
      const answer = await statusAndCode(
        await http.fetch(url, { method: "PATCH", body: bytes("early", 8 * MiB) }),
      );
      assertEquals(answer[0], 404, proxy.summary());
    }
    assertEquals(proxy.requests.map((r) => [r.outcome, r.status, r.bodyBytesReceived]), [
      ["forwarded", 404, 8 * MiB],
      ["forwarded", 404, 8 * MiB],
    ]);
    // The registry stopped taking the body part-way; the proxy opened a new link for the next.
    for (const record of proxy.requests) assert(record.forwardedBytes < 8 * MiB, proxy.summary());
    assertEquals(proxy.errors, []);
  },
  { tools: TOOLS },
);

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
  // A resumed download is another request than the first GET, and than another resume.
  assertEquals(
    requestKey("GET", `/v2/team/app/blobs/${digest}`, "bytes=1000-"),
    `GET /v2/<name>/blobs/${digest} range=bytes=1000-`,
  );
  assert(
    requestKey("GET", `/v2/app/blobs/${digest}`, "bytes=1000-") !==
      requestKey("GET", `/v2/app/blobs/${digest}`, "bytes=2000-"),
  );
});

// Downloads.

/** Puts a blob straight into the registry (POST, then a monolithic PUT); its digest. */
async function putBlob(registry: TestRegistry, blob: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = sha256Digest(blob);
  const post = await registry.fetch(`${registry.url}/v2/${REPO}/blobs/uploads/`, {
    method: "POST",
  });
  await post.body?.cancel();
  const location = new URL(post.headers.get("location")!, registry.url);
  const put = await registry.fetch(withDigest(location, digest), { method: "PUT", body: blob });
  await put.body?.cancel();
  assertEquals(put.status, 201, `PUT of blob ${digest}`);
  return digest;
}

/** Puts an OCI manifest with that config and no layers under `tag`; its bytes. */
async function putManifest(
  registry: TestRegistry,
  tag: string,
  config: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array> {
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: await putBlob(registry, config),
      size: config.length,
    },
    layers: [],
  }));
  const put = await registry.fetch(`${registry.url}/v2/${REPO}/manifests/${tag}`, {
    method: "PUT",
    headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
    body: manifest,
  });
  await put.body?.cancel();
  assertEquals(put.status, 201, "PUT of the manifest");
  return manifest;
}

/** One GET's answer as a client saw it: the body bytes that arrived, and whether it broke off. */
interface Received {
  status: number;
  contentLength: number;
  contentRange: string | null;
  retryAfter: string | null;
  bytes: Uint8Array;
  /** The body ended before `Content-Length` (fetch rejected a read). */
  broken: boolean;
}

/** A GET on a connection of its own (so a cut one is never sent again), body read to its end. */
async function getAlone(url: string, headers: Record<string, string> = {}): Promise<Received> {
  using http = httpClient();
  const response = await http.fetch(url, { headers });
  const parts: Uint8Array[] = [];
  let broken = false;
  const reader = response.body!.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
    }
  } catch (error) {
    assert(error instanceof TypeError, String(error));
    broken = true;
  } finally {
    reader.releaseLock();
  }
  return {
    status: response.status,
    contentLength: Number(response.headers.get("content-length")),
    contentRange: response.headers.get("content-range"),
    retryAfter: response.headers.get("retry-after"),
    bytes: concatBytes(parts),
    broken,
  };
}

/**
 * Downloads a blob as a pull would: again after a 503 or 429, and after a cut, on from the
 * bytes it has with `Range: bytes=N-`. Returns the bytes and one line per GET.
 */
async function download(
  proxy: FaultProxy,
  digest: string,
): Promise<{ bytes: Uint8Array; log: string[] }> {
  const parts: Uint8Array[] = [];
  let have = 0;
  const log: string[] = [];
  for (let attempt = 0; attempt < 30; attempt++) {
    const range = have > 0 ? `bytes=${have}-` : undefined;
    const got = await getAlone(
      `${proxy.url}/v2/${REPO}/blobs/${digest}`,
      range === undefined ? {} : { range },
    );
    log.push(`${range ?? "whole"}: ${got.status} +${got.bytes.length}${got.broken ? " cut" : ""}`);
    if (got.status === 503 || got.status === 429) continue;
    assertEquals(got.status, have > 0 ? 206 : 200, `${log.join("; ")}; ${proxy.summary()}`);
    parts.push(got.bytes);
    have += got.bytes.length;
    if (!got.broken) return { bytes: concatBytes(parts), log };
  }
  throw new Error(`The download did not end: ${log.join("; ")}; ${proxy.summary()}`);
}

function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  parts.reduce((at, part) => (bytes.set(part, at), at + part.length), 0);
  return bytes;
}

eachMode("cuts blob answers part-way, and Range GETs resume them with 206", async (mode) => {
  await using registry = await startRegistry();
  const blob = bytes("download", 1 * MiB);
  const digest = await putBlob(registry, blob);
  await using proxy = startFaultProxy({
    upstream: registry.url,
    mode,
    seed: 11,
    rateCutResponse: 1,
    maxFaults: 2,
  });
  const { bytes: got, log } = await download(proxy, digest);
  // The 200 is cut, then the 206 of the first resume; the second resume gets the rest.
  assertEquals(log.map((line) => line.replace(/\d+/g, "N")), [
    "whole: N +N cut",
    "bytes=N-: N +N cut",
    "bytes=N-: N +N",
  ]);
  assertEquals(got.length, blob.length, log.join("; "));
  assert(sha256Digest(got) === digest, "the resumed pieces make the blob");

  const [first, second, last] = proxy.requests;
  assertEquals(proxy.requests.map((r) => [r.method, r.outcome, r.fault, r.status]), [
    ["GET", "cut-response", "cut-response", 200],
    ["GET", "cut-response", "cut-response", 206],
    ["GET", "forwarded", undefined, 206],
  ]);
  // Each cut falls within 10–90% of the body its answer promised: the blob, then the range.
  assertEquals(first!.responseContentLength, blob.length);
  assertEquals(second!.responseContentLength, blob.length - first!.responseBytesRelayed);
  for (const cut of [first!, second!]) {
    const share = cut.responseBytesRelayed / cut.responseContentLength!;
    assert(share >= 0.1 && share <= 0.9, `cut at ${share}; ${proxy.summary()}`);
  }
  assertEquals(last!.responseBytesRelayed, last!.responseContentLength);
  assertEquals(
    proxy.requests.reduce((sum, r) => sum + r.responseBytesRelayed, 0),
    blob.length,
    "the client got each byte once",
  );
  assertEquals(proxy.relayedBytes(), blob.length);
  assertEquals(proxy.faultCounts(), { ...NO_FAULTS, "cut-response": 2 });
  const summary = proxy.summary();
  assert(summary.includes("cut-response×2") && summary.includes("cut-response 206: 1"), summary);
  // The Range went on to the registry, which served it (after the test's own upload).
  assertEquals((await registryLog(registry)).slice(2), [
    `GET /v2/${REPO}/blobs/${digest} 200`,
    `GET /v2/${REPO}/blobs/${digest} 206`,
    `GET /v2/${REPO}/blobs/${digest} 206`,
  ]);
  assertEquals(proxy.errors, []);
});

eachMode("injects 503 and 429 into blob and manifest GETs", async (mode) => {
  await using registry = await startRegistry();
  await using proxy = startFaultProxy({
    upstream: registry.url,
    mode,
    seed: 12,
    rate503: 0.5,
    rate429: 0.5,
  });
  const digest = `sha256:${"0".repeat(64)}`;
  const answers = [
    await getAlone(`${proxy.url}/v2/${REPO}/blobs/${digest}`),
    await getAlone(`${proxy.url}/v2/${REPO}/blobs/${digest}`, { range: "bytes=100-" }),
    await getAlone(`${proxy.url}/v2/${REPO}/manifests/1`, { accept: MANIFEST_ACCEPT }),
    await getAlone(`${proxy.url}/v2/${REPO}/manifests/${digest}`),
  ];
  for (const answer of answers) {
    assert(answer.status === 503 || answer.status === 429, String(answer.status));
    assertEquals(answer.retryAfter, answer.status === 429 ? "1" : null);
    assertEquals(answer.broken, false);
  }
  const statuses = answers.map((a) => a.status);
  assert(statuses.includes(503) && statuses.includes(429), `${statuses}; ${proxy.summary()}`);
  for (const record of proxy.requests) {
    assertEquals(record.outcome, "injected");
    assertEquals(record.responseBytesRelayed, 0, "the proxy's own answer relays nothing");
  }
  assertEquals(await registryLog(registry), [], "nothing reached the registry");
});

eachMode("cuts only GET answers of blobs with a body, unless told other paths", async (mode) => {
  await using registry = await startRegistry();
  const config = bytes("config", 20 * KiB);
  const manifest = await putManifest(registry, "1", config);
  const digest = sha256Digest(config);
  const missing = `sha256:${"0".repeat(64)}`;
  {
    await using proxy = startFaultProxy({
      upstream: registry.url,
      mode,
      seed: 13,
      rateCutResponse: 1,
    });
    using http = httpClient();
    const got = await getAlone(`${proxy.url}/v2/${REPO}/manifests/1`, { accept: MANIFEST_ACCEPT });
    assertEquals([got.status, got.broken, got.bytes], [200, false, manifest]);
    const head = await http.fetch(`${proxy.url}/v2/${REPO}/blobs/${digest}`, { method: "HEAD" });
    assertEquals(head.status, 200);
    const notFound = await getAlone(`${proxy.url}/v2/${REPO}/blobs/${missing}`);
    assertEquals([notFound.status, notFound.broken], [404, false]);
    assert(notFound.bytes.length > 0, "the 404's body is relayed whole");
    assertEquals(
      proxy.requests.map((r) => `${r.method} ${r.outcome} ${r.status} ${r.fault}`),
      [
        "GET forwarded 200 undefined",
        "HEAD forwarded 200 undefined",
        "GET forwarded 404 undefined",
      ],
    );
    assertEquals(proxy.faultCounts(), NO_FAULTS);
  }
  {
    await using proxy = startFaultProxy({
      upstream: registry.url,
      mode,
      seed: 13,
      rateCutResponse: 1,
      cutResponsePaths: /\/manifests\//,
    });
    const got = await getAlone(`${proxy.url}/v2/${REPO}/manifests/1`, { accept: MANIFEST_ACCEPT });
    assertEquals([got.status, got.broken], [200, true]);
    assert(got.bytes.length < manifest.length, `${got.bytes.length} of ${manifest.length}`);
    assertEquals(got.bytes, manifest.subarray(0, got.bytes.length));
    const blob = await getAlone(`${proxy.url}/v2/${REPO}/blobs/${digest}`);
    assertEquals([blob.status, blob.broken, blob.bytes], [200, false, config]);
    assertEquals(
      proxy.requests.map((r) => [r.outcome, r.responseBytesRelayed]),
      [["cut-response", got.bytes.length], ["forwarded", config.length]],
    );
    assertEquals(proxy.faultCounts(), { ...NO_FAULTS, "cut-response": 1 });
  }
});

integrationTest("fault proxy draws download faults from its seed, in both modes", async () => {
  await using registry = await startRegistry();
  const blobs = [bytes("seeded-a", 512 * KiB), bytes("seeded-b", 300 * KiB)];
  const digests: string[] = [];
  for (const blob of blobs) digests.push(await putBlob(registry, blob));
  const run = async (seed: number, mode: FaultProxyMode) => {
    await using proxy = startFaultProxy({
      upstream: registry.url,
      mode,
      seed,
      rate503: 0.2,
      rate429: 0.1,
      rateCutResponse: 0.4,
      maxFaults: 8,
    });
    const logs: string[] = [];
    for (const [i, digest] of digests.entries()) {
      const { bytes: got, log } = await download(proxy, digest);
      assertEquals(got, blobs[i], proxy.summary());
      logs.push(...log);
    }
    assertEquals(proxy.relayedBytes(), blobs[0]!.length + blobs[1]!.length, proxy.summary());
    assertEquals(proxy.errors, []);
    return { logs, counts: proxy.faultCounts() };
  };
  const first = await run(21, "buffering");
  assertEquals(await run(21, "buffering"), first, "the same seed gives the same faults");
  assertEquals(await run(21, "pass-through"), first, "the mode does not change the draws");
  assert(
    first.counts["cut-response"] > 0 && first.counts["503"] + first.counts["429"] > 0,
    first.logs.join("; "),
  );
  assert(
    (await run(22, "buffering")).logs.join() !== first.logs.join(),
    "another seed, other faults",
  );
}, { tools: TOOLS });

eachMode("relays distribution's broken 416 for a range at a blob's end", async (mode) => {
  // distribution 2.8.2 answers `Range: bytes=<size>-` with 416, the whole blob's
  // Content-Length and a 33-byte text body, then closes its connection.
  await using registry = await startRegistry();
  const blob = bytes("end", 10 * KiB);
  const digest = await putBlob(registry, blob);
  await using proxy = startFaultProxy({ upstream: registry.url, mode, seed: 14 });
  const got = await getAlone(`${proxy.url}/v2/${REPO}/blobs/${digest}`, {
    range: `bytes=${blob.length}-`,
  });
  assertEquals([got.status, got.contentRange, got.broken], [416, `bytes */${blob.length}`, true]);
  const record = proxy.requests[0]!;
  assertEquals([record.outcome, record.status, record.fault], ["upstream-error", 416, undefined]);
  assertEquals(record.responseBytesRelayed, got.bytes.length);
  assertEquals(proxy.errors, []);
});

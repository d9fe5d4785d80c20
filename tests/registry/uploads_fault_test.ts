/**
 * Blob uploads against the scripted fake: the exact requests of monolithic and chunked
 * uploads, Location handling, resume from the registry's Range after a failed or dropped
 * PATCH, digest verification, and a registry that refuses writes.
 */
import { RegistryError } from "../../src/registry/registry_error.ts";
import { BlobDigestMismatchError, WritesRefusedError } from "../../src/registry/upload_errors.ts";
import { uploadBlob } from "../../src/registry/uploads.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import {
  connectClient,
  FakeRegistry,
  type FakeRegistryOptions,
  memoryBlob,
  type RecordedRequest,
  respond,
  sha256,
} from "../helpers/fake_registry.ts";
import { seededBytes } from "../helpers/random.ts";

/** Reproducible random bytes as a plain Uint8Array (seededBytes gives a node Buffer). */
function randomBytes(seed: string, size: number): Uint8Array {
  return new Uint8Array(seededBytes(seed, size));
}

const KIB = 1024;
const LOCATIONS = ["relative", "absolute", "other-path"] as const;

/** The URL a recorded response's Location points at, as a path and query on `fake`. */
function locationTarget(fake: FakeRegistry, request: RecordedRequest): string {
  const location = request.responseHeaders["location"];
  assert(location !== undefined, `${request.method} ${request.target} answered no Location`);
  const url = new URL(location, new URL(request.target, fake.url));
  assertEquals(url.host, fake.host);
  return url.pathname + url.search;
}

function digestParam(digest: string): string {
  return `digest=${encodeURIComponent(digest)}`;
}

for (const server of ["deno", "tcp"] as const) {
  for (const uploadLocation of LOCATIONS) {
    Deno.test(`uploadBlob sends one PUT with an exact Content-Length (${server}, ${uploadLocation} Location)`, async () => {
      await using fake = await FakeRegistry.start({ server, uploadLocation });
      using harness = connectClient(fake);
      const bytes = randomBytes("monolithic", 300 * KIB + 7);
      const blob = memoryBlob(bytes);

      await uploadBlob(harness.client, blob);

      assertEquals(fake.requests.map((r) => `${r.method} ${r.outcome}`), ["POST 202", "PUT 201"]);
      const [post, put] = fake.requests as [RecordedRequest, RecordedRequest];
      // The session's Location already has a query (`?_state=…`): digest is added to it,
      // the state kept byte for byte.
      const location = locationTarget(fake, post);
      assert(location.includes("?_state="), location);
      assertEquals(put.target, `${location}&${digestParam(blob.digest)}`);
      assertEquals(put.headers["content-length"], String(bytes.length));
      assertEquals(put.headers["transfer-encoding"], undefined);
      assertEquals(put.bodyLength, bytes.length);
      assertEquals(fake.blobs.get(blob.digest), bytes);
      assertEquals(fake.sessions.size, 0);
    });
  }
}

for (const uploadLocation of LOCATIONS) {
  Deno.test(`uploadBlob in chunks follows each PATCH's Location (${uploadLocation})`, async () => {
    await using fake = await FakeRegistry.start({ uploadLocation });
    using harness = connectClient(fake);
    const bytes = randomBytes("chunked", 200 * KIB + 123);
    const blob = memoryBlob(bytes, { sliceBytes: 10 * KIB });
    const progress: number[] = [];

    await uploadBlob(harness.client, blob, {
      chunks: { size: 64 * KIB, minSize: 64 * KIB },
      onProgress: (done) => progress.push(done),
    });

    const chunk = 64 * KIB;
    assertEquals(fake.requests.map((r) => `${r.method} ${r.outcome}`), [
      "POST 202",
      "PATCH 202",
      "PATCH 202",
      "PATCH 202",
      "PATCH 202",
      "PUT 201",
    ]);
    const patches = fake.requestsTo("upload-patch");
    assertEquals(patches.map((r) => r.headers["content-range"]), [
      `0-${chunk - 1}`,
      `${chunk}-${2 * chunk - 1}`,
      `${2 * chunk}-${3 * chunk - 1}`,
      `${3 * chunk}-${bytes.length - 1}`,
    ]);
    assertEquals(
      patches.map((r) => r.headers["content-length"]),
      [chunk, chunk, chunk, bytes.length - 3 * chunk].map(String),
    );
    // Each request goes where the previous response's Location said.
    for (let i = 1; i < fake.requests.length; i++) {
      const previous = locationTarget(fake, fake.requests[i - 1]!);
      const expected = i === fake.requests.length - 1
        ? `${previous}&${digestParam(blob.digest)}`
        : previous;
      assertEquals(fake.requests[i]!.target, expected);
    }
    const put = fake.requestsTo("upload-put")[0]!;
    assertEquals(put.bodyLength, 0);
    assertEquals(put.headers["content-length"], "0");
    assertEquals(fake.blobs.get(blob.digest), bytes);
    assertEquals(progress.at(-1), bytes.length);
  });
}

Deno.test("uploadBlob honours OCI-Chunk-Min-Length from the POST response", async () => {
  await using fake = await FakeRegistry.start({ chunkMinLength: 100 * KIB });
  using harness = connectClient(fake);
  const bytes = randomBytes("min-chunk", 250 * KIB);
  const blob = memoryBlob(bytes);

  await uploadBlob(harness.client, blob, { chunks: { size: 64 * KIB, minSize: 64 * KIB } });

  assertEquals(fake.requestsTo("upload-patch").map((r) => r.bodyLength), [
    100 * KIB,
    100 * KIB,
    50 * KIB,
  ]);
  assertEquals(fake.blobs.get(blob.digest), bytes);
});

/** Faults on the 2nd PATCH, and the offset the upload must resume from. */
const RESUME_CASES: {
  name: string;
  options: FakeRegistryOptions;
  resumeAt: number;
}[] = [
  {
    name: "a 503",
    options: { faults: [{ route: "upload-patch", nth: 2, action: respond(503) }] },
    resumeAt: 64 * KIB,
  },
  {
    name: "a dropped connection after which the registry kept part of the chunk",
    options: {
      server: "tcp",
      // A fresh connection per request: see the keep-alive test below for why.
      keepAlive: false,
      faults: [{
        route: "upload-patch",
        nth: 2,
        action: { kind: "drop", afterBodyBytes: 20_000, keepPartial: true },
      }],
    },
    resumeAt: 64 * KIB + 20_000,
  },
  {
    name: "a dropped connection after which the registry kept nothing of the chunk",
    options: {
      server: "tcp",
      keepAlive: false,
      faults: [{ route: "upload-patch", nth: 2, action: { kind: "drop", afterBodyBytes: 30_000 } }],
    },
    resumeAt: 64 * KIB,
  },
];

for (const { name, options, resumeAt } of RESUME_CASES) {
  Deno.test(`uploadBlob resumes from the registry's Range after ${name}`, async () => {
    await using fake = await FakeRegistry.start(options);
    using harness = connectClient(fake);
    const size = 256 * KIB;
    const bytes = randomBytes("resume", size);
    const blob = memoryBlob(bytes);

    await uploadBlob(harness.client, blob, { chunks: { size: 64 * KIB, minSize: 64 * KIB } });

    const routes = fake.requests.map((r) => r.route);
    assertEquals(routes.slice(0, 4), [
      "upload-start",
      "upload-patch",
      "upload-patch",
      "upload-status",
    ]);
    assertEquals(routes.at(-1), "upload-put");
    const status = fake.requests[3]!;
    assertEquals(status.outcome, 204);
    assertEquals(status.responseHeaders["range"], `0-${resumeAt - 1}`);
    const resumed = fake.requests[4]!;
    assertEquals(resumed.route, "upload-patch");
    assertEquals(resumed.headers["content-range"], `${resumeAt}-${resumeAt + 64 * KIB - 1}`);
    assertEquals(resumed.target, locationTarget(fake, status));
    assertEquals(fake.blobs.get(blob.digest), bytes);
    assertEquals(fake.requestsTo("upload-delete").length, 0);
    // At most the failed chunk is sent twice, not the blob.
    assert(fake.bodyBytesReceived <= size + 64 * KIB, `${fake.bodyBytesReceived} bytes sent`);
    assertEquals(harness.retryEvents.length, 1);
  });
}

Deno.test({
  name: "uploadBlob resumes after a PATCH connection drops on a reused keep-alive connection",
  fn: async () => {
    await using fake = await FakeRegistry.start({
      server: "tcp",
      faults: [{
        route: "upload-patch",
        nth: 2,
        action: { kind: "drop", afterBodyBytes: 20_000, keepPartial: true },
      }],
    });
    using harness = connectClient(fake, { inactivityTimeoutMs: 400 });
    const bytes = randomBytes("resume-keep-alive", 256 * KIB);
    const blob = memoryBlob(bytes);

    const upload = uploadBlob(harness.client, blob, {
      chunks: { size: 64 * KIB, minSize: 64 * KIB },
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finished = await Promise.race([
      upload.then(() => true, () => true),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), 5000)),
    ]);
    clearTimeout(timer);
    if (!finished) {
      await fake.close();
      await upload.catch(() => {});
    }

    assert(finished, "uploadBlob hung");
    await upload;
    assertEquals(fake.blobs.get(blob.digest), bytes);
  },
});

Deno.test("uploadBlob resends what the registry didn't keep of an accepted chunk", async () => {
  // Some registries (ECR) have acknowledged chunks they then lost: the Range tells.
  await using fake = await FakeRegistry.start({
    faults: [{
      route: "upload-patch",
      nth: 2,
      action: respond(202, { headers: { Range: `0-${64 * KIB - 1}` } }),
    }],
  });
  using harness = connectClient(fake);
  const bytes = randomBytes("lost-chunk", 160 * KIB);
  const blob = memoryBlob(bytes);

  await uploadBlob(harness.client, blob, { chunks: { size: 64 * KIB, minSize: 64 * KIB } });

  assertEquals(fake.requestsTo("upload-patch").map((r) => r.headers["content-range"]), [
    `0-${64 * KIB - 1}`,
    `${64 * KIB}-${128 * KIB - 1}`,
    `${64 * KIB}-${128 * KIB - 1}`,
    `${128 * KIB}-${160 * KIB - 1}`,
  ]);
  assertEquals(fake.blobs.get(blob.digest), bytes);
});

Deno.test("uploadBlob retries the closing PUT of a chunked upload after a 503", async () => {
  await using fake = await FakeRegistry.start({
    faults: [{ route: "upload-put", nth: 1, action: respond(503) }],
  });
  using harness = connectClient(fake);
  const bytes = randomBytes("final-put", 100 * KIB);
  const blob = memoryBlob(bytes);

  await uploadBlob(harness.client, blob, { chunks: { size: 64 * KIB, minSize: 64 * KIB } });

  const puts = fake.requestsTo("upload-put");
  assertEquals(puts.map((r) => r.outcome), [503, 201]);
  assertEquals(puts[0]!.target, puts[1]!.target);
  assertEquals(fake.blobs.get(blob.digest), bytes);
});

Deno.test("uploadBlob in chunks refuses a blob that doesn't match its digest before committing", async () => {
  await using fake = await FakeRegistry.start();
  using harness = connectClient(fake);
  const bytes = randomBytes("corrupt", 150 * KIB);
  const claimed = sha256(randomBytes("what the archive promised", 150 * KIB));
  const blob = memoryBlob(bytes, { digest: claimed });

  const error = await assertRejects(
    () => uploadBlob(harness.client, blob, { chunks: { size: 64 * KIB, minSize: 64 * KIB } }),
    BlobDigestMismatchError,
  );

  assert(error.message.includes(claimed), error.message);
  assertEquals(fake.requests.map((r) => r.route), [
    "upload-start",
    "upload-patch",
    "upload-patch",
    "upload-patch",
    "upload-delete",
  ]);
  assertEquals(fake.requestsTo("upload-put").length, 0);
  assertEquals(fake.blobs.size, 0);
  assertEquals(fake.sessions.size, 0);
});

Deno.test("uploadBlob in one PUT blames the archive when the registry says DIGEST_INVALID", async () => {
  await using fake = await FakeRegistry.start();
  using harness = connectClient(fake, { retries: 5 });
  const bytes = randomBytes("corrupt-monolithic", 90 * KIB);
  const claimed = sha256(randomBytes("what the archive promised", 90 * KIB));
  const blob = memoryBlob(bytes, { digest: claimed });

  const error = await assertRejects(
    () => uploadBlob(harness.client, blob),
    BlobDigestMismatchError,
  );

  assert(error.message.includes(claimed), error.message);
  const puts = fake.requestsTo("upload-put");
  assertEquals(puts.length, 1);
  assertEquals(puts[0]!.outcome, 400);
  assertEquals(fake.requests.map((r) => r.route), ["upload-start", "upload-put", "upload-delete"]);
  assertEquals(fake.blobs.size, 0);
});

Deno.test({
  name: "uploadBlob waits for a chunk retry through the client's retry policy",
  fn: async () => {
    await using fake = await FakeRegistry.start({
      faults: [{
        route: "upload-patch",
        nth: 1,
        action: respond(429, { headers: { "Retry-After": "1" } }),
      }],
    });
    using harness = connectClient(fake);
    const blob = memoryBlob(randomBytes("retry-policy", 100 * KIB));

    await uploadBlob(harness.client, blob, { chunks: { size: 64 * KIB, minSize: 64 * KIB } });

    assertEquals(harness.sleeps, [1000]);
  },
});

Deno.test("uploadBlob: a 405 on the POST means the registry takes no writes; no other request", async () => {
  // distribution as a pull-through cache answers UNSUPPORTED; read-only mode a bare 405 (the
  // CLI test in quirks_test.ts pushes to a real read-only registry).
  const unsupported = { code: "UNSUPPORTED", message: "The operation is unsupported." };
  for (const [errors, mountFrom] of [[[unsupported], undefined], [[], "team/base"]] as const) {
    await using fake = await FakeRegistry.start({
      faults: [{ route: "upload-start", action: respond(405, { errors: [...errors] }) }],
    });
    using harness = connectClient(fake, { repository: "team/app" });
    const blob = memoryBlob(randomBytes("read-only", 10 * KIB));

    const error = await assertRejects(
      () => uploadBlob(harness.client, blob, mountFrom ? { mountFrom } : {}),
      WritesRefusedError,
      `${fake.host} refused writes to team/app: POST `,
    );
    assert(error.message.includes("read-only"), error.message);
    assertEquals(error.message.includes("UNSUPPORTED"), errors.length > 0, error.message);
    assert(error.cause instanceof RegistryError && error.cause.status === 405);
    assertEquals(fake.requests.map((r) => `${r.method} ${r.outcome}`), ["POST 405"]);
    assertEquals(harness.retryEvents, []);
  }
});

/**
 * RegistryClient under faults: the retry table (503, 429 + Retry-After, fail-fast 4xx,
 * dropped connections), auth (Basic, Bearer, refused credentials), redirects to other hosts,
 * and the manifest digest check. Every test asserts on the requests the fake recorded.
 */
import { AuthError } from "../../src/registry/auth_error.ts";
import { blobExists } from "../../src/registry/blobs.ts";
import type { RegistryClient } from "../../src/registry/client.ts";
import { putManifest } from "../../src/registry/manifests.ts";
import { RegistryError } from "../../src/registry/registry_error.ts";
import { uploadBlob } from "../../src/registry/uploads.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import {
  connectClient,
  FakeRegistry,
  memoryBlob,
  respond,
  type Route,
  sha256,
} from "../helpers/fake_registry.ts";
import { seededBytes } from "../helpers/random.ts";

const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";
const MANIFEST = new TextEncoder().encode(
  JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_TYPE, layers: [] }),
);
const BLOB = seededBytes("client-fault-blob", 40_000);
const BLOB_DIGEST = sha256(BLOB);

/** One registry operation per row, with the route its retried request takes. */
const OPERATIONS: { name: string; route: Route; run: (client: RegistryClient) => Promise<void> }[] =
  [
    {
      name: "HEAD blob",
      route: "blob-head",
      run: async (client) => {
        assertEquals(await blobExists(client, BLOB_DIGEST), false);
      },
    },
    {
      name: "POST upload",
      route: "upload-start",
      run: async (client) => {
        await uploadBlob(client, memoryBlob(BLOB));
      },
    },
    {
      name: "PUT manifest",
      route: "manifest-put",
      run: async (client) => {
        assertEquals(await putManifest(client, "1.0", MANIFEST_TYPE, MANIFEST), sha256(MANIFEST));
      },
    },
  ];

for (const op of OPERATIONS) {
  Deno.test(`RegistryClient retries ${op.name} after 503 twice and then succeeds`, async () => {
    await using fake = await FakeRegistry.start({
      faults: [{ route: op.route, nth: [1, 2], action: respond(503) }],
    });
    using harness = connectClient(fake, { retries: 3 });

    await op.run(harness.client);

    const tries = fake.requestsTo(op.route);
    assertEquals(tries.length, 3);
    assertEquals(tries.slice(0, 2).map((r) => r.outcome), [503, 503]);
    assert(tries[2]!.outcome !== 503);
    assertEquals(harness.retryEvents.map((e) => e.attempt), [2, 3]);
    assert(harness.retryEvents.every((e) => e.reason.includes("503")));
    assertEquals(harness.sleeps.length, 2);
    // The same request each time, body included.
    assertEquals(new Set(tries.map((r) => `${r.method} ${r.target} ${r.bodyLength}`)).size, 1);
  });
}

Deno.test("RegistryClient gives up after its retries with a temporary RegistryError", async () => {
  await using fake = await FakeRegistry.start({
    faults: [{ route: "blob-head", action: respond(503) }],
  });
  using harness = connectClient(fake, { retries: 2 });

  const error = await assertRejects(
    () => blobExists(harness.client, BLOB_DIGEST),
    RegistryError,
  );

  assertEquals(error.status, 503);
  assert(error.temporary);
  assertEquals(fake.requestsTo("blob-head").length, 3);
  assertEquals(harness.retryEvents.length, 2);
});

Deno.test("RegistryClient waits as long as 429's Retry-After says", async () => {
  await using fake = await FakeRegistry.start({
    faults: [{
      route: "manifest-put",
      nth: 1,
      action: respond(429, {
        headers: { "Retry-After": "1" },
        errors: [{ code: "TOOMANYREQUESTS", message: "slow down" }],
      }),
    }],
  });
  using harness = connectClient(fake);

  await putManifest(harness.client, "1.0", MANIFEST_TYPE, MANIFEST);

  assertEquals(harness.sleeps, [1000]);
  assertEquals(harness.retryEvents.map((e) => e.delayMs), [1000]);
  assertEquals(fake.requestsTo("manifest-put").map((r) => r.outcome), [429, 201]);
});

Deno.test("RegistryClient fails fast on 400 DIGEST_INVALID with the registry's code", async () => {
  await using fake = await FakeRegistry.start({
    faults: [{
      route: "manifest-put",
      action: respond(400, {
        errors: [{ code: "DIGEST_INVALID", message: "provided digest did not match content" }],
      }),
    }],
  });
  using harness = connectClient(fake, { retries: 5 });

  const error = await assertRejects(
    () => putManifest(harness.client, "1.0", MANIFEST_TYPE, MANIFEST),
    RegistryError,
  );

  assertEquals(error.status, 400);
  assertEquals(error.method, "PUT");
  assert(error.hasCode("DIGEST_INVALID"));
  assertEquals(error.codes[0]?.message, "provided digest did not match content");
  assertEquals(error.url, `${fake.url.origin}/v2/team/app/manifests/1.0`);
  assert(!error.temporary);
  assert(error.message.includes("DIGEST_INVALID"), error.message);
  assertEquals(fake.requests.length, 1);
  assertEquals(harness.retryEvents.length, 0);
});

Deno.test("RegistryError for an upload URL hides the session's _state", async () => {
  await using fake = await FakeRegistry.start({
    faults: [{
      route: "upload-put",
      action: respond(400, { errors: [{ code: "BLOB_UPLOAD_INVALID", message: "nope" }] }),
    }],
  });
  using harness = connectClient(fake, { retries: 5 });

  const error = await assertRejects(
    () => uploadBlob(harness.client, memoryBlob(BLOB)),
    RegistryError,
  );

  const puts = fake.requestsTo("upload-put");
  assertEquals(puts.length, 1);
  const state = new URL(puts[0]!.target, fake.url).searchParams.get("_state")!;
  assert(state.length > 8);
  assert(!error.url.includes(state) && !error.message.includes(state), error.message);
  assert(error.url.includes("_state=REDACTED"), error.url);
  assert(error.hasCode("BLOB_UPLOAD_INVALID"));
  // The abandoned session is cancelled.
  assertEquals(fake.requestsTo("upload-delete").length, 1);
  assertEquals(fake.sessions.size, 0);
});

Deno.test("RegistryClient retries a request whose connection dropped", async () => {
  await using fake = await FakeRegistry.start({
    server: "tcp",
    faults: [{ route: "manifest-put", nth: 1, action: { kind: "drop", afterBodyBytes: 10 } }],
  });
  using harness = connectClient(fake);

  await putManifest(harness.client, "1.0", MANIFEST_TYPE, MANIFEST);

  assertEquals(fake.requestsTo("manifest-put").map((r) => r.outcome), ["dropped", 201]);
  assertEquals(harness.retryEvents.length, 1);
  assertEquals(fake.manifests.get("team/app:1.0")?.bytes, MANIFEST);
});

Deno.test("RegistryClient answers a Basic challenge with Basic credentials", async () => {
  await using fake = await FakeRegistry.start({
    auth: { scheme: "basic", username: "alice", password: "s3cret-pass" },
  });
  using harness = connectClient(fake, {
    credentials: { username: "alice", password: "s3cret-pass" },
  });

  assertEquals(await blobExists(harness.client, BLOB_DIGEST), false);
  assertEquals(await blobExists(harness.client, BLOB_DIGEST), false);

  const heads = fake.requestsTo("blob-head");
  assertEquals(heads.map((r) => r.outcome), [401, 404, 404]);
  assertEquals(heads[0]!.headers["authorization"], undefined);
  const basic = `Basic ${btoa("alice:s3cret-pass")}`;
  assertEquals(heads[1]!.headers["authorization"], basic);
  // Once the scheme is known, credentials go with the first try.
  assertEquals(heads[2]!.headers["authorization"], basic);
  assertEquals(harness.client.authScheme, "basic");
});

Deno.test("RegistryClient refuses after a second 401 without leaking the password", async () => {
  await using fake = await FakeRegistry.start({
    auth: { scheme: "basic", username: "alice", password: "right" },
  });
  using harness = connectClient(fake, {
    retries: 5,
    credentials: { username: "alice", password: "wrong-Pa55word" },
  });

  const error = await assertRejects(() => harness.client.ping(), AuthError);

  assert(error.message.includes('"alice"'), error.message);
  assert(!error.message.includes("wrong-Pa55word"), error.message);
  assert(!error.message.includes(btoa("alice:wrong-Pa55word")), error.message);
  assertEquals(fake.requests.map((r) => r.outcome), [401, 401]);
  assertEquals(harness.retryEvents.length, 0);
});

Deno.test("RegistryClient fetches a Bearer token from the challenge's realm", async () => {
  await using fake = await FakeRegistry.start({
    auth: {
      scheme: "bearer",
      username: "alice",
      password: "s3cret-pass",
      token: "tok-123",
      service: "fake-registry",
    },
  });
  using harness = connectClient(fake, {
    credentials: { username: "alice", password: "s3cret-pass" },
  });

  await putManifest(harness.client, "1.0", MANIFEST_TYPE, MANIFEST);
  assertEquals(await blobExists(harness.client, BLOB_DIGEST), false);

  assertEquals(fake.requests.map((r) => `${r.route} ${r.outcome}`), [
    "manifest-put 401",
    "token 200",
    "manifest-put 201",
    // The cached token goes with the next request: no second token fetch.
    "blob-head 404",
  ]);
  const token = fake.requestsTo("token")[0]!;
  const query = new URL(token.target, fake.url).searchParams;
  assertEquals(query.getAll("scope"), ["repository:team/app:push,pull"]);
  assertEquals(query.get("service"), "fake-registry");
  assertEquals(token.headers["authorization"], `Basic ${btoa("alice:s3cret-pass")}`);
  assertEquals(fake.requests[2]!.headers["authorization"], "Bearer tok-123");
  assertEquals(fake.requests[3]!.headers["authorization"], "Bearer tok-123");
  assertEquals(harness.client.authScheme, "bearer");
});

Deno.test("RegistryClient reports refused token credentials as an AuthError", async () => {
  await using fake = await FakeRegistry.start({
    auth: { scheme: "bearer", username: "alice", password: "right", token: "tok" },
  });
  using harness = connectClient(fake, {
    retries: 5,
    credentials: { username: "alice", password: "wrong-Pa55word" },
  });

  const error = await assertRejects(() => harness.client.ping(), AuthError);

  assert(error.message.includes('"alice"') && !error.message.includes("wrong-Pa55word"));
  assertEquals(fake.requests.map((r) => `${r.route} ${r.outcome}`), [
    "ping 401",
    "token 401",
  ]);
});

for (const scheme of ["basic", "bearer"] as const) {
  Deno.test(`RegistryClient follows a blob redirect to another host without ${scheme} credentials`, async () => {
    await using storage = await FakeRegistry.start();
    storage.blobs.set(BLOB_DIGEST, BLOB);
    await using fake = await FakeRegistry.start({
      auth: scheme === "basic"
        ? { scheme, username: "alice", password: "pw" }
        : { scheme, username: "alice", password: "pw", token: "tok-9" },
      faults: [{
        route: "blob-head",
        action: respond(307, {
          headers: { Location: `${storage.url.origin}/v2/team/app/blobs/${BLOB_DIGEST}?sig=abc` },
        }),
      }],
    });
    assert(storage.host !== fake.host);
    using harness = connectClient(fake, { credentials: { username: "alice", password: "pw" } });

    // The ping learns the auth scheme, so the HEAD carries credentials from its first try.
    await harness.client.ping();
    assertEquals(await blobExists(harness.client, BLOB_DIGEST), true);

    const head = fake.requestsTo("blob-head");
    assertEquals(head.length, 1);
    assertEquals(head[0]!.outcome, 307);
    assert(head[0]!.headers["authorization"] !== undefined, "the registry gets credentials");
    const followed = storage.requestsTo("blob-head");
    assertEquals(followed.length, 1);
    assertEquals(followed[0]!.outcome, 200);
    assertEquals(followed[0]!.target, `/v2/team/app/blobs/${BLOB_DIGEST}?sig=abc`);
    assertEquals(followed[0]!.headers["authorization"], undefined);
    assertEquals(storage.requests.length, 1);
  });
}

Deno.test("putManifest rejects a Docker-Content-Digest that isn't the manifest's", async () => {
  const wrong = `sha256:${"0".repeat(64)}`;
  await using fake = await FakeRegistry.start({
    faults: [{
      route: "manifest-put",
      action: respond(201, { headers: { "Docker-Content-Digest": wrong } }),
    }],
  });
  using harness = connectClient(fake);

  const error = await assertRejects(
    () => putManifest(harness.client, "1.0", MANIFEST_TYPE, MANIFEST),
    Error,
    wrong,
  );

  assert(error.message.includes(sha256(MANIFEST)), error.message);
  assertEquals(fake.requestsTo("manifest-put").length, 1);
  assertEquals(fake.requestsTo("manifest-put")[0]!.headers["content-type"], MANIFEST_TYPE);
});

Deno.test("blobExists reads a HEAD that stays 401 as absent, never as present", async () => {
  // Artifactory and some GAR setups answer 401 on HEAD for a blob they don't have.
  await using fake = await FakeRegistry.start({
    auth: { scheme: "basic", username: "alice", password: "right" },
    faults: [{
      route: "blob-head",
      action: respond(401, { headers: { "WWW-Authenticate": 'Basic realm="x"' } }),
    }],
  });
  using harness = connectClient(fake, { credentials: { username: "alice", password: "right" } });

  assertEquals(await blobExists(harness.client, BLOB_DIGEST), false);
  assert(fake.requestsTo("blob-head").length <= 2, "no loop");
});

Deno.test("blobExists reads 403 as absent and a HEAD that stays 500 as a failure", async () => {
  // GCR and Artifactory answer 403 rather than 404 for a blob the account can't see yet.
  await using fake = await FakeRegistry.start({
    faults: [
      { route: "blob-head", nth: [1], action: respond(403) },
      { route: "blob-head", nth: [2, 3, 4, 5, 6, 7, 8, 9], action: respond(500) },
    ],
  });
  using harness = connectClient(fake);

  assertEquals(await blobExists(harness.client, BLOB_DIGEST), false);
  const error = await assertRejects(() => blobExists(harness.client, BLOB_DIGEST), RegistryError);
  assertEquals(error.status, 500);
});

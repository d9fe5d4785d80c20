/**
 * Stored credentials (docker's config, credential helpers) are looked up only when the registry
 * asks for credentials, once however many requests are refused at the same time. A store that
 * cannot be read does not matter to a registry that asks for none; one that does ask gets a
 * try without credentials (with one warning) when a token service might grant that, and a
 * refusal says why there were none. Token requests are reported for `--verbose`, redacted.
 */
import { AuthError } from "../../src/registry/auth_error.ts";
import type { CredentialLookup, Credentials } from "../../src/registry/credentials.ts";
import { blobExists } from "../../src/registry/blobs.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { createTransport } from "../../src/registry/transport.ts";
import type { ProgressEvent } from "../../src/progress/events.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../helpers/assert.ts";
import { type FakeAuth, FakeRegistry } from "../helpers/fake_registry.ts";

const DIGEST = `sha256:${"ab".repeat(32)}`;
const PASSWORD = "s3cret-Pa55";
const ALICE: Credentials = { username: "alice", password: PASSWORD };
const PROBLEM = 'Credential helper docker-credential-desktop (the "credsStore" of ' +
  "/home/u/.docker/config.json) failed: not on PATH";

/** A lookup that counts its calls and answers `result` (throws it when it is an Error). */
function countingLookup(result: Credentials | undefined | Error) {
  const calls = { count: 0 };
  const lookup: CredentialLookup = async () => {
    calls.count++;
    await new Promise((resolve) => setTimeout(resolve, 5));
    if (result instanceof Error) throw result;
    return result;
  };
  return { lookup, calls };
}

/** A client for `fake` with `credentials`, recording its events; close with `using`. */
function connect(fake: FakeRegistry, credentials: Credentials | CredentialLookup) {
  const transport = createTransport({ inactivityTimeoutMs: 5000 });
  const events: ProgressEvent[] = [];
  const client = new RegistryClient({
    baseUrl: fake.url,
    registryName: fake.host,
    repository: "team/app",
    transport,
    credentials,
    retries: 0,
    sink: (event) => events.push(event),
  });
  const warnings = () =>
    events.filter((e) => e.type === "notice" && e.level === "warning").map((e) =>
      e.type === "notice" ? e.message : ""
    );
  return { client, events, warnings, [Symbol.dispose]: () => transport.close() };
}

Deno.test("a registry that asks for no credentials never runs the lookup; one that asks does", async () => {
  const { lookup, calls } = countingLookup(ALICE);
  {
    await using open = await FakeRegistry.start();
    using harness = connect(open, lookup);
    await harness.client.ping();
    assertEquals(await blobExists(harness.client, DIGEST), false);
    assertEquals(calls.count, 0);
    assertEquals(harness.client.authScheme, "none");
  }
  await using basic = await FakeRegistry.start({
    auth: { scheme: "basic", username: "alice", password: PASSWORD },
  });
  using harness = connect(basic, lookup);
  await harness.client.ping();
  assertEquals(calls.count, 1);
  assertEquals(basic.requests.map((r) => r.outcome), [401, 200]);
});

const SCHEMES: [string, FakeAuth][] = [
  ["basic", { scheme: "basic", username: "alice", password: PASSWORD }],
  ["bearer", { scheme: "bearer", username: "alice", password: PASSWORD, token: "tok-1" }],
];
for (const [name, auth] of SCHEMES) {
  Deno.test(`a ${name} challenge runs the lookup once, for every refused request`, async () => {
    await using fake = await FakeRegistry.start({ auth });
    const { lookup, calls } = countingLookup(ALICE);
    using harness = connect(fake, lookup);

    // Concurrent first requests: all refused, all waiting for the same lookup.
    const found = await Promise.all([1, 2, 3].map(() => blobExists(harness.client, DIGEST)));
    assertEquals(found, [false, false, false]);
    assertEquals(await blobExists(harness.client, DIGEST), false);

    assertEquals(calls.count, 1);
    assertEquals(harness.client.authScheme, name);
    assertEquals(harness.warnings(), []);
  });
}

Deno.test("a broken store: a token service granting anonymous tokens is tried, with one warning", async () => {
  // No username: the fake's token service gives a token to anyone.
  await using fake = await FakeRegistry.start({ auth: { scheme: "bearer", token: "anon-tok" } });
  const { lookup, calls } = countingLookup(new Error(PROBLEM));
  using harness = connect(fake, lookup);

  await harness.client.ping();
  assertEquals(await blobExists(harness.client, DIGEST), false);
  assertEquals(await blobExists(harness.client, DIGEST), false);

  assertEquals(calls.count, 1);
  assertEquals(harness.warnings(), [
    `Cannot read credentials for ${fake.host} (${PROBLEM}); trying without credentials`,
  ]);
  const tokenRequests = fake.requestsTo("token");
  assertEquals(tokenRequests.length, 1);
  assertEquals(tokenRequests[0]!.headers["authorization"], undefined);
});

Deno.test("a broken store: the token service's refusal says why there were no credentials", async () => {
  await using fake = await FakeRegistry.start({
    auth: { scheme: "bearer", username: "alice", password: PASSWORD, token: "tok" },
  });
  using harness = connect(fake, countingLookup(new Error(PROBLEM)).lookup);

  const error = await assertRejects(() => harness.client.ping(), AuthError);

  assertStringIncludes(error.message, `Authentication failed for anonymous access at ${fake.host}`);
  assertStringIncludes(error.message, `credentials could not be read (${PROBLEM})`);
  assertEquals(harness.warnings().length, 1);
});

Deno.test("a broken store: a Basic refusal says why, with no warning before it", async () => {
  await using fake = await FakeRegistry.start({
    auth: { scheme: "basic", username: "alice", password: PASSWORD },
  });
  using harness = connect(fake, countingLookup(new Error(PROBLEM)).lookup);

  const error = await assertRejects(() => harness.client.ping(), AuthError);

  assertStringIncludes(error.message, `credentials could not be read (${PROBLEM})`);
  // Basic without credentials cannot work: the error alone says it, once.
  assertEquals(harness.warnings(), []);
  assertEquals(fake.requests.map((r) => r.outcome), [401]);
});

Deno.test("a lookup finding nothing is plain anonymous access", async () => {
  await using fake = await FakeRegistry.start({
    auth: { scheme: "basic", username: "alice", password: PASSWORD },
  });
  using harness = connect(fake, countingLookup(undefined).lookup);

  const error = await assertRejects(() => harness.client.ping(), AuthError);

  assertStringIncludes(error.message, "for anonymous access");
  assert(!error.message.includes("could not be read"), error.message);
});

Deno.test("token requests are reported as http events, with no secret in them", async () => {
  await using fake = await FakeRegistry.start({
    auth: {
      scheme: "bearer",
      username: "alice",
      password: PASSWORD,
      token: "tok-Zq9",
      service: "fake-registry",
    },
  });
  using harness = connect(fake, ALICE);

  await harness.client.ping();

  const http = harness.events.filter((e) => e.type === "http");
  assertEquals(http.map((e) => `${e.method} ${new URL(e.url).pathname} ${e.status}`), [
    "GET /v2/ 401",
    "GET /token 200",
    "GET /v2/ 200",
  ]);
  const token = http[1]!;
  const query = new URL(token.url).searchParams;
  assertEquals(query.get("service"), "fake-registry");
  assertEquals(query.getAll("scope"), ["repository:team/app:push,pull"]);
  const text = JSON.stringify(harness.events);
  for (const secret of [PASSWORD, btoa(`alice:${PASSWORD}`), "tok-Zq9"]) {
    assert(!text.includes(secret), `an event holds a secret: ${text}`);
  }
});

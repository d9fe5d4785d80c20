/**
 * The bearer token service (a challenge's `realm`: Harbor's /service/token, GitLab's
 * /jwt/auth, auth.docker.io) under faults: its 5xx, 429 and dropped connections are retried
 * as the registry's own answers are (attempts, backoff, `Retry-After`, the abort signal),
 * its refusal of the credentials never is, and after the last attempt one line names the
 * realm, the answer and the attempts made.
 *
 * The real registry in token mode, its realm a double in front of the real token server,
 * through the public `push` and `pull`; the fake registry's token route for what needs a
 * dropped connection or a look at each backoff delay.
 */
import {
  AuthError,
  pull,
  push,
  PushError,
  type PushResult,
  type RegistryCredentials,
  TokenServiceError,
} from "../../mod.ts";
import { blobExists } from "../../src/registry/blobs.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { abortableSleep } from "../../src/registry/retry.ts";
import { createTransport } from "../../src/registry/transport.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { connectClient, FakeRegistry, respond } from "../helpers/fake_registry.ts";
import { writeOciArchive } from "../helpers/image_fixtures.ts";
import { integrationTest, startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { startTokenServer, type TokenServer } from "../helpers/token_server.ts";

const ALICE = { username: "alice", password: "pw-Tr9.alice-secret" };
const HELPER = { username: "helper", password: "hpw" };
const REFRESH_TOKEN = `rt-${crypto.randomUUID()}`;
const TOOLS = ["docker-registry", "openssl"];

// ---------------------------------------------------------------------------------------------
// The token service double

/** What the double saw: the method, and the status it answered (its own, or the server's). */
interface SeenRequest {
  method: string;
  status: number;
}

/** A token service in front of the real one, answering some requests itself. */
interface TokenDouble extends AsyncDisposable {
  /** Stops it. */
  [Symbol.asyncDispose](): Promise<void>;
  /** `http://127.0.0.1:PORT/service/token`, the realm the registry names. */
  realm: string;
  seen: SeenRequest[];
  /**
   * The double's own answer to its `n`th request (1-based, counted since it started), or
   * undefined to pass the request on to the token server.
   */
  answer: (n: number) => Response | undefined;
}

/** 503 with `Retry-After: 0`, as a Harbor core restarting behind its nginx might answer. */
function unavailable(): Response {
  return new Response("<html><body>503 Service Temporarily Unavailable</body></html>", {
    status: 503,
    headers: { "Content-Type": "text/html", "Retry-After": "0" },
  });
}

function startTokenDouble(upstream: string): TokenDouble {
  const seen: SeenRequest[] = [];
  const double: TokenDouble = {
    realm: "",
    seen,
    answer: () => undefined,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const body = req.method === "POST" ? await req.arrayBuffer() : null;
    const own = double.answer(seen.length + 1);
    if (own !== undefined) {
      seen.push({ method: req.method, status: own.status });
      return own;
    }
    const target = new URL(upstream);
    target.search = new URL(req.url).search;
    const headers = new Headers();
    for (const name of ["authorization", "content-type", "accept"]) {
      const value = req.headers.get(name);
      if (value !== null) headers.set(name, value);
    }
    const answer = await fetch(target, { method: req.method, headers, body });
    seen.push({ method: req.method, status: answer.status });
    return new Response(await answer.arrayBuffer(), {
      status: answer.status,
      headers: { "Content-Type": answer.headers.get("content-type") ?? "application/json" },
    });
  });
  double.realm = `http://127.0.0.1:${server.addr.port}/service/token`;
  return double;
}

/** The real token server, the double in front of it, a registry naming the double, an archive. */
interface Setup extends AsyncDisposable {
  tokens: TokenServer;
  double: TokenDouble;
  registry: TestRegistry;
  dir: string;
  archive: string;
  /** Where pushes and pulls read docker's config and keep their caches. */
  env: (name: string) => string | undefined;
}

async function setup(): Promise<Setup> {
  const dir = await Deno.makeTempDir({ prefix: "dip-auth-retry-" });
  const cleanups: (() => Promise<void>)[] = [() => Deno.remove(dir, { recursive: true })];
  const dispose = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  };
  try {
    const tokens = await startTokenServer({
      users: { [ALICE.username]: ALICE.password, [HELPER.username]: HELPER.password },
      refreshTokens: { [REFRESH_TOKEN]: ALICE.username },
    });
    cleanups.push(() => tokens.close());
    const double = startTokenDouble(tokens.realm);
    cleanups.push(async () => await double[Symbol.asyncDispose]());
    const registry = await startRegistry({
      token: {
        realm: double.realm,
        service: tokens.service,
        issuer: tokens.issuer,
        rootCertBundle: tokens.certPath,
        credentials: HELPER,
      },
      // The helper's own queries go to the token server itself: the double counts ours only.
      authorize: async (scope) => {
        const url = new URL(tokens.realm);
        url.searchParams.set("service", tokens.service);
        url.searchParams.set("scope", scope);
        const basic = btoa(`${HELPER.username}:${HELPER.password}`);
        const answer = await fetch(url, { headers: { Authorization: `Basic ${basic}` } });
        return ((await answer.json()) as { token: string }).token;
      },
    });
    cleanups.push(() => registry.stop());
    const archive = await writeOciArchive(`${dir}/app.tar`, [{ name: "app:1" }]);
    const vars: Record<string, string> = {
      XDG_CACHE_HOME: `${dir}/cache`,
      XDG_STATE_HOME: `${dir}/state`,
      DOCKER_CONFIG: `${dir}/docker`,
    };
    return {
      tokens,
      double,
      registry,
      dir,
      archive: archive.path,
      env: (name) => vars[name],
      [Symbol.asyncDispose]: dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** The statuses the double answered since request `from` (0-based). */
function statusesSince(double: TokenDouble, from: number): number[] {
  return double.seen.slice(from).map((r) => r.status);
}

/** An integration test run against a fresh {@linkcode setup}, disposed after it. */
function tokenTest(name: string, fn: (s: Setup) => Promise<void>): void {
  integrationTest(name, async () => {
    await using s = await setup();
    await fn(s);
  }, { tools: TOOLS });
}

/** A push of the setup's archive to `team/app:1`, its token asked of the double. */
function pushApp(
  s: Setup,
  credentials: RegistryCredentials,
  retryAttempts: number,
): Promise<PushResult> {
  return push({
    archive: s.archive,
    targets: [`${s.registry.host}/team/app:1`],
    credentials,
    retryAttempts,
    env: s.env,
  });
}

// ---------------------------------------------------------------------------------------------
// Push and pull against the real registry

tokenTest(
  "token service: 503 twice, then a token: the push and the pull go through",
  async (s) => {
    s.double.answer = (n) => n <= 2 ? unavailable() : undefined;
    const pushed = await pushApp(s, ALICE, 3);
    assertEquals(statusesSince(s.double, 0), [503, 503, 200]);
    const digest = pushed.images[0]!.manifest.digest;
    assertEquals((await s.registry.fetchManifest("team/app", "1")).digest, digest);

    const before = s.double.seen.length;
    s.double.answer = (n) => n <= before + 2 ? unavailable() : undefined;
    const pulled = await pull({
      sources: [`${s.registry.host}/team/app:1`],
      output: `${s.dir}/out.tar`,
      credentials: ALICE,
      retryAttempts: 3,
      env: s.env,
    });
    assertEquals(pulled.images[0]!.digest, digest);
    assertEquals(statusesSince(s.double, before), [503, 503, 200]);
  },
);

tokenTest(
  "token service: always 503: the push fails after --retry-attempts, in one line",
  async (s) => {
    s.double.answer = () => unavailable();
    const error = await assertRejects(() => pushApp(s, ALICE, 2), TokenServiceError);
    assertEquals(
      error.message,
      `Token request to ${s.double.realm} for ${s.registry.host} answered 503 Service ` +
        "Unavailable after 3 attempts",
    );
    assertEquals(error.attempts, 3);
    assertEquals(error.registryError?.status, 503);
    // Retried already: a caller reading `temporary` must not retry the push for it.
    assertEquals(error.registryError?.temporary, false);
    // Retried as a token request, not once more for each request that needed the token.
    assertEquals(statusesSince(s.double, 0), [503, 503, 503]);
    assertEquals(await s.registry.listTags("team/app"), []);
  },
);

tokenTest(
  "token service: a wrong password (401) and a refused refresh token (400) are asked once",
  async (s) => {
    const wrong = await assertRejects(
      () => pushApp(s, { username: ALICE.username, password: "wrong-Zz9.not-alices" }, 3),
      AuthError,
    );
    assertEquals(statusesSince(s.double, 0), [401]);
    assert(wrong.message.includes('user "alice"'), wrong.message);
    assert(!wrong.message.includes("wrong-Zz9"), wrong.message);

    // An OAuth2 token endpoint refuses a refresh token it does not take with 400 invalid_grant.
    const before = s.double.seen.length;
    s.double.answer = () =>
      Response.json({ error: "invalid_grant", error_description: "refresh token revoked" }, {
        status: 400,
      });
    const refused = await assertRejects(
      () => pushApp(s, { identityToken: REFRESH_TOKEN }, 3),
      AuthError,
    );
    assertEquals(s.double.seen.slice(before), [{ method: "POST", status: 400 }]);
    assert(refused.message.startsWith("Authentication failed for"), refused.message);
    assert(refused.message.includes("invalid_grant"), refused.message);
    assert(!refused.message.includes(REFRESH_TOKEN), refused.message);
    assertEquals(await s.registry.listTags("team/app"), []);
  },
);

tokenTest(
  "token service: a 401 or 403 saying TOOMANYREQUESTS refuses the password: asked once",
  async (s) => {
    for (const status of [401, 403]) {
      const before = s.double.seen.length;
      s.double.answer = () =>
        Response.json({ errors: [{ code: "TOOMANYREQUESTS", message: "slow down" }] }, {
          status,
        });
      const error = await assertRejects(() => pushApp(s, ALICE, 3), AuthError);
      // Sent once: the same password again could lock the account, whatever the codes say.
      assertEquals(statusesSince(s.double, before), [status], String(status));
      assertEquals(error.registryError?.status, status);
      assert(error.message.includes("TOOMANYREQUESTS"), error.message);
    }
    assertEquals(await s.registry.listTags("team/app"), []);
  },
);

tokenTest(
  "token service: always 503 for a push of two repositories: one realm, retried once",
  async (s) => {
    const archive = await writeOciArchive(`${s.dir}/two.tar`, [
      { name: "app:1" },
      { name: "web:1" },
    ], { refName: "full" });
    s.double.answer = () => unavailable();
    const error = await assertRejects(
      () =>
        push({
          archive: archive.path,
          targets: [`${s.registry.host}/team`],
          all: true,
          credentials: ALICE,
          retryAttempts: 2,
          env: s.env,
        }),
      PushError,
    );
    // Each repository's token (two scope sets) failed with the realm's one failure.
    assertEquals(error.errors.length, 2);
    assert(error.errors.every((e) => e === error.errors[0]), String(error.errors));
    assert(error.errors[0] instanceof TokenServiceError, String(error.errors[0]));
    assertEquals(error.errors[0].attempts, 3);
    assertEquals(statusesSince(s.double, 0), [503, 503, 503]);
    assertEquals(await s.registry.listTags("team/app"), []);
    assertEquals(await s.registry.listTags("team/web"), []);
  },
);

// ---------------------------------------------------------------------------------------------
// The retry policy's details, against the fake registry's token route

const BEARER = {
  scheme: "bearer" as const,
  username: ALICE.username,
  password: ALICE.password,
  token: "tok-1",
};

Deno.test("token service: 503 twice waits the client's backoff, and reports each retry", async () => {
  await using fake = await FakeRegistry.start({
    auth: BEARER,
    faults: [{ route: "token", nth: [1, 2], action: respond(503) }],
  });
  using harness = connectClient(fake, { retries: 3, credentials: ALICE });
  await harness.client.ping();
  assertEquals(fake.requests.map((r) => `${r.route} ${r.outcome}`), [
    "ping 401",
    "token 503",
    "token 503",
    "token 200",
    "ping 200",
  ]);
  // The client's tuning (1 ms base, 2 ms cap): no Retry-After, so backoff with jitter.
  assertEquals(harness.sleeps.length, 2);
  assert(harness.sleeps.every((ms) => ms >= 0.5 && ms <= 2), String(harness.sleeps));
  const retries = harness.retryEvents;
  assertEquals(retries.map((e) => [e.attempt, e.status]), [[2, 503], [3, 503]]);
  assertEquals(retries[0]!.subject, {
    kind: "request",
    action: `get a token from ${fake.url}token`,
  });
});

Deno.test("token service: 429's Retry-After is waited, and 503 stops after the retries", async () => {
  await using fake = await FakeRegistry.start({
    auth: BEARER,
    faults: [
      { route: "token", nth: 1, action: respond(429, { headers: { "Retry-After": "7" } }) },
      { route: "token", action: respond(503) },
    ],
  });
  using harness = connectClient(fake, { retries: 2, credentials: ALICE });
  const error = await assertRejects(() => harness.client.ping(), TokenServiceError);
  assertEquals(harness.sleeps[0], 7000);
  assertEquals(
    error.message,
    `Token request to ${fake.url}token for ${fake.host} answered 503 Service Unavailable ` +
      "after 3 attempts",
  );
  assert(!error.message.includes(ALICE.password));
  assertEquals(fake.requests.map((r) => `${r.route} ${r.outcome}`), [
    "ping 401",
    "token 429",
    "token 503",
    "token 503",
  ]);
});

Deno.test("token service: a dropped connection is retried, and so is one that stays dropped", async () => {
  // A fresh connection per request: Node's agent sends a request again by itself when a
  // reused connection closes before answering, which would hide our own retries.
  await using fake = await FakeRegistry.start({
    server: "tcp",
    keepAlive: false,
    auth: BEARER,
    faults: [{ route: "token", nth: 1, action: { kind: "drop" } }],
  });
  using harness = connectClient(fake, { retries: 3, credentials: ALICE });
  await harness.client.ping();
  assertEquals(fake.requests.filter((r) => r.route === "token").map((r) => r.outcome), [
    "dropped",
    200,
  ]);
  assertEquals(harness.retryEvents.map((e) => e.attempt), [2]);

  await using down = await FakeRegistry.start({
    server: "tcp",
    keepAlive: false,
    auth: BEARER,
    faults: [{ route: "token", action: { kind: "drop" } }],
  });
  using failing = connectClient(down, { retries: 1, credentials: ALICE });
  const error = await assertRejects(() => failing.client.ping(), TokenServiceError);
  assert(
    error.message.startsWith(
      `Token request to ${down.url}token for ${down.host} failed after 2 attempts: `,
    ),
    error.message,
  );
  assertEquals(error.message.split("\n").length, 1);
  assertEquals(down.requests.map((r) => `${r.route} ${r.outcome}`), [
    "ping 401",
    "token dropped",
    "token dropped",
  ]);
});

Deno.test("token service: a refusal with a 400 and UNAUTHORIZED is not retried", async () => {
  await using fake = await FakeRegistry.start({
    auth: BEARER,
    faults: [{
      route: "token",
      action: respond(400, { errors: [{ code: "UNAUTHORIZED", message: "bad credentials" }] }),
    }],
  });
  using harness = connectClient(fake, { retries: 3, credentials: ALICE });
  const error = await assertRejects(() => harness.client.ping(), AuthError);
  assertEquals(error.registryError?.status, 400);
  assertEquals(fake.requests.map((r) => `${r.route} ${r.outcome}`), ["ping 401", "token 400"]);
  assertEquals(harness.sleeps, []);
});

Deno.test("token service: a failed realm fails the next scope set at once, not after a backoff", async () => {
  await using fake = await FakeRegistry.start({
    auth: BEARER,
    faults: [{ route: "token", action: respond(503) }],
  });
  using harness = connectClient(fake, { retries: 2, credentials: ALICE });
  const first = await assertRejects(() => harness.client.ping(), TokenServiceError);
  assertEquals(first.registryError?.status, 503);
  assertEquals(first.registryError?.temporary, false);
  // Another repository (its own scopes) of the same session, then a mount's source scope.
  const other = harness.client.forRepository("team/other");
  assertEquals(await assertRejects(() => other.ping(), TokenServiceError), first);
  other.addPullScope("team/base");
  const digest = `sha256:${"d".repeat(64)}`;
  assertEquals(await assertRejects(() => blobExists(other, digest), TokenServiceError), first);
  assertEquals(fake.requests.filter((r) => r.route === "token").map((r) => r.outcome), [
    503,
    503,
    503,
  ]);
  assertEquals(harness.sleeps.length, 2);
});

Deno.test("token service: scope sets asking at once wait for the realm's first request", async () => {
  await using fake = await FakeRegistry.start({
    auth: BEARER,
    faults: [{ route: "token", nth: [1, 2], action: respond(503) }],
  });
  using harness = connectClient(fake, { retries: 3, credentials: ALICE });
  const clients = ["team/app", "team/web", "team/db"].map((r) => harness.client.forRepository(r));
  await Promise.all(clients.map((client) => client.ping()));
  // The first is retried alone; once the realm has answered, the others ask side by side.
  assertEquals(fake.requests.filter((r) => r.route === "token").map((r) => r.outcome), [
    503,
    503,
    200,
    200,
    200,
  ]);
  assertEquals(harness.retryEvents.length, 2);

  await using down = await FakeRegistry.start({
    auth: BEARER,
    faults: [{ route: "token", action: respond(503) }],
  });
  using failing = connectClient(down, { retries: 2, credentials: ALICE });
  const views = ["team/app", "team/web", "team/db"].map((r) => failing.client.forRepository(r));
  const results = await Promise.allSettled(views.map((client) => client.ping()));
  const reasons = results.map((r) => r.status === "rejected" ? r.reason : r);
  assert(reasons.every((r) => r instanceof TokenServiceError && r === reasons[0]), String(reasons));
  assertEquals(down.requests.filter((r) => r.route === "token").length, 3);
});

Deno.test("token service: requests waiting for one token share its retries", async () => {
  await using fake = await FakeRegistry.start({
    auth: BEARER,
    faults: [{ route: "token", nth: [1, 2], action: respond(503) }],
  });
  using harness = connectClient(fake, { retries: 3, credentials: ALICE });
  const digests = ["a", "b", "c"].map((c) => `sha256:${c.repeat(64)}`);
  const found = await Promise.all(digests.map((digest) => blobExists(harness.client, digest)));
  assertEquals(found, [false, false, false]);
  assertEquals(fake.requests.filter((r) => r.route === "token").map((r) => r.outcome), [
    503,
    503,
    200,
  ]);
});

Deno.test("token service: an abort during the backoff stops the retries", async () => {
  await using fake = await FakeRegistry.start({
    auth: BEARER,
    faults: [{ route: "token", action: respond(503) }],
  });
  const transport = createTransport({ inactivityTimeoutMs: 5000 });
  const controller = new AbortController();
  const reason = new Error("interrupted");
  try {
    const client = new RegistryClient({
      baseUrl: fake.url,
      registryName: fake.host,
      repository: "team/app",
      transport,
      credentials: ALICE,
      retries: 5,
      sink: () => {},
      signal: controller.signal,
      retryTuning: {
        baseDelayMs: 60_000,
        sleep: (ms, signal) => {
          controller.abort(reason);
          return abortableSleep(ms, signal);
        },
      },
    });
    const error = await assertRejects(() => client.ping());
    assertEquals(error, reason);
    assertEquals(fake.requests.map((r) => `${r.route} ${r.outcome}`), ["ping 401", "token 503"]);
  } finally {
    transport.close();
  }
});

/**
 * `startRegistry` in token mode (against `startTokenServer`), over HTTPS (with a certificate
 * from `makeTestCa`), and both: the registry enforces what it should, and the helper's own
 * queries still work.
 */
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { writeOciArchive } from "../helpers/image_fixtures.ts";
import { sha256Digest } from "../helpers/random.ts";
import { integrationTest, startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { pullBack, skopeoCopy } from "../helpers/skopeo.ts";
import { makeTestCa, type TestCa } from "../helpers/tls.ts";
import { startTokenServer, type TokenServer } from "../helpers/token_server.ts";

const ALICE = { username: "alice", password: "alice-pw" };
const HELPER = { username: "helper", password: "helper-pw" };
const TOOLS = ["docker-registry", "openssl"];

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dip-registry-modes-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function tokenServer(): Promise<TokenServer> {
  return startTokenServer({
    users: { [ALICE.username]: ALICE.password, [HELPER.username]: HELPER.password },
  });
}

function tokenAuth(server: TokenServer) {
  return {
    realm: server.realm,
    service: server.service,
    issuer: server.issuer,
    rootCertBundle: server.certPath,
    credentials: HELPER,
  };
}

function tls(ca: TestCa) {
  return { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert };
}

/** A token for `scope` from the token server, as `user`. */
async function token(server: TokenServer, scope: string, user = ALICE): Promise<string> {
  const url = new URL(server.realm);
  url.searchParams.set("service", server.service);
  url.searchParams.set("scope", scope);
  const response = await fetch(url, {
    headers: { Authorization: `Basic ${btoa(`${user.username}:${user.password}`)}` },
  });
  assertEquals(response.status, 200);
  const body = await response.json() as { token: string };
  return body.token;
}

/** A monolithic blob upload (POST, then PUT with the digest); returns both statuses. */
async function uploadBlob(
  registry: TestRegistry,
  repo: string,
  blob: Uint8Array<ArrayBuffer>,
  bearer: string | undefined,
): Promise<{ post: number; put: number | undefined }> {
  const auth: Record<string, string> = bearer === undefined
    ? {}
    : { Authorization: `Bearer ${bearer}` };
  const post = await registry.fetch(`${registry.url}/v2/${repo}/blobs/uploads/`, {
    method: "POST",
    headers: auth,
  });
  await post.body?.cancel();
  if (post.status !== 202) return { post: post.status, put: undefined };
  const location = new URL(post.headers.get("Location")!, registry.url);
  location.searchParams.set("digest", sha256Digest(blob));
  const put = await registry.fetch(location, {
    method: "PUT",
    headers: { ...auth, "Content-Type": "application/octet-stream" },
    body: blob,
  });
  await put.body?.cancel();
  return { post: post.status, put: put.status };
}

integrationTest(
  "token mode: anonymous writes are refused, a token from the server works",
  async () => {
    await using server = await tokenServer();
    await using registry = await startRegistry({ token: tokenAuth(server) });
    assertEquals(registry.credentials, HELPER);
    assert(registry.url.startsWith("http://"));

    const ping = await fetch(`${registry.url}/v2/`);
    assertEquals(ping.status, 401);
    await ping.body?.cancel();
    const challenge = ping.headers.get("WWW-Authenticate") ?? "";
    assert(challenge.startsWith("Bearer "), challenge);
    assert(challenge.includes(`realm="${server.realm}"`), challenge);
    assert(challenge.includes(`service="${server.service}"`), challenge);

    const blob = new TextEncoder().encode("token mode blob");
    assertEquals(await uploadBlob(registry, "app", blob, undefined), {
      post: 401,
      put: undefined,
    });
    // A pull-only token cannot start an upload either.
    const pullOnly = await token(server, "repository:app:pull");
    assertEquals((await uploadBlob(registry, "app", blob, pullOnly)).post, 401);
    const pushPull = await token(server, "repository:app:push,pull");
    assertEquals(await uploadBlob(registry, "app", blob, pushPull), { post: 202, put: 201 });

    // The helper's queries fetch tokens of their own, as the helper account.
    const before = server.requests.length;
    assertEquals(await registry.blobExists("app", sha256Digest(blob)), true);
    assertEquals(await registry.fetchBlob("app", sha256Digest(blob)), blob);
    assertEquals(await registry.manifestExists("app", "1"), false);
    assertEquals(await registry.listTags("app"), []);
    const helperRequests = server.requests.slice(before);
    assert(helperRequests.length > 0);
    assert(helperRequests.every((r) => r.account === HELPER.username && r.status === 200));

    const log = await registry.requests();
    assert(log.some((r) => r.method === "POST" && r.status === 401));
    assert(log.some((r) => r.method === "PUT" && r.status === 201));
  },
  { tools: TOOLS },
);

integrationTest(
  "token mode: skopeo pushes with credentials, pullBack and fetchManifest work",
  async () => {
    await withTempDir(async (dir) => {
      await using server = await tokenServer();
      await using registry = await startRegistry({ token: tokenAuth(server) });
      const archive = await writeOciArchive(`${dir}/app.tar`, [{ name: "app:1" }]);
      const image = archive.images[0]!;

      await assertRejects(
        () => skopeoCopy(`oci-archive:${archive.path}`, `docker://${registry.host}/app:1`),
        Error,
        "Command failed",
      );
      assertEquals(await registry.listTags("app"), []);

      await skopeoCopy(`oci-archive:${archive.path}`, `docker://${registry.host}/app:1`, {
        destCreds: ALICE,
      });
      assert(server.requests.some((r) => r.account === ALICE.username));
      assertEquals(await registry.listTags("app"), ["1"]);
      assertEquals((await registry.fetchManifest("app", "1")).digest, image.manifestDigest);
      const pulled = await pullBack(registry, "app", "1", { creds: ALICE });
      assertEquals(pulled.configDigest, image.configDigest);
      assertEquals(pulled.layerDiffIds, image.layerDiffIds);
    });
  },
  { tools: [...TOOLS, "skopeo"] },
);

integrationTest("token mode: a custom authorize hook answers the helper's challenges", async () => {
  await using server = await tokenServer();
  const scopes: string[] = [];
  const { credentials: _, ...auth } = tokenAuth(server);
  await using registry = await startRegistry({
    token: auth,
    authorize: (scope) => {
      scopes.push(scope);
      return token(server, scope);
    },
  });
  assertEquals(registry.credentials, undefined);
  assertEquals(await registry.manifestExists("team/app", "1"), false);
  assertEquals(await registry.listTags("team/app"), []);
  assertEquals(scopes, ["repository:team/app:pull", "repository:team/app:pull"]);
}, { tools: TOOLS });

integrationTest("token mode without credentials: the helper's queries fail clearly", async () => {
  await using server = await tokenServer();
  const { credentials: _, ...auth } = tokenAuth(server);
  await using registry = await startRegistry({ token: auth });
  // The token server hands anonymous callers a token without access: the retry is still 401.
  await assertRejects(() => registry.manifestExists("app", "1"), Error, "Unexpected status 401");
}, { tools: TOOLS });

integrationTest("tls: the registry answers over https and trusts only the test CA", async () => {
  await withTempDir(async (dir) => {
    const ca = await makeTestCa(dir);
    await using registry = await startRegistry({ tls: tls(ca) });
    assertEquals(registry.url, `https://${registry.host}`);

    const ping = await registry.fetch(`${registry.url}/v2/`);
    assertEquals(ping.status, 200);
    await ping.body?.cancel();
    // Without the CA, the certificate is unknown.
    await assertRejects(() => fetch(`${registry.url}/v2/`), TypeError);
    // The certificate names localhost too.
    const byName = await registry.fetch(
      `https://${registry.host.replace("127.0.0.1", "localhost")}/v2/`,
    );
    assertEquals(byName.status, 200);
    await byName.body?.cancel();
    // Plain HTTP gets no API answer.
    const plain = await fetch(`http://${registry.host}/v2/`);
    assertEquals(plain.status, 400);
    await plain.body?.cancel();

    assertEquals(await registry.manifestExists("app", "1"), false);
    const blob = new TextEncoder().encode("tls blob");
    assertEquals(await uploadBlob(registry, "app", blob, undefined), { post: 202, put: 201 });
    assertEquals(await registry.blobExists("app", sha256Digest(blob)), true);
    const log = await registry.requests();
    assert(log.some((r) => r.method === "PUT" && r.status === 201));
    assert(log.some((r) => r.method === "GET" && r.path === "/v2/" && r.status === 200));
  });
}, { tools: TOOLS });

integrationTest("tls and token mode together: skopeo pushes, the helper reads back", async () => {
  await withTempDir(async (dir) => {
    const ca = await makeTestCa(dir);
    await using server = await tokenServer();
    await using registry = await startRegistry({ token: tokenAuth(server), tls: tls(ca) });
    assert(registry.url.startsWith("https://"));

    const ping = await registry.fetch(`${registry.url}/v2/`);
    assertEquals(ping.status, 401);
    await ping.body?.cancel();
    const blob = new TextEncoder().encode("tls and token blob");
    assertEquals((await uploadBlob(registry, "app", blob, undefined)).post, 401);
    const bearer = await token(server, "repository:app:push,pull");
    assertEquals(await uploadBlob(registry, "app", blob, bearer), { post: 202, put: 201 });
    assertEquals(await registry.blobExists("app", sha256Digest(blob)), true);

    const archive = await writeOciArchive(`${dir}/app.tar`, [{ name: "app:1" }]);
    await skopeoCopy(`oci-archive:${archive.path}`, `docker://${registry.host}/app:1`, {
      destCreds: ALICE,
    });
    assertEquals(await registry.listTags("app"), ["1"]);
    const pulled = await pullBack(registry, "app", "1", { creds: ALICE });
    assertEquals(pulled.manifestDigest, archive.images[0]!.manifestDigest);
  });
}, { tools: [...TOOLS, "skopeo"] });

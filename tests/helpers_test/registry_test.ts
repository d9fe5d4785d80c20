import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { writeOciArchive } from "../helpers/image_fixtures.ts";
import { parseAccessLog, startRegistry } from "../helpers/registry.ts";
import { skopeoCopy } from "../helpers/skopeo.ts";
import { integrationTest } from "../helpers/tools.ts";

integrationTest("startRegistry serves /v2/, logs requests and cleans up", async () => {
  const registry = await startRegistry();
  try {
    assert(/^127\.0\.0\.1:\d+$/.test(registry.host), registry.host);
    assertEquals(registry.url, `http://${registry.host}`);
    assertEquals(registry.credentials, undefined);
    const response = await fetch(`${registry.url}/v2/`);
    assertEquals(response.status, 200);
    await response.body?.cancel();

    assertEquals(await registry.manifestExists("nothing/here", "latest"), false);
    assertEquals(await registry.blobExists("nothing/here", `sha256:${"0".repeat(64)}`), false);
    assertEquals(await registry.listTags("nothing/here"), []);

    const requests = await registry.requests();
    // Readiness polls and our own fetch are GET /v2/; the rest is exactly what we asked.
    assert(requests.some((r) => r.method === "GET" && r.path === "/v2/" && r.status === 200));
    assertEquals(
      requests.filter((r) => r.path !== "/v2/").map((r) => `${r.method} ${r.path} ${r.status}`),
      [
        "HEAD /v2/nothing/here/manifests/latest 404",
        `HEAD /v2/nothing/here/blobs/sha256:${"0".repeat(64)} 404`,
        "GET /v2/nothing/here/tags/list 404",
      ],
    );
    // The readiness polls are GET /v2/ too; what matters is that nothing wrote.
    assert(!requests.some((r) => ["POST", "PATCH", "PUT", "DELETE"].includes(r.method)));
    assert(registry.serverLog().includes("listening on"));
  } finally {
    await registry.stop();
  }
  await registry.stop(); // idempotent
  await assertRejects(() => Deno.stat(registry.storageDir), Deno.errors.NotFound);
}, { tools: ["docker-registry"] });

integrationTest("startRegistry with htpasswd requires basic auth", async () => {
  const creds = { username: "tester", password: "s3cret pass" };
  await using registry = await startRegistry({ htpasswd: creds });
  assertEquals(registry.credentials, creds);
  const anonymous = await fetch(`${registry.url}/v2/`);
  assertEquals(anonymous.status, 401);
  assert(anonymous.headers.get("WWW-Authenticate")?.startsWith("Basic realm=") ?? false);
  await anonymous.body?.cancel();
  const wrong = await fetch(`${registry.url}/v2/`, {
    headers: { Authorization: `Basic ${btoa("tester:wrong")}` },
  });
  assertEquals(wrong.status, 401);
  await wrong.body?.cancel();

  // The helpers authenticate with the registry's credentials.
  assertEquals(await registry.manifestExists("app", "1"), false);
  assertEquals(await registry.listTags("app"), []);

  const log = await registry.requests();
  // 401s are in the access log (the registry's own "response completed" lines omit them).
  assert(log.some((r) => r.method === "GET" && r.path === "/v2/" && r.status === 401));
  assert(
    log.some((r) => r.method === "HEAD" && r.path === "/v2/app/manifests/1" && r.status === 404),
  );
}, { tools: ["docker-registry", "htpasswd"] });

integrationTest("requestLog records every method of a push", async () => {
  await using registry = await startRegistry();
  const dir = await Deno.makeTempDir({ prefix: "dip-registry-test-" });
  try {
    const archive = await writeOciArchive(`${dir}/oci.tar`, [{ name: "app:1", layerSizes: [100] }]);
    await skopeoCopy(`oci-archive:${archive.path}:1`, `docker://${registry.host}/app:1`);
    const requests = await registry.requests();
    const methods = new Set(requests.map((r) => r.method));
    for (const method of ["HEAD", "POST", "PUT"]) assert(methods.has(method), method);
    const put = requests.find((r) => r.method === "PUT" && r.path === "/v2/app/manifests/1");
    assertEquals(put?.status, 201);
    // Upload URIs keep the query string (distribution's _state and our digest).
    assert(requests.some((r) => r.method === "PUT" && r.uri.includes("digest=sha256%3A")));
    assert(await registry.manifestExists("app", "1"));
    assertEquals(await registry.listTags("app"), ["1"]);
    const manifest = await registry.fetchManifest("app", "1");
    assertEquals(manifest.digest, archive.images[0]?.manifestDigest);
    assert(await registry.blobExists("app", archive.images[0]?.configDigest ?? ""));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseAccessLog reads Apache combined lines and skips the rest", () => {
  const log = [
    `127.0.0.1 - - [27/Nov/2026:18:52:01 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"`,
    `time="2026-11-27T18:52:01Z" level=info msg="response completed"`,
    `127.0.0.1 - - [27/Nov/2026:18:52:01 +0000] "PATCH /v2/a/blobs/uploads/u?_state=x HTTP/1.1" 202 0 "" "dip/0.1"`,
  ].join("\n");
  assertEquals(parseAccessLog(log), [
    { method: "GET", uri: "/v2/", path: "/v2/", status: 200, userAgent: "curl/7.88.1" },
    {
      method: "PATCH",
      uri: "/v2/a/blobs/uploads/u?_state=x",
      path: "/v2/a/blobs/uploads/u",
      status: 202,
      userAgent: "dip/0.1",
    },
  ]);
});

/**
 * What the referrers API may answer besides a well-formed index, scripted by a small fake on
 * 127.0.0.1 (no real registry answers these on demand): an entry without a digest, an index
 * served as plain `application/json`, JSON that is no index, pages that point elsewhere or
 * loop, and a registry that ignores `?artifactType=`.
 */
import { findCosignTags } from "../../src/registry/referrers_cosign.ts";
import { listReferrers, ReferrersSupport } from "../../src/registry/referrers.ts";
import { ReferrersError } from "../../src/registry/referrers_error.ts";
import { RegistryError } from "../../src/registry/registry_error.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { sha256Digest } from "../helpers/random.ts";
import { startReferrersRegistry } from "../helpers/referrers_registry.ts";
import { integrationTest } from "../helpers/registry.ts";
import {
  FixtureType,
  makeSigningKey,
  openClient,
  pushSbomReferrer,
  pushSignatureReferrer,
  pushSmallImage,
} from "../helpers/signed_fixtures.ts";

const SUBJECT = `sha256:${"5".repeat(64)}`;
const ENTRY = {
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  digest: `sha256:${"6".repeat(64)}`,
  size: 10,
  artifactType: "application/spdx+json",
};

interface Fake extends AsyncDisposable {
  url: string;
  /** Paths (with query) asked, in order. */
  asked: string[];
}

/** A server whose every answer `answer` makes; the fallback tag is always absent (404). */
function fake(answer: (url: URL, origin: string) => Response): Fake {
  const asked: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const url = new URL(request.url);
    asked.push(url.pathname + url.search);
    if (url.pathname.includes("/manifests/")) return new Response("{}", { status: 404 });
    return answer(url, url.origin);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    asked,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

function index(manifests: unknown[], headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ schemaVersion: 2, manifests }), {
    status: 200,
    headers: { "Content-Type": "application/vnd.oci.image.index.v1+json", ...headers },
  });
}

Deno.test("an API entry without a digest is a ReferrersError naming the subject", async () => {
  await using server = fake(() => index([{ ...ENTRY, digest: undefined }]));
  using opened = openClient(server.url, "app");
  const error = await assertRejects(
    () => listReferrers(opened.client, SUBJECT, { support: new ReferrersSupport() }),
    ReferrersError,
    "manifests[0].digest",
  );
  assertEquals(error.subject, SUBJECT);
  assertEquals(error.repository, "app");
});

Deno.test("an index served as application/json is still the API's answer", async () => {
  await using server = fake(() =>
    new Response(JSON.stringify({ schemaVersion: 2, manifests: [ENTRY] }), {
      headers: { "Content-Type": "application/json" },
    })
  );
  using opened = openClient(server.url, "app");
  const listing = await listReferrers(opened.client, SUBJECT, { support: new ReferrersSupport() });
  assertEquals(listing.found, "api");
  assertEquals(listing.descriptors, [ENTRY]);
});

Deno.test("JSON that is no index (a 200 error body) means no API: the fallback tag is read", async () => {
  await using server = fake(() =>
    new Response(JSON.stringify({ errors: [{ code: "UNSUPPORTED" }] }), {
      headers: { "Content-Type": "application/json" },
    })
  );
  using opened = openClient(server.url, "app");
  const support = new ReferrersSupport();
  const listing = await listReferrers(opened.client, SUBJECT, { support });
  assertEquals(listing.found, "fallback-tag");
  assertEquals(support.get(opened.client), false);
  assertEquals(server.asked.length, 2);
});

Deno.test("a next page on another host is not followed (credentials stay home): an error", async () => {
  await using server = fake(() =>
    index([ENTRY], { Link: '<http://127.0.0.2:1/v2/app/referrers/x?page=2>; rel="next"' })
  );
  using opened = openClient(server.url, "app");
  await assertRejects(
    () => listReferrers(opened.client, SUBJECT, { support: new ReferrersSupport() }),
    ReferrersError,
    "the next page is on another host (127.0.0.2:1)",
  );
  assertEquals(server.asked.length, 1);
});

Deno.test("pages that never end are a ReferrersError, not a loop", async () => {
  await using server = fake((url) => index([ENTRY], { Link: `<${url.pathname}>; rel="next"` }));
  using opened = openClient(server.url, "app");
  await assertRejects(
    () => listReferrers(opened.client, SUBJECT, { support: new ReferrersSupport() }),
    ReferrersError,
    "more than 64 pages",
  );
  assertEquals(server.asked.length, 64);
});

integrationTest(
  "a registry that ignores ?artifactType= (no OCI-Filters-Applied): filtered here",
  async () => {
    await using double = await startReferrersRegistry({ applyFilter: false });
    using opened = openClient(double.url, "app");
    const support = new ReferrersSupport();
    const dir = await Deno.makeTempDir({ prefix: "dip-referrers-" });
    try {
      const image = await pushSmallImage(opened.client, "1");
      const sbom = await pushSbomReferrer(opened.client, image, { support });
      await pushSignatureReferrer(opened.client, image, await makeSigningKey(dir), { support });
      const listing = await listReferrers(opened.client, image.digest, {
        support,
        artifactType: FixtureType.spdx,
      });
      assertEquals(listing.filteredBy, "client");
      assertEquals(listing.descriptors, [sbom.descriptor]);
      // The served index is kept as served: both referrers.
      const served = JSON.parse(new TextDecoder().decode(listing.index!.bytes));
      assertEquals(served.manifests.length, 2);
      const last = double.requests.filter((r) => r.path.includes("/referrers/")).at(-1)!;
      assert(!last.responseHeaders.has("oci-filters-applied"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { tools: ["docker-registry", "openssl"] },
);

Deno.test("findCosignTags: a HEAD answer without Docker-Content-Digest is completed by one GET of that tag", async () => {
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: ENTRY,
    layers: [],
  }));
  const asked: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const url = new URL(request.url);
    asked.push(`${request.method} ${url.pathname.slice(url.pathname.lastIndexOf("."))}`);
    if (!url.pathname.endsWith(".sig")) return new Response(null, { status: 404 });
    // Some registries leave the digest out of HEAD answers, and Content-Type with it.
    return new Response(request.method === "HEAD" ? null : manifest, { status: 200 });
  });
  try {
    using opened = openClient(`http://127.0.0.1:${server.addr.port}`, "app");
    const found = await findCosignTags(opened.client, SUBJECT);
    assertEquals(found, [{
      tag: `sha256-${"5".repeat(64)}.sig`,
      suffix: "sig",
      digest: sha256Digest(manifest),
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      size: manifest.length,
    }]);
    assertEquals(asked.sort(), ["GET .sig", "HEAD .att", "HEAD .sbom", "HEAD .sig"]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("a 404 quoting NAME_UNKNOWN: the fallback tag is read, and the registry is not marked as lacking the API", async () => {
  await using server = fake(() =>
    new Response(JSON.stringify({ errors: [{ code: "NAME_UNKNOWN", message: "no such repo" }] }), {
      status: 404,
      headers: { "Content-Type": "application/json" },
    })
  );
  using opened = openClient(server.url, "app");
  const support = new ReferrersSupport();
  const listing = await listReferrers(opened.client, SUBJECT, { support });
  assertEquals(listing.found, "fallback-tag");
  assertEquals(listing.descriptors, []);
  assertEquals(support.get(opened.client), undefined);
  await listReferrers(opened.client, SUBJECT, { support });
  assertEquals(server.asked.filter((p) => p.includes("/referrers/")).length, 2);
});

Deno.test("a bare 404 (a router without the route) marks the registry as lacking the API", async () => {
  await using server = fake(() => new Response("404 page not found\n", { status: 404 }));
  using opened = openClient(server.url, "app");
  const support = new ReferrersSupport();
  await listReferrers(opened.client, SUBJECT, { support });
  assertEquals(support.get(opened.client), false);
  await listReferrers(opened.client, SUBJECT, { support });
  assertEquals(server.asked.filter((p) => p.includes("/referrers/")).length, 1);
});

Deno.test("405 or 501 from a router without the route: no API, once per registry, no retry", async () => {
  for (const status of [405, 501]) {
    await using server = fake(() => new Response("no such route\n", { status }));
    using opened = openClient(server.url, "app");
    const support = new ReferrersSupport();
    const listing = await listReferrers(opened.client, SUBJECT, { support });
    assertEquals([listing.found, support.get(opened.client)], ["fallback-tag", false]);
    assertEquals(server.asked.filter((p) => p.includes("/referrers/")).length, 1, `${status}`);
  }
});

Deno.test("a later page answering 404 is an error, not a registry without the API", async () => {
  await using server = fake((url) =>
    url.searchParams.has("page")
      ? new Response("gone\n", { status: 404 })
      : index([ENTRY], { Link: `<${url.pathname}?page=2>; rel="next"` })
  );
  using opened = openClient(server.url, "app");
  const support = new ReferrersSupport();
  await assertRejects(
    () => listReferrers(opened.client, SUBJECT, { support }),
    ReferrersError,
    "page 2 answered 404",
  );
  assertEquals(support.get(opened.client), undefined);
});

Deno.test("other refusals of the API are the registry's errors, not a missing API", async () => {
  await using server = fake(() => new Response("bad\n", { status: 400 }));
  using opened = openClient(server.url, "app");
  const support = new ReferrersSupport();
  const error = await assertRejects(() => listReferrers(opened.client, SUBJECT, { support }));
  assert(error instanceof RegistryError, String(error));
  assertEquals([error.status, support.get(opened.client)], [400, undefined]);
});

import { findReferrers, type ReferrerLookup } from "../../src/pull/find_referrers.ts";
import { Limiter } from "../../src/pool.ts";
import type { ProgressEvent } from "../../src/progress/events.ts";
import type { RegistryClient } from "../../src/registry/client.ts";
import { ReferrersError } from "../../src/registry/referrers_error.ts";
import { RegistryError } from "../../src/registry/registry_error.ts";
import { assertEquals, assertRejects } from "../helpers/assert.ts";

const SUBJECT = `sha256:${"a".repeat(64)}`;
// Never asked for anything: no referrer is listed, so no manifest is fetched.
const client = {} as RegistryClient;

function run(lookup: ReferrerLookup, events: ProgressEvent[]) {
  return findReferrers(client, [SUBJECT], {
    lookup,
    name: "127.0.0.1:5000/app:1",
    limiter: new Limiter(4),
    sink: (event) => events.push(event),
  });
}

Deno.test("findReferrers: a registry that refuses to list referrers costs them, with a warning", async () => {
  const events: ProgressEvent[] = [];
  const found = await run({
    list: () =>
      Promise.reject(
        new ReferrersError(
          {
            action: "list referrers",
            registry: "127.0.0.1:5000",
            repository: "app",
            subject: SUBJECT,
          },
          "the fallback tag holds a manifest, not an index",
        ),
      ),
    cosignTags: () => Promise.resolve([]),
  }, events);
  assertEquals(found, { referrers: [], lists: [] });
  assertEquals(events.map((e) => e.type === "notice" && [e.kind, e.level, e.digest]), [
    ["referrers-left-behind", "warning", SUBJECT],
  ]);
});

Deno.test("findReferrers: nothing refers to the image: no list, no events", async () => {
  const events: ProgressEvent[] = [];
  const asked: string[] = [];
  const found = await run({
    list: (_, subject) => {
      asked.push(`list ${subject}`);
      return Promise.resolve({ descriptors: [], bytes: new TextEncoder().encode("{}") });
    },
    cosignTags: (_, subject) => {
      asked.push(`tags ${subject}`);
      return Promise.resolve([]);
    },
  }, events);
  assertEquals(found, { referrers: [], lists: [] });
  assertEquals(asked.sort(), [`list ${SUBJECT}`, `tags ${SUBJECT}`]);
  assertEquals(events, []);
});

Deno.test("findReferrers: a failure that is not the registry's fails the pull", async () => {
  await assertRejects(
    () =>
      run({
        list: () => Promise.resolve({ descriptors: [], bytes: undefined }),
        cosignTags: () => Promise.reject(new TypeError("a bug")),
      }, []),
    TypeError,
    "a bug",
  );
});

Deno.test("findReferrers: a listed referrer the registry no longer has is left out with a notice", async () => {
  const gone = `sha256:${"0".repeat(64)}`;
  const asked: string[] = [];
  // The registry answers every manifest GET with 404 MANIFEST_UNKNOWN.
  const registry = {
    repository: "app",
    url: (path: string) => new URL(`http://127.0.0.1:5000/v2/app/${path}`),
    request: (spec: { method: string; url: URL }) => {
      asked.push(`${spec.method} ${spec.url.pathname}`);
      return Promise.reject(
        new RegistryError({
          method: spec.method,
          url: spec.url.href,
          status: 404,
          codes: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }],
        }),
      );
    },
  } as unknown as RegistryClient;
  const events: ProgressEvent[] = [];
  const found = await findReferrers(registry, [SUBJECT], {
    lookup: {
      list: () =>
        Promise.resolve({
          descriptors: [{
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            digest: gone,
            size: 100,
            artifactType: "application/spdx+json",
          }],
          bytes: undefined,
        }),
      cosignTags: () => Promise.resolve([]),
    },
    name: "127.0.0.1:5000/app:1",
    limiter: new Limiter(4),
    sink: (event) => events.push(event),
  });
  assertEquals(asked, [`GET /v2/app/manifests/${gone}`]);
  assertEquals(found.referrers, []);
  assertEquals(events.map((e) => e.type === "notice" && [e.kind, e.digest]), [
    ["referrers-left-behind", gone],
  ]);
});

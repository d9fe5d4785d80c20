/**
 * The fallback tag written by two clients at once: another tool's PUT lands between our read
 * and our PUT (a registry honouring `If-Match` answers 412, and we read and merge again), or
 * after our PUT (we notice our entry gone when we read it back, and put it again). The other
 * writer is played by a `beforeRequest` hook of the referrers double (in its `absent` mode:
 * distribution without the API), which writes the tag straight to the registry behind it.
 */
import { fallbackTag, type ReferrerDescriptor } from "../../src/image/referrer.ts";
import { addToFallbackIndex, MAX_ROUNDS } from "../../src/registry/referrers_fallback.ts";
import { ReferrersError } from "../../src/registry/referrers_error.ts";
import { assertEquals, assertRejects } from "../helpers/assert.ts";
import { type ReferrersRegistry, startReferrersRegistry } from "../helpers/referrers_registry.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import { openClient, type PushedManifest, pushSmallImage } from "../helpers/signed_fixtures.ts";

const INDEX = "application/vnd.oci.image.index.v1+json";

function entry(manifest: PushedManifest, artifactType: string): ReferrerDescriptor {
  return {
    mediaType: manifest.mediaType,
    digest: manifest.digest,
    size: manifest.size,
    artifactType,
  };
}

/** Another tool writes the fallback tag of `subject` directly to the registry. */
async function writeTheirs(
  double: ReferrersRegistry,
  subject: string,
  entries: ReferrerDescriptor[],
): Promise<void> {
  const response = await fetch(
    `${double.upstream}/v2/app/manifests/${fallbackTag(subject)}`,
    {
      method: "PUT",
      headers: { "Content-Type": INDEX },
      body: JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: entries }),
    },
  );
  await response.body?.cancel();
  if (response.status !== 201) {
    throw new Error(`The other writer's PUT answered ${response.status}`);
  }
}

/** `METHOD status` of the requests for the fallback tag, in order. */
function tagRequests(double: ReferrersRegistry, subject: string): string[] {
  return double.requests
    .filter((r) => r.path.endsWith(`/manifests/${fallbackTag(subject)}`))
    .map((r) => `${r.method} ${r.status}`);
}

integrationTest(
  "a tag moved between our read and our PUT: If-Match gets 412, and we merge again",
  async () => {
    let interleave: (() => Promise<void>) | undefined;
    await using double = await startReferrersRegistry({
      route: "absent",
      honourIfMatch: true,
      beforeRequest: async ({ method, path }) => {
        if (interleave && method === "PUT" && path.includes("/manifests/sha256-")) {
          const write = interleave;
          interleave = undefined;
          await write();
        }
      },
    });
    using opened = openClient(double.url, "app");
    const image = await pushSmallImage(opened.client, "1");
    const first = entry(await pushSmallImage(opened.client, "first"), "application/x-first");
    const theirs = entry(await pushSmallImage(opened.client, "theirs"), "application/x-theirs");
    const ours = entry(await pushSmallImage(opened.client, "ours"), "application/x-ours");
    await addToFallbackIndex(opened.client, image.digest, [first]);
    interleave = () => writeTheirs(double, image.digest, [first, theirs]);
    const before = double.requests.length;

    const update = await addToFallbackIndex(opened.client, image.digest, [ours]);
    assertEquals(update.added, [ours]);
    const index = (await double.registry!.fetchManifest("app", fallbackTag(image.digest))).json;
    assertEquals(
      (index["manifests"] as ReferrerDescriptor[]).map((d) => d.artifactType),
      ["application/x-first", "application/x-theirs", "application/x-ours"],
    );
    const asked = double.requests.slice(before).filter((r) => r.path.includes("/manifests/sha256-"))
      .map((r) => `${r.method} ${r.status}`);
    assertEquals(asked, ["GET 200", "PUT 412", "GET 200", "PUT 201", "GET 200"]);
  },
  { tools: ["docker-registry"] },
);

integrationTest(
  "our PUT overwritten by another writer's: noticed on reading back, and put again",
  async () => {
    let overwrite: (() => Promise<void>) | undefined;
    let puts = 0;
    await using double = await startReferrersRegistry({
      route: "absent",
      beforeRequest: async ({ method, path }) => {
        if (!path.includes("/manifests/sha256-")) return;
        if (method === "PUT") puts++;
        // The read-back that follows our first PUT: the other writer's PUT landed just before.
        if (overwrite && method === "GET" && puts === 1) {
          const write = overwrite;
          overwrite = undefined;
          await write();
        }
      },
    });
    using opened = openClient(double.url, "app");
    const image = await pushSmallImage(opened.client, "1");
    const theirs = entry(await pushSmallImage(opened.client, "theirs"), "application/x-theirs");
    const ours = entry(await pushSmallImage(opened.client, "ours"), "application/x-ours");
    overwrite = () => writeTheirs(double, image.digest, [theirs]);

    const update = await addToFallbackIndex(opened.client, image.digest, [ours]);
    assertEquals(update.changed, true);
    const index = (await double.registry!.fetchManifest("app", fallbackTag(image.digest))).json;
    assertEquals(
      (index["manifests"] as ReferrerDescriptor[]).map((d) => d.artifactType),
      ["application/x-theirs", "application/x-ours"],
    );
    assertEquals(tagRequests(double, image.digest), [
      "GET 404",
      "PUT 201",
      "GET 200",
      "PUT 201",
      "GET 200",
    ]);
  },
  { tools: ["docker-registry"] },
);

integrationTest(
  "a tag that changes under every PUT: a ReferrersError after MAX_ROUNDS puts",
  async () => {
    await using double = await startReferrersRegistry({ route: "absent", honourIfMatch: true });
    using opened = openClient(double.url, "app");
    const image = await pushSmallImage(opened.client, "1");
    const theirs = entry(await pushSmallImage(opened.client, "theirs"), "application/x-theirs");
    const ours = entry(await pushSmallImage(opened.client, "ours"), "application/x-ours");
    await writeTheirs(double, image.digest, [theirs]);
    // Every PUT of ours finds the tag rewritten (a different index each time).
    let round = 0;
    await using moving = await startReferrersRegistry({
      upstream: double.upstream,
      route: "absent",
      honourIfMatch: true,
      beforeRequest: async ({ method, path }) => {
        if (method === "PUT" && path.includes("/manifests/sha256-")) {
          round++;
          await writeTheirs(
            double,
            image.digest,
            round % 2 === 0 ? [theirs] : [{ ...theirs, annotations: { round: String(round) } }],
          );
        }
      },
    });
    using viaMoving = openClient(moving.url, "app");
    const error = await assertRejects(
      () => addToFallbackIndex(viaMoving.client, image.digest, [ours]),
      ReferrersError,
      `changed under us ${MAX_ROUNDS} times`,
    );
    assertEquals(error.subject, image.digest);
    assertEquals(round, MAX_ROUNDS);
  },
  { tools: ["docker-registry"] },
);

integrationTest(
  "updates of one tag from this process take turns: five at once, all five listed",
  async () => {
    await using registry = await startRegistry();
    using opened = openClient(registry.url, "app");
    const image = await pushSmallImage(opened.client, "1");
    const entries: ReferrerDescriptor[] = [];
    for (let i = 0; i < 5; i++) {
      entries.push(entry(await pushSmallImage(opened.client, `r${i}`), `application/x-${i}`));
    }
    const updates = await Promise.all(
      entries.map((e) => addToFallbackIndex(opened.client, image.digest, [e])),
    );
    assertEquals(updates.map((u) => u.added), entries.map((e) => [e]));
    const index = (await registry.fetchManifest("app", fallbackTag(image.digest))).json;
    assertEquals(index["manifests"], entries);
    const puts = (await registry.requests()).filter((r) =>
      r.method === "PUT" && r.path.endsWith(fallbackTag(image.digest))
    );
    assertEquals(puts.length, 5, "one PUT each: no lost update to repair");
  },
  { tools: ["docker-registry"] },
);

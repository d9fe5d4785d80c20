/**
 * Listing and recording referrers against the real registry (distribution, which has no
 * referrers API: the fallback tag) and against the referrers double in front of it (the API
 * as the distribution spec words it). What was asked is read from the registry's access log
 * and the double's request list.
 */
import {
  fallbackTag,
  isAttestationEntry,
  type ReferrerDescriptor,
} from "../../src/image/referrer.ts";
import { putManifestAnswer } from "../../src/registry/manifests.ts";
import { addToFallbackIndex, readFallbackIndex } from "../../src/registry/referrers_fallback.ts";
import {
  listReferrers,
  referrersApiAvailable,
  ReferrersSupport,
} from "../../src/registry/referrers.ts";
import { ReferrersError } from "../../src/registry/referrers_error.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { sha256Digest } from "../helpers/random.ts";
import { startReferrersRegistry } from "../helpers/referrers_registry.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import {
  FixtureType,
  makeSigningKey,
  openClient,
  pushBuildxIndex,
  pushSbomReferrer,
  pushSignatureReferrer,
  pushSmallImage,
} from "../helpers/signed_fixtures.ts";

const TOOLS = ["docker-registry", "openssl"];
/** Another tool's entry: its own fields, and one we don't know. */
function otherToolEntry(manifest: { digest: string; size: number }): Record<string, unknown> {
  return {
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: manifest.digest,
    size: manifest.size,
    artifactType: "application/vnd.example.other-tool",
    annotations: { "com.example.written-by": "another tool" },
    "com.example.extra": { kept: true },
  };
}

integrationTest(
  "plain distribution: no API, so the fallback tag; a 404 there means none",
  async () => {
    await using registry = await startRegistry();
    using opened = openClient(registry.url, "app");
    const support = new ReferrersSupport();
    const image = await pushSmallImage(opened.client, "1");

    const listing = await listReferrers(opened.client, image.digest, { support });
    assertEquals(listing.found, "fallback-tag");
    assertEquals(listing.tag, fallbackTag(image.digest));
    assertEquals(listing.descriptors, []);
    assertEquals(listing.index, undefined);
    assertEquals(support.get(opened.client), false);

    // The registry lacking the API is remembered: the second listing asks the tag alone.
    await listReferrers(opened.client, image.digest, { support });
    const asked = (await registry.requests()).filter((r) => r.method === "GET" && r.path !== "/v2/")
      .map((r) =>
        `${r.path.replace(image.digest, "<d>").replace(image.digest.slice(7), "<hex>")} ${r.status}`
      );
    assertEquals(asked, [
      "/v2/app/referrers/<d> 404",
      "/v2/app/manifests/sha256-<hex> 404",
      "/v2/app/manifests/sha256-<hex> 404",
    ]);
  },
  { tools: TOOLS },
);

integrationTest(
  "plain distribution: an SBOM and its signature go into fallback indexes, listed with artifactType and annotations",
  async () => {
    await using registry = await startRegistry();
    using opened = openClient(registry.url, "app");
    const support = new ReferrersSupport();
    const dir = await Deno.makeTempDir({ prefix: "dip-referrers-" });
    try {
      const image = await pushSmallImage(opened.client, "1");
      const sbom = await pushSbomReferrer(opened.client, image, { support });
      const key = await makeSigningKey(dir);
      const sbomSignature = await pushSignatureReferrer(opened.client, sbom.manifest, key, {
        support,
      });
      assertEquals(sbom.recordedBy, "fallback-tag");
      assertEquals(sbomSignature.recordedBy, "fallback-tag");
      const tags = await registry.listTags("app");
      assertEquals(
        tags,
        ["1", fallbackTag(image.digest), fallbackTag(sbom.manifest.digest)].sort(),
      );

      const listing = await listReferrers(opened.client, image.digest, { support });
      assertEquals(listing.found, "fallback-tag");
      assertEquals(listing.descriptors, [{
        mediaType: FixtureType.ociManifest,
        digest: sbom.manifest.digest,
        size: sbom.manifest.size,
        artifactType: "application/spdx+json",
        annotations: { "org.opencontainers.image.created": "2026-01-01T00:00:00Z" },
      }]);
      // The index exactly as the registry serves it, for the archive to keep byte for byte.
      const served = await registry.fetchManifest("app", fallbackTag(image.digest));
      assertEquals(listing.index?.bytes, served.bytes);
      assertEquals(listing.index?.digest, served.digest);

      const ofSbom = await listReferrers(opened.client, sbom.manifest.digest, { support });
      assertEquals(ofSbom.descriptors.map((d) => d.digest), [sbomSignature.manifest.digest]);
      assertEquals(ofSbom.descriptors[0]?.artifactType, FixtureType.cosignArtifactSignature);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { tools: TOOLS },
);

integrationTest("fallback tag: an artifactType filter is applied by the client", async () => {
  await using registry = await startRegistry();
  using opened = openClient(registry.url, "app");
  const support = new ReferrersSupport();
  const dir = await Deno.makeTempDir({ prefix: "dip-referrers-" });
  try {
    const image = await pushSmallImage(opened.client, "1");
    const sbom = await pushSbomReferrer(opened.client, image, { support });
    const signature = await pushSignatureReferrer(opened.client, image, await makeSigningKey(dir), {
      support,
    });
    const all = await listReferrers(opened.client, image.digest, { support });
    assertEquals(all.descriptors.map((d) => d.digest), [
      sbom.manifest.digest,
      signature.manifest.digest,
    ]);
    const filtered = await listReferrers(opened.client, image.digest, {
      support,
      artifactType: FixtureType.spdx,
    });
    assertEquals(filtered.descriptors.map((d) => d.digest), [sbom.manifest.digest]);
    assertEquals(filtered.filteredBy, "client");
    // The index is still the tag's, whole.
    assertEquals(filtered.index?.bytes, all.index?.bytes);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { tools: TOOLS });

integrationTest(
  "addToFallbackIndex keeps another tool's entries and fields, and writes nothing when nothing is missing",
  async () => {
    await using registry = await startRegistry();
    using opened = openClient(registry.url, "app");
    const image = await pushSmallImage(opened.client, "1");
    const tag = fallbackTag(image.digest);
    // distribution refuses an index naming manifests it lacks: both entries are real ones.
    const other = await pushSmallImage(opened.client, "other");
    const ourManifest = await pushSmallImage(opened.client, "ours");
    const theirs = {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [otherToolEntry(other)],
      annotations: { "com.example.index": "theirs" },
    };
    await putManifestAnswer(
      opened.client,
      tag,
      "application/vnd.oci.image.index.v1+json",
      new TextEncoder().encode(JSON.stringify(theirs)),
    );
    const ours: ReferrerDescriptor = {
      mediaType: FixtureType.ociManifest,
      digest: ourManifest.digest,
      size: ourManifest.size,
      artifactType: FixtureType.spdx,
    };

    const update = await addToFallbackIndex(opened.client, image.digest, [ours, ours]);
    assertEquals(update.changed, true);
    assertEquals(update.added, [ours]);
    const after = await registry.fetchManifest("app", tag);
    assertEquals(update.digest, after.digest);
    assertEquals(after.json, { ...theirs, manifests: [otherToolEntry(other), ours] });

    const before = (await registry.requests()).length;
    const again = await addToFallbackIndex(opened.client, image.digest, [ours]);
    assertEquals(again.changed, false);
    assertEquals(again.added, []);
    assertEquals(again.digest, after.digest);
    const puts = (await registry.requests()).slice(before).filter((r) => r.method === "PUT");
    assertEquals(puts, [], "nothing missing, nothing written");
  },
  { tools: TOOLS },
);

integrationTest(
  "addToFallbackIndex: a fallback tag holding an image is neither read as referrers nor overwritten",
  async () => {
    await using registry = await startRegistry();
    using opened = openClient(registry.url, "app");
    const image = await pushSmallImage(opened.client, "1");
    const tag = fallbackTag(image.digest);
    await putManifestAnswer(opened.client, tag, image.mediaType, image.bytes);
    const support = new ReferrersSupport();
    support.set(opened.client, false);

    const error = await assertRejects(
      () =>
        addToFallbackIndex(opened.client, image.digest, [{
          mediaType: image.mediaType,
          digest: image.digest,
          size: image.size,
        }]),
      ReferrersError,
      "not an OCI index",
    );
    assertEquals(error.subject, image.digest);
    assertEquals(error.repository, "app");
    await assertRejects(
      () => listReferrers(opened.client, image.digest, { support }),
      ReferrersError,
    );
    assertEquals((await registry.fetchManifest("app", tag)).digest, image.digest);
  },
  { tools: TOOLS },
);

integrationTest(
  "readFallbackIndex: a repository that does not exist has no fallback tag",
  async () => {
    await using registry = await startRegistry();
    using opened = openClient(registry.url, "nothing/here");
    assertEquals(await readFallbackIndex(opened.client, `sha256:${"1".repeat(64)}`), undefined);
  },
  { tools: TOOLS },
);

integrationTest(
  "referrersApiAvailable: no on distribution (404) and behind an HTML page, yes on the double; remembered",
  async () => {
    await using api = await startReferrersRegistry();
    await using html = await startReferrersRegistry({ upstream: api.upstream, route: "html" });
    const support = new ReferrersSupport();
    const digest = `sha256:${"2".repeat(64)}`;
    {
      using plain = openClient(api.upstream, "app");
      assertEquals(await referrersApiAvailable(plain.client, digest, { support }), false);
    }
    {
      using viaHtml = openClient(html.url, "app");
      assertEquals(await referrersApiAvailable(viaHtml.client, digest, { support }), false);
      // An HTML page is not an index: listing goes to the fallback tag.
      const listing = await listReferrers(viaHtml.client, digest, {
        support: new ReferrersSupport(),
      });
      assertEquals(listing.found, "fallback-tag");
    }
    {
      using viaApi = openClient(api.url, "app");
      assertEquals(await referrersApiAvailable(viaApi.client, digest, { support }), true);
      const asked = api.requests.length;
      assertEquals(await referrersApiAvailable(viaApi.client, digest, { support }), true);
      assertEquals(api.requests.length, asked, "the answer is remembered");
    }
  },
  { tools: TOOLS },
);

integrationTest(
  "double: a referrer's PUT is answered with OCI-Subject, and listed by the API, not the fallback tag",
  async () => {
    await using double = await startReferrersRegistry();
    using opened = openClient(double.url, "app");
    const support = new ReferrersSupport();
    const image = await pushSmallImage(opened.client, "1");

    // An image manifest names no subject: no OCI-Subject.
    const plain = await putManifestAnswer(opened.client, "2", image.mediaType, image.bytes);
    assertEquals(plain.ociSubject, undefined);

    const sbom = await pushSbomReferrer(opened.client, image, { support });
    assertEquals(sbom.recordedBy, "api");
    assertEquals(support.get(opened.client), true);
    const put = double.requests.find((r) =>
      r.method === "PUT" && r.path.endsWith(sbom.manifest.digest)
    );
    assertEquals(put?.responseHeaders.get("oci-subject"), image.digest);
    // The registry lists it: no fallback tag written.
    assertEquals(await double.registry!.listTags("app"), ["1", "2"]);

    const listing = await listReferrers(opened.client, image.digest, { support });
    assertEquals(listing.found, "api");
    assertEquals(listing.descriptors, [sbom.descriptor]);
    assertEquals(listing.paged, false);
    const index = JSON.parse(new TextDecoder().decode(listing.index!.bytes));
    assertEquals(index.mediaType, "application/vnd.oci.image.index.v1+json");
    assertEquals(listing.index!.digest, sha256Digest(listing.index!.bytes));

    // Nothing refers to the SBOM: an empty index, not a 404.
    const none = await listReferrers(opened.client, sbom.manifest.digest, { support });
    assertEquals(none.found, "api");
    assertEquals(none.descriptors, []);
    assert(none.index !== undefined);
    const gets = double.requests.filter((r) =>
      r.method === "GET" && r.path.includes("/referrers/")
    );
    assertEquals(gets.map((r) => r.status), [200, 200]);
    assert(
      !double.requests.some((r) => r.path.includes(`/manifests/${fallbackTag(image.digest)}`)),
    );
  },
  { tools: TOOLS },
);

integrationTest(
  "double: ?artifactType= is filtered by the registry (OCI-Filters-Applied), and pages are followed",
  async () => {
    await using double = await startReferrersRegistry({ pageSize: 1 });
    using opened = openClient(double.url, "app");
    const support = new ReferrersSupport();
    const dir = await Deno.makeTempDir({ prefix: "dip-referrers-" });
    try {
      const image = await pushSmallImage(opened.client, "1");
      const sbom = await pushSbomReferrer(opened.client, image, { support });
      const signature = await pushSignatureReferrer(
        opened.client,
        image,
        await makeSigningKey(dir),
        {
          support,
        },
      );

      const filtered = await listReferrers(opened.client, image.digest, {
        support,
        artifactType: FixtureType.spdx,
      });
      assertEquals(filtered.filteredBy, "registry");
      assertEquals(filtered.descriptors, [sbom.descriptor]);
      const asked = double.requests.filter((r) => r.path.includes("/referrers/")).at(-1)!;
      assertEquals(new URLSearchParams(asked.search).get("artifactType"), FixtureType.spdx);
      assertEquals(asked.responseHeaders.get("oci-filters-applied"), "artifactType");

      // Two referrers, one a page: both pages are read, and one index lists them.
      const all = await listReferrers(opened.client, image.digest, { support });
      assertEquals(all.paged, true);
      assertEquals(all.descriptors, [sbom.descriptor, signature.descriptor]);
      assertEquals(JSON.parse(new TextDecoder().decode(all.index!.bytes)).manifests.length, 2);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { tools: TOOLS },
);

integrationTest(
  "a registry remembered as lacking the API is asked nothing but the tag",
  async () => {
    await using double = await startReferrersRegistry();
    using opened = openClient(double.url, "app");
    const support = new ReferrersSupport();
    support.set(opened.client, false);
    const image = await pushSmallImage(opened.client, "1");
    const listing = await listReferrers(opened.client, image.digest, { support });
    assertEquals(listing.found, "fallback-tag");
    assert(!double.requests.some((r) => r.path.includes("/referrers/")));
  },
  { tools: TOOLS },
);

integrationTest(
  "the buildx fixture: two platforms with uncompressed layers, an attestation manifest for each",
  async () => {
    await using registry = await startRegistry();
    using opened = openClient(registry.url, "multi");
    const built = await pushBuildxIndex(opened.client, "1");
    const index = await registry.fetchManifest("multi", "1");
    assertEquals(index.digest, built.index.digest);
    const entries = index.json["manifests"] as {
      digest: string;
      platform: { architecture: string; os: string };
      annotations?: Record<string, string>;
    }[];
    const platforms = entries.filter((e) => !isAttestationEntry(e));
    const attestations = entries.filter((e) => isAttestationEntry(e));
    assertEquals(platforms.map((e) => `${e.platform.os}/${e.platform.architecture}`), [
      "linux/amd64",
      "linux/arm64",
    ]);
    assertEquals(attestations.map((e) => e.platform), [
      { architecture: "unknown", os: "unknown" },
      { architecture: "unknown", os: "unknown" },
    ]);
    assertEquals(
      attestations.map((e) => e.annotations?.["vnd.docker.reference.digest"]),
      platforms.map((e) => e.digest),
    );
    for (const platform of built.platforms) {
      const layers = (await registry.fetchManifest("multi", platform.digest)).json["layers"] as {
        mediaType: string;
      }[];
      assertEquals(layers.map((l) => l.mediaType), ["application/vnd.oci.image.layer.v1.tar"]);
    }
    for (const attestation of built.attestations) {
      const layers = (await registry.fetchManifest("multi", attestation.digest)).json["layers"] as {
        mediaType: string;
      }[];
      assertEquals(layers.map((l) => l.mediaType), [FixtureType.inToto]);
    }
    // buildx attestations travel inside the index: they are not referrers of the platforms.
    const listing = await listReferrers(opened.client, built.platforms[0]!.digest, {
      support: new ReferrersSupport(),
    });
    assertEquals(listing.descriptors, []);
  },
  { tools: TOOLS },
);

integrationTest(
  "addToFallbackIndex drops only another tool's entry whose manifest was deleted, which the registry refuses to keep",
  async () => {
    await using registry = await startRegistry();
    using opened = openClient(registry.url, "app");
    const image = await pushSmallImage(opened.client, "1");
    const deleted = await pushSmallImage(opened.client, "deleted");
    const kept = await pushSmallImage(opened.client, "kept");
    const ourManifest = await pushSmallImage(opened.client, "ours");
    const theirs = {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [otherToolEntry(deleted), otherToolEntry(kept)],
    };
    await putManifestAnswer(
      opened.client,
      fallbackTag(image.digest),
      "application/vnd.oci.image.index.v1+json",
      new TextEncoder().encode(JSON.stringify(theirs)),
    );
    const removal = await registry.fetch(`${registry.url}/v2/app/manifests/${deleted.digest}`, {
      method: "DELETE",
    });
    await removal.body?.cancel();
    assertEquals(removal.status, 202);

    const ours = {
      mediaType: ourManifest.mediaType,
      digest: ourManifest.digest,
      size: ourManifest.size,
    };
    const update = await addToFallbackIndex(opened.client, image.digest, [ours]);
    assertEquals(update.dropped, [deleted.digest]);
    const after = await registry.fetchManifest("app", fallbackTag(image.digest));
    assertEquals(after.json["manifests"], [otherToolEntry(kept), ours]);
  },
  { tools: TOOLS },
);

integrationTest(
  "addToFallbackIndex: a referrer not pushed yet is a ReferrersError saying so",
  async () => {
    await using registry = await startRegistry();
    using opened = openClient(registry.url, "app");
    const image = await pushSmallImage(opened.client, "1");
    const missing = {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: `sha256:${"9".repeat(64)}`,
      size: 10,
    };
    await assertRejects(
      () => addToFallbackIndex(opened.client, image.digest, [missing]),
      ReferrersError,
      `lacks referrer ${missing.digest}: push it before listing it`,
    );
    assertEquals(await registry.listTags("app"), ["1"]);
  },
  { tools: TOOLS },
);

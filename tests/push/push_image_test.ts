/**
 * One image's push against the real registry: the walk over its graph, and the one place
 * digests move when layers are compressed on the way.
 */
import { pushImage } from "../../src/push/push_image.ts";
import { ATTESTATION_DIGEST_ANNOTATION, isAttestationEntry } from "../../src/image/referrer.ts";
import { assert, assertEquals, assertNotEquals } from "../helpers/assert.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import { attestationItem, indexNode } from "./_multi_arch_fixtures.ts";
import { clientFor, defaultPush, uncompressedImage } from "./_push_fixtures.ts";

type Entry = { digest: string; annotations?: Record<string, string> };

/** A buildx-style index: two platforms with uncompressed layers, each with its attestation. */
function buildxIndex() {
  const amd64 = uncompressedImage({ os: "linux", architecture: "amd64" });
  const arm64 = uncompressedImage({ os: "linux", architecture: "arm64" });
  const index = indexNode([
    { node: amd64, platform: { os: "linux", architecture: "amd64" } },
    { node: arm64, platform: { os: "linux", architecture: "arm64" } },
    attestationItem(amd64),
    attestationItem(arm64),
  ]);
  return { amd64, arm64, index };
}

/** The pushed index's attestation entries and platform digests; each named manifest exists. */
async function attestationsOf(
  registry: {
    fetchManifest(
      repo: string,
      ref: string,
    ): Promise<{ digest: string; json: Record<string, unknown> }>;
  },
  digest: string,
): Promise<{ named: string[]; platforms: string[] }> {
  const pushed = await registry.fetchManifest("app", "1");
  assertEquals(pushed.digest, digest);
  const entries = pushed.json.manifests as Entry[];
  const attestations = entries.filter((e) => isAttestationEntry(e));
  const platforms = entries.filter((e) => !isAttestationEntry(e)).map((e) => e.digest);
  assertEquals(attestations.length, 2);
  assertEquals(platforms.length, 2);
  const named = attestations.map((e) => e.annotations![ATTESTATION_DIGEST_ANNOTATION]!);
  for (const name of named) {
    assertEquals((await registry.fetchManifest("app", name)).digest, name);
  }
  return { named, platforms };
}

integrationTest(
  "a default push of a buildx index with uncompressed layers keeps them as stored: every attestation names a platform manifest the repository has, under its digest",
  async () => {
    await using registry = await startRegistry();
    const { amd64, arm64, index } = buildxIndex();
    const { client, transport } = clientFor(registry.host, "app");
    const notices: string[] = [];
    try {
      const result = await pushImage(client, { names: [], root: index, notes: [] }, {
        tags: ["1"],
      }, defaultPush({ sink: (e) => e.type === "notice" && notices.push(e.kind) }));
      // The in-toto statements inside name these digests: compressing would leave them stale.
      assertEquals(result.compressed.count, 0);
      assertEquals(result.digest, index.digest);
      assertEquals(notices, ["kept-as-stored-for-referrers"]);
      const { named, platforms } = await attestationsOf(registry, result.digest);
      assertEquals(platforms, [amd64.digest, arm64.digest]);
      assertEquals(named, platforms, "each attestation names its platform's manifest");
    } finally {
      transport.close();
    }
  },
);

integrationTest(
  "an explicit compression of a buildx index re-points its attestations to the platforms' new digests",
  async () => {
    await using registry = await startRegistry();
    const { amd64, arm64, index } = buildxIndex();
    const { client, transport } = clientFor(registry.host, "app");
    try {
      const result = await pushImage(client, { names: [], root: index, notes: [] }, {
        tags: ["1"],
      }, defaultPush({ compressionExplicit: true }));
      // Compression changed both platform manifests, so the index too.
      assertEquals(result.compressed.count, 2);
      assertNotEquals(result.digest, index.digest);
      const { named, platforms } = await attestationsOf(registry, result.digest);
      for (const digest of platforms) {
        assert(![amd64.digest, arm64.digest].includes(digest), "platforms were rewritten");
      }
      assertEquals(named, platforms, "each attestation names its platform's pushed manifest");
    } finally {
      transport.close();
    }
  },
);

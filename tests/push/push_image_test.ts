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

integrationTest(
  "a default push of a buildx index with uncompressed layers re-points its attestations",
  async () => {
    await using registry = await startRegistry();
    const amd64 = uncompressedImage({ os: "linux", architecture: "amd64" });
    const arm64 = uncompressedImage({ os: "linux", architecture: "arm64" });
    const index = indexNode([
      { node: amd64, platform: { os: "linux", architecture: "amd64" } },
      { node: arm64, platform: { os: "linux", architecture: "arm64" } },
      attestationItem(amd64),
      attestationItem(arm64),
    ]);
    const { client, transport } = clientFor(registry.host, "app");
    try {
      const result = await pushImage(client, { names: [], root: index, notes: [] }, {
        tags: ["1"],
      }, defaultPush());
      // Compression changed both platform manifests, so the index too.
      assertEquals(result.compressed.count, 2);
      assertNotEquals(result.digest, index.digest);
      const pushed = await registry.fetchManifest("app", "1");
      assertEquals(pushed.digest, result.digest);
      const entries = pushed.json.manifests as Entry[];
      const attestations = entries.filter((e) => isAttestationEntry(e));
      const platforms = entries.filter((e) => !isAttestationEntry(e)).map((e) => e.digest);
      assertEquals(attestations.length, 2);
      assertEquals(platforms.length, 2);
      for (const digest of platforms) {
        assert(![amd64.digest, arm64.digest].includes(digest), "platforms were rewritten");
      }
      const named = attestations.map((e) => e.annotations![ATTESTATION_DIGEST_ANNOTATION]!);
      assertEquals(named, platforms, "each attestation names its platform's pushed manifest");
      for (const digest of named) {
        assertEquals((await registry.fetchManifest("app", digest)).digest, digest);
      }
    } finally {
      transport.close();
    }
  },
);

/**
 * The public `pull` reports what came along with an image: each referrer with its digest,
 * kind, artifact type and subject, and a `referrer-pulled` event for each; `referrers: false`
 * leaves them out.
 */
import { pull } from "../../mod.ts";
import type { ProgressEvent } from "../../src/progress/events.ts";
import { assertEquals } from "../helpers/assert.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import {
  makeSigningKey,
  openClient,
  pushCosignSignature,
  pushSbomReferrer,
  pushSignatureReferrer,
  pushSmallImage,
} from "../helpers/signed_fixtures.ts";
import { ReferrersSupport } from "../../src/registry/referrers.ts";

const env = (): string | undefined => undefined;

integrationTest("pull: the result lists each referrer; referrers: false leaves them", async () => {
  await using registry = await startRegistry();
  const dir = await Deno.makeTempDir({ prefix: "dip-api-pull-" });
  try {
    using opened = openClient(registry.url, "team/app");
    const support = new ReferrersSupport();
    const image = await pushSmallImage(opened.client, "1");
    const key = await makeSigningKey(dir);
    const signature = await pushCosignSignature(opened.client, image, key);
    const sbom = await pushSbomReferrer(opened.client, image, { support });
    const sbomSignature = await pushSignatureReferrer(opened.client, sbom.manifest, key, {
      support,
    });
    const source = `${registry.host}/team/app:1`;
    const events: ProgressEvent[] = [];
    const result = await pull({
      sources: [source],
      output: `${dir}/app.tar`,
      env,
      onProgress: (event) => events.push(event),
    });
    const expected = [
      {
        digest: sbom.manifest.digest,
        mediaType: sbom.manifest.mediaType,
        size: sbom.manifest.size,
        kind: "sbom",
        artifactType: "application/spdx+json",
        subject: image.digest,
      },
      {
        digest: sbomSignature.manifest.digest,
        mediaType: sbomSignature.manifest.mediaType,
        size: sbomSignature.manifest.size,
        kind: "signature",
        artifactType: sbomSignature.descriptor.artifactType!,
        subject: sbom.manifest.digest,
      },
      {
        digest: signature.manifest.digest,
        mediaType: signature.manifest.mediaType,
        size: signature.manifest.size,
        kind: "signature",
        artifactType: "application/vnd.oci.image.config.v1+json",
        subject: image.digest,
        tag: signature.tag,
      },
    ];
    assertEquals(result.images[0]!.referrers, expected);
    const pulled = events.filter((e) => e.type === "referrer-pulled");
    assertEquals(
      pulled.map((e) => e.digest).sort(),
      expected.map((r) => r.digest).sort(),
    );

    const bare = await pull({
      sources: [source],
      output: `${dir}/bare.tar`,
      env,
      referrers: false,
    });
    assertEquals(bare.images[0]!.referrers, []);
    assertEquals(bare.images[0]!.digest, image.digest);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { tools: ["docker-registry", "openssl"] });

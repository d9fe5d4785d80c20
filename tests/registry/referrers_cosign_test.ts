/**
 * cosign's older tags against the real registry: probed with HEAD only (Docker Hub counts
 * GETs against its rate limit), and the fixture's cosign-style signature, fetched back, is
 * one `openssl dgst -verify` accepts, and refuses once a byte changes.
 */
import { cosignTag, fallbackTag } from "../../src/image/referrer.ts";
import { findCosignTags } from "../../src/registry/referrers_cosign.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { sha256Digest } from "../helpers/random.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import { skopeo } from "../helpers/skopeo.ts";
import {
  buildSignedSet,
  FixtureType,
  makeSigningKey,
  openClient,
  pushCosignSignature,
  pushSmallImage,
  verifyCosignSignature,
  verifyPayload,
  writeSignedLayout,
} from "../helpers/signed_fixtures.ts";

const TOOLS = ["docker-registry", "openssl"];

integrationTest(
  "findCosignTags: HEAD of .sig, .att and .sbom, the ones there with digest, type, size",
  async () => {
    await using registry = await startRegistry();
    using opened = openClient(registry.url, "app");
    const dir = await Deno.makeTempDir({ prefix: "dip-cosign-" });
    try {
      const image = await pushSmallImage(opened.client, "1");
      assertEquals(await findCosignTags(opened.client, image.digest), []);

      const signature = await pushCosignSignature(opened.client, image, await makeSigningKey(dir));
      assertEquals(signature.tag, cosignTag(image.digest, "sig"));
      const before = (await registry.requests()).length;
      const found = await findCosignTags(opened.client, image.digest);
      assertEquals(found, [{
        tag: cosignTag(image.digest, "sig"),
        suffix: "sig",
        digest: signature.manifest.digest,
        mediaType: FixtureType.ociManifest,
        size: signature.manifest.size,
      }]);
      const asked = (await registry.requests()).slice(before)
        .filter((r) => r.path.startsWith("/v2/app/"))
        .map((r) => `${r.method} ${r.path.slice(r.path.lastIndexOf("/") + 1)} ${r.status}`)
        .sort();
      const hex = image.digest.slice("sha256:".length);
      assertEquals(asked, [
        `HEAD sha256-${hex}.att 404`,
        `HEAD sha256-${hex}.sbom 404`,
        `HEAD sha256-${hex}.sig 200`,
      ]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { tools: TOOLS },
);

integrationTest(
  "the fixture's cosign signature verifies with openssl after the trip, and not once a byte changes",
  async () => {
    await using registry = await startRegistry();
    using opened = openClient(registry.url, "app");
    const dir = await Deno.makeTempDir({ prefix: "dip-cosign-" });
    try {
      const key = await makeSigningKey(dir);
      const image = await pushSmallImage(opened.client, "1", { layerSizes: [32, 64] });
      const pushed = await pushCosignSignature(opened.client, image, key);

      // Back from the registry, as a pull would find it.
      const manifest = await registry.fetchManifest("app", pushed.tag);
      const layer = (manifest.json["layers"] as { digest: string; mediaType: string }[])[0]!;
      assertEquals(layer.mediaType, FixtureType.simpleSigning);
      const payload = await registry.fetchBlob("app", layer.digest);
      const named = JSON.parse(new TextDecoder().decode(payload)).critical.image;
      assertEquals(named["docker-manifest-digest"], image.digest);
      assert(await verifyCosignSignature(manifest.bytes, payload, image.digest, key.publicKeyPath));

      // One byte of the payload changed: its digest no longer matches the layer, and openssl
      // refuses the signature over it.
      const changed = payload.slice();
      changed[changed.length - 2] = changed[changed.length - 2]! ^ 0x01;
      assert(
        !(await verifyCosignSignature(manifest.bytes, changed, image.digest, key.publicKeyPath)),
      );
      assert(!(await verifyPayload(key.publicKeyPath, changed, pushed.signature)));
      // One byte of the signature changed.
      const raw = Uint8Array.from(atob(pushed.signature), (c) => c.charCodeAt(0));
      raw[raw.length - 1] = raw[raw.length - 1]! ^ 0x01;
      assert(!(await verifyPayload(key.publicKeyPath, payload, btoa(String.fromCharCode(...raw)))));
      // Another key's signature; and the signature of another subject.
      const stranger = await makeSigningKey(dir, "stranger");
      assert(
        !(await verifyCosignSignature(
          manifest.bytes,
          payload,
          image.digest,
          stranger.publicKeyPath,
        )),
      );
      assert(
        !(await verifyCosignSignature(
          manifest.bytes,
          payload,
          `sha256:${"0".repeat(64)}`,
          key.publicKeyPath,
        )),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { tools: TOOLS },
);

integrationTest(
  "the signed layout fixture: skopeo reads each named manifest, and the .sig copied to a registry verifies",
  async () => {
    await using registry = await startRegistry();
    const dir = await Deno.makeTempDir({ prefix: "dip-cosign-" });
    try {
      const key = await makeSigningKey(dir);
      const set = await buildSignedSet("app", key);
      const layout = `${dir}/layout`;
      await writeSignedLayout(layout, set, "docker.io/library/app:1");

      const raw = (ref: string) => skopeo(["inspect", "--raw", `oci:${layout}:${ref}`]);
      assertEquals(await raw("1"), new TextDecoder().decode(set.image.bytes));
      const fallback = JSON.parse(await raw(fallbackTag(set.image.digest)));
      assertEquals(fallback.manifests, [set.sbom.descriptor]);
      const ofSbom = JSON.parse(await raw(fallbackTag(set.sbom.manifest.digest)));
      assertEquals(ofSbom.manifests, [set.sbomSignature.descriptor]);

      // The image and its .sig make the trip through a registry by skopeo, byte for byte.
      const tag = set.cosignSignature.tag;
      await skopeo([
        "copy",
        "--preserve-digests",
        `oci:${layout}:1`,
        `docker://${registry.host}/app:1`,
        "--dest-tls-verify=false",
      ]);
      await skopeo([
        "copy",
        "--preserve-digests",
        `oci:${layout}:${tag}`,
        `docker://${registry.host}/app:${tag}`,
        "--dest-tls-verify=false",
      ]);
      using opened = openClient(registry.url, "app");
      const found = await findCosignTags(opened.client, set.image.digest);
      assertEquals(found.map((f) => f.digest), [set.cosignSignature.manifest.digest]);
      const manifest = await registry.fetchManifest("app", tag);
      const layer = (manifest.json["layers"] as { digest: string }[])[0]!;
      const payload = await registry.fetchBlob("app", layer.digest);
      assert(
        await verifyCosignSignature(manifest.bytes, payload, set.image.digest, key.publicKeyPath),
      );
      // And the SBOM's signature, from the layout's blobs.
      const blob = (digest: string) => Deno.readFile(`${layout}/blobs/sha256/${digest.slice(7)}`);
      assert(
        await verifyCosignSignature(
          await blob(set.sbomSignature.manifest.digest),
          await blob(sha256Digest(set.sbomSignature.payload)),
          set.sbom.manifest.digest,
          key.publicKeyPath,
        ),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { tools: [...TOOLS, "skopeo"] },
);

/**
 * Referrers go with their image (against the real registry, distribution, which has no
 * referrers API: the fallback tag), and against a double with the API: after their subject,
 * byte for byte, listed for it without dropping another tool's entries, cosign-style ones
 * under their tags; a dry run writes nothing; and digests that signatures name stay true.
 */
import type { ArchiveImage } from "../../src/archive/image.ts";
import type { ManifestNode } from "../../src/image/graph.ts";
import { InvalidOptionError } from "../../src/errors.ts";
import { fallbackTag } from "../../src/image/referrer.ts";
import { putManifest } from "../../src/registry/manifests.ts";
import { pushImage } from "../../src/push/push_image.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { integrationTest, startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { startReferrersRegistry } from "../helpers/referrers_registry.ts";
import {
  clientFor,
  compressedImage,
  cosignSignature,
  defaultPush,
  ociReferrer,
  recordingSink,
  uncompressedImage,
  withReferrers,
} from "./_push_fixtures.ts";

const SBOM = "application/spdx+json";
const BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json";

/** An image with an SPDX SBOM referrer, itself signed (a referrer of a referrer). */
function signedSbomImage(root: ManifestNode = compressedImage()) {
  const sbom = ociReferrer(root, SBOM, '{"spdxVersion":"SPDX-2.3"}');
  const signature = ociReferrer(sbom.node, BUNDLE, '{"mediaType":"bundle"}');
  const image: ArchiveImage = {
    names: [],
    root: withReferrers(root, [{ ...sbom, node: withReferrers(sbom.node, [signature]) }]),
    notes: [],
  };
  return { image, sbom, signature };
}

/** The digests the fallback tag of `subject` lists in `repo`; [] when there is no tag. */
async function fallbackListed(registry: TestRegistry, repo: string, subject: string) {
  if (!await registry.manifestExists(repo, fallbackTag(subject))) return [];
  const index = await registry.fetchManifest(repo, fallbackTag(subject));
  return (index.json.manifests as { digest: string; artifactType?: string }[]);
}

integrationTest(
  "a referrer and a referrer of it: fallback indexes list them, same digests",
  async () => {
    await using registry = await startRegistry();
    const { image, sbom, signature } = signedSbomImage();
    const { client, transport } = clientFor(registry.host, "app");
    const { sink, events } = recordingSink();
    try {
      const result = await pushImage(client, image, { tags: ["1"] }, defaultPush({ sink }));
      assertEquals(result.digest, image.root.digest);
      assertEquals(result.referrers.map((r) => [r.digest, r.subject, r.kind, r.listed]), [
        [sbom.node.digest, image.root.digest, "sbom", "fallback-tag"],
        [signature.node.digest, sbom.node.digest, "signature", "fallback-tag"],
      ]);
      // Byte for byte: the registry serves each under the digest the archive has.
      for (const node of [sbom.node, signature.node]) {
        assertEquals((await registry.fetchManifest("app", node.digest)).digest, node.digest);
      }
      assertEquals(
        (await fallbackListed(registry, "app", image.root.digest)).map((
          d,
        ) => [d.digest, d.artifactType]),
        [[sbom.node.digest, SBOM]],
      );
      assertEquals(
        (await fallbackListed(registry, "app", sbom.node.digest)).map((d) => d.digest),
        [signature.node.digest],
      );
      const done = events.filter((e) => e.type === "referrer-done");
      assertEquals(done.map((e) => e.type === "referrer-done" && [e.digest, e.kind, e.target]), [
        [sbom.node.digest, "sbom", `${registry.host}/app`],
        [signature.node.digest, "signature", `${registry.host}/app`],
      ]);
      // Each manifest after what it refers to.
      const order = (await registry.requests())
        .filter((r) => r.method === "PUT" && r.path.includes("/manifests/"))
        .map((r) => r.path.split("/manifests/")[1]);
      assert(order.indexOf("1") < order.indexOf(sbom.node.digest), order.join(" "));
      assert(
        order.indexOf(sbom.node.digest) < order.indexOf(signature.node.digest),
        order.join(" "),
      );
    } finally {
      transport.close();
    }
  },
);

integrationTest("another tool's entry in the fallback tag stays", async () => {
  await using registry = await startRegistry();
  const root = compressedImage();
  const theirs = ociReferrer(root, "application/vnd.example.other+json", "theirs");
  const { image, sbom } = signedSbomImage(root);
  const { client, transport } = clientFor(registry.host, "app");
  try {
    // Another tool pushed its referrer, and listed it in the fallback tag.
    const other = { names: [], root: withReferrers(root, [theirs]), notes: [] };
    await pushImage(client, other, { tags: ["0"] }, defaultPush());
    assertEquals(
      (await fallbackListed(registry, "app", root.digest)).map((d) => d.digest),
      [theirs.node.digest],
    );
    await pushImage(client, image, { tags: ["1"] }, defaultPush());
    assertEquals(
      (await fallbackListed(registry, "app", root.digest)).map((d) => d.digest),
      [theirs.node.digest, sbom.node.digest],
    );
  } finally {
    transport.close();
  }
});

integrationTest("a fallback tag written by hand keeps its entries and fields", async () => {
  await using registry = await startRegistry();
  const root = compressedImage();
  const theirs = ociReferrer(root, "application/vnd.example.other+json", "theirs");
  const { image, sbom } = signedSbomImage(root);
  const { client, transport } = clientFor(registry.host, "app");
  try {
    // The image and the other referrer first, then an index under the tag, as another tool
    // writes it (its own annotation on the index).
    await pushImage(client, { names: [], root, notes: [] }, { tags: ["0"] }, defaultPush());
    await pushImage(
      client,
      { names: [], root: theirs.node, notes: [] },
      { tags: [] },
      defaultPush(),
    );
    const index = new TextEncoder().encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{
        mediaType: theirs.node.mediaType,
        digest: theirs.node.digest,
        size: theirs.node.bytes.length,
        artifactType: theirs.artifactType,
      }],
      annotations: { "com.example.tool": "theirs" },
    }));
    await putManifest(
      client,
      fallbackTag(root.digest),
      "application/vnd.oci.image.index.v1+json",
      index,
    );
    await pushImage(client, image, { tags: ["1"] }, defaultPush());
    const tag = await registry.fetchManifest("app", fallbackTag(root.digest));
    assertEquals(
      (tag.json.manifests as { digest: string }[]).map((d) => d.digest),
      [theirs.node.digest, sbom.node.digest],
    );
    assertEquals((tag.json.annotations as Record<string, string>)["com.example.tool"], "theirs");
  } finally {
    transport.close();
  }
});

integrationTest("a cosign-style signature goes under its tag", async () => {
  await using registry = await startRegistry();
  const root = compressedImage();
  const signature = cosignSignature(root);
  const image = { names: [], root: withReferrers(root, [signature]), notes: [] };
  const { client, transport } = clientFor(registry.host, "app");
  try {
    const result = await pushImage(client, image, { tags: ["1"] }, defaultPush());
    const tag = `sha256-${root.digest.slice(7)}.sig`;
    assertEquals((await registry.fetchManifest("app", tag)).digest, signature.node.digest);
    assertEquals(result.referrers.map((r) => [r.tag, r.kind, r.listed]), [[
      tag,
      "signature",
      undefined,
    ]]);
    // A tag scheme of its own: no fallback index.
    assertEquals(await fallbackListed(registry, "app", root.digest), []);
  } finally {
    transport.close();
  }
});

integrationTest("a dry run says which referrers it would push, and writes nothing", async () => {
  await using registry = await startRegistry();
  const { image, sbom, signature } = signedSbomImage();
  const { client, transport } = clientFor(registry.host, "app");
  const { sink, events } = recordingSink();
  try {
    const result = await pushImage(
      client,
      image,
      { tags: ["1"] },
      defaultPush({ dryRun: true, sink }),
    );
    assertEquals(result.referrers.map((r) => [r.digest, r.listed]), [
      [sbom.node.digest, "planned"],
      [signature.node.digest, "planned"],
    ]);
    assertEquals(
      events.filter((e) => e.type === "referrer-done").map((e) =>
        e.type === "referrer-done" && e.dryRun
      ),
      [true, true],
    );
    const writes = (await registry.requests()).filter((r) =>
      r.method !== "GET" && r.method !== "HEAD"
    );
    assertEquals(writes.map((r) => `${r.method} ${r.path}`), []);
    assertEquals(await registry.manifestExists("app", sbom.node.digest), false);
    assertEquals(await registry.manifestExists("app", fallbackTag(image.root.digest)), false);
  } finally {
    transport.close();
  }
});

integrationTest("layers a signature pins go as stored by default, with one notice", async () => {
  await using registry = await startRegistry();
  const root = uncompressedImage({ os: "linux", architecture: "amd64" });
  const { image, sbom } = signedSbomImage(root);
  const { client, transport } = clientFor(registry.host, "app");
  const { sink, events } = recordingSink();
  try {
    const result = await pushImage(client, image, { tags: ["1"] }, defaultPush({ sink }));
    // The manifest the SBOM names is the one the registry gets.
    assertEquals(result.digest, root.digest);
    assertEquals(result.compressed.count, 0);
    assertEquals(result.keptAsStoredFor, root.digest);
    assertEquals((await registry.fetchManifest("app", "1")).digest, root.digest);
    const notices = events.filter((e) =>
      e.type === "notice" && e.kind === "kept-as-stored-for-referrers"
    );
    assertEquals(notices.length, 1);
    assertEquals(
      (await fallbackListed(registry, "app", root.digest)).map((d) => d.digest),
      [sbom.node.digest],
    );
  } finally {
    transport.close();
  }
});

integrationTest(
  "compression asked for explicitly is refused before anything is sent; referrers: false pushes the image alone",
  async () => {
    await using registry = await startRegistry();
    const root = uncompressedImage({ os: "linux", architecture: "amd64" });
    const { image, sbom } = signedSbomImage(root);
    const { client, transport } = clientFor(registry.host, "app");
    try {
      const error = await assertRejects(
        () => pushImage(client, image, { tags: ["1"] }, defaultPush({ compressionExplicit: true })),
        InvalidOptionError,
      );
      assertEquals(error.reason, "referrers-pin-layers");
      assert(error.hint?.includes("referrers to false"), error.hint);
      assert(error.hint?.includes('compression: "none"'), error.hint);
      const sent = (await registry.requests()).filter((r) => r.path.startsWith("/v2/app/"));
      assertEquals(sent.length, 0, "nothing was sent");

      // Without the referrers, the layers go compressed as asked.
      const alone = await pushImage(
        client,
        image,
        { tags: ["1"] },
        defaultPush({ compressionExplicit: true, referrers: false }),
      );
      assertEquals(alone.compressed.count, 1);
      assert(alone.digest !== root.digest);
      assertEquals(alone.referrers, []);
      assertEquals(await registry.manifestExists("app", sbom.node.digest), false);

      // And with compression "none", explicitly, the image goes with them.
      const kept = await pushImage(
        client,
        image,
        { tags: ["2"] },
        defaultPush({ compressionExplicit: true, compression: { codec: "none" } }),
      );
      assertEquals(kept.digest, root.digest);
      assertEquals(kept.referrers.length, 2);
    } finally {
      transport.close();
    }
  },
);

integrationTest(
  "a registry with the referrers API lists them itself: no fallback tag",
  async () => {
    await using double = await startReferrersRegistry();
    const { image, sbom, signature } = signedSbomImage();
    const { client, transport } = clientFor(double.host, "app");
    try {
      const result = await pushImage(client, image, { tags: ["1"] }, defaultPush());
      assertEquals(result.referrers.map((r) => r.listed), ["api", "api"]);
      assertEquals(
        double.referrers.map((r) => [r.subject, r.descriptor.digest]),
        [[image.root.digest, sbom.node.digest], [sbom.node.digest, signature.node.digest]],
      );
      const tags = double.requests.filter((r) =>
        r.method === "PUT" && r.path.includes("/manifests/sha256-")
      );
      assertEquals(tags.map((r) => r.path), []);
    } finally {
      transport.close();
    }
  },
);

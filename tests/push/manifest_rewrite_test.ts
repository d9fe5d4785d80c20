import type { ManifestNode } from "../../src/image/graph.ts";
import { MEDIA_TYPES } from "../../src/image/media_types.ts";
import { sha256Digest } from "../../src/digest.ts";
import type { Descriptor } from "../../src/image/descriptor.ts";
import {
  compressedLayerType,
  isUncompressedLayer,
  rewriteTree,
} from "../../src/push/manifest_rewrite.ts";
import { assert, assertEquals, assertNotEquals } from "../helpers/assert.ts";

type Json = Record<string, unknown>;

const digestOf = (name: string) => sha256Digest(new TextEncoder().encode(name));
const CONFIG = digestOf("config");
const LAYER_A = digestOf("layer a");
const LAYER_B = digestOf("layer b");
const LAYER_C = digestOf("layer c");
const GZIP_A = digestOf("layer a, gzip");
const ZSTD_A = digestOf("layer a, zstd");
const ZSTD_B = digestOf("layer b, zstd");

/** A manifest node as an archive reader would make it: the exact bytes and their digest. */
function node(
  manifest: Json,
  children: ManifestNode[] = [],
  mediaType = manifest.mediaType as string,
): ManifestNode {
  // Indented, as tools write it: a rewrite that re-serialises shows in the bytes.
  const bytes = new TextEncoder().encode(JSON.stringify(manifest, null, 3));
  return { mediaType, digest: sha256Digest(bytes), bytes, blobs: [], children };
}

function parse(node: ManifestNode): Json {
  return JSON.parse(new TextDecoder().decode(node.bytes)) as Json;
}

function layers(manifest: Json): Json[] {
  return manifest.layers as Json[];
}

function dockerManifest(extra: Json = {}): ManifestNode {
  return node({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.dockerManifest,
    config: { mediaType: MEDIA_TYPES.dockerConfig, digest: CONFIG, size: 1234 },
    layers: [
      {
        mediaType: MEDIA_TYPES.dockerLayer,
        digest: LAYER_A,
        size: 10_240,
        annotations: { "org.example.note": "first" },
      },
      { mediaType: MEDIA_TYPES.dockerLayer, digest: LAYER_B, size: 20_480 },
      { mediaType: MEDIA_TYPES.dockerLayerGzip, digest: LAYER_C, size: 512, urls: ["x"] },
    ],
    ...extra,
  });
}

function ociManifest(layer: string, extra: Json = {}): ManifestNode {
  return node({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociConfig, digest: CONFIG, size: 99 },
    layers: [{ mediaType: MEDIA_TYPES.ociLayer, digest: layer, size: 4096 }],
    ...extra,
  });
}

function ociIndex(
  children: ManifestNode[],
  entryType: string = MEDIA_TYPES.ociManifest,
): ManifestNode {
  return node(
    {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: children.map((child, i) => ({
        mediaType: entryType,
        digest: child.digest,
        size: child.bytes.length,
        platform: { os: "linux", architecture: i === 0 ? "amd64" : "arm64" },
        annotations: { "org.example.index": `${i}` },
      })),
      annotations: { "org.opencontainers.image.ref.name": "1" },
    },
    children,
  );
}

const gzipA: Descriptor = { mediaType: MEDIA_TYPES.dockerLayerGzip, digest: GZIP_A, size: 3000 };

Deno.test("rewriteTree swaps in a compressed layer and leaves the rest of a Docker manifest", () => {
  const original = dockerManifest();
  const before = parse(original);
  const rewritten = rewriteTree(original, new Map([[LAYER_A, gzipA]]), false);

  const manifest = parse(rewritten);
  assertEquals(layers(manifest)[0], {
    mediaType: MEDIA_TYPES.dockerLayerGzip,
    digest: GZIP_A,
    size: 3000,
    annotations: { "org.example.note": "first" },
  });
  assertEquals(layers(manifest).slice(1), layers(before).slice(1));
  assertEquals(manifest.config, before.config);
  assertEquals(manifest.mediaType, MEDIA_TYPES.dockerManifest);
  assertEquals(manifest.schemaVersion, 2);
  assertEquals(Object.keys(manifest), Object.keys(before));

  assertEquals(rewritten.mediaType, MEDIA_TYPES.dockerManifest);
  assertEquals(rewritten.digest, sha256Digest(rewritten.bytes));
  assertNotEquals(rewritten.digest, original.digest);
  // The input node is not modified.
  assertEquals(parse(original), before);
  assertEquals(original.digest, sha256Digest(original.bytes));
});

Deno.test("rewriteTree with zstd turns a Docker manifest into an OCI one", () => {
  const original = dockerManifest({ annotations: { "org.example.kept": "yes" } });
  const zstdA: Descriptor = { mediaType: MEDIA_TYPES.ociLayerZstd, digest: ZSTD_A, size: 2900 };
  const rewritten = rewriteTree(original, new Map([[LAYER_A, zstdA]]), true);

  const manifest = parse(rewritten);
  assertEquals(rewritten.mediaType, MEDIA_TYPES.ociManifest);
  assertEquals(manifest.mediaType, MEDIA_TYPES.ociManifest);
  assertEquals(manifest.config, { mediaType: MEDIA_TYPES.ociConfig, digest: CONFIG, size: 1234 });
  assertEquals(layers(manifest), [
    {
      mediaType: MEDIA_TYPES.ociLayerZstd,
      digest: ZSTD_A,
      size: 2900,
      annotations: { "org.example.note": "first" },
    },
    { mediaType: MEDIA_TYPES.ociLayer, digest: LAYER_B, size: 20_480 },
    { mediaType: MEDIA_TYPES.ociLayerGzip, digest: LAYER_C, size: 512, urls: ["x"] },
  ]);
  assertEquals(manifest.annotations, { "org.example.kept": "yes" });
  assertEquals(rewritten.digest, sha256Digest(rewritten.bytes));
});

Deno.test("rewriteTree converts Docker's foreign gzip layers to OCI non-distributable ones", () => {
  const foreign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
  const original = node({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.dockerManifest,
    config: { mediaType: MEDIA_TYPES.dockerConfig, digest: CONFIG, size: 1 },
    layers: [
      { mediaType: foreign, digest: LAYER_C, size: 7, urls: ["https://example.com/c"] },
      { mediaType: MEDIA_TYPES.dockerLayer, digest: LAYER_A, size: 8 },
    ],
  });
  const zstdA: Descriptor = { mediaType: MEDIA_TYPES.ociLayerZstd, digest: ZSTD_A, size: 5 };
  const manifest = parse(rewriteTree(original, new Map([[LAYER_A, zstdA]]), true));
  assertEquals(layers(manifest)[0], {
    mediaType: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    digest: LAYER_C,
    size: 7,
    urls: ["https://example.com/c"],
  });
});

Deno.test("rewriteTree returns the very same node when nothing is replaced", () => {
  const docker = dockerManifest();
  const elsewhere = new Map([[digestOf("not here"), gzipA]]);
  for (const toOci of [false, true]) {
    assert(rewriteTree(docker, new Map(), toOci) === docker);
    assert(rewriteTree(docker, elsewhere, toOci) === docker);
  }
  const index = ociIndex([ociManifest(LAYER_A), ociManifest(LAYER_B)]);
  const same = rewriteTree(index, elsewhere, true);
  assert(same === index);
  assert(same.children[0] === index.children[0] && same.children[1] === index.children[1]);
});

Deno.test("rewriteTree keeps an OCI manifest's type and only touches the replaced layer", () => {
  const original = ociManifest(LAYER_A, { annotations: { "org.example.a": "b" } });
  const zstdA: Descriptor = { mediaType: MEDIA_TYPES.ociLayerZstd, digest: ZSTD_A, size: 100 };
  const rewritten = rewriteTree(original, new Map([[LAYER_A, zstdA]]), true);
  const manifest = parse(rewritten);
  assertEquals(rewritten.mediaType, MEDIA_TYPES.ociManifest);
  assertEquals(layers(manifest), [zstdA]);
  assertEquals(manifest.config, parse(original).config);
  assertEquals(manifest.annotations, { "org.example.a": "b" });
});

Deno.test("rewriteTree points an index at a changed child and leaves the other entry", () => {
  const changing = ociManifest(LAYER_A);
  const steady = ociManifest(LAYER_C);
  const index = ociIndex([changing, steady]);
  const before = parse(index);
  const zstdA: Descriptor = { mediaType: MEDIA_TYPES.ociLayerZstd, digest: ZSTD_A, size: 100 };
  const rewritten = rewriteTree(index, new Map([[LAYER_A, zstdA]]), true);

  const [newChild, sameChild] = rewritten.children;
  assert(newChild !== undefined && sameChild !== undefined);
  assertEquals(layers(parse(newChild)), [zstdA]);
  assert(sameChild === steady, "an unchanged child keeps its node");

  const manifest = parse(rewritten);
  const entries = manifest.manifests as Json[];
  const beforeEntries = before.manifests as Json[];
  assertEquals(entries[0]!.platform, { os: "linux", architecture: "amd64" });
  assertEquals(entries[0], {
    ...beforeEntries[0],
    mediaType: MEDIA_TYPES.ociManifest,
    digest: newChild.digest,
    size: newChild.bytes.length,
  });
  assertEquals(entries[1], beforeEntries[1]);
  assertEquals(manifest.annotations, before.annotations);
  assertEquals(rewritten.mediaType, MEDIA_TYPES.ociIndex);
  assertEquals(rewritten.digest, sha256Digest(rewritten.bytes));
  // The original tree is untouched.
  assertEquals(index.children[0], changing);
  assertEquals(parse(index), before);
});

Deno.test("rewriteTree turns a Docker manifest list over a zstd child into an OCI index", () => {
  const changing = dockerManifest();
  const steady = node({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.dockerManifest,
    config: { mediaType: MEDIA_TYPES.dockerConfig, digest: CONFIG, size: 1 },
    layers: [{ mediaType: MEDIA_TYPES.dockerLayerGzip, digest: LAYER_C, size: 2 }],
  });
  const list = node(
    {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.dockerManifestList,
      manifests: [changing, steady].map((child) => ({
        mediaType: MEDIA_TYPES.dockerManifest,
        digest: child.digest,
        size: child.bytes.length,
        platform: { os: "linux", architecture: "amd64" },
      })),
    },
    [changing, steady],
  );
  const replaced = new Map<string, Descriptor>([
    [LAYER_A, { mediaType: MEDIA_TYPES.ociLayerZstd, digest: ZSTD_A, size: 1 }],
    [LAYER_B, { mediaType: MEDIA_TYPES.ociLayerZstd, digest: ZSTD_B, size: 2 }],
  ]);
  const rewritten = rewriteTree(list, replaced, true);
  assertEquals(rewritten.mediaType, MEDIA_TYPES.ociIndex);
  const manifest = parse(rewritten);
  assertEquals(manifest.mediaType, MEDIA_TYPES.ociIndex);
  const entries = manifest.manifests as Json[];
  assertEquals(entries[0]!.mediaType, MEDIA_TYPES.ociManifest);
  assertEquals(entries[0]!.digest, rewritten.children[0]!.digest);
  // A child with nothing to compress keeps its bytes, so its entry keeps its Docker type: each
  // entry names the type of the manifest it points at.
  assert(rewritten.children[1] === steady);
  assertEquals(entries[1]!.mediaType, MEDIA_TYPES.dockerManifest);
  assertEquals(entries[1]!.digest, steady.digest);
});

Deno.test("rewriteTree updates every level of a nested index", () => {
  const leaf = ociManifest(LAYER_B);
  const inner = ociIndex([leaf]);
  const outer = ociIndex([inner], MEDIA_TYPES.ociIndex);
  const zstdB: Descriptor = { mediaType: MEDIA_TYPES.ociLayerZstd, digest: ZSTD_B, size: 9 };
  const rewritten = rewriteTree(outer, new Map([[LAYER_B, zstdB]]), true);
  const newInner = rewritten.children[0]!;
  const newLeaf = newInner.children[0]!;
  assertEquals(layers(parse(newLeaf)), [zstdB]);
  assertEquals((parse(newInner).manifests as Json[])[0]!.digest, newLeaf.digest);
  const outerEntry = (parse(rewritten).manifests as Json[])[0]!;
  assertEquals(outerEntry.digest, newInner.digest);
  assertEquals(outerEntry.size, newInner.bytes.length);
  assertEquals(outerEntry.mediaType, MEDIA_TYPES.ociIndex);
});

Deno.test("rewriteTree with gzip keeps Docker types and the list's type", () => {
  const child = dockerManifest();
  const list = node(
    {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.dockerManifestList,
      manifests: [{ mediaType: MEDIA_TYPES.dockerManifest, digest: child.digest, size: 1 }],
    },
    [child],
  );
  const rewritten = rewriteTree(list, new Map([[LAYER_A, gzipA]]), false);
  assertEquals(rewritten.mediaType, MEDIA_TYPES.dockerManifestList);
  assertEquals(parse(rewritten).mediaType, MEDIA_TYPES.dockerManifestList);
  const newChild = rewritten.children[0]!;
  assertEquals(newChild.mediaType, MEDIA_TYPES.dockerManifest);
  assertEquals(parse(newChild).config, parse(child).config);
  assertEquals((parse(rewritten).manifests as Json[])[0], {
    mediaType: MEDIA_TYPES.dockerManifest,
    digest: newChild.digest,
    size: newChild.bytes.length,
  });
});

Deno.test("isUncompressedLayer accepts only plain tar layer types", () => {
  assert(isUncompressedLayer(MEDIA_TYPES.dockerLayer));
  assert(isUncompressedLayer(MEDIA_TYPES.ociLayer));
  for (
    const other of [
      MEDIA_TYPES.dockerLayerGzip,
      MEDIA_TYPES.ociLayerGzip,
      MEDIA_TYPES.ociLayerZstd,
      MEDIA_TYPES.dockerConfig,
      MEDIA_TYPES.ociConfig,
      MEDIA_TYPES.dockerManifest,
      "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
      // Non-distributable layers must stay byte-for-byte what their URLs serve.
      "application/vnd.oci.image.layer.nondistributable.v1.tar",
      "",
    ]
  ) {
    assertEquals(isUncompressedLayer(other), false, other);
  }
});

Deno.test("compressedLayerType keeps the family for gzip and goes OCI for zstd", () => {
  assertEquals(compressedLayerType(MEDIA_TYPES.dockerLayer, "gzip"), MEDIA_TYPES.dockerLayerGzip);
  assertEquals(compressedLayerType(MEDIA_TYPES.ociLayer, "gzip"), MEDIA_TYPES.ociLayerGzip);
  assertEquals(compressedLayerType(MEDIA_TYPES.dockerLayer, "zstd"), MEDIA_TYPES.ociLayerZstd);
  assertEquals(compressedLayerType(MEDIA_TYPES.ociLayer, "zstd"), MEDIA_TYPES.ociLayerZstd);
});

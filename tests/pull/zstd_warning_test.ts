import type { BundleImage } from "../../src/pull/archive_files.ts";
import { isZstdLayer, zstdLayerWarning } from "../../src/pull/zstd_warning.ts";
import { assert, assertEquals } from "../helpers/assert.ts";

const GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
const ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd";
const DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/** A bundle image whose manifests (one per entry) have layers of these media types. */
function image(name: string, ...manifests: string[][]): BundleImage {
  const resolved = manifests.map((types, m) => ({
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: `sha256:${String(m).repeat(64)}`,
    bytes: new Uint8Array(),
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: "sha256:" + "c".repeat(64),
      size: 2,
      bytes: new Uint8Array(),
    },
    manifest: {
      kind: "manifest" as const,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: "sha256:" + "c".repeat(64),
        size: 2,
      },
      // Digests from the media type and position: the same type at the same place is one blob.
      layers: types.map((mediaType, i) => ({
        mediaType,
        digest: `sha256:${(mediaType === ZSTD ? "a" : "b").repeat(63)}${i}`,
        size: 10,
      })),
    },
    platform: undefined,
  }));
  return {
    name,
    tag: "1",
    resolved: {
      root: { ...resolved[0]!, platform: { os: "linux", architecture: "amd64" } },
      manifests: resolved,
      primary: resolved[0]!,
      attestations: [],
    },
  };
}

Deno.test("isZstdLayer: OCI zstd layers, nondistributable too; not gzip or docker types", () => {
  assert(isZstdLayer(ZSTD));
  assert(isZstdLayer("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"));
  assert(!isZstdLayer(GZIP));
  assert(!isZstdLayer(DOCKER_GZIP));
  assert(!isZstdLayer("application/vnd.oci.image.layer.v1.tar"));
});

Deno.test("zstdLayerWarning: none for gzip and uncompressed layers", () => {
  assertEquals(zstdLayerWarning([image("r/a:1", [GZIP, DOCKER_GZIP])]), undefined);
  assertEquals(zstdLayerWarning([]), undefined);
});

Deno.test("zstdLayerWarning: a warning naming the images and Docker 23.0", () => {
  const warning = zstdLayerWarning([
    image("r/a:1", [GZIP, ZSTD]),
    image("r/b:1", [GZIP]),
  ]);
  assertEquals(warning, {
    type: "notice",
    kind: "zstd-layers",
    level: "warning",
    message: "The archive holds 1 zstd-compressed layer (r/a:1): docker load needs " +
      "Docker Engine 23.0 or later to read them (podman and skopeo read them)",
  });
});

Deno.test("zstdLayerWarning: counts each layer once across platforms and images", () => {
  // Two platforms of one image share the zstd layer at index 0; index 1 is a second one.
  const warning = zstdLayerWarning([
    image("r/a:1", [ZSTD, GZIP], [ZSTD, ZSTD]),
    image("r/c:2", [ZSTD]),
  ]);
  assert(warning?.type === "notice");
  assertEquals(
    warning.message,
    "The archive holds 2 zstd-compressed layers (r/a:1, r/c:2): docker load needs " +
      "Docker Engine 23.0 or later to read them (podman and skopeo read them)",
  );
});

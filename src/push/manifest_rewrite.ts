/**
 * Rewriting manifests after layers were compressed on the way up: each compressed layer's
 * descriptor gets its new media type, digest and size, and every index above a changed manifest
 * gets the manifest's new digest. zstd layers exist only in OCI, so an image with any goes out
 * as an OCI manifest (and its index as an OCI index).
 */
import type { ManifestNode } from "../archive/image.ts";
import type { Descriptor } from "../image/descriptor.ts";
import { isIndexMediaType, MEDIA_TYPES } from "../image/media_types.ts";
import { sha256Digest } from "../digest.ts";

/** Docker media types and their OCI equivalents. */
const TO_OCI: Record<string, string> = {
  [MEDIA_TYPES.dockerManifest]: MEDIA_TYPES.ociManifest,
  [MEDIA_TYPES.dockerManifestList]: MEDIA_TYPES.ociIndex,
  [MEDIA_TYPES.dockerConfig]: MEDIA_TYPES.ociConfig,
  [MEDIA_TYPES.dockerLayer]: MEDIA_TYPES.ociLayer,
  [MEDIA_TYPES.dockerLayerGzip]: MEDIA_TYPES.ociLayerGzip,
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
};

/** Whether a layer media type says the blob is an uncompressed tar (so we may compress it). */
export function isUncompressedLayer(mediaType: string): boolean {
  return mediaType === MEDIA_TYPES.dockerLayer || mediaType === MEDIA_TYPES.ociLayer;
}

/** The media type of an uncompressed layer of type `mediaType` once compressed with `codec`. */
export function compressedLayerType(mediaType: string, codec: "gzip" | "zstd"): string {
  if (codec === "zstd") return MEDIA_TYPES.ociLayerZstd;
  return mediaType === MEDIA_TYPES.dockerLayer
    ? MEDIA_TYPES.dockerLayerGzip
    : MEDIA_TYPES.ociLayerGzip;
}

type Json = Record<string, unknown>;

/**
 * The tree with `replaced` layers (by original digest) swapped in. Nodes with nothing to change
 * keep their exact bytes (and digest).
 */
export function rewriteTree(
  node: ManifestNode,
  replaced: ReadonlyMap<string, Descriptor>,
  toOci: boolean,
): ManifestNode {
  const children = node.children.map((child) => rewriteTree(child, replaced, toOci));
  const changedChildren = new Map<string, ManifestNode>();
  node.children.forEach((child, i) => {
    if (children[i]!.digest !== child.digest) changedChildren.set(child.digest, children[i]!);
  });
  const manifest = JSON.parse(new TextDecoder().decode(node.bytes)) as Json;
  let changed = false;
  const convert = (descriptor: Json) => {
    const oci = typeof descriptor.mediaType === "string" ? TO_OCI[descriptor.mediaType] : undefined;
    if (toOci && oci !== undefined) {
      descriptor.mediaType = oci;
      changed = true;
    }
  };
  if (isIndexMediaType(node.mediaType)) {
    for (const entry of asDescriptors(manifest.manifests)) {
      const child = changedChildren.get(entry.digest as string);
      if (child !== undefined) {
        entry.digest = child.digest;
        entry.size = child.bytes.length;
        entry.mediaType = child.mediaType;
        changed = true;
      }
    }
  } else {
    for (const layer of asDescriptors(manifest.layers)) {
      const replacement = replaced.get(layer.digest as string);
      if (replacement !== undefined) {
        Object.assign(layer, replacement);
        changed = true;
      }
    }
  }
  const anyZstd = toOci && (changedChildren.size > 0 ||
    asDescriptors(manifest.layers).some((l) => l.mediaType === MEDIA_TYPES.ociLayerZstd));
  let mediaType = node.mediaType;
  if (anyZstd) {
    if (manifest.config !== undefined) convert(manifest.config as Json);
    asDescriptors(manifest.layers).forEach(convert);
    mediaType = TO_OCI[node.mediaType] ?? node.mediaType;
    if (mediaType !== node.mediaType) {
      manifest.mediaType = mediaType;
      changed = true;
    }
  }
  if (!changed) return node;
  const bytes = new TextEncoder().encode(JSON.stringify(manifest));
  return { ...node, mediaType, bytes, digest: sha256Digest(bytes), children };
}

function asDescriptors(value: unknown): Json[] {
  return Array.isArray(value)
    ? value.filter((v): v is Json => typeof v === "object" && v !== null)
    : [];
}

/**
 * The one place digests move: after layers were compressed on the way up, each compressed
 * layer's descriptor gets its new media type, digest and size; every index above a changed
 * manifest gets the manifest's new digest; and every buildx attestation entry that names a
 * changed manifest (`vnd.docker.reference.digest`) follows it, so an attestation never names a
 * manifest the registry lacks. zstd layers exist only in OCI, so an image with any goes out as
 * an OCI manifest (and its index as an OCI index). A multi-platform index built from several
 * archives re-points its attestations through {@linkcode followAttestation} too.
 */
import type { ManifestNode } from "../image/graph.ts";
import type { Descriptor } from "../image/descriptor.ts";
import { isIndexMediaType, MEDIA_TYPES } from "../image/media_types.ts";
import { sha256Digest } from "../digest.ts";
import { ATTESTATION_DIGEST_ANNOTATION, isAttestationEntry } from "../image/referrer.ts";

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
 * An index entry's annotations with a buildx attestation's `vnd.docker.reference.digest` moved
 * to the digest its manifest now has (`moved` maps an original digest to the new one, undefined
 * when it did not move). The same object when nothing moves: entries of other kinds, and
 * attestations of manifests that kept their digest, keep their exact annotations.
 */
export function followAttestation<T extends Readonly<Record<string, string>> | undefined>(
  annotations: T,
  moved: (digest: string) => string | undefined,
): T {
  if (annotations === undefined || !isAttestationEntry({ annotations })) return annotations;
  const subject = annotations[ATTESTATION_DIGEST_ANNOTATION];
  const now = subject === undefined ? undefined : moved(subject);
  if (now === undefined || now === subject) return annotations;
  return { ...annotations, [ATTESTATION_DIGEST_ANNOTATION]: now };
}

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
      const annotations = stringRecord(entry.annotations);
      const followed = followAttestation(
        annotations,
        (digest) => changedChildren.get(digest)?.digest,
      );
      if (followed !== annotations) {
        // In place: the other annotations keep their order, and so their bytes.
        Object.assign(entry.annotations as Json, followed);
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

/** Annotations as JSON gives them: only string values count (anything else is left alone). */
function stringRecord(value: unknown): Record<string, string> | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const entries = Object.entries(value).filter(([, v]) => typeof v === "string");
  return Object.fromEntries(entries) as Record<string, string>;
}

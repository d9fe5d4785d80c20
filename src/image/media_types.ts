/**
 * The media types of manifests, indexes, configs and layers, and what a media type says: an
 * index or an image manifest, a layer's compression, the layer type of a family (Docker or OCI)
 * for a compression. One list, so pull, push, inspect and the archive readers agree.
 */

/** The media types this program reads and writes. */
export const MEDIA_TYPES = {
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  /** The config of an artifact that has none: the blob `{}` (image-spec, "Guidance for an Empty Descriptor"). */
  ociEmpty: "application/vnd.oci.empty.v1+json",
} as const;

/**
 * The `Accept` of every manifest request (by tag or digest, the referrers fallback tag, the
 * cosign tags): each manifest and index type we read, indexes first as docker pull sends them.
 * A registry serves only a type the client accepts, so a tag holding an unexpected kind is still
 * served, and reported for what it is rather than as missing.
 */
export const MANIFEST_ACCEPT: string = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.dockerManifestList,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerManifest,
].join(", ");

/** Whether a media type is an index (a list of manifests) rather than an image manifest. */
export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MEDIA_TYPES.ociIndex || mediaType === MEDIA_TYPES.dockerManifestList;
}

/** Whether a media type is Docker's (schema 2) rather than OCI's. */
export function isDockerMediaType(mediaType: string): boolean {
  return mediaType.startsWith("application/vnd.docker.");
}

/** The compression a layer media type declares; undefined for one that is not a layer's. */
export function declaredCompression(mediaType: string): "none" | "gzip" | "zstd" | undefined {
  if (/[+.]gzip$/.test(mediaType)) return "gzip";
  if (/\+zstd$/.test(mediaType)) return "zstd";
  if (/(\.|\/)tar$|rootfs\.diff\.tar$/.test(mediaType)) return "none";
  return undefined;
}

/**
 * The layer media type of `mediaType`'s family (Docker or OCI) for `compression`; undefined
 * when the family has none (Docker schema 2 has no zstd layer type).
 */
export function layerTypeFor(
  mediaType: string,
  compression: "none" | "gzip" | "zstd",
): string | undefined {
  if (isDockerMediaType(mediaType)) {
    if (compression === "zstd") return undefined;
    return compression === "gzip" ? MEDIA_TYPES.dockerLayerGzip : MEDIA_TYPES.dockerLayer;
  }
  return compression === "gzip"
    ? MEDIA_TYPES.ociLayerGzip
    : compression === "zstd"
    ? MEDIA_TYPES.ociLayerZstd
    : MEDIA_TYPES.ociLayer;
}

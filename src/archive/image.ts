/**
 * What an image archive holds, format-independent: a tree of manifests, each naming the blobs
 * it needs, every blob a byte range of the archive file.
 */

/** A blob stored in the archive, streamed from its byte range on demand. */
export interface ArchiveBlob {
  digest: string;
  size: number;
  mediaType: string;
  /** Human name for errors: `app.tar:blobs/sha256/ab…`. */
  describe: string;
  /** Streams `length` bytes starting at `offset` within the blob. */
  read(offset: number, length: number, signal?: AbortSignal): AsyncIterable<Uint8Array>;
}

/** A manifest (or index) to push, with what must be in the registry before it. */
export interface ManifestNode {
  mediaType: string;
  digest: string;
  /** Exact bytes to push, so the digest is what the archive (or our synthesis) says. */
  bytes: Uint8Array;
  /** Config and layers (an index has none). */
  blobs: ArchiveBlob[];
  /** Manifests an index points at, pushed by digest before it. */
  children: ManifestNode[];
}

/** One image in an archive. */
export interface ArchiveImage {
  /** Names the archive gives it (`app:1`, `docker.io/library/app:1`); may be empty. */
  names: string[];
  root: ManifestNode;
  /** Things the user should know about how the image was read. */
  notes: string[];
}

export type ArchiveFormat = "docker-save" | "oci-layout";

/** A parsed image archive. */
export interface ImageArchive {
  path: string;
  format: ArchiveFormat;
  images: ArchiveImage[];
}

/** Every blob of a manifest tree, each digest once. */
export function uniqueBlobs(root: ManifestNode): ArchiveBlob[] {
  const seen = new Map<string, ArchiveBlob>();
  const visit = (node: ManifestNode) => {
    for (const blob of node.blobs) if (!seen.has(blob.digest)) seen.set(blob.digest, blob);
    node.children.forEach(visit);
  };
  visit(root);
  return [...seen.values()];
}

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
} as const;

/** Whether a media type is an index (a list of manifests) rather than an image manifest. */
export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MEDIA_TYPES.ociIndex || mediaType === MEDIA_TYPES.dockerManifestList;
}

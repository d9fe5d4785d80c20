/**
 * What an image archive holds, format-independent: a tree of manifests, each naming the blobs
 * it needs, every blob a byte range of the archive file.
 */
import type { ReferrerNode } from "../image/referrer.ts";

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
  /**
   * What refers to this manifest (signatures, SBOMs, attestations), pushed after it: see
   * `src/image/referrer.ts`. Absent or empty when nothing does.
   */
  referrers?: ReferrerNode[];
}

/** One image in an archive. */
export interface ArchiveImage {
  /** Names the archive gives it (`app:1`, `docker.io/library/app:1`); may be empty. */
  names: string[];
  root: ManifestNode;
  /** Things the user should know about how the image was read. */
  notes: string[];
  /**
   * Names `manifest.json` gives the image that `index.json` does not, in a Docker 25+ save
   * whose two files disagree: `names` (the index's) are what a push uses; `--image` matches
   * these too.
   */
  legacyNames?: string[];
}

/**
 * How the archive stores its images: `docker save`'s `manifest.json` list, an OCI layout's
 * `index.json`, or containers/image's `dir:` layout (`manifest.json` is the image's manifest).
 */
export type ArchiveFormat = "docker-save" | "oci-layout" | "dir";

/** A parsed image archive. */
export interface ImageArchive {
  path: string;
  format: ArchiveFormat;
  images: ArchiveImage[];
  /**
   * What the archive holds that no image took: signatures, SBOMs or attestations whose subject
   * is not among the images. Absent when there is nothing to say.
   */
  notes?: string[];
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

/** A referrer, with the digest of the manifest it hangs off. */
export interface PlacedReferrer {
  subject: string;
  referrer: ReferrerNode;
}

/**
 * Every referrer in a manifest tree, depth first: those of the root, of each manifest an index
 * names, and of each referrer (a signature of an SBOM), each subject before its referrers.
 */
export function referrersOf(root: ManifestNode): PlacedReferrer[] {
  const found: PlacedReferrer[] = [];
  const visit = (node: ManifestNode) => {
    for (const referrer of node.referrers ?? []) {
      found.push({ subject: node.digest, referrer });
      visit(referrer.node);
    }
    node.children.forEach(visit);
  };
  visit(root);
  return found;
}

/**
 * What an image archive holds, format-independent: its images, each a tree of manifests (the
 * image graph, `src/image/graph.ts`) whose blobs are byte ranges of the archive file.
 */
import type { ImageBlob, ManifestNode } from "../image/graph.ts";

/** A blob stored in the archive, streamed from its byte range on demand. */
export type ArchiveBlob = ImageBlob;

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

/**
 * Digests that signatures name stay true. A signature or attestation names a manifest by
 * digest; compressing an image's layers on the way changes its manifest's digest (and that of
 * every index above it), and the referrer would then name a manifest the registry never gets.
 * So an image whose graph has referrers keeps its layers as stored, unless the push leaves its
 * referrers behind (`referrers: false`); where compression was asked for explicitly, the push
 * is refused before anything is sent, saying how to go on.
 */
import type { ArchiveImage } from "../archive/image.ts";
import type { ManifestNode } from "../image/graph.ts";
import type { Compression } from "../compress/codec.ts";
import { InvalidOptionError } from "../errors.ts";
import { isUncompressedLayer } from "./manifest_rewrite.ts";

/** How a push treats referrers and compression. */
export interface ReferrerPolicy {
  /** How layers stored uncompressed go up. */
  compression: Compression;
  /** The caller asked for `compression` (not just the default). */
  compressionExplicit: boolean;
  /** Referrers go with their images (false: the images go alone). */
  referrers: boolean;
}

/** Whether compressing layers would change `node`'s digest (its own layers, or a child's). */
function changedByCompression(node: ManifestNode): boolean {
  return node.blobs.some((blob) => isUncompressedLayer(blob.mediaType)) ||
    node.children.some(changedByCompression);
}

/**
 * The first manifest of `root`'s graph that something refers to and that compressing layers
 * would change; undefined when there is none.
 */
function pinnedManifest(root: ManifestNode): ManifestNode | undefined {
  if ((root.referrers?.length ?? 0) > 0 && changedByCompression(root)) return root;
  for (const child of root.children) {
    const pinned = pinnedManifest(child);
    if (pinned !== undefined) return pinned;
  }
  return undefined;
}

/**
 * Whether `image` goes with its layers as stored to keep its referrers true: the manifest
 * that pins them, or undefined when its layers may be compressed as asked. Throws an
 * {@linkcode InvalidOptionError} (call it before anything is sent) when compression was asked
 * for explicitly and would break a referrer.
 */
export function keepLayersFor(
  image: ArchiveImage,
  policy: ReferrerPolicy,
  label: string,
): ManifestNode | undefined {
  if (!policy.referrers || policy.compression.codec === "none") return undefined;
  const pinned = pinnedManifest(image.root);
  if (pinned === undefined || !policy.compressionExplicit) return pinned;
  const count = pinned.referrers?.length ?? 0;
  throw new InvalidOptionError(
    `Compressing the uncompressed layers of ${label} with ${policy.compression.codec} would ` +
      `change manifest ${pinned.digest}, which ${count} referrer(s) (signatures, SBOMs or ` +
      `attestations) name: they would name a manifest the registry never gets`,
    {
      option: "compression",
      reason: "referrers-pin-layers",
      value: pinned.digest,
      hint: 'Set referrers to false to push the image without them, or compression: "none" to ' +
        "push its layers as stored (its digests stay the ones they name)",
    },
  );
}

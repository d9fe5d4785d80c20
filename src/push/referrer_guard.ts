/**
 * Digests that signatures name stay true. A signature or attestation names a manifest by
 * digest; compressing an image's layers on the way changes its manifest's digest (and that of
 * every index above it), and the referrer would then name a manifest the registry never gets.
 * So an image whose graph has referrers keeps its layers as stored, unless the push leaves its
 * referrers behind (`referrers: false`); where compression was asked for explicitly, the push
 * is refused before anything is sent, saying how to go on.
 *
 * buildx attestation manifests name their platform manifest twice: in their index entry's
 * `vnd.docker.reference.digest`, and as the subject of the in-toto statement inside. The
 * annotation can follow a new digest (`manifest_rewrite.ts` moves it), the statement cannot.
 * So a default push keeps an attested platform's layers as stored too; an explicit compression
 * is the caller's choice, and the annotation follows.
 */
import type { ArchiveImage } from "../archive/image.ts";
import type { ManifestNode } from "../image/graph.ts";
import type { Compression } from "../compress/codec.ts";
import { InvalidOptionError } from "../errors.ts";
import { isIndexMediaType } from "../image/media_types.ts";
import { parseManifest } from "../image/manifest.ts";
import { ATTESTATION_DIGEST_ANNOTATION, isAttestationEntry } from "../image/referrer.ts";
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
 * would change; undefined when there is none. `attested` says whether buildx attestations of
 * its index count (they do by default; an explicit compression lets them follow).
 */
function pinnedManifest(root: ManifestNode, attested: boolean): ManifestNode | undefined {
  if ((root.referrers?.length ?? 0) > 0 && changedByCompression(root)) return root;
  const named = attested ? attestedDigests(root) : new Map<string, number>();
  for (const child of root.children) {
    if (named.has(child.digest) && changedByCompression(child)) return child;
    const pinned = pinnedManifest(child, attested);
    if (pinned !== undefined) return pinned;
  }
  return undefined;
}

/** Of an index, how many buildx attestation entries name each platform manifest's digest. */
function attestedDigests(node: ManifestNode): Map<string, number> {
  const named = new Map<string, number>();
  if (!isIndexMediaType(node.mediaType)) return named;
  const index = parseManifest(node.bytes, node.mediaType, node.digest);
  if (index.kind !== "index") return named;
  for (const entry of index.manifests) {
    const digest = entry.annotations?.[ATTESTATION_DIGEST_ANNOTATION];
    if (isAttestationEntry(entry) && digest !== undefined) {
      named.set(digest, (named.get(digest) ?? 0) + 1);
    }
  }
  return named;
}

/**
 * How many referrers and buildx attestations of `root`'s graph name `node`: what a notice
 * says kept its layers as stored.
 */
export function namesOf(root: ManifestNode, node: ManifestNode): number {
  let count = node === root ? root.referrers?.length ?? 0 : 0;
  count += attestedDigests(root).get(node.digest) ?? 0;
  for (const child of root.children) count += namesOf(child, node);
  return count;
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
  if (!policy.compressionExplicit) return pinnedManifest(image.root, true);
  const pinned = pinnedManifest(image.root, false);
  if (pinned === undefined) return undefined;
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

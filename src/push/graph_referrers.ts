/**
 * The referrers an image's graph carries (signatures, SBOMs, attestations hanging off its
 * manifests, see `src/image/referrer.ts`), as a push sees them: their blobs, which go up with
 * the image's (as stored, never recompressed), the graph without them
 * (`referrers: false`), and what a push reports of each it restored. Their manifests are
 * committed after their subjects in `commit_graph.ts`.
 */
import type { ArchiveBlob } from "../archive/image.ts";
import { type ManifestNode, referrersOf, uniqueBlobs } from "../image/graph.ts";
import type { ReferrerKind } from "../image/referrer.ts";

/** A referrer a push restored (or a dry run would). */
export interface PushedReferrer {
  /** Digest of the referrer's manifest (unchanged: it is pushed byte for byte). */
  digest: string;
  kind: ReferrerKind;
  artifactType: string;
  /** Digest of the manifest it refers to. */
  subject: string;
  /** The cosign-style tag it went under; absent for an OCI 1.1 referrer. */
  tag?: string;
  /**
   * How its subject lists it: the registry's referrers API, the fallback tag, or (a dry run)
   * `planned`; absent for a cosign-style tag.
   */
  listed?: "api" | "fallback-tag" | "planned";
}

/**
 * The blobs of every referrer in `root`'s graph that the image itself does not hold (`held`),
 * each digest once.
 */
export function referrerBlobs(
  root: ManifestNode,
  held: readonly ArchiveBlob[],
): ArchiveBlob[] {
  const seen = new Set(held.map((b) => b.digest));
  const blobs: ArchiveBlob[] = [];
  for (const { referrer } of referrersOf(root)) {
    for (const blob of uniqueBlobs(referrer.node)) {
      if (seen.has(blob.digest)) continue;
      seen.add(blob.digest);
      blobs.push(blob);
    }
  }
  return blobs;
}

/** `root`'s graph without its referrers (`referrers: false`): the image alone. */
export function withoutReferrers(root: ManifestNode): ManifestNode {
  const { referrers: _, ...node } = root;
  return { ...node, children: root.children.map(withoutReferrers) };
}

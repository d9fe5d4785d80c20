/**
 * The image graph: manifests and indexes with the blobs they name, the manifests an index names,
 * and what refers to each (signatures, SBOMs, attestations). Pull, push, inspect and the archive
 * readers all walk this one shape; where a blob's bytes come from (an archive's byte range, a
 * download) is the blob's own business.
 */
import type { Attachment, ReferrerKind } from "./referrer.ts";

/**
 * Where a blob's bytes come from: a re-readable range, so every attempt (an upload's retry, a
 * compression pass) starts fresh. Every blob of the graph is one; uploads read nothing else.
 */
export interface BlobSource {
  digest: string;
  size: number;
  /** Human name for errors: `app.tar:blobs/sha256/ab…`. */
  describe: string;
  /**
   * Streams `length` bytes starting at `offset` within the blob, each chunk a buffer of its own
   * that the consumer owns (it may free it once used).
   */
  read(offset: number, length: number, signal?: AbortSignal): AsyncIterable<Uint8Array>;
}

/** A blob a manifest names, readable on demand from wherever it is stored. */
export interface ImageBlob extends BlobSource {
  mediaType: string;
}

/** A manifest (or index) to push, with what must be in the registry before it. */
export interface ManifestNode {
  mediaType: string;
  digest: string;
  /** Exact bytes to push, so the digest is what the archive (or our synthesis) says. */
  bytes: Uint8Array;
  /** Config and layers (an index has none). */
  blobs: ImageBlob[];
  /** Manifests an index points at, pushed by digest before it. */
  children: ManifestNode[];
  /**
   * What refers to this manifest (signatures, SBOMs, attestations), pushed after it. Absent or empty when nothing does.
   */
  referrers?: ReferrerNode[];
}

/** A manifest that refers to another, with what refers to it in turn. */
export interface ReferrerNode {
  /** The referrer's own manifest, its blobs, and its own referrers (a signature of an SBOM). */
  node: ManifestNode;
  /** By `subject`, or by cosign's tag. */
  attached: Attachment;
  /** Signature, SBOM, attestation or other artifact. */
  kind: ReferrerKind;
  /** The manifest's `artifactType`, else its config's media type. */
  artifactType: string;
}

/** Every blob of a manifest tree (not its referrers'), each digest once. */
export function uniqueBlobs(root: ManifestNode): ImageBlob[] {
  const seen = new Map<string, ImageBlob>();
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

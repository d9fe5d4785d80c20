/**
 * What uploads share: their options, and the checks on what a registry says it stored. The
 * errors they raise are in `upload_errors.ts`.
 */
import type { BlobSource } from "../image/graph.ts";
import type { RegistryClient } from "./client.ts";
import { withDigest } from "./location.ts";

/**
 * Chunk size shared by every upload of a push. A registry (or a proxy in front of it) that
 * answers 413 to a chunk halves it for the rest of the push, down to `minSize`.
 */
export interface ChunkSettings {
  size: number;
  minSize: number;
}

export interface UploadOptions {
  /** Upload in PATCH chunks (undefined: one monolithic PUT). */
  chunks?: ChunkSettings;
  /** Try a cross-repository mount from this repository first. */
  mountFrom?: string;
  /**
   * Called once the blob's bytes are to go: its session is open (a mount, if tried, was
   * declined) or continued. `from` is what the session holds already: the offset the registry
   * confirmed for a continued session (`resume`), 0 for a new one. Never for a blob a mount
   * took.
   */
  onStart?: (from: number) => void;
  /** Reports bytes of this blob the registry has been sent so far. */
  onProgress?: (done: number) => void;
  /** Chunked only: continue this saved session (its URL) instead of starting a new one. */
  resume?: URL;
  /** Chunked only: called whenever the registry confirms an offset (to save resume state). */
  onCommitted?: (location: URL, offset: number) => Promise<void>;
  /** Chunked only: keep the session on failure, so a later run can resume it. */
  keepSessionOnFailure?: boolean;
}

/** How the blob got into the repository. */
export type UploadOutcome = "uploaded" | "mounted";

export function checkCommittedDigest(
  blob: Pick<BlobSource, "digest" | "describe">,
  reported: string | null,
): void {
  if (reported !== null && reported !== "" && reported !== blob.digest) {
    throw new Error(
      `Registry stored ${blob.describe} as ${reported}, expected ${blob.digest}`,
    );
  }
}

/**
 * `PUT <location>?digest=…`: asks the registry to commit the session's bytes as `blob.digest`,
 * then checks the digest it says it stored.
 */
export async function commitUpload(
  client: RegistryClient,
  location: URL,
  blob: Pick<BlobSource, "digest" | "describe">,
  action: string,
): Promise<void> {
  const response = await client.request({
    method: "PUT",
    url: withDigest(location, blob.digest),
    expect: [201, 204],
    action,
    followRedirects: true,
  });
  await response.discard();
  checkCommittedDigest(blob, response.headers.get("docker-content-digest"));
}

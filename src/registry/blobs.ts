/** Blob existence checks and the source a blob upload reads from. */
import type { RegistryClient } from "./client.ts";

/** Where a blob's bytes come from: a re-readable range, so every attempt starts fresh. */
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

/**
 * Whether the repository already has the blob (`HEAD /v2/<name>/blobs/<digest>`): the client's
 * repository, or `repository` of the same registry (the client needs pull scope on it).
 *
 * 404 means absent. Some registries (GCR, Artifactory in some setups) answer 403 rather than
 * 404 for a blob the account can't see yet; that is "absent", never "exists".
 */
export async function blobExists(
  client: RegistryClient,
  digest: string,
  repository?: string,
): Promise<boolean> {
  const response = await client.request({
    method: "HEAD",
    url: repository === undefined
      ? client.url(`blobs/${digest}`)
      : new URL(`/v2/${repository}/blobs/${digest}`, client.baseUrl),
    expect: [200, 404, 403, 401],
    action: `check blob ${digest}`,
    followRedirects: true,
    // Some registries (Artifactory, some GAR setups) answer 401 on HEAD for a blob they don't
    // have, even with a fresh token. Never read that as "exists": upload it, and let the
    // upload itself report real credential problems.
    unauthorizedIsAnswer: true,
  });
  await response.discard();
  return response.status === 200;
}

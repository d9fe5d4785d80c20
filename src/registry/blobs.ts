/**
 * Blob existence checks and blob downloads. What an upload reads from is a `BlobSource`
 * (`src/image/graph.ts`).
 */
import { answerOf } from "./answer_class.ts";
import type { RegistryClient } from "./client.ts";
import type { TransportResponse } from "./transport.ts";

/**
 * Whether the repository already has the blob (`HEAD /v2/<name>/blobs/<digest>`): the client's
 * repository, or `repository` of the same registry (the client needs pull scope on it).
 *
 * 200 means present; an answer the table reads as `not-found` in the `probe` phase (404, and
 * the 403 or 401 some registries answer for a blob the account can't see) means absent, never
 * "exists".
 */
export async function blobExists(
  client: RegistryClient,
  digest: string,
  repository?: string,
): Promise<boolean> {
  try {
    const response = await client.request({
      method: "HEAD",
      url: repository === undefined
        ? client.url(`blobs/${digest}`)
        : new URL(`/v2/${repository}/blobs/${digest}`, client.baseUrl),
      expect: [200],
      action: `check blob ${digest}`,
      followRedirects: true,
      // Some registries (Artifactory, some GAR setups) answer 401 on HEAD for a blob they don't
      // have, even with a fresh token. Never read that as "exists": upload it, and let the
      // upload itself report real credential problems.
      unauthorizedIsAnswer: true,
    });
    await response.discard();
    return true;
  } catch (error) {
    if (answerOf(error, "probe").kind === "not-found") return false;
    throw error;
  }
}

/** A blob's bytes from some offset on, and where in the blob they start. */
export interface BlobResponse {
  response: TransportResponse;
  /**
   * The offset of the body's first byte: the one asked for when the registry honoured the
   * `Range`, 0 when it sent the whole blob (a 200: it ignored the `Range`), another offset or
   * undefined when it answered the `Range` from elsewhere or unreadably.
   */
  start: number | undefined;
  /** The registry sent the whole blob (200), whatever was asked. */
  whole: boolean;
}

/**
 * `GET /v2/<name>/blobs/<digest>`, from byte `from` on (`Range: bytes=N-` when `from` > 0).
 * Redirects to object storage are followed without `Authorization`.
 */
export async function fetchBlob(
  client: RegistryClient,
  digest: string,
  from: number,
): Promise<BlobResponse> {
  const response = await client.request({
    method: "GET",
    url: client.url(`blobs/${digest}`),
    headers: from > 0 ? { Range: `bytes=${from}-` } : {},
    expect: [200, 206],
    action: `download blob ${digest}`,
    followRedirects: true,
  });
  if (response.status === 200) return { response, start: 0, whole: true };
  const start = /^bytes (\d+)-/.exec(response.headers.get("content-range") ?? "")?.[1];
  return { response, start: start === undefined ? undefined : Number(start), whole: false };
}

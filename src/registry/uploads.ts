/**
 * Blob uploads: a session (`POST`), then either one streamed `PUT` with an exact
 * `Content-Length` (monolithic) or a series of `PATCH` chunks with `Content-Range` and a closing
 * `PUT ?digest=` (chunked). Bytes are hashed as they are sent and checked against the digest
 * before the registry commits the blob.
 */
import { Sha256 } from "../digest.ts";
import type { BlobSource } from "./blobs.ts";
import type { RegistryClient } from "./client.ts";
import { nextOffsetFromRange, resolveLocation, withDigest } from "./location.ts";
import { isRetryable } from "./retry.ts";
import { RegistryError } from "./registry_error.ts";
import type { BodySource } from "./transport.ts";

/** The bytes read from the archive don't hash to the digest the archive claims. */
export class BlobDigestMismatchError extends Error {
  override name = "BlobDigestMismatchError";
}

export interface UploadOptions {
  /** Upload in PATCH chunks of this size (undefined: one monolithic PUT). */
  chunkSize?: number;
  /** Reports bytes of this blob the registry has been sent so far. */
  onProgress?: (done: number) => void;
}

/** Uploads one blob into the client's repository. Throws on failure after cleaning up. */
export async function uploadBlob(
  client: RegistryClient,
  blob: BlobSource,
  options: UploadOptions = {},
): Promise<void> {
  const session = await startSession(client, blob);
  let committed = false;
  try {
    if (options.chunkSize === undefined) await putMonolithic(client, blob, session.url, options);
    else {
      const chunk = Math.max(options.chunkSize, session.minChunk ?? 0);
      await patchChunks(client, blob, session.url, chunk, options);
    }
    committed = true;
  } finally {
    if (!committed) await cancelSession(client, session.url);
  }
}

interface Session {
  url: URL;
  minChunk: number | undefined;
}

async function startSession(client: RegistryClient, blob: BlobSource): Promise<Session> {
  const url = client.url("blobs/uploads/");
  const action = `start upload of ${blob.digest}`;
  const response = await client.request({ method: "POST", url, expect: [202], action });
  await response.discard();
  const min = Number(response.headers.get("oci-chunk-min-length") ?? "");
  return {
    url: resolveLocation(response.headers.get("location"), url, action),
    minChunk: Number.isSafeInteger(min) && min > 0 ? min : undefined,
  };
}

/** Deletes an abandoned session so the registry can free it; failures don't matter. */
async function cancelSession(client: RegistryClient, url: URL): Promise<void> {
  if (client.signal?.aborted) return;
  try {
    const response = await client.request({
      method: "DELETE",
      url,
      expect: [200, 202, 204, 404],
      action: "cancel upload",
      retry: false,
    });
    await response.discard();
  } catch {
    // Best effort: the registry expires abandoned sessions on its own.
  }
}

async function putMonolithic(
  client: RegistryClient,
  blob: BlobSource,
  location: URL,
  options: UploadOptions,
): Promise<void> {
  let hash = new Sha256();
  let hashed = 0;
  const body: BodySource = {
    length: blob.size,
    async *open(signal) {
      hash = new Sha256();
      hashed = 0;
      for await (const chunk of blob.read(0, blob.size, signal)) {
        hash.update(chunk);
        hashed += chunk.length;
        yield chunk;
      }
    },
  };
  const url = withDigest(location, blob.digest);
  try {
    const response = await client.request({
      method: "PUT",
      url,
      headers: { "Content-Type": "application/octet-stream" },
      body,
      expect: [201, 204],
      action: `upload blob ${blob.digest}`,
      // A failed PUT may have left bytes in the session: the whole blob is retried instead.
      retry: false,
      followRedirects: true,
      ...(options.onProgress ? { onBodyProgress: options.onProgress } : {}),
    });
    await response.discard();
    checkCommittedDigest(blob, response.headers.get("docker-content-digest"));
  } catch (error) {
    // The registry says DIGEST_INVALID: find out whether the archive is to blame.
    if (hashed === blob.size && hash.digest() !== blob.digest) throw digestMismatch(blob);
    throw error;
  }
}

async function patchChunks(
  client: RegistryClient,
  blob: BlobSource,
  start: URL,
  chunkSize: number,
  options: UploadOptions,
): Promise<void> {
  const hash = new Sha256();
  let hashedUpTo = 0;
  let location = start;
  let offset = 0;
  let failures = 0;
  while (offset < blob.size) {
    const from = offset;
    const length = Math.min(chunkSize, blob.size - from);
    const body: BodySource = {
      length,
      async *open(signal) {
        let position = from;
        for await (const chunk of blob.read(from, length, signal)) {
          // Hash each byte once, in order, even when a chunk is resent from an earlier offset.
          if (position + chunk.length > hashedUpTo) {
            hash.update(chunk.subarray(Math.max(0, hashedUpTo - position)));
            hashedUpTo = position + chunk.length;
          }
          position += chunk.length;
          yield chunk;
        }
      },
    };
    try {
      const response = await client.request({
        method: "PATCH",
        url: location,
        headers: {
          "Content-Type": "application/octet-stream",
          // No `bytes ` prefix: the spec's form; ACR rejects the prefixed one.
          "Content-Range": `${from}-${from + length - 1}`,
        },
        body,
        expect: [202],
        action: `upload chunk ${from}-${from + length - 1} of ${blob.digest}`,
        retry: false,
        ...(options.onProgress
          ? { onBodyProgress: (sent) => options.onProgress!(from + sent) }
          : {}),
      });
      await response.discard();
      location = resolveLocation(
        response.headers.get("location") ?? location.href,
        location,
        "upload chunk",
      );
      offset = nextOffsetFromRange(response.headers.get("range")) ?? from + length;
      if (offset < from + length) offset = Math.max(offset, from); // registry kept less: resend
      failures = 0;
    } catch (error) {
      failures++;
      const rangeError = error instanceof RegistryError && error.status === 416;
      if ((!isRetryable(error) && !rangeError) || failures > client.retries) throw error;
      await client.waitBeforeRetry(`chunk at ${from} of ${blob.digest}`, failures + 1, error);
      // Ask the registry what it holds and continue from there, not from zero.
      const status = await uploadStatus(client, location);
      location = status.location;
      offset = status.offset;
    }
    options.onProgress?.(offset);
  }
  if (hashedUpTo === blob.size && hash.digest() !== blob.digest) throw digestMismatch(blob);
  const response = await client.request({
    method: "PUT",
    url: withDigest(location, blob.digest),
    expect: [201, 204],
    action: `complete upload of ${blob.digest}`,
    followRedirects: true,
  });
  await response.discard();
  checkCommittedDigest(blob, response.headers.get("docker-content-digest"));
}

/** `GET <location>`: where an upload session stands. */
export async function uploadStatus(
  client: RegistryClient,
  location: URL,
): Promise<{ location: URL; offset: number }> {
  const response = await client.request({
    method: "GET",
    url: location,
    expect: [204, 200],
    action: "query upload status",
  });
  await response.discard();
  return {
    location: response.headers.get("location")
      ? resolveLocation(response.headers.get("location"), location, "query upload status")
      : location,
    offset: nextOffsetFromRange(response.headers.get("range")) ?? 0,
  };
}

function checkCommittedDigest(blob: BlobSource, reported: string | null): void {
  if (reported !== null && reported !== "" && reported !== blob.digest) {
    throw new Error(
      `Registry stored ${blob.describe} as ${reported}, expected ${blob.digest}`,
    );
  }
}

/** The error for a blob whose bytes don't hash to its digest. */
export function digestMismatch(blob: BlobSource): BlobDigestMismatchError {
  return new BlobDigestMismatchError(
    `${blob.describe}: content does not match its digest ${blob.digest} (the archive is corrupt)`,
  );
}

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

/** The registry won't take chunked (PATCH) uploads; one monolithic PUT may still work. */
export class ChunkedUploadRefusedError extends Error {
  override name = "ChunkedUploadRefusedError";
}

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
  /** Reports bytes of this blob the registry has been sent so far. */
  onProgress?: (done: number) => void;
}

/** How the blob got into the repository. */
export type UploadOutcome = "uploaded" | "mounted";

/** Uploads one blob into the client's repository. Throws on failure after cleaning up. */
export async function uploadBlob(
  client: RegistryClient,
  blob: BlobSource,
  options: UploadOptions = {},
): Promise<UploadOutcome> {
  const session = await startSession(client, blob, options.mountFrom);
  if (session === "mounted") return "mounted";
  let committed = false;
  try {
    if (options.chunks === undefined) await putMonolithic(client, blob, session.url, options);
    else {
      if (session.minChunk !== undefined && options.chunks.size < session.minChunk) {
        options.chunks.size = session.minChunk;
      }
      await patchChunks(client, blob, session.url, options.chunks, options);
    }
    committed = true;
  } finally {
    if (!committed) await cancelSession(client, session.url);
  }
  return "uploaded";
}

interface Session {
  url: URL;
  minChunk: number | undefined;
}

/**
 * `POST …/blobs/uploads/`, optionally as a mount (`?mount=<digest>&from=<repo>`): 201 means
 * mounted; 202 is an ordinary upload session, which is what registries answer when they
 * won't mount (the source lacks the blob, or the account can't read it).
 */
async function startSession(
  client: RegistryClient,
  blob: BlobSource,
  mountFrom: string | undefined,
): Promise<Session | "mounted"> {
  const url = client.url("blobs/uploads/");
  if (mountFrom !== undefined) {
    url.search = `?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(mountFrom)}`;
  }
  const action = mountFrom === undefined
    ? `start upload of ${blob.digest}`
    : `mount ${blob.digest} from ${mountFrom}`;
  const response = await client.request({
    method: "POST",
    url,
    expect: mountFrom === undefined ? [202] : [201, 202],
    action,
  });
  await response.discard();
  if (response.status === 201) {
    checkCommittedDigest(blob, response.headers.get("docker-content-digest"));
    return "mounted";
  }
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

/** Statuses with which registries turn chunked uploads away (ECR-like setups, old proxies). */
const CHUNKS_REFUSED = new Set([400, 405, 415, 501]);

async function patchChunks(
  client: RegistryClient,
  blob: BlobSource,
  start: URL,
  chunks: ChunkSettings,
  options: UploadOptions,
): Promise<void> {
  const hash = new Sha256();
  let hashedUpTo = 0;
  let location = start;
  let offset = 0;
  let failures = 0;
  while (offset < blob.size) {
    const from = offset;
    const length = Math.min(chunks.size, blob.size - from);
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
      if (
        from === 0 && error instanceof RegistryError &&
        (CHUNKS_REFUSED.has(error.status) || error.hasCode("UNSUPPORTED")) &&
        !error.hasCode("DIGEST_INVALID")
      ) {
        throw new ChunkedUploadRefusedError(
          `${client.registryName} refused a chunked upload (${error.status})`,
          { cause: error },
        );
      }
      if (error instanceof RegistryError && error.status === 413) {
        // A body-size cap (Cloudflare ~100 MB, GHCR 4 MiB chunks): smaller chunks, same spot.
        if (chunks.size <= chunks.minSize) throw error;
        chunks.size = Math.max(chunks.minSize, Math.floor(chunks.size / 2));
        client.sink({
          type: "notice",
          message: `${client.registryName} refused a ${length}-byte chunk (413); ` +
            `sending ${chunks.size}-byte chunks`,
        });
        const status = await uploadStatus(client, location);
        location = status.location;
        offset = status.offset;
        continue;
      }
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

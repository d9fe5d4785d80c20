/**
 * Chunked uploads: `PATCH` chunks with `Content-Range`, each response's `Location` replacing
 * the last, then `PUT ?digest=`. A failed chunk asks the registry where the session stands
 * (`GET`, `Range`) and continues from there, not from zero; a saved session from an earlier
 * run continues the same way.
 */
import { Sha256 } from "../digest.ts";
import type { BlobSource } from "./blobs.ts";
import type { RegistryClient } from "./client.ts";
import { nextOffsetFromRange, resolveLocation } from "./location.ts";
import { isRetryable } from "./retry.ts";
import { RegistryError } from "./registry_error.ts";
import type { BodySource } from "./transport.ts";
import {
  ChunkedUploadRefusedError,
  type ChunkSettings,
  commitUpload,
  digestMismatch,
  SavedSessionGoneError,
  type UploadOptions,
  UploadSessionLostError,
} from "./upload_common.ts";

/** Statuses with which registries turn chunked uploads away (ECR-like setups, old proxies). */
const CHUNKS_REFUSED = new Set([400, 405, 415, 501]);

/** Uploads `blob` in chunks into the session at `start`, which already holds `startOffset`. */
export async function patchChunks(
  client: RegistryClient,
  blob: BlobSource,
  start: URL,
  startOffset: number,
  chunks: ChunkSettings,
  options: UploadOptions,
): Promise<void> {
  const hash = new Sha256();
  // Bytes a resumed session already holds are hashed locally, so the digest check still covers
  // every byte the registry will commit.
  for await (const piece of blob.read(0, startOffset, client.signal)) hash.update(piece);
  let hashedUpTo = startOffset;
  let location = start;
  let offset = startOffset;
  let failures = 0;
  while (offset < blob.size) {
    const from = offset;
    const length = Math.min(chunks.size, blob.size - from);
    const body: BodySource = {
      length,
      ownsChunks: true,
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
      await options.onCommitted?.(location, offset);
    } catch (error) {
      if (isSessionGone(error)) throw sessionGone(error);
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
        chunks.size = Math.max(chunks.minSize, Math.floor(Math.min(chunks.size, length) / 2));
        client.sink({
          type: "notice",
          kind: "chunk-size-reduced",
          digest: blob.digest,
          message: `${client.registryName} refused a ${length}-byte chunk (413); ` +
            `sending ${chunks.size}-byte chunks`,
        });
        const status = await resumeStatus(client, location);
        location = status.location;
        offset = status.offset;
        continue;
      }
      failures++;
      const rangeError = error instanceof RegistryError && error.status === 416;
      if ((!isRetryable(error) && !rangeError) || failures > client.retries) throw error;
      await client.waitBeforeRetry(
        { kind: "chunk", digest: blob.digest, offset: from },
        failures + 1,
        error,
      );
      // Ask the registry what it holds and continue from there, not from zero.
      const status = await resumeStatus(client, location);
      location = status.location;
      offset = status.offset;
      await options.onCommitted?.(location, offset);
    }
    options.onProgress?.(offset);
  }
  if (hashedUpTo === blob.size && hash.digest() !== blob.digest) throw digestMismatch(blob);
  await commitUpload(client, location, blob, `complete upload of ${blob.digest}`);
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

/**
 * Where a session stands. A registry that no longer knows it (404, or distribution's
 * BLOB_UPLOAD_UNKNOWN / BLOB_UPLOAD_INVALID) raises {@linkcode UploadSessionLostError}, or
 * {@linkcode SavedSessionGoneError} when `saved` says we are coming back to a saved session.
 */
export async function resumeStatus(
  client: RegistryClient,
  location: URL,
  { saved = false } = {},
): Promise<{ location: URL; offset: number }> {
  try {
    return await uploadStatus(client, location);
  } catch (error) {
    throw isSessionGone(error) ? sessionGone(error, { saved }) : error;
  }
}

/**
 * Whether the registry no longer has the session. distribution answers BLOB_UPLOAD_INVALID
 * (and deletes the session) when it holds more bytes than the `_state` we present says, which
 * is what a chunk cut off mid-body leaves behind; others answer 404 or BLOB_UPLOAD_UNKNOWN.
 */
export function isSessionGone(error: unknown): error is RegistryError {
  return error instanceof RegistryError &&
    (error.status === 404 || error.status === 410 || error.hasCode("BLOB_UPLOAD_UNKNOWN") ||
      error.hasCode("BLOB_UPLOAD_INVALID"));
}

/** The error for a session the registry no longer has (see {@linkcode isSessionGone}). */
export function sessionGone(
  error: RegistryError,
  { saved = false } = {},
): UploadSessionLostError {
  const code = error.codes[0]?.code;
  const status = `(${error.status}${code ? ` ${code}` : ""})`;
  if (!saved) {
    return new UploadSessionLostError(`the registry discarded the upload session ${status}`, {
      cause: error,
    });
  }
  const why = error.hasCode("BLOB_UPLOAD_INVALID")
    ? "it holds other bytes than were confirmed to us: the last request before the " +
      "interruption was cut off mid-body, or its answer was lost"
    : "it expired or was cleaned up";
  return new SavedSessionGoneError(
    `the registry discarded the saved upload session ${status}: ${why}`,
    { cause: error },
  );
}

/**
 * Blob uploads: a session (`POST`), then either one streamed `PUT` with an exact
 * `Content-Length` (monolithic) or a series of `PATCH` chunks with `Content-Range` and a closing
 * `PUT ?digest=` (chunked). Chunked bytes are hashed as they are sent and checked against the
 * digest before the registry commits the blob; a monolithic PUT leaves the check to the registry
 * and hashes the blob only when it answers DIGEST_INVALID.
 */
import { Sha256 } from "../digest.ts";
import type { BlobSource } from "../image/graph.ts";
import type { RegistryClient } from "./client.ts";
import { answerOf } from "./answer_class.ts";
import { RegistryError } from "./registry_error.ts";
import { patchChunks } from "./chunked_upload.ts";
import { checkCommittedDigest, type UploadOptions, type UploadOutcome } from "./upload_common.ts";
import {
  BlobDigestMismatchError,
  ChunkedUploadRefusedError,
  digestMismatch,
  writesRefused,
} from "./upload_errors.ts";
import { resumeStatus } from "./upload_session.ts";
import { resolveLocation, withDigest } from "./location.ts";
import type { BodySource, TransportResponse } from "./transport.ts";

/** Uploads one blob into the client's repository. Throws on failure after cleaning up. */
export async function uploadBlob(
  client: RegistryClient,
  blob: BlobSource,
  options: UploadOptions = {},
): Promise<UploadOutcome> {
  let session: Session;
  let startOffset = 0;
  if (options.chunks !== undefined && options.resume !== undefined) {
    const status = await resumeStatus(client, options.resume, { saved: true });
    session = { url: status.location, minChunk: undefined };
    startOffset = status.offset;
  } else {
    const started = await startSession(client, blob, options.mountFrom);
    if (started === "mounted") return "mounted";
    session = started;
  }
  options.onStart?.(startOffset);
  try {
    if (options.chunks === undefined) await putMonolithic(client, blob, session.url, options);
    else {
      if (session.minChunk !== undefined && options.chunks.size < session.minChunk) {
        options.chunks.size = session.minChunk;
      }
      await patchChunks(client, blob, session.url, startOffset, options.chunks, options);
    }
  } catch (error) {
    // A resumable session survives ordinary failures; a wrong blob or a refused method doesn't.
    const keep = options.chunks !== undefined && options.keepSessionOnFailure === true &&
      !(error instanceof BlobDigestMismatchError || error instanceof ChunkedUploadRefusedError);
    if (!keep) await cancelSession(client, session.url);
    throw error;
  }
  return "uploaded";
}

export interface Session {
  url: URL;
  minChunk: number | undefined;
}

/**
 * `POST …/blobs/uploads/`, optionally as a mount (`?mount=<digest>&from=<repo>`): 201 means
 * mounted; 202 is an ordinary upload session, which is what registries answer when they
 * won't mount (the source lacks the blob, or the account can't read it).
 */
export async function startSession(
  client: RegistryClient,
  blob: Pick<BlobSource, "digest" | "describe">,
  mountFrom: string | undefined,
): Promise<Session | "mounted"> {
  if (mountFrom === undefined) return await openSession(client, `start upload of ${blob.digest}`);
  const url = client.url("blobs/uploads/");
  url.search = `?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(mountFrom)}`;
  const action = `mount ${blob.digest} from ${mountFrom}`;
  const response = await postUploads(client, url, [201, 202], action);
  if (response.status === 201) {
    checkCommittedDigest(blob, response.headers.get("docker-content-digest"));
    return "mounted";
  }
  return sessionFrom(response, url, action);
}

/**
 * `POST …/blobs/uploads/`: a new, empty session. `action` names the blob, whose digest may be
 * known only once it is all sent (a layer compressed on the fly).
 */
export async function openSession(client: RegistryClient, action: string): Promise<Session> {
  const url = client.url("blobs/uploads/");
  return sessionFrom(await postUploads(client, url, [202], action), url, action);
}

/** The `POST`, its answer drained (what matters is in its headers). */
async function postUploads(
  client: RegistryClient,
  url: URL,
  expect: number[],
  action: string,
): Promise<TransportResponse> {
  let response;
  try {
    response = await client.request({ method: "POST", url, expect, action });
  } catch (error) {
    // A 405 here is about the repository, not this blob or how it is sent: the streamed-PATCH
    // fallbacks read 405 on their PATCHes as "send it as stored", which would only ask again.
    if (error instanceof RegistryError && answerOf(error, "write").kind === "writes-refused") {
      throw writesRefused(client, error);
    }
    throw error;
  }
  await response.discard();
  return response;
}

/** The session a `POST` opened: its `Location`, and `OCI-Chunk-Min-Length` when it says. */
function sessionFrom(response: TransportResponse, url: URL, action: string): Session {
  const min = Number(response.headers.get("oci-chunk-min-length") ?? "");
  return {
    url: resolveLocation(response.headers.get("location"), url, action),
    minChunk: Number.isSafeInteger(min) && min > 0 ? min : undefined,
  };
}

/** Deletes an abandoned session so the registry can free it; failures don't matter. */
export async function cancelSession(client: RegistryClient, url: URL): Promise<void> {
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
  const body: BodySource = {
    length: blob.size,
    ownsChunks: true,
    open: (signal) => blob.read(0, blob.size, signal),
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
    // The registry says DIGEST_INVALID: find out whether the archive is to blame. Hashed only
    // now: the registry checks every digest it stores, so a corrupt layer never gets a manifest
    // either way, and hashing each upload as it went cost more CPU than reading and sending it
    // (issue 21: 1.3 of 2.9 CPU-s for a 1.5 GB push as stored).
    const actual = error instanceof RegistryError && error.hasCode("DIGEST_INVALID")
      ? await digestOf(blob, client.signal)
      : undefined;
    if (actual !== undefined && actual !== blob.digest) throw digestMismatch(blob);
    throw error;
  }
}

/** The blob's digest as read now; undefined when it can't be read again (say, a pipe). */
async function digestOf(blob: BlobSource, signal?: AbortSignal): Promise<string | undefined> {
  const hash = new Sha256();
  try {
    for await (const chunk of blob.read(0, blob.size, signal)) hash.update(chunk);
  } catch {
    return undefined;
  }
  return hash.digest();
}

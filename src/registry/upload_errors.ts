/**
 * The errors uploads raise, each from an answer already decided (see `answer_class.ts`, which
 * reads them back) or from a check of the bytes. They import nothing of the client, so the
 * answer table's reader can know them without a cycle.
 */
import type { BlobSource } from "../image/graph.ts";
import type { RegistryError } from "./registry_error.ts";

/** The bytes read from the archive don't hash to the digest the archive claims. */
export class BlobDigestMismatchError extends Error {
  override name = "BlobDigestMismatchError";
}

/**
 * The registry no longer has an upload session we were using. It expired, or distribution
 * cancelled it: a request cut off mid-body by a front end that forwards bodies as they arrive,
 * or a request whose answer never reached us, left it holding other bytes than the session's
 * `_state` says (see PROTOCOL.md). Nothing of it can be saved: the blob starts again in a new
 * session.
 */
export class UploadSessionLostError extends Error {
  override name = "UploadSessionLostError";
}

/**
 * A session saved by an earlier attempt or run was gone when we came back to it: starting the
 * blob again is the expected next step, not a failure of this attempt.
 */
export class SavedSessionGoneError extends UploadSessionLostError {
  override name = "SavedSessionGoneError";
}

/**
 * The registry turned a write (an upload session's `POST`, a manifest's `PUT`) away with 405: it takes no writes at all, so
 * neither retrying nor sending the blob another way can help. distribution answers this way
 * when `storage.maintenance.readonly` is on (a bare `405 Method Not Allowed`, `Allow: GET,
 * HEAD`), and as a pull-through cache (`UNSUPPORTED`). The 405 is its `cause`.
 */
export class WritesRefusedError extends Error {
  override name = "WritesRefusedError";
}

/**
 * A write (an upload session's `POST`, a manifest's `PUT`) the registry answered with 405 (the
 * answer table's `writes-refused`), as one line naming the registry and repository; the 405 is
 * its `cause`.
 */
export function writesRefused(
  client: { readonly registryName: string; readonly repository: string },
  error: RegistryError,
): WritesRefusedError {
  const codes = error.codes.map((c) => c.message ? `${c.code}: ${c.message}` : c.code).join("; ");
  return new WritesRefusedError(
    `${client.registryName} refused writes to ${client.repository}: ${error.method} ` +
      `${error.url} answered 405${codes === "" ? "" : ` (${codes})`}; the registry is ` +
      `read-only, or a mirror that takes no pushes`,
    { cause: error },
  );
}

/** The registry won't take chunked (PATCH) uploads; one monolithic PUT may still work. */
export class ChunkedUploadRefusedError extends Error {
  override name = "ChunkedUploadRefusedError";
}

/** The error for a blob whose bytes don't hash to its digest. */
export function digestMismatch(blob: BlobSource): BlobDigestMismatchError {
  return new BlobDigestMismatchError(
    `${blob.describe}: content does not match its digest ${blob.digest} (the archive is corrupt)`,
  );
}

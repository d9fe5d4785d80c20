/**
 * An upload session's state as the registry reports it, and the steps both `PATCH` loops
 * (`chunked_upload.ts`, blobs of known size; `segmented_upload.ts`, streams) share: read where
 * the session stands after an accepted `PATCH` (its `Location` and `Range`), and after a failed
 * one decide through the answer table whether to wait, ask the session where it stands
 * (`GET <location>`) and continue from there, or give up. A saved session from an earlier run
 * is continued by the same `GET`.
 */
import type { RetrySubject } from "../progress/events.ts";
import { type Answer, answerOf } from "./answer_class.ts";
import type { RegistryClient } from "./client.ts";
import { nextOffsetFromRange, resolveLocation } from "./location.ts";
import { RegistryError } from "./registry_error.ts";
import type { TransportResponse } from "./transport.ts";
import { SavedSessionGoneError, UploadSessionLostError } from "./upload_common.ts";

/** Where a session stands: the URL to send its next request to, and the bytes it holds. */
export interface SessionState {
  location: URL;
  offset: number;
}

/** `GET <location>`: where an upload session stands. */
export async function uploadStatus(client: RegistryClient, location: URL): Promise<SessionState> {
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
 * Where a session stands. A registry that no longer knows it (the answer table's
 * `session-gone`) raises {@linkcode UploadSessionLostError}, or
 * {@linkcode SavedSessionGoneError} when `saved` says we are coming back to a saved session.
 */
export async function resumeStatus(
  client: RegistryClient,
  location: URL,
  { saved = false } = {},
): Promise<SessionState> {
  try {
    return await uploadStatus(client, location);
  } catch (error) {
    const answer = answerOf(error, "session-status");
    throw answer.kind === "session-gone" ? sessionGone(error, answer, { saved }) : error;
  }
}

/**
 * Where the session stands after a `PATCH` it accepted: each answer's `Location` replaces the
 * last, and its `Range` says what the session holds (`end`, what was sent, when it doesn't say).
 */
export function patchAccepted(
  response: TransportResponse,
  location: URL,
  end: number,
  action: string,
): SessionState {
  return {
    location: resolveLocation(response.headers.get("location") ?? location.href, location, action),
    offset: nextOffsetFromRange(response.headers.get("range")) ?? end,
  };
}

/**
 * After a `PATCH` failed with `error` (the `failures`th in a row), as the answer table decided
 * (`answer`): a lost session raises {@linkcode UploadSessionLostError}; a failure worth
 * retrying (`retry`, or `resume` after a 416) waits as the retry policy says and asks the
 * registry what it holds, to continue from there, not from zero; anything else, or a failure
 * past `--retry-attempts`, is rethrown.
 */
export async function recoverSession(
  client: RegistryClient,
  error: unknown,
  answer: Answer,
  { failures, subject, location }: { failures: number; subject: RetrySubject; location: URL },
): Promise<SessionState> {
  if (answer.kind === "session-gone") throw sessionGone(error, answer);
  if ((answer.kind !== "retry" && answer.kind !== "resume") || failures > client.retries) {
    throw error;
  }
  await client.waitBeforeRetry(subject, failures + 1, error);
  return await resumeStatus(client, location);
}

/** The error for a session the registry no longer has (the table's `session-gone`). */
export function sessionGone(
  error: unknown,
  answer: Answer,
  { saved = false } = {},
): UploadSessionLostError {
  const status = `(${answer.said})`;
  if (!saved) {
    return new UploadSessionLostError(`the registry discarded the upload session ${status}`, {
      cause: error,
    });
  }
  const why = error instanceof RegistryError && error.hasCode("BLOB_UPLOAD_INVALID")
    ? "it holds other bytes than were confirmed to us: the last request before the " +
      "interruption was cut off mid-body, or its answer was lost"
    : "it expired or was cleaned up";
  return new SavedSessionGoneError(
    `the registry discarded the saved upload session ${status}: ${why}`,
    { cause: error },
  );
}

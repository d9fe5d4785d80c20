/**
 * An upload session's state as the registry reports it, and the steps both `PATCH` loops
 * (`chunked_upload.ts`, blobs of known size; `segmented_upload.ts`, streams) share: send a
 * `PATCH` and read where the session stands after it (its `Location` and `Range`), and after a
 * failed one decide through the answer table whether to wait, ask the session where it stands
 * (`GET <location>`) and continue from there, or give up. A saved session from an earlier run
 * is continued by the same `GET`.
 */
import type { RetrySubject } from "../progress/events.ts";
import { answerOf } from "./answer_class.ts";
import type { Answer } from "./answer_table.ts";
import type { RegistryClient } from "./client.ts";
import { nextOffsetFromRange, resolveLocation } from "./location.ts";
import { RegistryError } from "./registry_error.ts";
import type { BodySource } from "./transport.ts";
import { SavedSessionGoneError, UploadSessionLostError } from "./upload_errors.ts";

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

/** One `PATCH` into a session (see {@linkcode patchSession}). */
export interface PatchSpec {
  /** The bytes, re-created for each attempt. */
  body: BodySource;
  /** `Content-Range` for a chunk of known bounds; none for a streamed segment. */
  headers?: Record<string, string>;
  action: string;
  /** Where the session will stand once the body is all sent, when the answer doesn't say. */
  end: () => number;
  onBodyProgress?: (sent: number) => void;
}

/**
 * Sends one `PATCH` to the session at `location` (never retried on its own: a failed one is
 * for {@linkcode recoverSession}). Each answer's `Location` replaces the last, and its `Range`
 * says what the session holds.
 */
export async function patchSession(
  client: RegistryClient,
  location: URL,
  spec: PatchSpec,
): Promise<SessionState> {
  const response = await client.request({
    method: "PATCH",
    url: location,
    headers: { "Content-Type": "application/octet-stream", ...spec.headers },
    body: spec.body,
    expect: [202],
    action: spec.action,
    retry: false,
    ...(spec.onBodyProgress ? { onBodyProgress: spec.onBodyProgress } : {}),
  });
  await response.discard();
  return {
    location: resolveLocation(
      response.headers.get("location") ?? location.href,
      location,
      spec.action,
    ),
    offset: nextOffsetFromRange(response.headers.get("range")) ?? spec.end(),
  };
}

/** What {@linkcode recoverSession} knows of the failed `PATCH`. */
export interface RecoverOptions {
  /** Failures in a row, this one included. */
  failures: number;
  /** What the retry events name. */
  subject: RetrySubject;
  /** The session the `PATCH` went to. */
  location: URL;
  /** Called with where the session stands once asked (to save resume state). */
  onCommitted?: (location: URL, offset: number) => Promise<void> | void;
}

/**
 * After a `PATCH` failed with `error`, as the answer table decided (`answer`): a lost session
 * raises {@linkcode UploadSessionLostError}; a failure worth retrying (`retry`, or `resume`
 * after a 416) waits as the retry policy says and asks the registry what it holds, to continue
 * from there, not from zero; anything else, or a failure past `--retry-attempts`, is rethrown.
 */
export async function recoverSession(
  client: RegistryClient,
  error: unknown,
  answer: Answer,
  options: RecoverOptions,
): Promise<SessionState> {
  if (answer.kind === "session-gone") throw sessionGone(error, answer);
  if ((answer.kind !== "retry" && answer.kind !== "resume") || options.failures > client.retries) {
    throw error;
  }
  await client.waitBeforeRetry(options.subject, options.failures + 1, error);
  const state = await resumeStatus(client, options.location);
  await options.onCommitted?.(state.location, state.offset);
  return state;
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

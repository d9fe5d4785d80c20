/**
 * What a thrown error means, in the answer table's terms (`answer_table.ts`): for code that
 * must decide without reading statuses (push, pull, the upload loops).
 *
 * A {@linkcode RegistryError} is decided by its status and codes. Network errors (reset,
 * refused, timed out) are `retry`; a TLS verification failure is `fatal`. Errors the upload
 * code raised from a decided answer keep that decision: {@linkcode UploadSessionLostError} is
 * `session-gone`, {@linkcode WritesRefusedError} `writes-refused`,
 * {@linkcode ChunkedUploadRefusedError} `method-refused`, and {@linkcode AuthError}
 * `auth-refused`. A {@linkcode TokenServiceError} is `fatal`: the token request was retried
 * already (its `token` phase), and retrying the request it was for would retry it again. It
 * sits above both the table and the error classes, and neither imports it.
 *
 * @example Asking about a failed request without reading its status
 * ```ts
 * import { answerOf } from "./answer_class.ts";
 * import { RegistryError } from "./registry_error.ts";
 *
 * const url = "https://registry.example/v2/app/blobs/uploads/1";
 * const error = new RegistryError({ method: "PATCH", url, status: 411 });
 * if (answerOf(error, "stream").kind === "method-refused") {
 *   // A proxy wants a Content-Length: send the layer as stored instead.
 * }
 * ```
 */
import { type Answer, type AnswerKind, classifyAnswer, type RequestPhase } from "./answer_table.ts";
import { AuthError, TokenServiceError } from "./auth_error.ts";
import { NetworkError, RegistryError } from "./registry_error.ts";
import {
  ChunkedUploadRefusedError,
  UploadSessionLostError,
  WritesRefusedError,
} from "./upload_errors.ts";

/**
 * What `error` means, for code that must decide without reading statuses (push, pull, the
 * upload loops). `phase` is where the request that failed stood (default `request`). Only
 * `error` itself is read, not its `cause`: a wrapper decides for itself.
 */
export function answerOf(error: unknown, phase: RequestPhase = "request"): Answer {
  if (error instanceof RegistryError) return classifyAnswer(error, phase);
  const decided = (kind: AnswerKind, said: string, because: string): Answer => ({
    kind,
    httpStatus: undefined,
    said,
    because,
  });
  if (error instanceof NetworkError) {
    return error.temporary
      ? decided("retry", "network error", "a reset, refused or timed-out connection may pass")
      : decided("fatal", "network error", "a TLS verification failure stays one");
  }
  if (error instanceof UploadSessionLostError) {
    return decided("session-gone", error.name, "the upload session was discarded");
  }
  if (error instanceof WritesRefusedError) {
    return decided("writes-refused", error.name, "the registry refused a write with 405");
  }
  if (error instanceof ChunkedUploadRefusedError) {
    return decided("method-refused", error.name, "the registry refused chunked uploads");
  }
  if (error instanceof TokenServiceError) {
    return decided("fatal", error.name, "the token request was retried as far as it may be");
  }
  if (error instanceof AuthError) {
    return decided("auth-refused", error.name, "the credentials were refused");
  }
  return decided("fatal", error instanceof Error ? error.name : "error", "not a registry answer");
}

/**
 * `answerOf`: what a thrown error means in the answer table's terms. A registry's answer is
 * decided by its phase; an error raised from a decided answer keeps that decision.
 */
import { assertEquals } from "../helpers/assert.ts";
import { answerOf } from "../../src/registry/answer_class.ts";
import type { AnswerKind } from "../../src/registry/answer_table.ts";
import { AuthError, TokenServiceError } from "../../src/registry/auth_error.ts";
import { NetworkError, RegistryError } from "../../src/registry/registry_error.ts";
import {
  ChunkedUploadRefusedError,
  SavedSessionGoneError,
  UploadSessionLostError,
  WritesRefusedError,
} from "../../src/registry/upload_errors.ts";

const url = "https://r.example/v2/a/blobs/uploads/u";

Deno.test("answerOf classifies a RegistryError by the phase its request stood in", () => {
  const gone = new RegistryError({
    method: "PATCH",
    url,
    status: 404,
    codes: [{ code: "BLOB_UPLOAD_UNKNOWN", message: "" }],
  });
  assertEquals(answerOf(gone, "chunk").kind, "session-gone");
  assertEquals(answerOf(gone).kind, "not-found");
  const refused = new RegistryError({ method: "PATCH", url, status: 411 });
  assertEquals(answerOf(refused, "stream").kind, "method-refused");
  assertEquals(answerOf(refused, "stream").httpStatus, 411);
  assertEquals(answerOf(refused).kind, "fatal");
});

Deno.test("answerOf keeps the decision an upload error was raised from", () => {
  const cause = new RegistryError({ method: "PATCH", url, status: 400 });
  const cases: [unknown, AnswerKind][] = [
    [new UploadSessionLostError("lost", { cause }), "session-gone"],
    [new SavedSessionGoneError("saved one lost", { cause }), "session-gone"],
    [new WritesRefusedError("read-only", { cause }), "writes-refused"],
    [new ChunkedUploadRefusedError("no chunks", { cause }), "method-refused"],
    [new AuthError("refused", { registryError: cause }), "auth-refused"],
    [new AuthError("no token"), "auth-refused"],
    // Retried already as a token request: the request it was for must not retry it again.
    [
      new TokenServiceError("503 after 4 attempts", {
        registryError: new RegistryError({ method: "GET", url, status: 503 }),
        attempts: 4,
      }),
      "fatal",
    ],
    [new NetworkError("GET", url, "reset", { temporary: true }), "retry"],
    [new NetworkError("GET", url, "certificate", { temporary: false }), "fatal"],
    [
      new Error("wrapped", { cause: new RegistryError({ method: "GET", url, status: 503 }) }),
      "fatal",
    ],
    [new DOMException("stopped", "AbortError"), "fatal"],
    ["a string", "fatal"],
  ];
  for (const [error, kind] of cases) {
    assertEquals(answerOf(error, "stream").kind, kind, String(error));
    assertEquals(answerOf(error, "stream").httpStatus, undefined, String(error));
  }
});

/**
 * The answer table, row by row: every status and code a row names, in every phase it applies
 * to and in one it doesn't, so changing a row (or its order) fails here first.
 */
import { assertEquals } from "../helpers/assert.ts";
import {
  ANSWER_TABLE,
  type AnswerKind,
  classifyAnswer,
  isTemporaryAnswer,
  type RequestPhase,
} from "../../src/registry/answer_table.ts";

const ALL_PHASES = [
  "request",
  "write",
  "first-chunk",
  "chunk",
  "stream",
  "session-status",
  "probe",
  "referrers",
  "token",
] as const satisfies readonly RequestPhase[];
/** A phase added to `RequestPhase` but not to `ALL_PHASES` fails to type-check here. */
const EVERY_PHASE_LISTED: [Exclude<RequestPhase, (typeof ALL_PHASES)[number]>] extends [never]
  ? true
  : never = true;

/** `[status, codes, phase, kind]`: what the table must say. */
type Case = [number, string[], RequestPhase, AnswerKind];

const CASES: Case[] = [
  // The session is gone: distribution's BLOB_UPLOAD_INVALID after a cut chunk, 404, 410.
  ...(["first-chunk", "chunk", "stream", "session-status"] as const).flatMap((phase): Case[] => [
    [404, [], phase, "session-gone"],
    [410, [], phase, "session-gone"],
    [404, ["BLOB_UPLOAD_UNKNOWN"], phase, "session-gone"],
    [400, ["BLOB_UPLOAD_INVALID"], phase, "session-gone"],
    [500, ["BLOB_UPLOAD_UNKNOWN"], phase, "session-gone"],
  ]),
  // Chunked PATCHes refused, on the first chunk only.
  [400, [], "first-chunk", "method-refused"],
  [405, [], "first-chunk", "method-refused"],
  [415, [], "first-chunk", "method-refused"],
  [501, [], "first-chunk", "method-refused"],
  [403, ["UNSUPPORTED"], "first-chunk", "method-refused"],
  [429, ["UNSUPPORTED"], "first-chunk", "method-refused"],
  [400, ["DIGEST_INVALID"], "first-chunk", "fatal"],
  [411, [], "first-chunk", "fatal"],
  [400, [], "chunk", "fatal"],
  [405, [], "chunk", "fatal"],
  [501, [], "chunk", "fatal"],
  [403, ["UNSUPPORTED"], "chunk", "fatal"],
  // Streamed PATCHes refused (411 too: a proxy that wants a Content-Length).
  [400, [], "stream", "method-refused"],
  [405, [], "stream", "method-refused"],
  [411, [], "stream", "method-refused"],
  [415, [], "stream", "method-refused"],
  [501, [], "stream", "method-refused"],
  [400, ["DIGEST_INVALID"], "stream", "fatal"],
  [403, ["UNSUPPORTED"], "stream", "fatal"],
  // Writes refused: a read-only registry or a pull-through cache.
  [405, [], "write", "writes-refused"],
  [405, ["UNSUPPORTED"], "write", "writes-refused"],
  [405, [], "request", "fatal"],
  [405, [], "session-status", "fatal"],
  // A body-size cap.
  [413, [], "first-chunk", "too-large"],
  [413, [], "chunk", "too-large"],
  [413, [], "stream", "too-large"],
  [413, ["TOOMANYREQUESTS"], "chunk", "too-large"],
  [413, [], "request", "too-large"],
  [413, [], "write", "too-large"],
  [413, ["TOOMANYREQUESTS"], "request", "retry"],
  // 416 on a chunk: ask the session where it stands.
  [416, [], "first-chunk", "resume"],
  [416, [], "chunk", "resume"],
  [416, [], "stream", "fatal"],
  [416, [], "request", "fatal"],
  // The referrers API: a registry without it (404, or 405/501 from its router) ...
  [404, [], "referrers", "api-absent"],
  [405, [], "referrers", "api-absent"],
  [501, [], "referrers", "api-absent"],
  [404, ["TOOMANYREQUESTS"], "referrers", "api-absent"],
  [404, ["BLOB_UNKNOWN"], "referrers", "api-absent"],
  // ... unless it quotes an unknown repository or subject: nothing is learnt of the API.
  [404, ["NAME_UNKNOWN"], "referrers", "not-found"],
  [404, ["MANIFEST_UNKNOWN"], "referrers", "not-found"],
  [501, ["NAME_UNKNOWN"], "referrers", "not-found"],
  [400, ["NAME_UNKNOWN"], "referrers", "fatal"],
  [400, [], "referrers", "fatal"],
  [401, [], "referrers", "refresh-auth"],
  [405, [], "request", "fatal"],
  [501, [], "probe", "fatal"],
  // The fallback tag moved between our read and our PUT with If-Match.
  [412, [], "write", "tag-moved"],
  [412, [], "request", "fatal"],
  [412, [], "chunk", "fatal"],
  // Back off and try again.
  ...ALL_PHASES.flatMap((phase): Case[] =>
    [408, 425, 429, 500, 502, 503, 504].map((status): Case => [status, [], phase, "retry"])
  ),
  [403, ["TOOMANYREQUESTS"], "request", "retry"],
  [400, ["UNAVAILABLE"], "session-status", "retry"],
  [429, ["UNAUTHORIZED"], "token", "retry"],
  [429, ["DENIED"], "request", "retry"],
  [400, ["TOOMANYREQUESTS"], "token", "retry"],
  // A refusal of the credentials is never retried for the codes it carries: the token
  // service's 401 and 403 (and 400 with a refusal code), and the registry's 401.
  [401, ["TOOMANYREQUESTS"], "token", "auth-refused"],
  [403, ["TOOMANYREQUESTS"], "token", "auth-refused"],
  [401, ["UNAVAILABLE"], "token", "auth-refused"],
  [403, ["UNAVAILABLE"], "token", "auth-refused"],
  [400, ["UNAUTHORIZED", "TOOMANYREQUESTS"], "token", "auth-refused"],
  [400, ["invalid_grant", "UNAVAILABLE"], "token", "auth-refused"],
  ...ALL_PHASES.filter((phase) => phase !== "token" && phase !== "probe").flatMap((
    phase,
  ): Case[] => [
    [401, ["TOOMANYREQUESTS"], phase, "refresh-auth"],
    [401, ["UNAVAILABLE"], phase, "refresh-auth"],
  ]),
  [401, ["TOOMANYREQUESTS"], "probe", "not-found"],
  // A blob HEAD: 403 and 401 are "absent" on some registries, never "exists".
  [404, [], "probe", "not-found"],
  [403, [], "probe", "not-found"],
  [401, [], "probe", "not-found"],
  [400, [], "probe", "fatal"],
  [405, [], "probe", "fatal"],
  // Credentials.
  [401, [], "token", "auth-refused"],
  [403, [], "token", "auth-refused"],
  // A token service refuses a grant with 400 too (OAuth2's invalid_grant): never retried.
  [400, ["invalid_grant"], "token", "auth-refused"],
  [400, ["unauthorized"], "token", "auth-refused"],
  [400, ["UNAUTHORIZED"], "token", "auth-refused"],
  [400, ["invalid_grant"], "request", "fatal"],
  [400, [], "token", "fatal"],
  [400, ["invalid_request"], "token", "fatal"],
  [401, [], "request", "refresh-auth"],
  [401, [], "write", "refresh-auth"],
  [401, [], "chunk", "refresh-auth"],
  [401, ["UNAUTHORIZED"], "session-status", "refresh-auth"],
  [403, ["DENIED"], "request", "fatal"],
  // Not found, on reads.
  [404, [], "request", "not-found"],
  [404, ["MANIFEST_UNKNOWN"], "request", "not-found"],
  [400, ["NAME_UNKNOWN"], "request", "not-found"],
  [400, ["BLOB_UNKNOWN"], "request", "not-found"],
  [404, [], "write", "fatal"],
  [404, [], "token", "fatal"],
  // Anything else.
  [400, [], "request", "fatal"],
  [409, [], "write", "fatal"],
  [501, [], "request", "fatal"],
  [400, ["DIGEST_INVALID"], "request", "fatal"],
];

Deno.test("the answer table decides each status, code and phase as its rows say", () => {
  for (const [status, names, phase, kind] of CASES) {
    const codes = names.map((code) => ({ code, message: "" }));
    assertEquals(
      classifyAnswer({ status, codes }, phase).kind,
      kind,
      `${status} ${names.join(",")} in ${phase}`,
    );
  }
});

Deno.test("every row of the table decides at least one of the cases above", () => {
  assertEquals(EVERY_PHASE_LISTED, true);
  const deciding = new Set(
    CASES.map(([status, names, phase]) =>
      classifyAnswer({ status, codes: names.map((code) => ({ code, message: "" })) }, phase)
        .because
    ),
  );
  for (const [i, row] of ANSWER_TABLE.entries()) {
    assertEquals(deciding.has(row.because), true, `row ${i} (${row.kind}) has no case`);
  }
});

Deno.test("the request phase is the default, and a decision says what the registry said", () => {
  const answer = classifyAnswer({
    status: 404,
    codes: [{ code: "MANIFEST_UNKNOWN", message: "" }],
  });
  assertEquals(answer.kind, "not-found");
  assertEquals(answer.httpStatus, 404);
  assertEquals(answer.said, "404 MANIFEST_UNKNOWN");
  assertEquals(classifyAnswer({ status: 413 }).said, "413");
});

Deno.test("isTemporaryAnswer is the retry row whatever the phase (RegistryError.temporary)", () => {
  for (const status of [408, 425, 429, 500, 502, 503, 504]) {
    assertEquals(isTemporaryAnswer({ status }), true, String(status));
  }
  for (const status of [400, 401, 403, 404, 405, 411, 413, 416, 501]) {
    assertEquals(isTemporaryAnswer({ status }), false, String(status));
  }
  const codes = [{ code: "TOOMANYREQUESTS", message: "" }];
  assertEquals(isTemporaryAnswer({ status: 413, codes }), true);
  assertEquals(
    isTemporaryAnswer({ status: 403, codes: [{ code: "UNAVAILABLE", message: "" }] }),
    true,
  );
  // A 401 refuses the credentials whatever else it says: sent again, they would be refused again.
  assertEquals(isTemporaryAnswer({ status: 401, codes }), false);
  assertEquals(isTemporaryAnswer({ status: 429, codes }), true);
});

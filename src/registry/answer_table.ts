/**
 * What to do about a registry's answer: the one table every request, upload loop, download and
 * caller reads, so a status is decided in one place (regclient's `internal/reghttp` keeps the
 * same kind of table).
 *
 * A row is picked by the answer's status and distribution error codes, and by the phase of the
 * protocol the request belonged to: the same 404 means "no such manifest" on a GET and "the
 * upload session is gone" on a PATCH. The first row that matches decides. `*-chunk` below is
 * both `first-chunk` and `chunk`.
 *
 * | kind             | answer                                                    | phases                          |
 * |------------------|-----------------------------------------------------------|---------------------------------|
 * | `session-gone`   | 404, 410, BLOB_UPLOAD_UNKNOWN, BLOB_UPLOAD_INVALID        | *-chunk, stream, session-status |
 * | `method-refused` | 400, 405, 415, 501 or UNSUPPORTED, not DIGEST_INVALID     | first-chunk                     |
 * | `method-refused` | 400, 405, 411, 415, 501, not DIGEST_INVALID               | stream                          |
 * | `writes-refused` | 405                                                       | write                           |
 * | `too-large`      | 413                                                       | *-chunk, stream                 |
 * | `resume`         | 416                                                       | *-chunk                         |
 * | `not-found`      | 404, 405, 501 with NAME_UNKNOWN or MANIFEST_UNKNOWN       | referrers                       |
 * | `api-absent`     | 404, 405, 501                                             | referrers                       |
 * | `tag-moved`      | 412                                                       | write                           |
 * | `auth-refused`   | 401, 403; 400 with a refusal code (see below)             | token                           |
 * | `retry`          | 408, 425, 429, 500, 502-504; TOOMANYREQUESTS, UNAVAILABLE | any                             |
 * |                  | on any status but 401                                     |                                 |
 * | `too-large`      | 413                                                       | any                             |
 * | `not-found`      | 404, 403, 401                                             | probe                           |
 * | `refresh-auth`   | 401                                                       | any but token                   |
 * | `not-found`      | 404, MANIFEST_UNKNOWN, NAME_UNKNOWN, BLOB_UNKNOWN         | request                         |
 * | `fatal`          | anything else                                             | any                             |
 *
 * A token service's 5xx, 429 and dropped connections are retried as the registry's are (the
 * `retry` row); its refusal of the credentials is not (a wrong password stays wrong): 401,
 * 403, or 400 with distribution's UNAUTHORIZED or DENIED or an OAuth2 refusal of the grant
 * (`invalid_grant`, `invalid_client`, `unauthorized_client`, `unauthorized`), whatever codes
 * it carries besides (its row comes before `retry`). Nor is a registry's 401 retried for its
 * codes: it is `refresh-auth` (once), `not-found` on a probe, never the same credentials sent
 * again after a backoff. A 429 is retried whatever its codes.
 *
 * The table reads facts only (a status and codes), never an error class, so the errors can
 * ask it: `registry_error.ts` reads {@linkcode isTemporaryAnswer} for
 * `RegistryError.temporary`, and `auth.ts` the token rows. What a thrown error means (a network
 * error, an upload error raised from a decided answer) is `answerOf` in `answer_class.ts`,
 * above both.
 *
 * @example Asking about an answer without throwing
 * ```ts
 * import { classifyAnswer } from "./answer_table.ts";
 *
 * if (classifyAnswer({ status: 411 }, "stream").kind === "method-refused") {
 *   // A proxy wants a Content-Length: send the layer as stored instead.
 * }
 * ```
 */
import type { DistributionErrorCode } from "./error_codes.ts";

/** What to do about an answer. */
export type AnswerKind =
  /** Back off with jitter (or as long as `Retry-After` asks) and send the request again. */
  | "retry"
  /** 401 from the registry: refresh the credentials once and send again. */
  | "refresh-auth"
  /** The registry (or its token service) refused the credentials: nothing to retry. */
  | "auth-refused"
  /** The upload session is gone: the blob starts again in a new session. */
  | "session-gone"
  /** 416: the session holds other bytes than we thought: ask where it stands, go on there. */
  | "resume"
  /** 413: a cap on the body's size; smaller requests (chunks) may pass. */
  | "too-large"
  /** The registry takes no writes at all (read-only, or a pull-through mirror). */
  | "writes-refused"
  /** This way of sending (chunked or streamed `PATCH`es) is refused; another way may work. */
  | "method-refused"
  /** The manifest, blob or repository asked for does not exist. */
  | "not-found"
  /** The registry has no such API (the referrers API): use the fallback (the referrers tag). */
  | "api-absent"
  /** 412 to a write with `If-Match`: the tag moved since it was read; read it again, merge. */
  | "tag-moved"
  /** Nothing to do but fail. */
  | "fatal";

/** Where in the protocol a request stands: the same status means different things. */
export type RequestPhase =
  /** Anything below does not name: pings, HEADs, GETs of manifests and blobs, commits. */
  | "request"
  /** A write to the repository: an upload session's `POST` (or a mount), a manifest's `PUT`. */
  | "write"
  /** The first `PATCH` of a chunked upload (from byte 0 of a fresh session). */
  | "first-chunk"
  /** A later `PATCH` of a chunked upload. */
  | "chunk"
  /** A request of an upload streamed with chunked encoding (its length unknown until the end). */
  | "stream"
  /** `GET <location>`: where an upload session stands. */
  | "session-status"
  /** `HEAD` of a blob: does the repository have it? */
  | "probe"
  /** `GET /v2/<name>/referrers/<digest>`: the referrers API, if the registry has it. */
  | "referrers"
  /** A request to the token service named by a Bearer challenge. */
  | "token";

/** What the table looks at: the answer's status and codes. */
export interface AnswerFacts {
  status: number;
  codes?: readonly DistributionErrorCode[];
}

/** The decision about one answer. */
export interface Answer {
  kind: AnswerKind;
  /**
   * The registry's HTTP status, for messages only (decide on `kind`); undefined when no
   * answer came (a network error) or the error was raised by our own code.
   */
  httpStatus: number | undefined;
  /** What the registry said, short, for messages: `413`, `404 BLOB_UPLOAD_INVALID`. */
  said: string;
  /** Why the row says so: the registry behaviour that taught it. */
  because: string;
}

/** One row of the table. */
export interface AnswerRow {
  kind: AnswerKind;
  /** The phases it applies to (all when absent). */
  phases?: readonly RequestPhase[];
  /** Phases it never applies to. */
  except?: readonly RequestPhase[];
  matches: (status: number, has: (code: string) => boolean) => boolean;
  because: string;
}

/** Statuses worth retrying: timeouts, rate limits and server-side failures. */
const TEMPORARY_STATUSES: ReadonlySet<number> = new Set([408, 425, 429, 500, 502, 503, 504]);
/**
 * Codes that mean "try again later" even when the status alone doesn't say so; not on a 401,
 * which refuses the credentials whatever else it says.
 */
const TEMPORARY_CODES: readonly string[] = ["TOOMANYREQUESTS", "UNAVAILABLE"];
/** Statuses with which registries turn chunked uploads away (ECR-like setups, old proxies). */
const CHUNKS_REFUSED: ReadonlySet<number> = new Set([400, 405, 415, 501]);
/**
 * Statuses with which a registry, or a proxy in front of it, turns a streamed (chunked
 * transfer encoding) upload away: a proxy that wants a `Content-Length` (411), or one that
 * does not take such bodies at all.
 */
const STREAM_REFUSED: ReadonlySet<number> = new Set([400, 405, 411, 415, 501]);

/**
 * Codes with which a token service refuses the credentials on a 400: distribution's, and
 * OAuth2's (RFC 6749 5.2: an OAuth2 token endpoint answers a refresh token it does not take,
 * docker's `identitytoken`, with 400 `invalid_grant`).
 */
const TOKEN_REFUSAL_CODES: readonly string[] = [
  "UNAUTHORIZED",
  "DENIED",
  "invalid_grant",
  "invalid_client",
  "unauthorized_client",
  "unauthorized",
];

/** Statuses of a registry whose router has no referrers route. */
const NO_REFERRERS_ROUTE: ReadonlySet<number> = new Set([404, 405, 501]);

/** The table, first match wins. */
export const ANSWER_TABLE: readonly AnswerRow[] = [
  {
    kind: "session-gone",
    phases: ["first-chunk", "chunk", "stream", "session-status"],
    matches: (status, has) =>
      status === 404 || status === 410 || has("BLOB_UPLOAD_UNKNOWN") ||
      has("BLOB_UPLOAD_INVALID"),
    because: "distribution answers BLOB_UPLOAD_INVALID (and deletes the session) when it holds " +
      "more bytes than the `_state` we present says, which is what a chunk cut off mid-body " +
      "leaves behind; others answer 404, 410 or BLOB_UPLOAD_UNKNOWN for a session that expired",
  },
  {
    kind: "method-refused",
    phases: ["first-chunk"],
    matches: (status, has) =>
      (CHUNKS_REFUSED.has(status) || has("UNSUPPORTED")) && !has("DIGEST_INVALID"),
    because: "registries in ECR-like setups and old proxies turn chunked PATCHes away " +
      "(400, 405, 415, 501, UNSUPPORTED); one monolithic PUT may still work",
  },
  {
    kind: "method-refused",
    phases: ["stream"],
    matches: (status, has) => STREAM_REFUSED.has(status) && !has("DIGEST_INVALID"),
    because: "a registry or proxy that wants a Content-Length (411), or takes no streamed " +
      "PATCH at all, refuses a body of unknown length; the blob can go as stored",
  },
  {
    kind: "writes-refused",
    phases: ["write"],
    matches: (status) => status === 405,
    because: "distribution answers a bare 405 (Allow: GET, HEAD) to every write when " +
      "storage.maintenance.readonly is on, and 405 UNSUPPORTED as a pull-through cache; a " +
      "read-only registry that has every blob already gets as far as the manifest PUT",
  },
  {
    kind: "too-large",
    phases: ["first-chunk", "chunk", "stream"],
    matches: (status) => status === 413,
    because: "a body-size cap in front of the registry (Cloudflare about 100 MB, GHCR 4 MiB " +
      "chunks): smaller chunks from the same spot",
  },
  {
    kind: "resume",
    phases: ["first-chunk", "chunk"],
    matches: (status) => status === 416,
    because: "the session holds another amount than the Content-Range assumed: ask it " +
      "(GET, Range) and continue from there",
  },
  {
    kind: "not-found",
    phases: ["referrers"],
    matches: (status, has) =>
      NO_REFERRERS_ROUTE.has(status) && (has("NAME_UNKNOWN") || has("MANIFEST_UNKNOWN")),
    because: "an API handler saying the repository or subject is unknown, which the spec " +
      "forbids (an unknown subject has an empty list) but some registries do, or a registry " +
      "without the API that words its 404s so: nothing listed there, and nothing learnt of the API",
  },
  {
    kind: "api-absent",
    phases: ["referrers"],
    matches: (status) => NO_REFERRERS_ROUTE.has(status),
    because: "a registry with the referrers API never answers 404; distribution 2.8 and 3.x " +
      "have none and answer 404, other routers 405 or 501 for a route they lack: the " +
      "fallback tag holds the referrers",
  },
  {
    kind: "tag-moved",
    phases: ["write"],
    matches: (status) => status === 412,
    because: "a registry that honours If-Match answers 412 when the tag moved since we read " +
      "it (the referrers fallback tag, which every client pushing a referrer rewrites): read " +
      "it again, merge, and put",
  },
  {
    // Before `retry`: a refusal that also says TOOMANYREQUESTS or UNAVAILABLE is a refusal.
    kind: "auth-refused",
    phases: ["token"],
    matches: (status, has) =>
      status === 401 || status === 403 || (status === 400 && TOKEN_REFUSAL_CODES.some(has)),
    because: "the token service refused the credentials (OAuth2 token endpoints say so with " +
      "400 invalid_grant): asking again cannot change its mind, and sending a wrong password " +
      "again can lock the account, whatever codes the refusal carries",
  },
  {
    kind: "retry",
    matches: isTemporaryAnswerStatus,
    because: "timeouts, rate limits (429, Docker Hub's TOOMANYREQUESTS on other statuses) and " +
      "server-side failures pass; a 401's codes never make it one (the credentials or token " +
      "it refused would go again unchanged)",
  },
  {
    kind: "too-large",
    matches: (status) => status === 413,
    because: "registries accept manifests of at least 4 MB and answer 413 over their limit; a " +
      "proxy's body-size cap answers 413 to a monolithic PUT",
  },
  {
    kind: "not-found",
    phases: ["probe"],
    matches: (status) => status === 404 || status === 403 || status === 401,
    because: "GCR and Artifactory answer 403 rather than 404 for a blob the account can't see " +
      'yet, and Artifactory and some GAR setups 401 even with a fresh token: never "exists"',
  },
  {
    kind: "refresh-auth",
    except: ["token"],
    matches: (status) => status === 401,
    because: "tokens often live about 5 minutes, less than a large upload: refresh once, and " +
      "a second 401 is a refusal",
  },
  {
    kind: "not-found",
    phases: ["request"],
    matches: (status, has) =>
      status === 404 || has("MANIFEST_UNKNOWN") || has("NAME_UNKNOWN") || has("BLOB_UNKNOWN"),
    because: "404, or distribution's *_UNKNOWN codes (some registries send them with 400)",
  },
];

const FATAL = "no row matches: retrying or sending another way cannot help";

function isTemporaryAnswerStatus(status: number, has: (code: string) => boolean): boolean {
  return TEMPORARY_STATUSES.has(status) || (status !== 401 && TEMPORARY_CODES.some(has));
}

/**
 * Whether the same request may succeed if sent again (the `retry` row, whatever the phase):
 * `RegistryError.temporary`.
 */
export function isTemporaryAnswer(facts: AnswerFacts): boolean {
  return isTemporaryAnswerStatus(facts.status, hasCodeIn(facts.codes));
}

/** The table's decision about an answer to a request in `phase`. */
export function classifyAnswer(facts: AnswerFacts, phase: RequestPhase = "request"): Answer {
  const has = hasCodeIn(facts.codes);
  const code = facts.codes?.[0]?.code;
  const said = `${facts.status}${code ? ` ${code}` : ""}`;
  for (const row of ANSWER_TABLE) {
    if (row.phases !== undefined && !row.phases.includes(phase)) continue;
    if (row.except?.includes(phase)) continue;
    if (row.matches(facts.status, has)) {
      return { kind: row.kind, httpStatus: facts.status, said, because: row.because };
    }
  }
  return { kind: "fatal", httpStatus: facts.status, said, because: FATAL };
}

function hasCodeIn(codes: readonly DistributionErrorCode[] | undefined): (code: string) => boolean {
  return (code) => codes?.some((c) => c.code === code) ?? false;
}

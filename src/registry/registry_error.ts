/**
 * The one error type for a registry that answered with an unexpected status.
 *
 * It carries the HTTP status, the method, the redacted URL, the distribution error codes the
 * registry sent (`{"errors":[{"code":"BLOB_UNKNOWN",…}]}`), and whether retrying can help.
 */
import { isTemporaryAnswer } from "./answer_table.ts";
import type { DistributionErrorCode } from "./error_codes.ts";

export interface RegistryErrorInit {
  method: string;
  url: string;
  status: number;
  statusText?: string;
  codes?: DistributionErrorCode[];
  /** Milliseconds the registry asked us to wait (`Retry-After`). */
  retryAfterMs?: number;
  /** What we were doing, e.g. `upload blob sha256:ab…`. */
  action?: string;
  /** The answer's body, when read: some answers say more than their status (see below). */
  body?: string;
  /**
   * Whether retrying may help, when the caller knows better than the answer table: false for
   * an answer that was retried already (a token service's last). Default: the table's `retry` row.
   */
  temporary?: boolean;
}

/**
 * Go's net/http answers a plain-HTTP request on a TLS port with a bare 400 and this text
 * (the CNCF registry, Harbor and most registries are Go programs).
 */
const HTTP_TO_HTTPS = "Client sent an HTTP request to an HTTPS server";

/** A registry answered a request with a status we did not expect. */
export class RegistryError extends Error {
  /** Always "RegistryError". */
  override name = "RegistryError";
  /** The request's method (`GET`, `PUT`, …). */
  readonly method: string;
  /** The request's URL, with credentials and signatures redacted. */
  readonly url: string;
  /** The HTTP status the registry answered. */
  readonly status: number;
  /** The distribution error codes of the answer's body (empty when it had none). */
  readonly codes: readonly DistributionErrorCode[];
  /** Milliseconds the registry asked us to wait (`Retry-After`), when it said. */
  readonly retryAfterMs: number | undefined;
  /**
   * Whether the same request may succeed if tried again: the `retry` row of the answer table
   * (`answer_table.ts`), which decides everything else about an answer too.
   */
  readonly temporary: boolean;
  /**
   * What the registry answered, without what we were doing: `GET <url> answered 401
   * Unauthorized (UNAUTHORIZED: authentication required)`. An error that explains a refusal
   * in its own words (auth) quotes it.
   */
  readonly answer: string;

  /** An error for the answer `init` describes. */
  constructor(init: RegistryErrorInit) {
    const codes = init.codes ?? [];
    const detail = codes.length > 0
      ? ` (${codes.map((c) => c.message ? `${c.code}: ${c.message}` : c.code).join("; ")})`
      : "";
    const what = init.action ? `Failed to ${init.action}: ` : "";
    const status = `${init.status}${init.statusText ? ` ${init.statusText}` : ""}`;
    const https = init.status === 400 && init.url.startsWith("http://") &&
        init.body?.includes(HTTP_TO_HTTPS)
      ? "; the registry speaks HTTPS: use an https:// URL"
      : "";
    const answer = `${init.method} ${init.url} answered ${status}${detail}`;
    super(`${what}${answer}${https}`);
    this.answer = answer;
    this.method = init.method;
    this.url = init.url;
    this.status = init.status;
    this.codes = codes;
    this.retryAfterMs = init.retryAfterMs;
    this.temporary = init.temporary ?? isTemporaryAnswer({ status: init.status, codes });
  }

  /** Whether the registry sent this distribution error code. */
  hasCode(code: string): boolean {
    return this.codes.some((c) => c.code === code);
  }
}

/**
 * The registry's answer behind `error`: the error itself, or the first error in its `cause`
 * chain that is a {@linkcode RegistryError} or quotes one as `registryError` (an auth refusal
 * explains a 401 in its own words and carries the answer so).
 */
export function registryErrorIn(error: unknown): RegistryError | undefined {
  const seen = new Set<unknown>();
  for (let e = error; e instanceof Error && !seen.has(e); e = e.cause) {
    if (e instanceof RegistryError) return e;
    const quoted = (e as { registryError?: unknown }).registryError;
    if (quoted instanceof RegistryError) return quoted;
    seen.add(e);
  }
  return undefined;
}

/** A request that never got an HTTP answer: refused, reset, timed out, TLS failure. */
export class NetworkError extends Error {
  /** Always "NetworkError". */
  override name = "NetworkError";
  /** The request's method. */
  readonly method: string;
  /** The request's URL, redacted. */
  readonly url: string;
  /** Whether trying again may help (false for TLS verification failures). */
  readonly temporary: boolean;
  /** A failure of `method` to `url` for `reason`. */
  constructor(
    method: string,
    url: string,
    reason: string,
    options: { temporary: boolean; cause?: unknown },
  ) {
    super(`${method} ${url} failed: ${reason}`, { cause: options.cause });
    this.method = method;
    this.url = url;
    this.temporary = options.temporary;
  }
}

/** Parses `Retry-After` (delta-seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // Only an HTTP date (it has a month name); Date.parse would read "1.5" or "-5" as dates.
  if (!/[a-z]{3}/i.test(trimmed)) return undefined;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * Bearer token plumbing: the token request (Basic `GET` or OAuth2 refresh-token `POST`), the
 * token response, the token service's error body, and scope lists.
 */
import type { Credentials } from "./credentials.ts";
import { type DistributionErrorCode, parseErrorCodes } from "./error_codes.ts";

/** A token and when to replace it. */
export interface CachedToken {
  value: string;
  /** Epoch ms after which we fetch a new one. */
  refreshAt: number;
}

/** Seconds a token lives when the server doesn't say (the distribution spec's default). */
const DEFAULT_TOKEN_SECONDS = 60;
/** Refresh this long before expiry so a request never starts with a dying token. */
const REFRESH_MARGIN_MS = 10_000;

/** Reads `token` or `access_token`, `expires_in` and `issued_at` from a token response. */
export function parseTokenResponse(body: string, now: number): CachedToken | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const record = parsed as Record<string, unknown>;
  const value = typeof record["token"] === "string" && record["token"] !== ""
    ? record["token"]
    : typeof record["access_token"] === "string"
    ? record["access_token"]
    : undefined;
  if (!value) return undefined;
  const expiresIn = typeof record["expires_in"] === "number" && record["expires_in"] > 0
    ? record["expires_in"]
    : DEFAULT_TOKEN_SECONDS;
  const issuedParsed = typeof record["issued_at"] === "string"
    ? Date.parse(record["issued_at"])
    : NaN;
  // Trust the server's issue time only when our clocks roughly agree.
  const issuedAt = Number.isFinite(issuedParsed) && Math.abs(issuedParsed - now) < 60_000
    ? issuedParsed
    : now;
  const lifetime = expiresIn * 1000;
  const margin = Math.min(REFRESH_MARGIN_MS, lifetime / 4);
  return { value, refreshAt: issuedAt + lifetime - margin };
}

/**
 * The codes of a token service's error answer, for the answer table's `token` rows: the
 * distribution spec's `errors` (`UNAUTHORIZED`, `DENIED`), or an OAuth2 error (RFC 6749 5.2:
 * `{"error":"invalid_grant","error_description":…}`), which a refresh-token `POST` gets, its
 * `error` taken as the code as it is written.
 */
export function parseTokenErrorCodes(body: string): DistributionErrorCode[] {
  const codes = parseErrorCodes(body);
  if (codes.length > 0) return codes;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return [];
  }
  if (typeof parsed !== "object" || parsed === null) return [];
  const { error, error_description: description } = parsed as Record<string, unknown>;
  if (typeof error !== "string" || error === "") return [];
  return [{ code: error, message: typeof description === "string" ? description : "" }];
}

/**
 * The token request: `GET realm?service=…&scope=…` with Basic credentials, or, holding an
 * OAuth2 refresh token (docker's `identitytoken`), a form `POST` with `grant_type=refresh_token`.
 */
export function tokenRequest(
  realm: URL,
  service: string | undefined,
  scopes: string[],
  credentials: Credentials | undefined,
): { method: string; url: URL; headers: Record<string, string>; body?: Uint8Array } {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (credentials && "identityToken" in credentials) {
    const form = new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: credentials.identityToken,
      client_id: "docker-image-pusher",
      ...(service !== undefined ? { service } : {}),
      scope: scopes.join(" "),
    });
    headers["Content-Type"] = "application/x-www-form-urlencoded";
    return { method: "POST", url: realm, headers, body: new TextEncoder().encode(form.toString()) };
  }
  const url = new URL(realm);
  if (service !== undefined) url.searchParams.set("service", service);
  for (const scope of scopes) url.searchParams.append("scope", scope);
  if (credentials) {
    headers["Authorization"] = `Basic ${encodeBasic(credentials.username, credentials.password)}`;
  }
  return { method: "GET", url, headers };
}

export function encodeBasic(username: string, password: string): string {
  const bytes = new TextEncoder().encode(`${username}:${password}`);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/**
 * Merges scopes naming the same resource (`repository:a:pull` and `repository:a:push,pull`
 * become `repository:a:push,pull`), push first, so a challenge's scope never makes a new cache
 * key for what we already asked.
 */
export function mergeScopes(scopes: readonly string[]): string[] {
  const merged = new Map<string, Set<string>>();
  const opaque: string[] = [];
  for (const scope of scopes) {
    const match = /^([^:]+):(.+):([^:]*)$/.exec(scope);
    if (!match) {
      if (!opaque.includes(scope)) opaque.push(scope);
      continue;
    }
    const key = `${match[1]}:${match[2]}`;
    const actions = merged.get(key) ?? new Set<string>();
    for (const action of match[3]!.split(",")) if (action) actions.add(action);
    merged.set(key, actions);
  }
  const rank = (a: string) => (a === "push" ? 0 : a === "pull" ? 1 : 2);
  return [
    ...[...merged].map(([key, actions]) =>
      `${key}:${[...actions].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b)).join(",")}`
    ),
    ...opaque,
  ];
}

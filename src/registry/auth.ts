/**
 * Registry authentication: anonymous, Basic, and Bearer tokens from the realm a challenge names.
 *
 * Credentials go only to the registry's own host and to its token realm, never to a host a
 * redirect points at. Tokens are cached per scope and refreshed before they expire.
 */
import { type Challenge, parseChallenges } from "./challenge.ts";
import { redactUrl } from "./redact.ts";
import type { Transport } from "./transport.ts";

export interface Credentials {
  username: string;
  password: string;
}

/** The registry refused our credentials (or wants some we don't have). */
export class AuthError extends Error {
  override name = "AuthError";
}

interface CachedToken {
  value: string;
  /** Epoch ms after which we fetch a new one. */
  refreshAt: number;
}

/** Seconds a token lives when the server doesn't say (the distribution spec's default). */
const DEFAULT_TOKEN_SECONDS = 60;
/** Refresh this long before expiry so a request never starts with a dying token. */
const REFRESH_MARGIN_MS = 10_000;

export interface AuthenticatorOptions {
  /** host[:port] of the registry API; the only host that gets registry credentials. */
  registryHost: string;
  registryName: string;
  credentials?: Credentials;
  transport: Transport;
  now?: () => number;
}

/** Decides the `Authorization` header for each request and reacts to 401 challenges. */
export class Authenticator {
  #options: AuthenticatorOptions;
  #scheme: "none" | "basic" | "bearer" = "none";
  #bearer: { realm: string; service: string | undefined } | undefined;
  #tokens = new Map<string, CachedToken>();
  #now: () => number;

  constructor(options: AuthenticatorOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** The auth scheme in use after the ping. */
  get scheme(): "none" | "basic" | "bearer" {
    return this.#scheme;
  }

  /** The `Authorization` value for a request to `url` needing `scopes`, if any. */
  async authorization(
    url: URL,
    scopes: string[],
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    if (url.host !== this.#options.registryHost) return undefined;
    if (this.#scheme === "basic") return this.#basicHeader();
    if (this.#scheme === "bearer") {
      const token = await this.#token(scopes, false, signal);
      return token === undefined ? undefined : `Bearer ${token}`;
    }
    return undefined;
  }

  /**
   * Learns from a 401's challenge so that one retry can succeed with new authorization;
   * throws {@linkcode AuthError} when no retry can.
   */
  async handleUnauthorized(
    header: string | null,
    scopes: string[],
    alreadyRetried: boolean,
    signal?: AbortSignal,
  ): Promise<void> {
    const challenges = header ? parseChallenges(header) : [];
    const bearer = challenges.find((c) => c.scheme === "bearer");
    const basic = challenges.find((c) => c.scheme === "basic");
    if (bearer?.params["realm"]) {
      this.#useBearer(bearer);
      // `insufficient_scope` names the scope it wants: ask for it too.
      const wanted = bearer.params["scope"];
      const allScopes = wanted ? [...new Set([...scopes, ...wanted.split(" ")])] : scopes;
      if (alreadyRetried && this.#scheme === "bearer") {
        throw this.#refused(bearer.params["error"]);
      }
      await this.#token(allScopes, true, signal);
      return;
    }
    if (basic || challenges.length === 0) {
      // Basic credentials were already sent (or there are none): a retry cannot help.
      if (this.#options.credentials === undefined || this.#scheme === "basic") {
        throw this.#refused(undefined);
      }
      this.#scheme = "basic";
      return;
    }
    throw new AuthError(
      `Registry ${this.#options.registryName} asks for unsupported authentication ` +
        `"${challenges[0]?.scheme}"`,
    );
  }

  #useBearer(challenge: Challenge): void {
    const realm = challenge.params["realm"]!;
    const service = challenge.params["service"];
    if (this.#bearer?.realm !== realm || this.#bearer.service !== service) this.#tokens.clear();
    this.#bearer = { realm, service };
    this.#scheme = "bearer";
  }

  #refused(error: string | undefined): AuthError {
    const who = this.#options.credentials
      ? `user "${this.#options.credentials.username}"`
      : "anonymous access";
    const reason = this.#options.credentials
      ? "check the username and password"
      : "pass credentials with -u USER and --password-stdin (or -p)";
    const detail = error ? ` (${error})` : "";
    return new AuthError(
      `Authentication failed for ${who} at ${this.#options.registryName}${detail}: ${reason}`,
    );
  }

  #basicHeader(): string | undefined {
    const creds = this.#options.credentials;
    if (!creds) return undefined;
    return `Basic ${encodeBasic(creds)}`;
  }

  async #token(
    scopes: string[],
    force: boolean,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const key = scopes.join(" ");
    const cached = this.#tokens.get(key);
    if (!force && cached && cached.refreshAt > this.#now()) return cached.value;
    const bearer = this.#bearer;
    if (!bearer) return undefined;
    const url = new URL(bearer.realm);
    if (bearer.service !== undefined) url.searchParams.set("service", bearer.service);
    for (const scope of scopes) url.searchParams.append("scope", scope);
    const headers: Record<string, string> = { Accept: "application/json" };
    const basic = this.#basicHeader();
    if (basic) headers["Authorization"] = basic;
    const response = await this.#options.transport.send({
      method: "GET",
      url,
      headers,
      ...(signal ? { signal } : {}),
    });
    if (response.status === 401 || response.status === 403) {
      await response.discard();
      throw this.#refused(undefined);
    }
    if (response.status !== 200) {
      await response.discard();
      throw new AuthError(
        `Token request to ${redactUrl(url)} answered ${response.status} ${response.statusText}`,
      );
    }
    const token = parseTokenResponse(await response.text(1024 * 1024), this.#now());
    if (!token) {
      throw new AuthError(`Token server ${redactUrl(url)} sent no token`);
    }
    this.#tokens.set(key, token);
    return token.value;
  }
}

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

function encodeBasic(creds: Credentials): string {
  const bytes = new TextEncoder().encode(`${creds.username}:${creds.password}`);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

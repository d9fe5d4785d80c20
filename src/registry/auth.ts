/**
 * Registry authentication: anonymous, Basic, and Bearer tokens from the realm a challenge names.
 *
 * Credentials go only to the registry's own host and to its token realm, never to a host a
 * redirect points at. Stored credentials (docker's config, credential helpers) are looked up
 * only when the registry first asks for some, as docker does: a registry open to all never
 * depends on a store that may be broken. Tokens are cached per scope set and refreshed before
 * they expire; one fetch serves every concurrent request that needs it; and once the registry
 * has refused us, every other request fails at once instead of asking again.
 *
 * A token request is retried as a registry request is (the client's policy: attempts,
 * backoff, `Retry-After`, the abort signal), as the answer table's `token` rows say: a 5xx,
 * 429 or dropped connection is tried again, a refusal of the credentials never is. A realm is
 * retried by one token request at a time: its first, and any that failed and tries again,
 * make the others (for other scopes: other repositories, a mount's source) wait; and a realm
 * that failed after its retries fails every later token request at once, so a run over many
 * repositories waits out the backoff once, not once per repository.
 */
import type { ProgressSink, RetrySubject } from "../progress/events.ts";
import { answerOf } from "./answer_class.ts";
import { classifyAnswer } from "./answer_table.ts";
import { AuthError, TokenServiceError } from "./auth_error.ts";
import { type Challenge, parseChallenges } from "./challenge.ts";
import { redactUrl } from "./redact.ts";
import type { CredentialLookup, Credentials } from "./credentials.ts";
import {
  NetworkError,
  parseRetryAfter,
  RegistryError,
  type RegistryErrorInit,
} from "./registry_error.ts";
import { type RetryOptions, withRetries } from "./retry.ts";
import {
  type CachedToken,
  encodeBasic,
  mergeScopes,
  parseTokenErrorCodes,
  parseTokenResponse,
  tokenRequest,
} from "./token.ts";
import type { Transport, TransportResponse } from "./transport.ts";

/** Who the credentials belong to, for messages (never the secret). */
export function describeAccount(credentials: Credentials | undefined): string {
  if (credentials === undefined) return "anonymous access";
  if (credentials.username) return `user "${credentials.username}"`;
  return "the configured identity token";
}

/**
 * What a refusal of anonymous access advises, in the library's terms; the CLI says the same
 * with its flags.
 */
export const NO_CREDENTIALS_ADVICE = "pass credentials, or log in with docker login";

export interface AuthenticatorOptions {
  /** host[:port] of the registry API; the only host that gets registry credentials. */
  registryHost: string;
  registryName: string;
  /** Credentials known now, or a lookup run at the registry's first challenge. */
  credentials?: Credentials | CredentialLookup;
  transport: Transport;
  /** Receives an `http` event per token request (for `--verbose`) and warnings. */
  sink?: ProgressSink;
  /**
   * How a failed token request is retried: the registry client's policy for `subject`
   * (`--retry-attempts`, backoff tuning, its `retry` events; see `RegistryClient.retryOptions`).
   * The abort signal is each call's own, and the answer table's token rows decide what is
   * retried. Default: no retries.
   */
  retryOptions?: (subject: RetrySubject) => RetryOptions;
  now?: () => number;
}

/** What {@linkcode Authenticator.handleUnauthorized} knows of the refused request. */
export interface UnauthorizedOptions {
  signal?: AbortSignal;
  /** The `Authorization` header the refused request carried. */
  sent?: string;
  /** The 401 may mean something else (see `handleUnauthorized`). */
  tentative?: boolean;
  /** The 401 itself, quoted (status and codes) by a refusal, which carries it. */
  answer?: RegistryError;
}

/** What an {@linkcode Authenticator} knows of a token realm (see the module's description). */
interface RealmState {
  /** It has given us a token: token requests for new scopes go side by side. */
  answered: boolean;
  /**
   * Settles when the token request the others wait for does: the realm's first, or one that
   * failed and tries again.
   */
  gate: Promise<void> | undefined;
  /** Its failure after the retries, thrown at once to every later token request. */
  failure: TokenServiceError | undefined;
}

/** Decides the `Authorization` header for each request and reacts to 401 challenges. */
export class Authenticator {
  #options: AuthenticatorOptions;
  #scheme: "none" | "basic" | "bearer" = "none";
  #bearer: { realm: string; service: string | undefined } | undefined;
  #tokens = new Map<string, CachedToken>();
  #fetching = new Map<string, Promise<CachedToken>>();
  /** Scopes challenges asked for, added to every later token request. */
  #learned: string[] = [];
  /** Set once the registry has refused us for good. */
  #refusal: AuthError | undefined;
  /** Token realms by URL: which has answered, which is being retried, which failed. */
  #realms = new Map<string, RealmState>();
  #now: () => number;
  /** The credentials in use: given, or found by the lookup. */
  #credentials: Credentials | undefined;
  /** The lookup under way or done; undefined until a challenge asks for credentials. */
  #lookup: Promise<void> | undefined;
  /** Why the lookup failed, for the warning and for a refusal's message. */
  #lookupProblem: string | undefined;
  #warned = false;

  constructor(options: AuthenticatorOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    if (typeof options.credentials !== "function") this.#credentials = options.credentials;
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
    if (this.#refusal) throw this.#refusal;
    if (url.host !== this.#options.registryHost) return undefined;
    if (this.#scheme === "basic") return this.#basicHeader();
    if (this.#scheme === "bearer") {
      return `Bearer ${(await this.#token(scopes, undefined, signal)).value}`;
    }
    return undefined;
  }

  /**
   * Learns from a 401's challenge so that one retry can succeed with new authorization;
   * throws {@linkcode AuthError} when no retry can. `sent` is the header the refused request
   * carried, so a token another request has refreshed meanwhile is not fetched again. A
   * `tentative` request's 401 may mean something else (a HEAD for a missing blob on some
   * registries), so its refusal is not remembered for the requests after it.
   */
  async handleUnauthorized(
    header: string | null,
    scopes: string[],
    alreadyRetried: boolean,
    options: UnauthorizedOptions = {},
  ): Promise<void> {
    if (this.#refusal) throw this.#refusal;
    const { signal, sent, tentative = false, answer } = options;
    // The registry asks for credentials: only now are stored ones looked up.
    await this.#lookUpCredentials(signal);
    const challenges = header ? parseChallenges(header) : [];
    const bearer = challenges.find((c) => c.scheme === "bearer");
    const basic = challenges.find((c) => c.scheme === "basic");
    if (bearer?.params["realm"]) {
      this.#useBearer(bearer);
      // A token service may grant anonymous access: say why we go without, and try.
      this.#warnOnce();
      // `insufficient_scope` names the scope it wants: ask for it from now on.
      const wanted = bearer.params["scope"];
      if (wanted) this.#learned = mergeScopes([...this.#learned, ...wanted.split(" ")]);
      if (alreadyRetried) throw this.#refuse(bearer.params["error"], tentative, answer);
      await this.#token(scopes, sent?.replace(/^Bearer /, "") ?? "", signal);
      return;
    }
    if (basic || challenges.length === 0) {
      // Basic credentials were already sent (or there are none): a retry cannot help.
      if (!this.#basicHeader() || this.#scheme === "basic") {
        throw this.#refuse(undefined, tentative, answer);
      }
      this.#scheme = "basic";
      return;
    }
    throw new AuthError(
      `Registry ${this.#options.registryName} asks for unsupported authentication ` +
        `"${challenges[0]?.scheme}"`,
    );
  }

  /** Runs the credential lookup once (every concurrent challenge waits for the same one). */
  async #lookUpCredentials(signal: AbortSignal | undefined): Promise<void> {
    const lookup = this.#options.credentials;
    if (typeof lookup !== "function") return;
    this.#lookup ??= (async () => {
      try {
        this.#credentials = await lookup(signal);
      } catch (error) {
        if (signal?.aborted) throw error;
        this.#lookupProblem = error instanceof Error ? error.message : String(error);
      }
    })();
    try {
      await this.#lookup;
    } catch (error) {
      // Interrupted: a later challenge (there is none after an abort) would look again.
      this.#lookup = undefined;
      throw error;
    }
  }

  #warnOnce(): void {
    if (this.#lookupProblem === undefined || this.#warned) return;
    this.#warned = true;
    this.#options.sink?.({
      type: "notice",
      kind: "credentials-unreadable",
      level: "warning",
      message: `Cannot read credentials for ${this.#options.registryName} ` +
        `(${this.#lookupProblem}); trying without credentials`,
    });
  }

  #useBearer(challenge: Challenge): void {
    const realm = challenge.params["realm"]!;
    const service = challenge.params["service"];
    if (this.#bearer?.realm !== realm || this.#bearer.service !== service) this.#tokens.clear();
    this.#bearer = { realm, service };
    this.#scheme = "bearer";
  }

  /** Returns the refusal, remembering it (unless tentative) so other requests stop asking. */
  /** `answer` is the refusal as the registry (or token server) gave it: status and codes. */
  #refuse(error: string | undefined, tentative = false, answer?: RegistryError): AuthError {
    const who = describeAccount(this.#credentials);
    const reason = this.#credentials
      ? "check the username and password (or token)"
      : this.#lookupProblem !== undefined
      ? `credentials could not be read (${this.#lookupProblem})`
      : NO_CREDENTIALS_ADVICE;
    const detail = error ? ` (${error})` : "";
    const refusal = new AuthError(
      `Authentication failed for ${who} at ${this.#options.registryName}${detail}: ${reason}` +
        (answer ? `; ${answer.answer}` : ""),
      answer ? { registryError: answer } : undefined,
    );
    if (!tentative) this.#refusal ??= refusal;
    return this.#refusal ?? refusal;
  }

  #basicHeader(): string | undefined {
    const creds = this.#credentials;
    if (!creds || !("password" in creds)) return undefined;
    return `Basic ${encodeBasic(creds.username, creds.password)}`;
  }

  /**
   * A token for `scopes` (plus learnt ones). `stale`, when given, is a token that was just
   * refused: the cached one is reused only if it is a different, newer one.
   */
  async #token(
    requested: string[],
    stale: string | undefined,
    signal?: AbortSignal,
  ): Promise<CachedToken> {
    const scopes = mergeScopes([...requested, ...this.#learned]);
    const key = scopes.join(" ");
    const cached = this.#tokens.get(key);
    const usable = cached && cached.refreshAt > this.#now() &&
      (stale === undefined || cached.value !== stale);
    if (usable) return cached;
    let pending = this.#fetching.get(key);
    if (!pending) {
      pending = this.#fetch(scopes, signal).finally(() => this.#fetching.delete(key));
      this.#fetching.set(key, pending);
    }
    const token = await pending;
    this.#tokens.set(key, token);
    return token;
  }

  /**
   * Asks the token service for a token, as often as the retry policy allows when it fails in
   * a way that may pass; after the last attempt (or a failure no retry can change), one
   * {@linkcode TokenServiceError} names the realm, the answer and the attempts made.
   */
  async #fetch(scopes: string[], signal?: AbortSignal): Promise<CachedToken> {
    const realm = new URL(this.#bearer!.realm);
    const realmState = this.#realms.get(realm.href) ??
      { answered: false, gate: undefined, failure: undefined };
    this.#realms.set(realm.href, realmState);
    const action = `get a token from ${redactUrl(realm)}`;
    let attempts = 0;
    /** The last answer, for the copy the failure carries. */
    let lastAnswer: RegistryErrorInit | undefined;
    /** Opens the gate this request holds (if it holds it). */
    let release: (() => void) | undefined;
    /** Makes the others wait for this request, unless another request holds the gate. */
    const hold = () => {
      if (realmState.gate !== undefined) return;
      realmState.gate = new Promise((resolve) => release = resolve);
    };
    // The client's policy, but with this call's signal (or none) instead of the client's.
    const { signal: _clientSignal, ...policy } = this.#options.retryOptions?.({
      kind: "request",
      action,
    }) ?? { retries: 0 };
    try {
      const token = await withRetries(async () => {
        while (realmState.gate !== undefined && release === undefined) {
          await settled(realmState.gate, signal);
        }
        if (realmState.failure) throw realmState.failure;
        if (!realmState.answered) hold();
        attempts++;
        return await this.#fetchOnce(realm, scopes, action, (init) => lastAnswer = init, signal);
      }, {
        ...policy,
        ...(signal ? { signal } : {}),
        retryable: (error) => {
          if (answerOf(error, "token").kind !== "retry") return false;
          hold();
          return true;
        },
      });
      realmState.answered = true;
      return token;
    } catch (error) {
      if (signal?.aborted || error instanceof AuthError || error instanceof TokenServiceError) {
        throw error;
      }
      const failure = this.#serviceFailed(realm, error, attempts, lastAnswer);
      realmState.failure ??= failure;
      throw failure;
    } finally {
      if (release !== undefined) {
        realmState.gate = undefined;
        release();
      }
    }
  }

  /**
   * The one-line error for a token service that failed `attempts` times, the last with `error`
   * (`lastAnswer` is what that answer was made from, when it was one).
   */
  #serviceFailed(
    realm: URL,
    error: unknown,
    attempts: number,
    lastAnswer: RegistryErrorInit | undefined,
  ): TokenServiceError {
    const after = answerOf(error, "token").kind === "retry"
      ? ` after ${attempts} attempt${attempts === 1 ? "" : "s"}`
      : "";
    const where = `Token request to ${redactUrl(realm)} for ${this.#options.registryName}`;
    if (error instanceof RegistryError) {
      // Its answer says "<method> <url> answered <status> (<codes>)"; the realm is named already.
      const said = error.answer.slice(`${error.method} ${error.url} answered `.length);
      return new TokenServiceError(`${where} answered ${said}${after}`, {
        // Not temporary: it was retried already; a caller that retried the push for it would
        // only retry it again.
        registryError: lastAnswer ? new RegistryError({ ...lastAnswer, temporary: false }) : error,
        attempts,
      });
    }
    const message = error instanceof Error ? error.message : String(error);
    // A network error says "<method> <url> failed: <reason>"; the realm is named already.
    const reason = error instanceof NetworkError &&
        message.startsWith(`${error.method} ${error.url} failed: `)
      ? message.slice(`${error.method} ${error.url} failed: `.length)
      : message;
    return new TokenServiceError(`${where} failed${after}: ${reason}`, { cause: error, attempts });
  }

  /**
   * One token request. Throws the answer as a {@linkcode RegistryError} (for the retry policy
   * to decide on), a refusal as an {@linkcode AuthError}, and a 200 without a token as a
   * `SyntaxError`.
   */
  async #fetchOnce(
    realm: URL,
    scopes: string[],
    action: string,
    onAnswer: (init: RegistryErrorInit) => void,
    signal?: AbortSignal,
  ): Promise<CachedToken> {
    const request = tokenRequest(realm, this.#bearer!.service, scopes, this.#credentials);
    const started = performance.now();
    let response: TransportResponse;
    try {
      response = await this.#options.transport.send({ ...request, ...(signal ? { signal } : {}) });
    } catch (error) {
      this.#logHttp(request.method, request.url, "error", started);
      throw error;
    }
    // The URL holds service and scopes only; a refresh token travels in the body, never logged,
    // and Basic credentials in a header, never logged either.
    this.#logHttp(request.method, request.url, response.status, started);
    if (response.status !== 200) {
      const text = await response.text(64 * 1024).catch(() => "");
      const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"));
      const codes = parseTokenErrorCodes(text);
      const init: RegistryErrorInit = {
        method: request.method,
        url: redactUrl(request.url),
        status: response.status,
        statusText: response.statusText,
        codes,
        action,
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      };
      onAnswer(init);
      const answer = new RegistryError(init);
      // 401, 403, or a 400 that says so, refuse the credentials (the answer table's token rows).
      if (classifyAnswer(answer, "token").kind === "auth-refused") {
        throw this.#refuse(undefined, false, answer);
      }
      throw answer;
    }
    const token = parseTokenResponse(await response.text(1024 * 1024), this.#now());
    // Not worth another attempt: a server that answers 200 without a token does so again.
    if (!token) throw new SyntaxError("its 200 answer holds no token");
    return token;
  }

  #logHttp(method: string, url: URL, status: number | "error", started: number): void {
    this.#options.sink?.({
      type: "http",
      method,
      url: redactUrl(url),
      status,
      ms: Math.round(performance.now() - started),
    });
  }
}

/** Waits until `gate` settles, or rejects with the abort reason when `signal` fires first. */
function settled(gate: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return gate;
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    gate.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}

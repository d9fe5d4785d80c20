/**
 * A registry client bound to one repository: every request goes through here for auth,
 * retries, redirects and request logging. Protocol operations live in `blobs.ts`,
 * `uploads.ts` and `manifests.ts`.
 */
import type { ProgressSink, RetrySubject } from "../progress/events.ts";
import { Authenticator } from "./auth.ts";
import { AuthError } from "./auth_error.ts";
import type { CredentialLookup, Credentials } from "./credentials.ts";
import { classifyAnswer } from "./answer_table.ts";
import { LoopbackSchemeTransport, mayUsePlainHttp } from "./loopback_scheme.ts";
import { redactUrl } from "./redact.ts";
import { parseErrorCodes } from "./error_codes.ts";
import { parseRetryAfter, RegistryError, registryErrorIn } from "./registry_error.ts";
import { abortableSleep, backoffDelay, type RetryOptions, withRetries } from "./retry.ts";
import type { BodySource, Transport, TransportResponse } from "./transport.ts";

export interface RegistryClientOptions {
  /** `https://host[:port]/` of the registry API. */
  baseUrl: URL;
  /**
   * `baseUrl`'s scheme is the default, not one the user wrote (a reference such as
   * `localhost:5000/app`). A registry on this machine (loopback) is then reached over plain
   * HTTP if it does not speak TLS, reported once as a `plain-http` event; any other host is
   * not, whatever this says (see `loopback_scheme.ts`). Default false: the scheme is obeyed.
   */
  schemeImplied?: boolean;
  /** The registry's name for messages (`docker.io`, `harbor.example.com`). */
  registryName: string;
  repository: string;
  transport: Transport;
  /** Credentials, or a lookup run only if the registry asks for some (docker's config). */
  credentials?: Credentials | CredentialLookup;
  /** Retries for each request whose body can be re-created. */
  retries: number;
  sink: ProgressSink;
  signal?: AbortSignal;
  /** What the token asks for on `repository`: `push` (push and pull, the default) or `pull`. */
  access?: "push" | "pull";
  /** Other repositories we read from (cross-repository mounts need `pull` on them). */
  pullFrom?: string[];
  /** Backoff tuning, for tests. */
  retryTuning?: Pick<RetryOptions, "baseDelayMs" | "maxDelayMs" | "sleep" | "random">;
  /** An auth session to share (see {@linkcode RegistryClient.forRepository}). */
  authenticator?: Authenticator;
}

export interface RequestSpec {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: Uint8Array | BodySource;
  /** Statuses that count as success; the response is returned for the caller to read. */
  expect: readonly number[];
  /** What the request does, for error messages: "upload blob sha256:ab…". */
  action: string;
  /** Retry this request on temporary failures (default true). */
  retry?: boolean;
  /** Follow redirects (blob GET/HEAD/PUT land on storage backends on some registries). */
  followRedirects?: boolean;
  /**
   * A 401 that persists after one auth retry is thrown as the registry's answer (a
   * `RegistryError`, which the caller's answer table phase decides on) rather than as an
   * `AuthError`: some registries answer 401 on HEAD for a blob they don't have.
   */
  unauthorizedIsAnswer?: boolean;
  onBodyProgress?: (sent: number) => void;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;

/** Requests against one repository of one registry. */
export class RegistryClient {
  readonly baseUrl: URL;
  readonly repository: string;
  readonly registryName: string;
  readonly sink: ProgressSink;
  readonly signal: AbortSignal | undefined;
  readonly retries: number;
  #transport: Transport;
  /** Set when the registry may turn out to speak plain HTTP (see `schemeImplied`). */
  #loopback: LoopbackSchemeTransport | undefined;
  #auth: Authenticator;
  #retryTuning: RegistryClientOptions["retryTuning"];
  #scopes: string[];
  #options: RegistryClientOptions;

  constructor(options: RegistryClientOptions) {
    this.baseUrl = options.baseUrl;
    this.repository = options.repository;
    this.registryName = options.registryName;
    this.sink = options.sink;
    this.signal = options.signal;
    this.retries = options.retries;
    // Views of this client (forRepository) get its transport, which has learnt the scheme.
    if (options.transport instanceof LoopbackSchemeTransport) {
      this.#loopback = options.transport;
    } else if (mayUsePlainHttp(options.baseUrl, options.schemeImplied === true)) {
      this.#loopback = new LoopbackSchemeTransport(options.transport, {
        baseUrl: options.baseUrl,
        onPlainHttp: () => options.sink({ type: "plain-http", registry: options.registryName }),
      });
    }
    this.#transport = this.#loopback ?? options.transport;
    this.#retryTuning = options.retryTuning;
    // Push first: some token services (Docker Hub's among them) read only the first scope.
    this.#scopes = [
      options.access === "pull"
        ? `repository:${options.repository}:pull`
        : `repository:${options.repository}:push,pull`,
      ...(options.pullFrom ?? []).map((repo) => `repository:${repo}:pull`),
    ];
    this.#auth = options.authenticator ?? new Authenticator({
      registryHost: options.baseUrl.host,
      registryName: options.registryName,
      // Token requests to a realm on the registry's own port go where the registry is found.
      transport: this.#transport,
      sink: options.sink,
      // Token requests are retried as the registry's own are, and reported as they are.
      retryOptions: (subject) => this.retryOptions(subject),
      ...(options.credentials ? { credentials: options.credentials } : {}),
    });
    this.#options = { ...options, transport: this.#transport, authenticator: this.#auth };
  }

  /**
   * A client for another repository of the same registry, sharing this one's transport and
   * auth session (one login, one token cache), but with tokens scoped to `repository`.
   */
  forRepository(repository: string, access: "push" | "pull" = "push"): RegistryClient {
    return new RegistryClient({ ...this.#options, repository, access });
  }

  /** The auth scheme the registry asked for ("none" until a 401 says otherwise). */
  get authScheme(): "none" | "basic" | "bearer" {
    return this.#auth.scheme;
  }

  /**
   * Asks for pull access to another repository of the registry from now on (a mount from it
   * needs that in the token).
   */
  addPullScope(repository: string): void {
    const scope = `repository:${repository}:pull`;
    if (repository !== this.repository && !this.#scopes.includes(scope)) {
      this.#scopes = [...this.#scopes, scope];
    }
  }

  /** A URL under `/v2/<repository>/`. */
  url(path: string): URL {
    return new URL(`/v2/${this.repository}/${path}`, this.baseUrl);
  }

  /**
   * Checks that the registry speaks the v2 API and that our credentials are accepted for
   * pushing to the repository (an anonymous registry answers 200 straight away).
   */
  async ping(): Promise<void> {
    const response = await this.request({
      method: "GET",
      url: new URL("/v2/", this.baseUrl),
      expect: [200],
      action: `reach registry ${this.registryName}`,
    });
    await response.discard();
  }

  /** Sends a request with auth, retries and redirects; returns a response in `expect`. */
  request(spec: RequestSpec): Promise<TransportResponse> {
    const options = this.retryOptions({ kind: "request", action: spec.action });
    return withRetries(() => this.#attempt(spec), {
      ...options,
      retries: spec.retry === false ? 0 : options.retries,
    });
  }

  /**
   * The retry policy for work on this registry (`subject` names it in retry events): the
   * user's `--retry-attempts`, backoff tuning, cancellation and progress reporting.
   */
  retryOptions(subject: RetrySubject): RetryOptions {
    const digest = "digest" in subject ? subject.digest : undefined;
    return {
      retries: this.retries,
      ...this.#retryTuning,
      ...(this.signal ? { signal: this.signal } : {}),
      onRetry: ({ attempt, delayMs, error }) => {
        const status = registryErrorIn(error)?.status;
        this.sink({
          type: "retry",
          subject,
          ...(digest !== undefined ? { digest } : {}),
          attempt,
          delayMs,
          reason: error.message,
          ...(status !== undefined ? { status } : {}),
        });
      },
    };
  }

  /** Waits as the retry policy says before attempt `attempt` of `subject`, reporting it. */
  async waitBeforeRetry(subject: RetrySubject, attempt: number, error: unknown): Promise<void> {
    const options = this.retryOptions(subject);
    const delayMs = backoffDelay(attempt - 1, error, options);
    options.onRetry?.({
      attempt,
      delayMs,
      error: error instanceof Error ? error : new Error(String(error)),
    });
    await (options.sleep ?? abortableSleep)(delayMs, this.signal);
  }

  async #attempt(spec: RequestSpec): Promise<TransportResponse> {
    const scopes = this.#scopes;
    let url = spec.url;
    let method = spec.method;
    let body = spec.body;
    let authRetried = false;
    for (let redirects = 0;;) {
      const headers: Record<string, string> = { ...spec.headers };
      // Only the registry's own host gets credentials: never a redirect target.
      const authorization = await this.#auth.authorization(url, scopes, this.signal);
      if (authorization) headers["Authorization"] = authorization;
      const started = performance.now();
      let response: TransportResponse;
      try {
        response = await this.#transport.send({
          method,
          url,
          headers,
          ...(body !== undefined ? { body } : {}),
          ...(this.signal ? { signal: this.signal } : {}),
          ...(spec.onBodyProgress ? { onBodyProgress: spec.onBodyProgress } : {}),
        });
      } catch (error) {
        this.#logHttp(method, this.#sentUrl(url), "error", started);
        throw error;
      }
      this.#logHttp(method, this.#sentUrl(url), response.status, started);

      if (url.host === this.baseUrl.host && classifyAnswer(response).kind === "refresh-auth") {
        const tentative = spec.unauthorizedIsAnswer === true;
        // Read (and drained): a refusal quotes the registry's status and error codes.
        const answer = await this.#errorFrom(response, method, url, spec.action);
        if (tentative && authRetried) throw answer;
        try {
          await this.#auth.handleUnauthorized(
            response.headers.get("www-authenticate"),
            scopes,
            authRetried,
            {
              ...(this.signal ? { signal: this.signal } : {}),
              ...(authorization ? { sent: authorization } : {}),
              tentative,
              answer,
            },
          );
        } catch (error) {
          if (tentative && error instanceof AuthError) throw answer;
          throw error;
        }
        if (authRetried) {
          throw new AuthError(`Authentication failed at ${this.registryName}`, {
            registryError: answer,
          });
        }
        authRetried = true;
        continue;
      }
      if (REDIRECTS.has(response.status) && spec.followRedirects) {
        const location = response.headers.get("location");
        if (location && redirects < MAX_REDIRECTS) {
          await response.discard();
          redirects++;
          url = new URL(location, url);
          if (response.status === 303) {
            method = "GET";
            body = undefined;
          }
          continue;
        }
      }
      if (spec.expect.includes(response.status)) return response;
      throw await this.#errorFrom(response, method, url, spec.action);
    }
  }

  async #errorFrom(
    response: TransportResponse,
    method: string,
    url: URL,
    action: string,
  ): Promise<RegistryError> {
    let text = "";
    try {
      // Always drain, or the pooled socket (and its watchdog) stays taken until it times out.
      if (method === "HEAD") await response.discard();
      else text = await response.text(64 * 1024);
    } catch {
      // The status alone has to do.
    }
    const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"));
    return new RegistryError({
      method,
      url: redactUrl(url),
      status: response.status,
      statusText: response.statusText,
      codes: parseErrorCodes(text),
      body: text,
      action,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }

  /** The URL a request to `url` went to: http for a loopback registry found to speak it. */
  #sentUrl(url: URL): URL {
    return this.#loopback?.effectiveUrl(url) ?? url;
  }

  #logHttp(method: string, url: URL, status: number | "error", started: number): void {
    this.sink({
      type: "http",
      method,
      url: redactUrl(url),
      status,
      ms: Math.round(performance.now() - started),
    });
  }
}

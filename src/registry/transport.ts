/**
 * The HTTP transport: one request, one response, nothing else (no auth, no retries).
 *
 * Built on `node:http`/`node:https` rather than `fetch` because Deno's fetch sends streamed
 * bodies with chunked transfer encoding and ignores a given `Content-Length` (the spec's
 * monolithic PUT wants an exact length), and because verification can be relaxed per client
 * only through node's TLS options (`fetch` has no such switch).
 */
import http from "node:http";
import https from "node:https";
import { type AgentOptions, AgentPool, type Connection } from "./agents.ts";
import { redactUrl } from "./redact.ts";
import { release } from "../release.ts";
import { NetworkError } from "./registry_error.ts";

/** A request body that can be produced again for every attempt. */
export interface BodySource {
  /**
   * Exact number of bytes `open()` yields, sent as `Content-Length`. Absent for a stream whose
   * length is known only at its end: it goes with chunked transfer encoding.
   */
  readonly length?: number;
  /** Starts a fresh pass over the bytes. */
  open(signal?: AbortSignal): AsyncIterable<Uint8Array>;
  /**
   * Each chunk `open()` yields is a buffer of its own that nothing else holds: the transport
   * frees it (see `release.ts`) once the socket has taken it.
   */
  readonly ownsChunks?: boolean;
}

export interface TransportRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: Uint8Array | BodySource;
  signal?: AbortSignal;
  /** Called as body bytes are handed to the socket, with the running total. */
  onBodyProgress?: (sent: number) => void;
}

export interface TransportResponse {
  status: number;
  statusText: string;
  headers: Headers;
  /** Reads the body, failing if it is longer than `limit` bytes. */
  bytes(limit?: number): Promise<Uint8Array>;
  text(limit?: number): Promise<string>;
  /** Drains and drops the body so the connection can be reused. */
  discard(): Promise<void>;
  /**
   * The body as it arrives, in constant memory (a blob download). Stop early with `return`
   * (a `break`): the connection is then dropped rather than drained. Each chunk is lent: it
   * may be reused for the next one, so copy what you keep.
   */
  stream(): AsyncIterable<Uint8Array>;
}

export interface Transport {
  send(request: TransportRequest): Promise<TransportResponse>;
  close(): void;
}

export interface TransportOptions extends AgentOptions {
  /** Fail a request when no bytes move for this long, in either direction. */
  inactivityTimeoutMs: number;
  userAgent?: string;
}

const DEFAULT_BODY_LIMIT = 16 * 1024 * 1024;

/** Creates a transport: keep-alive pools, TLS and proxy settings per target host. */
export function createTransport(options: TransportOptions): Transport {
  const pool = new AgentPool(options);
  return {
    async send(request) {
      const streamed = request.body !== undefined && !(request.body instanceof Uint8Array);
      const connection = await pool.connectionFor(request.url, streamed);
      return await sendOnce(request, connection, options);
    },
    close: () => pool.destroy(),
  };
}

/**
 * Fails an exchange when no bytes move for the configured time. Our own timer rather than
 * `req.setTimeout`: a socket timeout is lost when node:http moves the request to a new socket.
 * A kick only notes the time, and a timer that fires early waits out the rest: re-arming a
 * node timer for every chunk of a body took about 0.03 CPU-s per 1.4 GB sent (issue 21).
 */
class Watchdog {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #ms: number;
  #onExpire: () => void;
  #last = 0;
  #stopped = false;
  expired = false;
  constructor(ms: number, onExpire: () => void) {
    this.#ms = ms;
    this.#onExpire = onExpire;
    this.kick();
    this.#arm(ms);
  }
  /** Bytes moved: start counting again. */
  kick(): void {
    this.#last = performance.now();
  }
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
  #arm(ms: number): void {
    this.#timer = setTimeout(() => {
      if (this.#stopped) return;
      const idle = performance.now() - this.#last;
      if (idle < this.#ms) return this.#arm(this.#ms - idle);
      this.expired = true;
      this.#onExpire();
    }, ms);
  }
}

function sendOnce(
  request: TransportRequest,
  connection: Connection,
  options: TransportOptions,
): Promise<TransportResponse> {
  const { method, url, body } = request;
  const where = redactUrl(url);
  const headers: Record<string, string> = { ...request.headers };
  if (options.userAgent && !hasHeader(headers, "user-agent")) {
    headers["User-Agent"] = options.userAgent;
  }
  if (body !== undefined) {
    // A body of unknown length goes with chunked transfer encoding (node's default).
    if (body.length !== undefined) headers["Content-Length"] = String(body.length);
  } else if (method === "PUT" || method === "POST" || method === "PATCH") {
    headers["Content-Length"] = "0";
  }
  const client = url.protocol === "https:" ? https : http;
  const timeout = () =>
    new NetworkError(
      method,
      where,
      `timed out: no data moved for ${options.inactivityTimeoutMs / 1000} s`,
      { temporary: true },
    );

  return new Promise<TransportResponse>((resolve, reject) => {
    let settled = false;
    const req = client.request(url, {
      method,
      headers,
      agent: connection.agent,
      ...connection.tls,
    });
    const exchange: Exchange = {
      req,
      res: undefined,
      watchdog: new Watchdog(options.inactivityTimeoutMs, () => {
        const error = timeout();
        exchange.res?.destroy(error);
        req.destroy(error);
        fail(error);
        exchange.onTimeout?.(error);
      }),
      timeoutError: timeout,
      finish: () => {
        exchange.watchdog.stop();
        request.signal?.removeEventListener("abort", onAbort);
      },
      onTimeout: undefined,
    };
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      exchange.finish();
      reject(
        exchange.watchdog.expired ? timeout() : toNetworkError(method, where, error),
      );
    };
    const onAbort = () => {
      const reason = abortReason(request.signal);
      req.destroy(reason);
      exchange.res?.destroy(reason);
      fail(reason);
    };
    if (request.signal?.aborted) {
      fail(abortReason(request.signal));
      return;
    }
    request.signal?.addEventListener("abort", onAbort, { once: true });
    req.on("error", fail);
    req.on("response", (res) => {
      if (settled) {
        res.resume();
        return;
      }
      settled = true;
      exchange.res = res;
      exchange.watchdog.kick();
      // The watchdog keeps guarding the body; errors now surface from the body readers.
      resolve(wrapResponse(exchange, method, where));
    });
    writeBody(req, body, request.signal, (sent) => {
      exchange.watchdog.kick();
      request.onBodyProgress?.(sent);
    }).catch((error) => {
      req.destroy(error instanceof Error ? error : new Error(String(error)));
    });
  });
}

/** One request/response pair and what guards it. */
interface Exchange {
  req: http.ClientRequest;
  res: http.IncomingMessage | undefined;
  watchdog: Watchdog;
  timeoutError: () => NetworkError;
  /** Stops the watchdog and abort listener once the exchange is over. */
  finish: () => void;
  /** Set while a body reader waits, so a timeout rejects it. */
  onTimeout: ((error: NetworkError) => void) | undefined;
}

async function writeBody(
  req: http.ClientRequest,
  body: Uint8Array | BodySource | undefined,
  signal: AbortSignal | undefined,
  onProgress: (sent: number) => void,
): Promise<void> {
  if (body === undefined) {
    req.end();
    return;
  }
  if (body instanceof Uint8Array) {
    req.end(body);
    onProgress(body.length);
    return;
  }
  let sent = 0;
  for await (const chunk of body.open(signal)) {
    // The server may answer early (an error before it read our body); stop feeding it.
    if (req.destroyed || req.writableEnded) return;
    sent += chunk.length;
    if (body.length !== undefined && sent > body.length) {
      throw new Error(`Body source yielded more than ${body.length} bytes`);
    }
    const written = body.ownsChunks ? () => release(chunk) : undefined;
    if (!req.write(chunk, written)) await drained(req);
    onProgress(sent);
  }
  if (body.length !== undefined && sent !== body.length) {
    throw new Error(`Body source yielded ${sent} bytes, expected ${body.length}`);
  }
  req.end();
}

function drained(req: http.ClientRequest): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      req.off("drain", done);
      req.off("close", closed);
      resolve();
    };
    const closed = () => {
      req.off("drain", done);
      req.off("close", closed);
      reject(new Error("Connection closed while sending the body"));
    };
    req.on("drain", done);
    req.on("close", closed);
  });
}

function wrapResponse(exchange: Exchange, method: string, where: string): TransportResponse {
  const res = exchange.res!;
  const headers = new Headers();
  for (const [name, value] of Object.entries(res.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  let consumed = false;
  const bytes = (limit = DEFAULT_BODY_LIMIT): Promise<Uint8Array> => {
    if (consumed) return Promise.reject(new Error("Response body already consumed"));
    consumed = true;
    return new Promise<Uint8Array>((resolve, reject) => {
      const chunks: Uint8Array[] = [];
      let total = 0;
      let done = false;
      const fail = (error: Error) => {
        if (done) return;
        done = true;
        exchange.finish();
        reject(exchange.watchdog.expired ? exchange.timeoutError() : error);
      };
      exchange.onTimeout = fail;
      if (exchange.watchdog.expired) fail(exchange.timeoutError());
      res.on("data", (chunk: Uint8Array) => {
        exchange.watchdog.kick();
        total += chunk.length;
        if (total > limit) {
          exchange.req.destroy();
          fail(new Error(`Response from ${method} ${where} is larger than ${limit} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on("end", () => {
        if (done) return;
        done = true;
        exchange.finish();
        const out = new Uint8Array(total);
        let at = 0;
        for (const c of chunks) {
          out.set(c, at);
          at += c.length;
        }
        resolve(out);
      });
      res.on("error", (error) => fail(toNetworkError(method, where, error)));
      res.on(
        "aborted",
        () => fail(new NetworkError(method, where, "response truncated", { temporary: true })),
      );
    });
  };
  async function* stream(): AsyncIterable<Uint8Array> {
    if (consumed) throw new Error("Response body already consumed");
    consumed = true;
    try {
      for await (const chunk of res as AsyncIterable<Uint8Array>) {
        exchange.watchdog.kick();
        yield chunk;
      }
      if (!res.complete) {
        throw new NetworkError(method, where, "response truncated", { temporary: true });
      }
    } catch (error) {
      throw exchange.watchdog.expired
        ? exchange.timeoutError()
        : toNetworkError(method, where, error);
    } finally {
      exchange.finish();
      if (!res.complete) res.destroy();
    }
  }
  return {
    status: res.statusCode ?? 0,
    statusText: res.statusMessage ?? "",
    headers,
    stream,
    bytes,
    text: async (limit) => new TextDecoder().decode(await bytes(limit)),
    discard: async () => {
      if (consumed) return;
      if (method === "HEAD") {
        consumed = true;
        res.resume();
        exchange.finish();
        return;
      }
      try {
        await bytes(DEFAULT_BODY_LIMIT);
      } catch {
        // A body we were going to drop anyway; the connection is discarded with it.
      }
    },
  };
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}

function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error) return reason;
  return new DOMException("The operation was aborted", "AbortError");
}

/**
 * An https request whose TLS handshake got plain bytes back: the server speaks plain HTTP on
 * that port. Nothing of the request reached it as HTTP. node:tls (OpenSSL) reports this as
 * `ERR_SSL_WRONG_VERSION_NUMBER`, fetch (rustls) as "received corrupt message of type
 * InvalidContentType"; a certificate the client refuses is a different error, from a server
 * that does speak TLS. The registry client falls back to plain HTTP on this error alone, and
 * only where it may (see `loopback_scheme.ts`).
 */
export class NotTlsError extends NetworkError {
  override name = "NotTlsError";
  constructor(method: string, where: string, cause: unknown) {
    super(
      method,
      where,
      "the server does not speak TLS here; if the registry serves plain HTTP, use an http:// URL",
      { temporary: false, cause },
    );
  }
}

/**
 * What a refused certificate's error advises, in the library's terms (its options); the CLI
 * says the same with its flags.
 */
export const TLS_ADVICE = "trust the registry's CA (caCerts), or skip verification (skipTls)";

const TLS_CODES = new Set([
  "CERT_HAS_EXPIRED",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** A failed exchange as a {@linkcode NetworkError}: TLS failures fail fast, with what to do. */
export function toNetworkError(method: string, where: string, error: unknown): Error {
  if (error instanceof NetworkError) return error;
  if (error instanceof DOMException && error.name === "AbortError") return error;
  if (error instanceof Error && error.name === "AbortError") return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  const codeText = typeof code === "string" ? code : "";
  if (TLS_CODES.has(codeText) || /certificate|self.signed|UnknownIssuer|tls/i.test(message)) {
    return new NetworkError(
      method,
      where,
      `TLS certificate verification failed (${message}); ${TLS_ADVICE}`,
      { temporary: false, cause: error },
    );
  }
  if (codeText === "ERR_SSL_WRONG_VERSION_NUMBER" || /InvalidContentType/.test(message)) {
    // What a TLS handshake against a plain-HTTP port looks like; retrying can't change it.
    return new NotTlsError(method, where, error);
  }
  const reason = codeText ? `${describeCode(codeText)} (${codeText})` : message;
  return new NetworkError(method, where, reason, { temporary: true, cause: error });
}

function describeCode(code: string): string {
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "ECONNRESET":
      return "connection reset";
    case "EPIPE":
      return "connection closed while sending";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host not found";
    case "ETIMEDOUT":
      return "connection timed out";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "network unreachable";
    default:
      return "network error";
  }
}

/**
 * A transport over Deno's built-in `fetch`, for downloads: reading a response body through it
 * costs about two thirds of the time and half the memory of node:http's (a 792 MB layer on
 * loopback: 0.62 s and ~100 MB RSS against 0.87 s and ~180 MB), and a connection that ends short
 * hands over every byte it received before the read fails, so a resume asks for nothing twice.
 *
 * It keeps what the node:http transport ({@linkcode createTransport}) gives a request: the
 * environment's proxies as `proxy_env.ts` reads them, extra CA certificates, the user agent, an
 * inactivity timeout, no redirect following (the registry client follows them itself, and
 * sends no `Authorization` to another host), and the same errors. Some requests `fetch` cannot
 * make as asked; they go through node:http instead:
 *
 * - https to a host of `insecureHosts` (`--skip-tls`): `Deno.createHttpClient` has no per-host
 *   switch, only the process-wide `--unsafely-ignore-certificate-errors`;
 * - https to a host whose own self-signed certificate is among `caCerts`: fetch's verifier
 *   (webpki) refuses a trust anchor as the server's certificate (`CaUsedAsEndEntity`), node:tls
 *   takes it;
 * - a streamed body (`BodySource`): fetch sends it chunked, ignoring `Content-Length`;
 * - direct, where fetch's own reading of the process environment would take a proxy (see
 *   {@linkcode fetchGoesDirect}): no client option turns that off for https;
 * - a port fetch refuses (the fetch standard's "bad ports", 6000 among them).
 *
 * The inactivity timeout counts only time spent waiting for the network (the answer's head,
 * then each read of its body), not time the caller spends with a chunk: a download paced by a
 * slow consumer (a pipe) does not time out for it.
 */
import { X509Certificate } from "node:crypto";
import { proxyFor } from "./proxy_env.ts";
import { redactUrl } from "./redact.ts";
import { NetworkError } from "./registry_error.ts";
import {
  createTransport,
  toNetworkError,
  type Transport,
  type TransportOptions,
  type TransportRequest,
  type TransportResponse,
} from "./transport.ts";

export interface FetchTransportOptions extends TransportOptions {
  /**
   * The process environment, which `fetch` reads its own proxy settings from (whatever
   * `proxy` says). Default: `Deno.env.get`.
   */
  processEnv?: (name: string) => string | undefined;
}

const DEFAULT_BODY_LIMIT = 16 * 1024 * 1024;
/** The buffer a body is read into. */
const READ_BYTES = 256 * 1024;
/** A body longer than this is dropped with its connection rather than drained. */
const DRAIN_LIMIT = 64 * 1024;

/**
 * Creates a transport over `fetch`, with a node:http transport (same options) for what fetch
 * cannot do; see the module's notes.
 */
export function createFetchTransport(options: FetchTransportOptions): Transport {
  const env = options.processEnv ?? readProcessEnv;
  const insecure = new Set(options.insecureHosts ?? []);
  const ownCertificate = selfSignedServers(options.caCerts ?? []);
  /** host:port values fetch refused to connect to. */
  const refusedPorts = new Set<string>();
  const clients = new Map<string, Deno.HttpClient>();
  let fallback: Transport | undefined;
  const viaNode = (request: TransportRequest) =>
    (fallback ??= createTransport(options)).send(request);

  const clientFor = (proxy: URL | undefined): Deno.HttpClient => {
    const key = proxy?.href ?? "";
    let client = clients.get(key);
    if (client === undefined) {
      client = Deno.createHttpClient({
        ...(options.caCerts ? { caCerts: options.caCerts } : {}),
        ...(proxy ? { proxy: denoProxy(proxy) } : {}),
      });
      clients.set(key, client);
    }
    return client;
  };

  return {
    async send(request) {
      const { url, body } = request;
      const proxy = options.proxy ? proxyFor(url, options.proxy) : undefined;
      const byNode = (body !== undefined && !(body instanceof Uint8Array)) ||
        (url.protocol === "https:" && (insecure.has(url.host) || ownCertificate(url))) ||
        (proxy === undefined && !fetchGoesDirect(url, env)) || refusedPorts.has(url.host);
      if (byNode) return await viaNode(request);
      try {
        return await fetchOnce(request, clientFor(proxy), options);
      } catch (error) {
        if (!(error instanceof BlockedPortError)) throw error;
        refusedPorts.add(url.host);
        return await viaNode(request);
      }
    },
    close() {
      for (const client of clients.values()) client.close();
      clients.clear();
      fallback?.close();
    },
  };
}

function readProcessEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    // No permission to read it: fetch still reads it, but we cannot know; assume unset.
    return undefined;
  }
}

/**
 * Whether fetch goes direct to `url` by the process environment, which it reads for itself
 * (`createHttpClient` only puts a proxy in front; nothing turns the environment off for an https
 * target). Yes when no variable names a proxy for the URL's scheme (`ALL_PROXY` counts), or when
 * `NO_PROXY` covers the host as Deno's matcher and ours both read it: the host exactly (an IP
 * address only so), or a domain the host name ends with at a dot (`example.com`,
 * `.example.com`). Deno reads entries case-sensitively and takes neither `*`, `*.domain` nor
 * `host:port` as we do; such entries get a no here, and the request goes through node:http.
 */
export function fetchGoesDirect(url: URL, env: (name: string) => string | undefined): boolean {
  const scheme = url.protocol === "https:" ? "https_proxy" : "http_proxy";
  const names = [scheme.toUpperCase(), scheme, "ALL_PROXY", "all_proxy"];
  if (!names.some((name) => !!env(name))) return true;
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const ip = /^[\d.]+$|:/.test(host);
  return (env("NO_PROXY") ?? env("no_proxy") ?? "").split(",").some((raw) => {
    const entry = raw.trim();
    const domain = entry.startsWith(".") && !ip ? entry.slice(1) : entry;
    return domain !== "" && (host === domain || (!ip && host.endsWith(`.${domain}`)));
  });
}

/**
 * Whether `url`'s host is named by a self-issued certificate among `caCerts`: the registry's own
 * self-signed certificate, given as its CA (what a self-hosted registry's users have). Answers
 * are kept per host.
 */
function selfSignedServers(caCerts: readonly string[]): (url: URL) => boolean {
  const own: X509Certificate[] = [];
  for (const pem of caCerts) {
    for (
      const block of pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []
    ) {
      try {
        const certificate = new X509Certificate(block);
        if (certificate.checkIssued(certificate)) own.push(certificate);
      } catch {
        // Not a certificate node can read: fetch and node:tls judge it for themselves.
      }
    }
  }
  const answers = new Map<string, boolean>();
  return (url) => {
    if (own.length === 0) return false;
    const host = url.hostname.replace(/^\[|\]$/g, "");
    let answer = answers.get(host);
    if (answer === undefined) {
      const ip = /^[\d.]+$|:/.test(host);
      answer = own.some((c) => (ip ? c.checkIP(host) : c.checkHost(host)) !== undefined);
      answers.set(host, answer);
    }
    return answer;
  };
}

/** A proxy URL as `Deno.createHttpClient` takes it: credentials apart, percent-decoded. */
function denoProxy(proxy: URL): Deno.Proxy {
  const credentials = proxy.username || proxy.password
    ? {
      basicAuth: {
        username: decodeURIComponent(proxy.username),
        password: decodeURIComponent(proxy.password),
      },
    }
    : {};
  return {
    transport: proxy.protocol === "https:" ? "https" : "http",
    url: `${proxy.protocol}//${proxy.host}`,
    ...credentials,
  };
}

/** fetch refused the URL's port before connecting; node:http will try it. */
class BlockedPortError extends Error {}

/**
 * Fails an exchange when the network gives nothing for the configured time, counting only
 * while something waits for it ({@linkcode guard}).
 */
class Watchdog {
  readonly #controller = new AbortController();
  readonly #ms: number;
  readonly #error: () => NetworkError;
  #timer: ReturnType<typeof setTimeout> | undefined;
  expired = false;

  constructor(ms: number, error: () => NetworkError) {
    this.#ms = ms;
    this.#error = error;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Awaits `promise`, aborting the exchange if it takes longer than the timeout. */
  async guard<T>(promise: Promise<T>): Promise<T> {
    this.#timer = setTimeout(() => {
      this.expired = true;
      this.#controller.abort(this.#error());
    }, this.#ms);
    try {
      return await promise;
    } finally {
      clearTimeout(this.#timer);
    }
  }
}

async function fetchOnce(
  request: TransportRequest,
  client: Deno.HttpClient,
  options: TransportOptions,
): Promise<TransportResponse> {
  const { method, url } = request;
  const where = redactUrl(url);
  // Only in-memory bodies come here (see `send`); none is backed by a SharedArrayBuffer.
  const body = request.body as Uint8Array<ArrayBuffer> | undefined;
  const headers = new Headers(request.headers);
  if (options.userAgent && !headers.has("user-agent")) headers.set("user-agent", options.userAgent);
  // fetch would ask for gzip and br and decode them: a blob must arrive as stored, its bytes
  // counted as the registry counts them (a Range resume depends on it).
  if (!headers.has("accept-encoding")) headers.set("accept-encoding", "identity");
  const watchdog = new Watchdog(
    options.inactivityTimeoutMs,
    () =>
      new NetworkError(
        method,
        where,
        `timed out: no data moved for ${options.inactivityTimeoutMs / 1000} s`,
        { temporary: true },
      ),
  );
  const signal = request.signal
    ? AbortSignal.any([request.signal, watchdog.signal])
    : watchdog.signal;
  const failure = (error: unknown, context?: string): unknown => {
    if (request.signal?.aborted) return abortReason(request.signal);
    if (watchdog.expired) return watchdog.signal.reason;
    return fetchError(method, where, error, context);
  };
  request.signal?.throwIfAborted();
  let response: Response;
  try {
    response = await watchdog.guard(fetch(url, {
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
      redirect: "manual",
      client,
      signal,
    }));
  } catch (error) {
    if (error instanceof TypeError && /Requests to port \d+ are blocked/.test(error.message)) {
      throw new BlockedPortError(error.message, { cause: error });
    }
    throw failure(error);
  }
  if (body !== undefined) request.onBodyProgress?.(body.length);
  return wrapResponse(response, method, where, watchdog, failure);
}

function wrapResponse(
  response: Response,
  method: string,
  where: string,
  watchdog: Watchdog,
  failure: (error: unknown, context?: string) => unknown,
): TransportResponse {
  let consumed = false;
  const take = (): ReadableStreamBYOBReader | undefined => {
    if (consumed) throw new Error("Response body already consumed");
    consumed = true;
    return response.body?.getReader({ mode: "byob" });
  };
  // Reads go into one buffer, lent to the caller until the next read (see `stream` in
  // transport.ts): no allocation per read, and a read takes all that has arrived up to its
  // size (~190 KB on average on loopback, against at most 64 KiB per read otherwise). A 792 MB
  // layer read so: ~50 MB RSS and 0.3 s CPU, against ~75 MB and 0.5 s.
  async function* stream(): AsyncGenerator<Uint8Array> {
    const reader = take();
    if (reader === undefined) return;
    let buffer = new Uint8Array(READ_BYTES);
    let complete = false;
    try {
      for (;;) {
        let read: ReadableStreamReadResult<Uint8Array<ArrayBuffer>>;
        try {
          read = await watchdog.guard(reader.read(buffer));
        } catch (error) {
          throw failure(error, "response truncated");
        }
        if (read.done) {
          complete = true;
          return;
        }
        // The read took the buffer (detached it); its memory comes back in the result.
        buffer = new Uint8Array(read.value.buffer);
        yield read.value;
      }
    } finally {
      // Stopped early (or failed): drop the connection rather than drain it.
      if (!complete) await reader.cancel().catch(() => {});
      reader.releaseLock();
    }
  }
  const bytes = async (limit = DEFAULT_BODY_LIMIT): Promise<Uint8Array> => {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of stream()) {
      total += chunk.length;
      if (total > limit) {
        throw new Error(`Response from ${method} ${where} is larger than ${limit} bytes`);
      }
      chunks.push(chunk.slice());
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const chunk of chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  };
  return {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
    stream,
    bytes,
    text: async (limit) => new TextDecoder().decode(await bytes(limit)),
    discard: async () => {
      if (consumed) return;
      const length = Number(response.headers.get("content-length") ?? NaN);
      if (method === "HEAD" || !(length <= DRAIN_LIMIT)) {
        // Nothing to read, or too much to be worth reading for the connection's sake.
        consumed = true;
        await response.body?.cancel().catch(() => {});
        return;
      }
      try {
        await bytes(DRAIN_LIMIT);
      } catch {
        // A body we were going to drop anyway; the connection goes with it.
      }
    },
  };
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return new DOMException("The operation was aborted", "AbortError");
}

/**
 * A fetch failure as the node:http transport words it. fetch's own message names the URL in
 * full (signed query and all) and wraps the reason in layers: keep the reason only.
 */
function fetchError(method: string, where: string, error: unknown, context?: string): Error {
  let inner: unknown = error;
  while (inner instanceof Error && inner.cause instanceof Error) inner = inner.cause;
  const raw = inner instanceof Error ? inner.message : String(inner);
  const reason = raw
    .replace(/^error sending request\b.*?\): /s, "")
    .replace(/^(?:client|request or response body) error(?: \(\w+\))?: /, "");
  const known = describe(reason);
  const text = known ?? reason;
  return toNetworkError(
    method,
    where,
    new Error(context ? `${context} (${text})` : text, { cause: error }),
  );
}

function describe(reason: string): string | undefined {
  if (/connection refused/i.test(reason)) return "connection refused";
  if (/connection reset/i.test(reason)) return "connection reset";
  if (/dns error|failed to lookup address|name or service not known/i.test(reason)) {
    return "host not found";
  }
  if (/network is unreachable|no route to host/i.test(reason)) return "network unreachable";
  return undefined;
}

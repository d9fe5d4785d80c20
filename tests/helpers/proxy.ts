/**
 * A recording, fault-injecting HTTP(S) proxy in front of a real registry, on 127.0.0.1.
 *
 * It forwards every request to the registry, rewrites absolute `Location` headers so clients
 * keep talking through it, and records each request (method, path, body bytes, concurrency).
 * Faults are a list of rules: the n-th request matching a method/path answers a status of its
 * own choosing instead of being forwarded. With `tls`, it serves HTTPS with the given
 * certificate, which is how TLS behaviour is tested against the real registry.
 *
 * `quirks` make it relay the real registry the way particular registries (or the proxies in
 * front of them) behave: odd upload `Location`s, refused PATCHes, body-size caps, 401/403 for
 * missing blobs, manifest responses without a digest.
 *
 * @example
 * ```ts
 * await using proxy = startProxy({
 *   upstream: registry.url,
 *   quirks: { refusePatch: 405, maxBodyBytes: 2 * 1024 * 1024 },
 * });
 * // push to proxy.url, then look at proxy.requests
 * ```
 */

/** Path prefix under which `location: "absolute-other-path"` also serves the registry. */
export const MIRROR_PREFIX = "/mirror";

export interface ProxyRequest {
  method: string;
  /** The path as received (with {@linkcode MIRROR_PREFIX} when it came in under it). */
  path: string;
  /** The query string as received, with its `?` ("" when none). */
  search: string;
  /** Request body bytes the proxy received. */
  bodyBytes: number;
  status: number;
  headers: Headers;
  /** Headers of the answer the client got (after any rewriting). */
  responseHeaders: Headers;
  /** Which listener got the request: the proxy's own, or the `other-host` one. */
  listener: "main" | "other";
}

export interface FaultRule {
  method?: string;
  /** Matches the path (without query). */
  path?: RegExp;
  /** Which matching requests fail: 1-based occurrence numbers. Default: all. */
  occurrences?: number[];
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** Ways of relaying the real registry that some registries (or their front ends) have. */
export interface ProxyQuirks {
  /**
   * Rewrites the `Location` of upload sessions (POST, PATCH and status responses):
   * - `relative`: `/v2/…?_state=…`, as distribution with `relativeurls: true`, Quay and
   *   Artifactory answer;
   * - `absolute-other-path`: `http://proxy/mirror/v2/…`, as GCR and Harbor answer behind
   *   path-routing proxies (the proxy serves the registry under {@linkcode MIRROR_PREFIX} too);
   * - `other-host`: a second listener on another port of 127.0.0.1 relaying to the same
   *   registry, standing for the storage front ends some registries hand uploads to (Docker
   *   Hub's and GAR's presigned storage URLs). Clients must follow it and must not send
   *   `Authorization` there; requests record which listener got them.
   */
  location?: "relative" | "absolute-other-path" | "other-host";
  /**
   * `Authorization` the `other-host` listener adds towards the registry when the client sent
   * none: the storage host authorizes by the signed upload URL alone, not the client's login.
   */
  otherHostAuthorization?: string;
  /** Answers every PATCH with this status (405) without forwarding it, as ECR-style setups. */
  refusePatch?: number;
  /**
   * Answers 413 to a PATCH or PUT whose body exceeds this many bytes, without forwarding it:
   * Cloudflare in front of a registry caps bodies (~100 MB), GHCR caps chunks (4 MiB).
   */
  maxBodyBytes?: number;
  /**
   * Answers this instead of the registry's 404 to `HEAD` on a blob it doesn't have, as
   * Artifactory (401) and some GAR/GCR setups (403) do; 401 carries
   * `WWW-Authenticate: Basic realm="x"`.
   */
  headMissing?: 401 | 403;
  /** Drops `Docker-Content-Digest` from manifest PUT responses, as some older registries do. */
  stripManifestDigest?: boolean;
}

export interface ProxyOptions {
  /** Registry origin, e.g. `http://127.0.0.1:5000`. */
  upstream: string;
  faults?: FaultRule[];
  /**
   * Delay before forwarding requests that match (and before answering them from `quirks`),
   * to make concurrency observable. Fault answers are not delayed.
   */
  delay?: { method?: string; path?: RegExp; ms: number };
  tls?: { cert: string; key: string };
  quirks?: ProxyQuirks;
}

export interface TestProxy extends AsyncDisposable {
  /** `127.0.0.1:PORT`. */
  host: string;
  /** `http(s)://127.0.0.1:PORT`. */
  url: string;
  /** With `quirks.location: "other-host"`: the second listener's `127.0.0.1:PORT`. */
  otherHost: string | undefined;
  /** With `quirks.location: "other-host"`: the second listener's origin. */
  otherUrl: string | undefined;
  /** Requests to both listeners, in the order they were answered. */
  requests: ProxyRequest[];
  /** Most requests matching `delay` that were in flight at once. */
  maxInFlight: number;
  close(): Promise<void>;
}

/** Statuses whose responses must not have a body (`new Response` throws otherwise). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);
const UPLOAD_PATH = /\/blobs\/uploads\//;
const BLOB_PATH = /^\/v2\/.+\/blobs\/[a-z0-9]+:[a-f0-9]+$/;
const MANIFEST_PATH = /^\/v2\/.+\/manifests\/[^/]+$/;

/** A registry's answer, read in full, as {@linkcode forwardRequest} relays it. */
export interface ForwardedResponse {
  status: number;
  /** Its headers, `Location` rewritten. */
  headers: Headers;
  /** Its body; null for a HEAD. */
  body: Uint8Array<ArrayBuffer> | null;
}

/** Options of {@linkcode forwardRequest}. */
export interface ForwardOptions {
  /**
   * Where the answer's `Location` should point the client, resolved against `target`. Default:
   * a `Location` on the registry's host is moved to the host the request came to (the
   * client keeps talking through the proxy); any other is kept.
   */
  location?: (location: string, target: URL) => string;
  /** Headers sent to the registry when the client sent none of that name. */
  defaultHeaders?: Record<string, string>;
}

/**
 * Relays `request` (its `body` already read) to `target` on the registry, without following
 * redirects, and reads the answer in full. Both test proxies (this one and the referrers double
 * in `referrers_registry.ts`) forward through it.
 */
export async function forwardRequest(
  request: Request,
  target: URL,
  body: Uint8Array<ArrayBuffer> | undefined,
  options: ForwardOptions = {},
): Promise<ForwardedResponse> {
  const method = request.method;
  const headers = new Headers(request.headers);
  headers.delete("host");
  for (const [name, value] of Object.entries(options.defaultHeaders ?? {})) {
    if (!headers.has(name)) headers.set(name, value);
  }
  const response = await fetch(target, {
    method,
    headers,
    ...(body !== undefined && method !== "GET" && method !== "HEAD" ? { body } : {}),
    redirect: "manual",
  });
  const out = new Headers(response.headers);
  const location = out.get("location");
  if (location) {
    const here = new URL(request.url).origin;
    const moved = options.location ?? ((location: string, target: URL) => {
      const resolved = new URL(location, target);
      return resolved.host === target.host
        ? `${here}${resolved.pathname}${resolved.search}`
        : location;
    });
    out.set("location", moved(location, target));
  }
  const bytes = method === "HEAD" ? null : new Uint8Array(await response.arrayBuffer());
  if (method === "HEAD") await response.body?.cancel();
  return { status: response.status, headers: out, body: bytes };
}

export function startProxy(options: ProxyOptions): TestProxy {
  const upstream = new URL(options.upstream);
  const quirks = options.quirks ?? {};
  const counts = new Map<FaultRule, number>();
  const requests: ProxyRequest[] = [];
  let inFlight = 0;
  const state = { maxInFlight: 0 };
  const matches = (rule: { method?: string; path?: RegExp }, method: string, path: string) =>
    (rule.method === undefined || rule.method === method) &&
    (rule.path === undefined || rule.path.test(path));
  const scheme = options.tls ? "https" : "http";
  const serveOptions = {
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
    ...(options.tls ? { cert: options.tls.cert, key: options.tls.key } : {}),
  };

  /** Where a registry `Location` should point the client, seen from `listener`. */
  const rewriteLocation = (location: string, target: URL, listener: ProxyRequest["listener"]) => {
    const resolved = new URL(location, target);
    if (resolved.host !== upstream.host) return location;
    const rest = `${resolved.pathname}${resolved.search}`;
    const here = listener === "main" ? origin() : otherOrigin();
    if (!UPLOAD_PATH.test(resolved.pathname)) return `${here}${rest}`;
    switch (quirks.location) {
      case "relative":
        return rest;
      case "absolute-other-path":
        return `${here}${MIRROR_PREFIX}${rest}`;
      case "other-host":
        return `${otherOrigin()}${rest}`;
      default:
        return `${here}${rest}`;
    }
  };

  const handle = (listener: ProxyRequest["listener"]) => async (request: Request) => {
    const url = new URL(request.url);
    const method = request.method;
    const body = request.body ? new Uint8Array(await request.arrayBuffer()) : undefined;
    const bodyBytes = body?.length ?? 0;
    const respond = (status: number, headers: Headers, responseBody: BodyInit | null) => {
      requests.push({
        method,
        path: url.pathname,
        search: url.search,
        bodyBytes,
        status,
        headers: request.headers,
        responseHeaders: headers,
        listener,
      });
      const nullBody = method === "HEAD" || NULL_BODY.has(status);
      return new Response(nullBody ? null : responseBody, { status, headers });
    };

    for (const rule of options.faults ?? []) {
      if (!matches(rule, method, url.pathname)) continue;
      const n = (counts.get(rule) ?? 0) + 1;
      counts.set(rule, n);
      if (rule.occurrences === undefined || rule.occurrences.includes(n)) {
        return respond(rule.status, new Headers(rule.headers), rule.body ?? null);
      }
    }

    const delayed = options.delay !== undefined && matches(options.delay, method, url.pathname);
    if (delayed) {
      inFlight++;
      state.maxInFlight = Math.max(state.maxInFlight, inFlight);
    }
    try {
      if (delayed) await new Promise((resolve) => setTimeout(resolve, options.delay!.ms));

      // The body was read in full before answering: a front end that answers early and
      // closes the connection would make the client see a reset instead of the status.
      if (quirks.refusePatch !== undefined && method === "PATCH") {
        const headers = new Headers({
          "Content-Type": "text/plain",
          "Allow": "GET, HEAD, POST, PUT, DELETE",
        });
        return respond(quirks.refusePatch, headers, "PATCH is not supported here\n");
      }
      if (
        quirks.maxBodyBytes !== undefined && (method === "PATCH" || method === "PUT") &&
        bodyBytes > quirks.maxBodyBytes
      ) {
        const headers = new Headers({ "Content-Type": "text/html" });
        return respond(413, headers, "<html><body>413 Request Entity Too Large</body></html>\n");
      }

      const path = quirks.location === "absolute-other-path" &&
          url.pathname.startsWith(`${MIRROR_PREFIX}/v2/`)
        ? url.pathname.slice(MIRROR_PREFIX.length)
        : url.pathname;
      const target = new URL(path + url.search, upstream);
      const authorization = listener === "other" ? quirks.otherHostAuthorization : undefined;
      const forwarded = await forwardRequest(request, target, body, {
        location: (location) => rewriteLocation(location, target, listener),
        ...(authorization ? { defaultHeaders: { authorization } } : {}),
      });
      const { status, headers: out, body: responseBody } = forwarded;

      if (
        quirks.headMissing !== undefined && method === "HEAD" && status === 404 &&
        BLOB_PATH.test(path)
      ) {
        const quirk = new Headers(
          quirks.headMissing === 401 ? { "WWW-Authenticate": 'Basic realm="x"' } : {},
        );
        return respond(quirks.headMissing, quirk, null);
      }
      if (quirks.stripManifestDigest && method === "PUT" && MANIFEST_PATH.test(path)) {
        out.delete("docker-content-digest");
      }
      return respond(status, out, responseBody);
    } finally {
      if (delayed) inFlight--;
    }
  };

  const server = Deno.serve(serveOptions, handle("main"));
  const other = quirks.location === "other-host"
    ? Deno.serve(serveOptions, handle("other"))
    : undefined;
  const origin = () => `${scheme}://127.0.0.1:${server.addr.port}`;
  const otherOrigin = () =>
    other === undefined ? origin() : `${scheme}://127.0.0.1:${other.addr.port}`;
  const proxy: TestProxy = {
    host: `127.0.0.1:${server.addr.port}`,
    url: origin(),
    otherHost: other === undefined ? undefined : `127.0.0.1:${other.addr.port}`,
    otherUrl: other === undefined ? undefined : otherOrigin(),
    requests,
    get maxInFlight() {
      return state.maxInFlight;
    },
    close: async () => {
      await Promise.all([server.shutdown(), other?.shutdown()]);
    },
    [Symbol.asyncDispose]: () => proxy.close(),
  };
  return proxy;
}

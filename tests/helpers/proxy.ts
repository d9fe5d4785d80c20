/**
 * A recording, fault-injecting HTTP(S) proxy in front of a real registry, on 127.0.0.1.
 *
 * It forwards every request to the registry, rewrites absolute `Location` headers so clients
 * keep talking through it, and records each request (method, path, body bytes, concurrency).
 * Faults are a list of rules: the n-th request matching a method/path answers a status of its
 * own choosing instead of being forwarded. With `tls`, it serves HTTPS with the given
 * certificate, which is how TLS behaviour is tested against the real registry.
 */

export interface ProxyRequest {
  method: string;
  path: string;
  /** Request body bytes the proxy received. */
  bodyBytes: number;
  status: number;
  headers: Headers;
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

export interface ProxyOptions {
  /** Registry origin, e.g. `http://127.0.0.1:5000`. */
  upstream: string;
  faults?: FaultRule[];
  /** Delay before forwarding requests that match, to make concurrency observable. */
  delay?: { method?: string; path?: RegExp; ms: number };
  tls?: { cert: string; key: string };
}

export interface TestProxy extends AsyncDisposable {
  /** `127.0.0.1:PORT`. */
  host: string;
  /** `http(s)://127.0.0.1:PORT`. */
  url: string;
  requests: ProxyRequest[];
  /** Most requests matching `delay` that were in flight at once. */
  maxInFlight: number;
  close(): Promise<void>;
}

export function startProxy(options: ProxyOptions): TestProxy {
  const upstream = new URL(options.upstream);
  const counts = new Map<FaultRule, number>();
  const requests: ProxyRequest[] = [];
  let inFlight = 0;
  const state = { maxInFlight: 0 };
  const matches = (rule: { method?: string; path?: RegExp }, method: string, path: string) =>
    (rule.method === undefined || rule.method === method) &&
    (rule.path === undefined || rule.path.test(path));

  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
    ...(options.tls ? { cert: options.tls.cert, key: options.tls.key } : {}),
  }, async (request) => {
    const url = new URL(request.url);
    const method = request.method;
    const body = request.body ? new Uint8Array(await request.arrayBuffer()) : undefined;
    const record = (status: number) => {
      requests.push({
        method,
        path: url.pathname,
        bodyBytes: body?.length ?? 0,
        status,
        headers: request.headers,
      });
    };

    for (const rule of options.faults ?? []) {
      if (!matches(rule, method, url.pathname)) continue;
      const n = (counts.get(rule) ?? 0) + 1;
      counts.set(rule, n);
      if (rule.occurrences === undefined || rule.occurrences.includes(n)) {
        const headers = new Headers(rule.headers);
        record(rule.status);
        return new Response(rule.body ?? null, { status: rule.status, headers });
      }
    }

    const delayed = options.delay !== undefined && matches(options.delay, method, url.pathname);
    if (delayed) {
      inFlight++;
      state.maxInFlight = Math.max(state.maxInFlight, inFlight);
      await new Promise((resolve) => setTimeout(resolve, options.delay!.ms));
    }
    try {
      const target = new URL(url.pathname + url.search, upstream);
      const headers = new Headers(request.headers);
      headers.delete("host");
      const response = await fetch(target, {
        method,
        headers,
        ...(body !== undefined && method !== "GET" && method !== "HEAD" ? { body } : {}),
        redirect: "manual",
      });
      const out = new Headers(response.headers);
      const location = out.get("location");
      if (location) {
        const resolved = new URL(location, target);
        if (resolved.host === upstream.host) {
          out.set("location", `${origin()}${resolved.pathname}${resolved.search}`);
        }
      }
      const responseBody = method === "HEAD" ? null : new Uint8Array(await response.arrayBuffer());
      record(response.status);
      return new Response(responseBody, { status: response.status, headers: out });
    } finally {
      if (delayed) inFlight--;
    }
  });
  const origin = () => `${options.tls ? "https" : "http"}://127.0.0.1:${server.addr.port}`;
  const proxy: TestProxy = {
    host: `127.0.0.1:${server.addr.port}`,
    url: origin(),
    requests,
    get maxInFlight() {
      return state.maxInFlight;
    },
    close: async () => {
      await server.shutdown();
    },
    [Symbol.asyncDispose]: () => proxy.close(),
  };
  return proxy;
}

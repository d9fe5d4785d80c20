/**
 * A store-and-forward HTTP/1.1 proxy on 127.0.0.1 that injects random faults, seeded, in front
 * of a real registry.
 *
 * For every request it parses the head, then reads the whole body (by `Content-Length`) before
 * anything reaches the registry, the way nginx does with its default `proxy_request_buffering
 * on`. A seeded random draw then picks, for requests the fault filter admits:
 *
 * - `503`: answer 503 without forwarding (`rate503`);
 * - `429`: answer 429 with `Retry-After: 1` without forwarding (`rate429`);
 * - `cut`: only for PATCH/PUT on `/blobs/uploads/` with at least `cutMinBodyBytes` of body:
 *   read a random 10–90% of the body, then close the client's connection with no answer and
 *   forward nothing (`rateCut`);
 * - otherwise forward the buffered request to the upstream and relay the answer, with absolute
 *   `Location`s that point at the upstream rewritten to point at the proxy.
 *
 * The rates are shares of one draw, so they add up: with 15% 503s, 5% 429s and 20% cuts, an
 * upload body fails 40% of the time and any other request 20%.
 *
 * Why store-and-forward: the CNCF distribution registry destroys an upload session when a
 * PATCH is cut off mid-body (it keeps the partial bytes, so the `_state` offset the client
 * presents next no longer matches and it answers BLOB_UPLOAD_INVALID). A buffering front end
 * never forwards a cut body, so the session survives; this proxy stands for that setup. The
 * decision is drawn when the head arrives (a cut has to know where to stop reading), but
 * nothing is forwarded or answered before the body is complete.
 *
 * Connections are kept alive between requests (HTTP/1.1 persistent connections): a request
 * that was answered, injected fault or not, leaves the connection ready for the next one,
 * unless the client sent `Connection: close`. A cut, an unknown transfer encoding (answered
 * 501) or a client hanging up mid-body closes the connection. Bodies are held in memory, so
 * keep monolithic uploads through the proxy to sizes that fit (chunks of 64 MiB are fine).
 * Chunked bodies (streams of unknown length) are decoded, held whole and forwarded with their
 * length; they get 503 and 429 faults but no cuts.
 *
 * The draws are seeded per request: the seed, what the request is ({@linkcode requestKey}:
 * method, path without the repository name and the upload session's random id, the `digest=`
 * of a closing PUT, a chunk's `Content-Range`) and how many such requests came before make its
 * generator. So one seed gives the same faults on every run even when blobs upload
 * concurrently, as long as requests of the same key (the POSTs that open sessions, for one)
 * don't race each other. Put {@linkcode FaultProxy.summary} (it names the seed) in assertion
 * messages.
 *
 * @example
 * ```ts
 * await using registry = await startRegistry();
 * await using proxy = startFaultProxy({
 *   upstream: registry.url,
 *   seed: 7,
 *   rate503: 0.15,
 *   rate429: 0.05,
 *   rateCut: 0.2,
 * });
 * // push to proxy.host …
 * assert(proxy.faultCounts().cut > 0, proxy.summary());
 * ```
 *
 * @module
 */

/** The faults the proxy injects. */
export type FaultKind = "503" | "429" | "cut";

/** What became of a request. */
export type FaultProxyOutcome =
  /** Head read, body still arriving or upstream answer pending. */
  | "pending"
  /** Sent to the upstream; `status` is its answer, relayed. */
  | "forwarded"
  /** Answered by the proxy with an injected `status` (503 or 429). */
  | "injected"
  /** Cut: part of the body read, then the connection closed with no answer. */
  | "cut"
  /** The client hung up before its body was complete (nothing was forwarded). */
  | "client-closed"
  /** The upstream could not be reached or failed mid-answer; 502 when still possible. */
  | "upstream-error"
  /** Refused by the proxy itself (501 for a chunked request body). */
  | "rejected";

/** One request as the proxy saw it. */
export interface FaultProxyRecord {
  method: string;
  /** Path and query as received. */
  target: string;
  /** Path without the query. */
  path: string;
  /** The request's `Content-Length` (0 when absent). */
  contentLength: number;
  /** Body bytes the client sent to the proxy (fewer than `contentLength` when cut or closed). */
  bodyBytesReceived: number;
  /** Body bytes forwarded to the upstream (0 unless `outcome` is "forwarded"). */
  forwardedBytes: number;
  outcome: FaultProxyOutcome;
  /** The injected fault, if any. */
  fault: FaultKind | undefined;
  /** The status the client was answered; undefined when it got no answer. */
  status: number | undefined;
}

/** Which requests may get faults. */
export interface FaultFilter {
  /** Methods (upper case). Default: every method. */
  methods?: readonly string[];
  /** Tested against the path without the query. Default: every path. */
  path?: RegExp;
}

/** Options for {@linkcode startFaultProxy}. */
export interface FaultProxyOptions {
  /** The registry's origin, e.g. `http://127.0.0.1:5000`. */
  upstream: string | URL;
  /** Seed of the fault draws (a 32-bit integer). Default: a random one, see `seed`. */
  seed?: number;
  /** Share of admitted requests answered 503. Default: 0. */
  rate503?: number;
  /** Share of admitted requests answered 429 with `Retry-After: 1`. Default: 0. */
  rate429?: number;
  /** Share of admitted upload bodies (PATCH/PUT on `/blobs/uploads/`) cut off. Default: 0. */
  rateCut?: number;
  /** Smallest body a cut applies to, in bytes. Default: 4096. */
  cutMinBodyBytes?: number;
  /** Only these requests get faults. Default: all. */
  faultsOn?: FaultFilter;
  /** Inject at most this many faults, then forward everything. Default: no limit. */
  maxFaults?: number;
}

/** A running proxy; see {@linkcode startFaultProxy}. */
export interface FaultProxy extends AsyncDisposable {
  /** `127.0.0.1:PORT`. */
  readonly host: string;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** The seed in use (the given one, or the random default). */
  readonly seed: number;
  /** Every request, in the order their heads arrived; records update as requests progress. */
  readonly requests: readonly FaultProxyRecord[];
  /** Failures of the proxy itself (not of clients or the upstream); should stay empty. */
  readonly errors: readonly unknown[];
  /** Body bytes clients sent to the proxy so far, cut or not, counted as they arrive. */
  bytesReceived(): number;
  /** Body bytes forwarded to the upstream so far. */
  forwardedBytes(): number;
  /** How many faults of each kind were injected. */
  faultCounts(): Record<FaultKind, number>;
  /**
   * Resolves once {@linkcode bytesReceived} reaches `bytes`. It never settles when the
   * proxy closes first: race it against whatever else may end the wait.
   */
  whenReceived(bytes: number): Promise<void>;
  /** One line for assertion messages: seed, request and fault counts, bytes. */
  summary(): string;
  /** Stops listening, closes every connection and upstream request. Idempotent. */
  close(): Promise<void>;
}

const UPLOAD_PATH = /\/blobs\/uploads\//;
/** Request headers that belong to one connection, not to the request. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "expect",
  "host",
  "content-length",
]);
const MAX_HEAD_BYTES = 64 * 1024;
/** Body reads are at most this big, so {@linkcode FaultProxy.bytesReceived} moves smoothly. */
const READ_BYTES = 256 * 1024;
const encoder = new TextEncoder();

/**
 * Starts the proxy on a free port of 127.0.0.1. Stop it with `close()` or `await using`.
 */
export function startFaultProxy(options: FaultProxyOptions): FaultProxy {
  const upstream = new URL(options.upstream);
  const seed = (options.seed ?? crypto.getRandomValues(new Uint32Array(1))[0]!) >>> 0;
  const rate503 = options.rate503 ?? 0;
  const rate429 = options.rate429 ?? 0;
  const rateCut = options.rateCut ?? 0;
  const cutMin = options.cutMinBodyBytes ?? 4096;
  const filter = options.faultsOn ?? {};
  for (const [name, rate] of [["rate503", rate503], ["rate429", rate429], ["rateCut", rateCut]]) {
    if (typeof rate !== "number" || !(rate >= 0 && rate <= 1)) {
      throw new RangeError(`Cannot start the fault proxy: ${name} must be within 0..1`);
    }
  }
  if (rate503 + rate429 + rateCut > 1) {
    throw new RangeError("Cannot start the fault proxy: the fault rates add up to more than 1");
  }

  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  const origin = `http://127.0.0.1:${port}`;
  const httpClient = Deno.createHttpClient({});
  const stopUpstream = new AbortController();
  const requests: FaultProxyRecord[] = [];
  const errors: unknown[] = [];
  const counts: Record<FaultKind, number> = { "503": 0, "429": 0, cut: 0 };
  let received = 0;
  let forwarded = 0;
  let waiters: { bytes: number; resolve: () => void }[] = [];
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  let closed = false;

  const countReceived = (record: FaultProxyRecord, n: number) => {
    record.bodyBytesReceived += n;
    received += n;
    if (waiters.length === 0) return;
    const due = waiters.filter((w) => received >= w.bytes);
    waiters = waiters.filter((w) => received < w.bytes);
    for (const waiter of due) waiter.resolve();
  };

  /**
   * The fault for a request. Each request gets its own seeded generator, keyed by what the
   * request is (see {@linkcode requestKey}) and how many such requests came before, so the
   * draws don't depend on how concurrent requests interleave.
   */
  const occurrences = new Map<string, number>();
  const draw = (
    method: string,
    target: string,
    path: string,
    contentLength: number,
    contentRange: string | undefined,
  ) => {
    const admitted = (filter.methods === undefined || filter.methods.includes(method)) &&
      (filter.path === undefined || filter.path.test(path));
    if (!admitted) return { fault: undefined, cutFraction: 0 };
    const key = requestKey(method, target, contentRange);
    const n = (occurrences.get(key) ?? 0) + 1;
    occurrences.set(key, n);
    const random = mulberry32(fnv1a(`${seed}|${key}|${n}`));
    const r = random();
    const cuttable = (method === "PATCH" || method === "PUT") && UPLOAD_PATH.test(path) &&
      contentLength >= cutMin;
    let fault: FaultKind | undefined;
    const injected = counts["503"] + counts["429"] + counts.cut;
    if (injected >= (options.maxFaults ?? Infinity)) fault = undefined;
    else if (r < rate503) fault = "503";
    else if (r < rate503 + rate429) fault = "429";
    else if (cuttable && r < rate503 + rate429 + rateCut) fault = "cut";
    return { fault, cutFraction: fault === "cut" ? 0.1 + 0.8 * random() : 0 };
  };

  /** Where an upstream `Location` should send the client: to us, when it names the upstream. */
  const rewriteLocation = (location: string, requestUrl: URL): string => {
    let resolved: URL;
    try {
      resolved = new URL(location, requestUrl);
    } catch {
      return location;
    }
    const absolute = /^[a-z][a-z0-9+.-]*:/i.test(location);
    if (!absolute || resolved.origin !== upstream.origin) return location;
    return `${origin}${resolved.pathname}${resolved.search}${resolved.hash}`;
  };

  async function forward(
    conn: Deno.Conn,
    record: FaultProxyRecord,
    headerList: [string, string][],
    body: Uint8Array<ArrayBuffer> | undefined,
    keepAlive: boolean,
  ): Promise<void> {
    const { method } = record;
    const url = new URL(record.target, upstream);
    const headers = new Headers();
    for (const [name, value] of headerList) {
      if (!HOP_BY_HOP.has(name.toLowerCase())) headers.append(name, value);
    }
    // fetch would otherwise ask for gzip and decompress, breaking the relayed Content-Length.
    headers.set("accept-encoding", "identity");
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        redirect: "manual",
        client: httpClient,
        signal: stopUpstream.signal,
      });
    } catch (error) {
      record.outcome = "upstream-error";
      if (closed) return;
      record.status = 502;
      const text = encoder.encode(`Fault proxy: upstream request failed: ${error}\n`);
      await writeAll(conn, encodeHead(502, [["content-length", String(text.length)]], keepAlive));
      await writeAll(conn, text);
      return;
    }
    forwarded += body?.length ?? 0;
    record.forwardedBytes = body?.length ?? 0;
    record.outcome = "forwarded";
    record.status = response.status;

    const out: [string, string][] = [];
    response.headers.forEach((value, name) => {
      if (name === "connection" || name === "keep-alive" || name === "transfer-encoding") return;
      out.push([name, name === "location" ? rewriteLocation(value, url) : value]);
    });
    const noBody = method === "HEAD" || response.status === 204 || response.status === 304 ||
      response.status < 200;
    try {
      if (noBody) {
        await response.body?.cancel();
        await writeAll(conn, encodeHead(response.status, out, keepAlive));
        return;
      }
      const length = response.headers.get("content-length");
      if (length === null || response.body === null) {
        // No length to relay (upstream used chunked encoding): buffer, then send with one.
        const bytes = new Uint8Array(await response.arrayBuffer());
        out.push(["content-length", String(bytes.length)]);
        await writeAll(conn, encodeHead(response.status, out, keepAlive));
        await writeAll(conn, bytes);
        return;
      }
      await writeAll(conn, encodeHead(response.status, out, keepAlive));
      const reader = response.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          await writeAll(conn, value);
        }
      } finally {
        await reader.cancel().catch(() => {});
      }
    } catch (error) {
      await response.body?.cancel().catch(() => {});
      throw error;
    }
  }

  async function serveConn(conn: Deno.Conn): Promise<void> {
    const input = new ConnReader(conn);
    try {
      for (;;) {
        const head = await input.readHead();
        if (head === null) return;
        const parsed = parseHead(head);
        const contentLength = Number(parsed.header("content-length") ?? "0");
        const record: FaultProxyRecord = {
          method: parsed.method,
          target: parsed.target,
          path: parsed.target.split("?")[0] ?? parsed.target,
          contentLength: Number.isSafeInteger(contentLength) ? contentLength : 0,
          bodyBytesReceived: 0,
          forwardedBytes: 0,
          outcome: "pending",
          fault: undefined,
          status: undefined,
        };
        requests.push(record);
        const keepAlive = parsed.header("connection")?.toLowerCase() !== "close";

        const chunked = parsed.header("transfer-encoding")?.toLowerCase() === "chunked";
        if (parsed.header("transfer-encoding") !== undefined && !chunked) {
          record.outcome = "rejected";
          record.status = 501;
          const text = encoder.encode("Fault proxy: unknown transfer encoding\n");
          await writeAll(conn, encodeHead(501, [["content-length", String(text.length)]], false));
          await writeAll(conn, text);
          return;
        }
        if (!Number.isSafeInteger(contentLength) || contentLength < 0) {
          record.outcome = "rejected";
          record.status = 400;
          await writeAll(conn, encodeHead(400, [["content-length", "0"]], false));
          return;
        }

        const { fault, cutFraction } = draw(
          record.method,
          record.target,
          record.path,
          contentLength,
          parsed.header("content-range"),
        );
        record.fault = fault;
        if (fault !== undefined) counts[fault]++;
        if (parsed.header("expect")?.toLowerCase() === "100-continue") {
          await writeAll(conn, encoder.encode("HTTP/1.1 100 Continue\r\n\r\n"));
        }

        // A chunked body (a stream of unknown length) is read whole, then forwarded with its
        // length; cuts apply to bodies of known length only (the draw saw length 0).
        const decoded = chunked ? await readChunked(input, (n) => countReceived(record, n)) : null;
        if (chunked && decoded === null) {
          record.outcome = "client-closed";
          return;
        }
        const readLimit = fault === "cut" ? Math.floor(contentLength * cutFraction) : contentLength;
        const body = decoded ?? new Uint8Array(contentLength);
        while (!chunked && record.bodyBytesReceived < readLimit) {
          const at = record.bodyBytesReceived;
          const n = await input.readInto(body.subarray(at, Math.min(readLimit, at + READ_BYTES)));
          if (n === null) {
            record.outcome = "client-closed";
            return;
          }
          countReceived(record, n);
        }
        if (fault === "cut") {
          record.outcome = "cut";
          return; // The finally block drops the connection; nothing was forwarded.
        }

        if (fault === "503" || fault === "429") {
          const status = Number(fault);
          const text = encoder.encode(JSON.stringify({
            errors: [{
              code: fault === "503" ? "UNAVAILABLE" : "TOOMANYREQUESTS",
              message: `injected by the fault proxy (seed ${seed})`,
            }],
          }));
          const headers: [string, string][] = [
            ["content-type", "application/json"],
            ["content-length", String(text.length)],
            ...(fault === "429" ? [["retry-after", "1"] as [string, string]] : []),
          ];
          record.outcome = "injected";
          record.status = status;
          await writeAll(conn, encodeHead(status, headers, keepAlive));
          if (record.method !== "HEAD") await writeAll(conn, text);
        } else {
          const sendsBody = body.length > 0 ||
            !(record.method === "GET" || record.method === "HEAD" || record.method === "DELETE");
          await forward(conn, record, parsed.headers, sendsBody ? body : undefined, keepAlive);
        }
        if (!keepAlive) return;
      }
    } catch (error) {
      if (!closed && !isDisconnect(error)) throw error;
    } finally {
      closeQuietly(conn);
    }
  }

  const accepting = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return; // Closed.
      }
      conns.add(conn);
      const task = serveConn(conn)
        .catch((error) => {
          // A bug of the proxy itself; tests check that `errors` stays empty.
          errors.push(error);
        })
        .finally(() => {
          conns.delete(conn);
          tasks.delete(task);
        });
      tasks.add(task);
    }
  })();

  const proxy: FaultProxy = {
    host: `127.0.0.1:${port}`,
    url: origin,
    seed,
    requests,
    errors,
    bytesReceived: () => received,
    forwardedBytes: () => forwarded,
    faultCounts: () => ({ ...counts }),
    whenReceived(bytes) {
      if (received >= bytes) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ bytes, resolve }));
    },
    summary() {
      const outcomes = new Map<string, number>();
      for (const r of requests) {
        const key = r.outcome === "forwarded" || r.outcome === "injected"
          ? `${r.outcome} ${r.status}`
          : r.outcome;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      }
      const detail = [...outcomes].map(([key, n]) => `${key}: ${n}`).join(", ");
      return `fault proxy seed ${seed}: ${requests.length} requests (${detail}); ` +
        `faults 503×${counts["503"]}, 429×${counts["429"]}, cut×${counts.cut}; ` +
        `body bytes received ${received}, forwarded ${forwarded}` +
        (errors.length > 0 ? `; proxy errors: ${errors.map(String).join(" | ")}` : "");
    },
    async close() {
      if (closed) return;
      closed = true;
      waiters = [];
      listener.close();
      await accepting;
      stopUpstream.abort();
      for (const conn of conns) closeQuietly(conn);
      await Promise.allSettled([...tasks]);
      httpClient.close();
    },
    [Symbol.asyncDispose]: () => proxy.close(),
  };
  return proxy;
}

/**
 * What a request is, for keying its fault draw: method and path with the repository name and
 * the upload session's id left out (so a seed means the same whatever the test calls its
 * repository, and the random id doesn't matter), plus the `digest=` a blob's closing PUT names
 * and the `Content-Range` of a chunk (which tells one blob's chunks from another's). Retries of the same
 * request share a key and count up its occurrence number.
 */
export function requestKey(method: string, target: string, contentRange?: string): string {
  const [path = "", query = ""] = target.split("?");
  const normalized = path
    .replace(/^\/v2\/.+\/(blobs|manifests|tags)\//, "/v2/<name>/$1/")
    .replace(/(\/blobs\/uploads\/)[^/]+$/, "$1<id>");
  const digest = /(?:^|&)digest=([^&]*)/.exec(query)?.[1];
  return `${method} ${normalized}${digest === undefined ? "" : ` digest=${digest}`}` +
    (contentRange === undefined ? "" : ` range=${contentRange}`);
}

/** 32-bit FNV-1a of a string's UTF-16 code units: turns a draw's key into a seed. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** mulberry32: a small, fast, seedable 32-bit generator; floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface ParsedHead {
  method: string;
  target: string;
  headers: [string, string][];
  /** The first header of that name (case-insensitive), trimmed. */
  header(name: string): string | undefined;
}

function parseHead(head: string): ParsedHead {
  const [requestLine = "", ...lines] = head.split("\r\n");
  const [method = "", target = "/"] = requestLine.split(" ");
  const headers: [string, string][] = [];
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return {
    method,
    target,
    headers,
    header: (name) => headers.find(([n]) => n.toLowerCase() === name)?.[1],
  };
}

const STATUS_TEXT: Record<number, string> = {
  100: "Continue",
  200: "OK",
  201: "Created",
  202: "Accepted",
  204: "No Content",
  206: "Partial Content",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Content Too Large",
  416: "Range Not Satisfiable",
  429: "Too Many Requests",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

function encodeHead(status: number, headers: [string, string][], keepAlive: boolean): Uint8Array {
  let head = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Status"}\r\n`;
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  head += `connection: ${keepAlive ? "keep-alive" : "close"}\r\n\r\n`;
  return encoder.encode(head);
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

function isDisconnect(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.UnexpectedEof;
}

/** Buffered reads from a connection: a request head, then body bytes straight into a buffer. */
class ConnReader {
  #conn: Deno.Conn;
  #buffer = new Uint8Array(MAX_HEAD_BYTES);
  #start = 0;
  #end = 0;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** The request line and headers (without the blank line), or null at a clean end. */
  async readHead(): Promise<string | null> {
    let searchFrom = this.#start;
    for (;;) {
      const end = indexOfBlankLine(this.#buffer, searchFrom, this.#end);
      if (end >= 0) {
        const head = new TextDecoder().decode(this.#buffer.subarray(this.#start, end));
        this.#start = end + 4;
        return head;
      }
      searchFrom = Math.max(this.#start, this.#end - 3);
      if (this.#start > 0) {
        // Move the partial head to the front to make room.
        this.#buffer.copyWithin(0, this.#start, this.#end);
        searchFrom -= this.#start;
        this.#end -= this.#start;
        this.#start = 0;
      }
      if (this.#end === this.#buffer.length) throw new Error("Request head too large");
      const n = await this.#conn.read(this.#buffer.subarray(this.#end));
      if (n === null) {
        if (this.#end === this.#start) return null;
        throw new Deno.errors.UnexpectedEof("Connection closed in the request head");
      }
      this.#end += n;
    }
  }

  /** One CRLF-terminated line, without the CRLF; null when the connection has ended. */
  async readLine(): Promise<string | null> {
    const bytes: number[] = [];
    const one = new Uint8Array(1);
    for (;;) {
      const n = await this.readInto(one);
      if (n === null) return null;
      if (one[0] === 10 && bytes.at(-1) === 13) {
        return new TextDecoder().decode(new Uint8Array(bytes.slice(0, -1)));
      }
      bytes.push(one[0]!);
      if (bytes.length > 4096) throw new Error("Line too long");
    }
  }

  /** Reads up to `target.length` bytes into `target`; null when the connection has ended. */
  async readInto(target: Uint8Array): Promise<number | null> {
    if (this.#start < this.#end) {
      const n = Math.min(target.length, this.#end - this.#start);
      target.set(this.#buffer.subarray(this.#start, this.#start + n));
      this.#start += n;
      return n;
    }
    this.#start = this.#end = 0;
    return await this.#conn.read(target);
  }
}

/**
 * A chunked request body (RFC 9112 §7.1), decoded; null if the connection ends first.
 * `onBytes` counts chunk data as it arrives.
 */
async function readChunked(
  input: ConnReader,
  onBytes: (n: number) => void,
): Promise<Uint8Array<ArrayBuffer> | null> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const line = await input.readLine();
    if (line === null) return null;
    const size = parseInt(line.split(";")[0]!.trim(), 16);
    if (!Number.isSafeInteger(size) || size < 0) throw new Error(`Bad chunk size line: ${line}`);
    if (size === 0) {
      for (;;) {
        const trailer = await input.readLine();
        if (trailer === null) return null;
        if (trailer === "") break;
      }
      const body = new Uint8Array(total);
      let at = 0;
      for (const part of parts) {
        body.set(part, at);
        at += part.length;
      }
      return body;
    }
    const part = new Uint8Array(size);
    for (let got = 0; got < size;) {
      const n = await input.readInto(part.subarray(got, Math.min(size, got + READ_BYTES)));
      if (n === null) return null;
      got += n;
      onBytes(n);
    }
    parts.push(part);
    total += size;
    if (await input.readLine() === null) return null; // the CRLF after the data
  }
}

function indexOfBlankLine(bytes: Uint8Array, from: number, to: number): number {
  for (let i = from; i + 3 < to; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

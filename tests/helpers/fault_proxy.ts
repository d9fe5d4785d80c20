/**
 * An HTTP/1.1 proxy on 127.0.0.1 that injects random faults, seeded, in front of a real
 * registry. It stands for the front end (nginx, a load balancer, a corporate proxy) between a
 * client and the registry, in one of two modes:
 *
 * - `buffering` (store-and-forward): the whole request body is read before anything reaches
 *   the registry, as nginx does with its default `proxy_request_buffering on`. A body cut on
 *   its way in never reaches the registry.
 * - `pass-through`: the request head and body bytes go to the registry as they arrive, in
 *   constant memory, as Harbor's nginx (`proxy_request_buffering off`), many corporate proxies
 *   or no front end at all (a plain `registry:2`) do. A cut body reaches the registry up to the
 *   cut, and the proxy then closes its connection to the registry.
 *
 * The mode matters because the CNCF distribution registry writes a PATCH body as it arrives
 * and keeps what it got when the body is cut: the `_state` offset the client presents next no
 * longer matches, and distribution cancels the session (404 `BLOB_UPLOAD_INVALID`). Behind a
 * buffering front end a cut costs the body; passing through, it costs the upload session.
 *
 * A seeded random draw, made when a request's head arrives, picks for requests the fault
 * filter admits:
 *
 * - `503`: answer 503 without forwarding (`rate503`);
 * - `429`: answer 429 with `Retry-After: 1` without forwarding (`rate429`);
 * - `cut`: only for PATCH/PUT on `/blobs/uploads/` (`rateCut`): read part of the body, then
 *   close the client's connection with no answer. A body of known length (at least
 *   `cutMinBodyBytes`) is cut after a random 10–90% of it. A chunked body (a stream of unknown
 *   length, such as the client's streamed PATCH of a compressed segment) is cut after a random
 *   number of bytes from `cutMinBodyBytes` up to `cutChunkedMaxBytes`; one that ends before
 *   that point goes through whole, with no fault. Buffering, nothing of a cut body is
 *   forwarded; passing through, the part before the cut is, and the connection to the
 *   registry is closed too;
 * - `lost-answer`: only for PATCH/PUT on `/blobs/uploads/` (`rateLostAnswer`): forward the
 *   whole request and read the registry's answer, then close the client's connection without
 *   relaying it, as when a client is killed or a connection drops after the body. The
 *   registry has taken the bytes while the client's saved offset has not moved, so
 *   distribution cancels the session at its next request, in either mode;
 * - `cut-response`: only for GETs on `cutResponsePaths`, by default blobs
 *   (`/v2/<name>/blobs/<digest>`; manifests only when a test names them) (`rateCutResponse`):
 *   forward the request, then relay the answer's status, headers and a random 10–90% of its
 *   body, and close the client's connection, as when a download's connection drops. The
 *   client sees fewer body bytes than `Content-Length` promised (fetch rejects the body's
 *   read). Only a 200 or 206 with a stated, non-zero `Content-Length` is cut (the point is a
 *   share of that length, so of the range a 206 serves); any other answer (404, 307, 416…)
 *   is relayed whole and counts no fault. Passing through, the connection to the registry
 *   is closed too, with the rest of the answer unread;
 * - otherwise forward the request and relay the answer, with absolute `Location`s that point at
 *   the upstream rewritten to point at the proxy.
 *
 * 503 and 429 apply to any admitted request, downloads too (blob and manifest GETs and HEADs).
 * Request headers other than connection ones go to the registry as sent, `Range` included, so
 * a client resumes a cut download with `Range: bytes=N-`. distribution 2.8.2 answers that with
 * 206 and `Content-Range: bytes N-<last>/<size>` for a blob in filesystem storage, no redirect
 * (with a storage driver that redirects, `GET …/blobs/…` answers 307 instead, relayed
 * whole). Asked for `bytes=<size>-`, it answers 416 with the whole blob's `Content-Length`
 * and a short text body, then closes the connection: the proxy relays what came and closes
 * too (outcome `upstream-error`), so a client sees a broken 416; don't resume a complete blob.
 * {@linkcode FaultProxyRecord.responseBytesRelayed} counts the body bytes of each answer a
 * client got, so a test can check what a download cost in all (one blob's size, when every
 * resume went on from where the cut left it).
 *
 * The rates are shares of one draw, so they add up: with 15% 503s, 5% 429s and 20% cuts, an
 * upload body fails 40% of the time and any other request 20%. The mode does not change the
 * draws: one seed gives the same faults in both.
 *
 * Connections are kept alive between requests (HTTP/1.1 persistent connections): a request
 * that was answered, injected fault or not, leaves the connection ready for the next one,
 * unless the client sent `Connection: close`. A cut, a lost answer, a cut answer, an upstream
 * answer broken off, an unknown transfer encoding (answered 501) or a client hanging up
 * mid-body closes the connection. Buffering
 * holds each body in memory, so keep monolithic uploads through a buffering proxy to sizes
 * that fit (chunks of 64 MiB are fine); a buffered chunked body is decoded and forwarded with
 * its length. Passing through, each client connection has one connection to the registry of
 * its own, and a chunked body is forwarded chunked.
 *
 * The mode defaults to the `FAULT_PROXY_MODE` environment variable (`buffering` or
 * `pass-through`), else `buffering`: `FAULT_PROXY_MODE=pass-through deno test -A …` runs a
 * test file's proxies in pass-through mode without editing it.
 *
 * The draws are seeded per request: the seed, what the request is ({@linkcode requestKey}:
 * method, path without the repository name and the upload session's random id, the `digest=`
 * of a closing PUT, a chunk's `Content-Range` or a GET's `Range`) and how many such requests
 * came before make its generator. So one seed gives the same faults on every run even when blobs upload
 * concurrently, as long as requests of the same key (the POSTs that open sessions, for one)
 * don't race each other. Put {@linkcode FaultProxy.summary} (it names the seed and the mode) in
 * assertion messages.
 *
 * @example
 * ```ts
 * await using registry = await startRegistry();
 * await using proxy = startFaultProxy({
 *   upstream: registry.url,
 *   mode: "pass-through",
 *   seed: 7,
 *   rate503: 0.15,
 *   rate429: 0.05,
 *   rateCut: 0.2,
 * });
 * // push to proxy.host …
 * assert(proxy.faultCounts().cut > 0, proxy.summary());
 * ```
 *
 * Downloads: cut blob answers, resumed with `Range` (`maxFaults` bounds the faults, so a
 * download always ends):
 *
 * ```ts
 * await using proxy = startFaultProxy({
 *   upstream: registry.url,
 *   seed: 7,
 *   rate503: 0.1,
 *   rateCutResponse: 0.5,
 *   maxFaults: 6,
 * });
 * // pull from proxy.host …
 * assert(proxy.faultCounts()["cut-response"] > 0, proxy.summary());
 * const blobGets = proxy.requests.filter((r) => r.method === "GET" && /\/blobs\//.test(r.path));
 * const bytes = blobGets.reduce((sum, r) => sum + r.responseBytesRelayed, 0);
 * assertEquals(bytes, totalBlobSize, `every resume went on from the cut; ${proxy.summary()}`);
 * ```
 *
 * @module
 */

import {
  BodyReader,
  closeQuietly,
  ConnReader,
  encodeRequestHead,
  encodeResponseHead,
  isDisconnect,
  LAST_CHUNK,
  type ParsedHead,
  parseHead,
  writeAll,
  writeChunk,
} from "./http1.ts";

/** How the proxy forwards request bodies; see the module doc. */
export type FaultProxyMode = "buffering" | "pass-through";

/** Both modes, for tests that run once in each. */
export const FAULT_PROXY_MODES: readonly FaultProxyMode[] = ["buffering", "pass-through"];

/** The environment variable that sets the default {@linkcode FaultProxyOptions.mode}. */
export const FAULT_PROXY_MODE_ENV = "FAULT_PROXY_MODE";

/** The faults the proxy injects. */
export type FaultKind = "503" | "429" | "cut" | "lost-answer" | "cut-response";

/** What became of a request. */
export type FaultProxyOutcome =
  /** Head read, body still arriving or upstream answer pending. */
  | "pending"
  /** Sent to the upstream; `status` is its answer, relayed. */
  | "forwarded"
  /** Answered by the proxy with an injected `status` (503 or 429). */
  | "injected"
  /** Cut: part of the body read (and passing through, forwarded), then the connection closed. */
  | "cut"
  /** Forwarded whole and answered by the upstream; the client's connection closed unanswered. */
  | "lost-answer"
  /**
   * Forwarded and answered by the upstream; its status, headers and part of its body relayed,
   * then the client's connection closed (the client got fewer bytes than `Content-Length`).
   */
  | "cut-response"
  /** The client hung up before its body was complete (passing through, the part forwarded). */
  | "client-closed"
  /** The upstream could not be reached or failed mid-answer; 502 when still possible. */
  | "upstream-error"
  /** Refused by the proxy itself (501 for an unknown transfer encoding, 400 for a bad length). */
  | "rejected";

/** One request as the proxy saw it. */
export interface FaultProxyRecord {
  method: string;
  /** Path and query as received. */
  target: string;
  /** Path without the query. */
  path: string;
  /** The request's `Content-Length` (0 when absent or chunked). */
  contentLength: number;
  /** Whether the body came chunked (`Transfer-Encoding: chunked`, length unknown). */
  chunked: boolean;
  /** Body bytes the client sent to the proxy (fewer than `contentLength` when cut or closed). */
  bodyBytesReceived: number;
  /**
   * Body bytes forwarded to the upstream. Buffering: the whole body once it went, else 0.
   * Passing through: counted as they go, so a cut or abandoned body has its part before the cut.
   */
  forwardedBytes: number;
  outcome: FaultProxyOutcome;
  /** The injected fault, if any. */
  fault: FaultKind | undefined;
  /** The status the client was answered; undefined when it got no answer. */
  status: number | undefined;
  /**
   * The `Content-Length` of the upstream's answer relayed to the client (what it was promised);
   * undefined for an answer with no body (HEAD, 204…), of no stated length, or not relayed.
   */
  responseContentLength: number | undefined;
  /**
   * Body bytes of the upstream's answer written to the client, counted as they go: the whole
   * body, or for a `cut-response` the part before the cut. The proxy's own answers (injected
   * 503/429, 502, 501) count nothing.
   */
  responseBytesRelayed: number;
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
  /**
   * Buffer request bodies, or pass them through as they arrive (see the module doc).
   * Default: the `FAULT_PROXY_MODE` environment variable, else "buffering".
   */
  mode?: FaultProxyMode;
  /** Seed of the fault draws (a 32-bit integer). Default: a random one, see `seed`. */
  seed?: number;
  /** Share of admitted requests answered 503. Default: 0. */
  rate503?: number;
  /** Share of admitted requests answered 429 with `Retry-After: 1`. Default: 0. */
  rate429?: number;
  /** Share of admitted upload bodies (PATCH/PUT on `/blobs/uploads/`) cut off. Default: 0. */
  rateCut?: number;
  /**
   * Share of admitted upload requests (PATCH/PUT on `/blobs/uploads/`, any body) forwarded and
   * answered by the upstream, but the answer never relayed. Default: 0.
   */
  rateLostAnswer?: number;
  /**
   * Share of admitted GETs on `cutResponsePaths` whose answer is cut: when the upstream answers
   * 200 or 206 with a body of stated length, the status, headers and a random 10–90% of the body
   * are relayed, then the client's connection is closed. Other answers (404, 307, 416…) are
   * relayed whole, with no fault. Default: 0.
   */
  rateCutResponse?: number;
  /**
   * Paths (without the query) of the GETs whose answers `rateCutResponse` may cut. Default:
   * blobs, `/v2/<name>/blobs/<digest>` (not manifests, not upload sessions).
   */
  cutResponsePaths?: RegExp;
  /** Smallest body a cut applies to, and earliest cut of a chunked body, in bytes. Default: 4096. */
  cutMinBodyBytes?: number;
  /** A chunked body drawn for a cut is cut before this many bytes. Default: 8 MiB. */
  cutChunkedMaxBytes?: number;
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
  /** The mode in use (the given one, or the default). */
  readonly mode: FaultProxyMode;
  /** Every request, in the order their heads arrived; records update as requests progress. */
  readonly requests: readonly FaultProxyRecord[];
  /** Failures of the proxy itself (not of clients or the upstream); should stay empty. */
  readonly errors: readonly unknown[];
  /** Body bytes clients sent to the proxy so far, cut or not, counted as they arrive. */
  bytesReceived(): number;
  /** Body bytes forwarded to the upstream so far. */
  forwardedBytes(): number;
  /** Body bytes of upstream answers relayed to clients so far (the sum of `responseBytesRelayed`). */
  relayedBytes(): number;
  /** How many faults of each kind were injected. */
  faultCounts(): Record<FaultKind, number>;
  /**
   * Resolves once {@linkcode bytesReceived} reaches `bytes`. It never settles when the
   * proxy closes first: race it against whatever else may end the wait.
   */
  whenReceived(bytes: number): Promise<void>;
  /** One line for assertion messages: seed, mode, request and fault counts, bytes. */
  summary(): string;
  /** Stops listening, closes every connection and upstream request. Idempotent. */
  close(): Promise<void>;
}

/**
 * The mode `FAULT_PROXY_MODE` names, or "buffering" when it is unset or empty.
 *
 * @throws {RangeError} when it names no mode.
 */
export function faultProxyModeFromEnv(): FaultProxyMode {
  const value = Deno.env.get(FAULT_PROXY_MODE_ENV) ?? "";
  if (value === "") return "buffering";
  if (!(FAULT_PROXY_MODES as readonly string[]).includes(value)) {
    throw new RangeError(
      `Cannot start the fault proxy: ${FAULT_PROXY_MODE_ENV}=${value} is not one of ` +
        FAULT_PROXY_MODES.join(", "),
    );
  }
  return value as FaultProxyMode;
}

const UPLOAD_PATH = /\/blobs\/uploads\//;
/** A blob, `/v2/<name>/blobs/<digest>`: the default {@linkcode FaultProxyOptions.cutResponsePaths}. */
const BLOB_PATH = /^\/v2\/.+\/blobs\/[^/]+$/;
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
/** Body reads are at most this big, so {@linkcode FaultProxy.bytesReceived} moves smoothly. */
const READ_BYTES = 256 * 1024;
const encoder = new TextEncoder();

/**
 * A request's draw: its fault; for a cut, how many body bytes get through first; for a cut
 * response, the share (0..1) of the 10–90% band of the answer's body to relay before the cut.
 */
interface Draw {
  fault: FaultKind | undefined;
  cutAt: number | undefined;
  responseCut: number | undefined;
}

/** What a request's body came to: read whole, cut by the proxy, or abandoned by the client. */
type BodyEnd = "complete" | "cut" | "client-closed";

/** A pass-through connection's own connection to the upstream, opened on first use. */
interface UpstreamLink {
  conn: Deno.Conn;
  input: ConnReader;
}

/**
 * Starts the proxy on a free port of 127.0.0.1. Stop it with `close()` or `await using`.
 *
 * @throws {RangeError} for rates outside 0..1 or adding up to more than 1, or an unknown mode.
 */
export function startFaultProxy(options: FaultProxyOptions): FaultProxy {
  const upstream = new URL(options.upstream);
  const mode = options.mode ?? faultProxyModeFromEnv();
  if (!FAULT_PROXY_MODES.includes(mode)) {
    throw new RangeError(`Cannot start the fault proxy: unknown mode ${mode}`);
  }
  const seed = (options.seed ?? crypto.getRandomValues(new Uint32Array(1))[0]!) >>> 0;
  const rate503 = options.rate503 ?? 0;
  const rate429 = options.rate429 ?? 0;
  const rateCut = options.rateCut ?? 0;
  const rateLost = options.rateLostAnswer ?? 0;
  const rateCutResponse = options.rateCutResponse ?? 0;
  const cutResponsePaths = options.cutResponsePaths ?? BLOB_PATH;
  const cutMin = options.cutMinBodyBytes ?? 4096;
  const cutChunkedMax = Math.max(cutMin + 1, options.cutChunkedMaxBytes ?? 8 * 1024 * 1024);
  const filter = options.faultsOn ?? {};
  for (
    const [name, rate] of [
      ["rate503", rate503],
      ["rate429", rate429],
      ["rateCut", rateCut],
      ["rateLostAnswer", rateLost],
      ["rateCutResponse", rateCutResponse],
    ] as const
  ) {
    if (typeof rate !== "number" || !(rate >= 0 && rate <= 1)) {
      throw new RangeError(`Cannot start the fault proxy: ${name} must be within 0..1`);
    }
  }
  if (rate503 + rate429 + rateCut + rateLost + rateCutResponse > 1) {
    throw new RangeError("Cannot start the fault proxy: the fault rates add up to more than 1");
  }

  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  const origin = `http://127.0.0.1:${port}`;
  const httpClient = Deno.createHttpClient({});
  const stopUpstream = new AbortController();
  const requests: FaultProxyRecord[] = [];
  const errors: unknown[] = [];
  const counts: Record<FaultKind, number> = {
    "503": 0,
    "429": 0,
    cut: 0,
    "lost-answer": 0,
    "cut-response": 0,
  };
  let received = 0;
  let forwarded = 0;
  let relayed = 0;
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
  const countForwarded = (record: FaultProxyRecord, n: number) => {
    record.forwardedBytes += n;
    forwarded += n;
  };
  const countRelayed = (record: FaultProxyRecord, n: number) => {
    record.responseBytesRelayed += n;
    relayed += n;
  };

  /**
   * The fault for a request. Each request gets its own seeded generator, keyed by what the
   * request is (see {@linkcode requestKey}) and how many such requests came before, so the
   * draws don't depend on how concurrent requests interleave. The first number picks the
   * fault, the second a cut's point; bands are 503, 429, cut, lost answer, cut response in
   * that order, so a fault added later leaves the earlier ones' draws as they were.
   */
  const occurrences = new Map<string, number>();
  const draw = (
    method: string,
    target: string,
    path: string,
    contentLength: number | undefined,
    range: string | undefined,
  ): Draw => {
    const none = { fault: undefined, cutAt: undefined, responseCut: undefined };
    const admitted = (filter.methods === undefined || filter.methods.includes(method)) &&
      (filter.path === undefined || filter.path.test(path));
    if (!admitted) return none;
    const key = requestKey(method, target, range);
    const n = (occurrences.get(key) ?? 0) + 1;
    occurrences.set(key, n);
    const random = mulberry32(fnv1a(`${seed}|${key}|${n}`));
    const r = random();
    const upload = (method === "PATCH" || method === "PUT") && UPLOAD_PATH.test(path);
    const cuttable = upload && (contentLength === undefined || contentLength >= cutMin);
    const injected = Object.values(counts).reduce((sum, n) => sum + n, 0);
    if (injected >= (options.maxFaults ?? Infinity)) return none;
    const lostEnd = rate503 + rate429 + rateCut + rateLost;
    let fault: FaultKind | undefined;
    if (r < rate503) fault = "503";
    else if (r < rate503 + rate429) fault = "429";
    else if (r < rate503 + rate429 + rateCut) fault = cuttable ? "cut" : undefined;
    else if (r < lostEnd) fault = upload ? "lost-answer" : undefined;
    else if (r < lostEnd + rateCutResponse) {
      fault = method === "GET" && cutResponsePaths.test(path) ? "cut-response" : undefined;
    }
    if (fault === "cut-response") return { fault, cutAt: undefined, responseCut: random() };
    if (fault !== "cut") return { ...none, fault };
    const cutAt = contentLength === undefined
      ? cutMin + Math.floor(random() * (cutChunkedMax - cutMin))
      : Math.floor(contentLength * (0.1 + 0.8 * random()));
    return { fault, cutAt, responseCut: undefined };
  };

  /**
   * How many body bytes of the upstream's answer reach the client before a drawn cut: only a
   * 200 or 206 whose body has a stated, non-zero length is cut; undefined for no cut.
   */
  const responseCutAt = (
    drawn: Draw,
    status: number,
    length: number | undefined,
  ): number | undefined => {
    if (drawn.responseCut === undefined || (status !== 200 && status !== 206)) return undefined;
    if (length === undefined || !(length > 0)) return undefined;
    return Math.floor(length * (0.1 + 0.8 * drawn.responseCut));
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

  /** The answer's headers for the client: connection headers left out, `Location` rewritten. */
  const relayedHeaders = (headers: Iterable<[string, string]>, url: URL): [string, string][] => {
    const out: [string, string][] = [];
    for (const [name, value] of headers) {
      const lower = name.toLowerCase();
      if (lower === "connection" || lower === "keep-alive" || lower === "transfer-encoding") {
        continue;
      }
      out.push([name, lower === "location" ? rewriteLocation(value, url) : value]);
    }
    return out;
  };

  /**
   * Reads a request body up to `cutAt` bytes (all of it without one), handing each piece to
   * `sink`. `into(room)` says where to read the next piece of at most `room` bytes. A body
   * that ends exactly at `cutAt` is complete, not cut.
   */
  async function readBody(
    body: BodyReader,
    record: FaultProxyRecord,
    cutAt: number | undefined,
    into: (room: number) => Uint8Array,
    sink: (bytes: Uint8Array) => Promise<void> | void,
  ): Promise<BodyEnd> {
    const limit = cutAt ?? Infinity;
    for (;;) {
      const room = Math.min(READ_BYTES, limit - record.bodyBytesReceived);
      const target = into(room);
      let n: number | null;
      try {
        n = await body.read(target);
      } catch (error) {
        if (isDisconnect(error)) return "client-closed";
        throw error;
      }
      if (n === null) return "complete";
      if (room === 0) return "cut"; // More body follows the cut point.
      countReceived(record, n);
      await sink(target.subarray(0, n));
    }
  }

  /** Answers a drawn 503 or 429 once the body is in, without forwarding anything. */
  async function inject(
    conn: Deno.Conn,
    record: FaultProxyRecord,
    fault: "503" | "429",
    keepAlive: boolean,
  ): Promise<void> {
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
    await writeAll(conn, encodeResponseHead(status, headers, keepAlive));
    if (record.method !== "HEAD") await writeAll(conn, text);
  }

  async function answer502(
    conn: Deno.Conn,
    record: FaultProxyRecord,
    error: unknown,
    keepAlive: boolean,
  ): Promise<void> {
    record.outcome = "upstream-error";
    if (closed) return;
    record.status = 502;
    const text = encoder.encode(`Fault proxy: upstream request failed: ${error}\n`);
    await writeAll(
      conn,
      encodeResponseHead(502, [["content-length", String(text.length)]], keepAlive),
    );
    await writeAll(conn, text);
  }

  /**
   * Buffering: reads the whole body (or up to the cut), then forwards it with fetch and relays
   * the answer. Returns whether the client's connection stays open.
   */
  async function forwardBuffered(
    conn: Deno.Conn,
    record: FaultProxyRecord,
    head: ParsedHead,
    body: BodyReader,
    drawn: Draw,
    keepAlive: boolean,
  ): Promise<boolean> {
    const { method } = record;
    // A body of known length is read straight into place; a chunked one is gathered in parts.
    const whole = record.chunked ? undefined : new Uint8Array(record.contentLength);
    const scratch = record.chunked ? new Uint8Array(READ_BYTES) : undefined;
    const parts: Uint8Array[] = [];
    const end = await readBody(
      body,
      record,
      drawn.cutAt,
      (room) =>
        whole !== undefined
          ? whole.subarray(record.bodyBytesReceived, record.bodyBytesReceived + room)
          : scratch!.subarray(0, room),
      (bytes) => {
        if (whole === undefined) parts.push(bytes.slice());
      },
    );
    if (end !== "complete") {
      record.outcome = end;
      return false; // Nothing was forwarded; the caller drops the connection.
    }
    const bytes = whole ?? concat(parts);

    const url = new URL(record.target, upstream);
    const headers = new Headers();
    for (const [name, value] of head.headers) {
      if (!HOP_BY_HOP.has(name.toLowerCase())) headers.append(name, value);
    }
    // fetch would otherwise ask for gzip and decompress, breaking the relayed Content-Length.
    headers.set("accept-encoding", "identity");
    const sendsBody = bytes.length > 0 ||
      !(method === "GET" || method === "HEAD" || method === "DELETE");
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        ...(sendsBody ? { body: bytes } : {}),
        redirect: "manual",
        client: httpClient,
        signal: stopUpstream.signal,
      });
    } catch (error) {
      await answer502(conn, record, error, keepAlive);
      return keepAlive;
    }
    countForwarded(record, bytes.length);

    if (drawn.fault === "lost-answer") {
      // Let the upstream finish its answer, so the request has fully taken effect there.
      await response.arrayBuffer();
      record.outcome = "lost-answer";
      return false;
    }
    record.outcome = "forwarded";
    record.status = response.status;
    const out = relayedHeaders(response.headers, url);
    const noBody = method === "HEAD" || response.status === 204 || response.status === 304 ||
      response.status < 200;
    try {
      if (noBody) {
        await response.body?.cancel();
        await writeAll(conn, encodeResponseHead(response.status, out, keepAlive));
        return keepAlive;
      }
      const length = response.headers.get("content-length");
      if (length === null || response.body === null) {
        // No length to relay (upstream used chunked encoding): buffer, then send with one. Not
        // cut: passing through, an answer of no stated length can't be, and the modes agree.
        const answer = new Uint8Array(await response.arrayBuffer());
        out.push(["content-length", String(answer.length)]);
        record.responseContentLength = answer.length;
        await writeAll(conn, encodeResponseHead(response.status, out, keepAlive));
        await writeAll(conn, answer);
        countRelayed(record, answer.length);
        return keepAlive;
      }
      record.responseContentLength = Number(length);
      const cutAt = responseCutAt(drawn, response.status, record.responseContentLength);
      await writeAll(conn, encodeResponseHead(response.status, out, keepAlive));
      const reader = response.body.getReader();
      try {
        for (;;) {
          if (record.responseBytesRelayed === cutAt) {
            record.outcome = "cut-response";
            return false; // The caller drops the connection mid-body.
          }
          let piece: ReadableStreamReadResult<Uint8Array>;
          try {
            piece = await reader.read();
          } catch {
            // The upstream broke off its answer (distribution 2.8 does after a 416, see the
            // module doc): the client's answer is broken off too.
            record.outcome = "upstream-error";
            return false;
          }
          if (piece.done) break;
          const bytes = piece.value.subarray(
            0,
            cutAt === undefined ? undefined : cutAt - record.responseBytesRelayed,
          );
          await writeAll(conn, bytes);
          countRelayed(record, bytes.length);
        }
      } finally {
        await reader.cancel().catch(() => {});
      }
      return keepAlive;
    } catch (error) {
      await response.body?.cancel().catch(() => {});
      throw error;
    }
  }

  /** Opens a connection to the upstream for one client connection (pass-through mode). */
  async function connectUpstream(): Promise<UpstreamLink> {
    const hostname = upstream.hostname.replace(/^\[(.*)\]$/, "$1");
    const https = upstream.protocol === "https:";
    const port = Number(upstream.port || (https ? 443 : 80));
    const conn = https
      ? await Deno.connectTls({ hostname, port })
      : await Deno.connect({ hostname, port });
    conns.add(conn);
    if (closed) closeQuietly(conn);
    return { conn, input: new ConnReader(conn) };
  }

  /**
   * Pass-through: sends the head, then body bytes as they arrive, to the upstream over the
   * client connection's own link, and relays the answer. On a cut (or a client hanging up)
   * the link is closed after the bytes before it. Returns whether the client's connection
   * stays open; `link` holds the upstream connection between requests.
   */
  async function forwardPassThrough(
    conn: Deno.Conn,
    record: FaultProxyRecord,
    head: ParsedHead,
    body: BodyReader,
    drawn: Draw,
    keepAlive: boolean,
    link: { current: UpstreamLink | undefined },
  ): Promise<boolean> {
    const { method } = record;
    const url = new URL(record.target, upstream);
    let up: UpstreamLink;
    try {
      up = link.current ??= await connectUpstream();
    } catch (error) {
      // The body was not read: the connection cannot carry another request.
      await answer502(conn, record, error, false);
      return false;
    }
    const drop = () => {
      closeQuietly(up.conn);
      conns.delete(up.conn);
      link.current = undefined;
    };

    const headers: [string, string][] = [["host", upstream.host]];
    for (const [name, value] of head.headers) {
      if (!HOP_BY_HOP.has(name.toLowerCase())) headers.push([name, value]);
    }
    if (record.chunked) headers.push(["transfer-encoding", "chunked"]);
    else if (head.header("content-length") !== undefined) {
      headers.push(["content-length", String(record.contentLength)]);
    }
    headers.push(["connection", "keep-alive"]);
    let upstreamWritable = true;
    try {
      await writeAll(up.conn, encodeRequestHead(method, `${url.pathname}${url.search}`, headers));
    } catch (error) {
      if (!isDisconnect(error)) throw error;
      upstreamWritable = false; // Its answer (or its absence) tells what went wrong.
    }
    // The answer is read while the body goes: a registry may answer (and close) before it has
    // read the body, e.g. 404 for a session it no longer has.
    const answer = readResponseHead(up.input);
    answer.catch(() => {}); // Handled below; the link may be dropped under it first.

    const scratch = new Uint8Array(READ_BYTES);
    const end = await readBody(
      body,
      record,
      drawn.cutAt,
      (room) => scratch.subarray(0, room),
      async (bytes) => {
        if (!upstreamWritable) return; // Read the rest of the body, forward none of it.
        try {
          if (record.chunked) await writeChunk(up.conn, bytes);
          else await writeAll(up.conn, bytes);
          countForwarded(record, bytes.length);
        } catch (error) {
          if (!isDisconnect(error)) throw error;
          upstreamWritable = false;
        }
      },
    );
    if (end !== "complete") {
      // The registry got the body up to here; closing the link ends the body there for it.
      record.outcome = end;
      drop();
      await answer.catch(() => {});
      return false;
    }
    if (record.chunked && upstreamWritable) {
      try {
        await writeAll(up.conn, LAST_CHUNK);
      } catch (error) {
        if (!isDisconnect(error)) throw error;
        upstreamWritable = false;
      }
    }

    let response: ParsedHead;
    try {
      response = await answer;
    } catch (error) {
      drop();
      if (!isDisconnect(error)) throw error;
      await answer502(conn, record, error, keepAlive);
      return keepAlive;
    }
    const status = Number(response.startLine[1]);
    const noBody = method === "HEAD" || status === 204 || status === 304 || status < 200;
    const length = response.header("content-length");
    const framing = noBody
      ? 0
      : response.header("transfer-encoding")?.toLowerCase() === "chunked"
      ? "chunked"
      : length !== undefined
      ? Number(length)
      : "until-close";
    // The link carries the next request only after a well-delimited answer to a request it
    // read whole.
    const reusable = upstreamWritable && framing !== "until-close" &&
      response.header("connection")?.toLowerCase() !== "close";
    const answerBody = new BodyReader(up.input, framing);

    if (drawn.fault === "lost-answer") {
      // Let the upstream finish its answer, so the request has fully taken effect there.
      while (await answerBody.read(scratch) !== null);
      record.outcome = "lost-answer";
      if (!reusable) drop();
      return false;
    }
    record.outcome = "forwarded";
    record.status = status;
    const out = relayedHeaders(response.headers, url);
    if (framing === "chunked") out.push(["transfer-encoding", "chunked"]);
    const stayOpen = keepAlive && framing !== "until-close";
    if (typeof framing === "number" && !noBody) record.responseContentLength = framing;
    const cutAt = typeof framing === "number" ? responseCutAt(drawn, status, framing) : undefined;
    await writeAll(conn, encodeResponseHead(status, out, stayOpen));
    for (;;) {
      if (record.responseBytesRelayed === cutAt) {
        // The rest of the answer is still on its way: the link can't carry another request.
        record.outcome = "cut-response";
        drop();
        return false;
      }
      const room = Math.min(READ_BYTES, (cutAt ?? Infinity) - record.responseBytesRelayed);
      let n: number | null;
      try {
        n = await answerBody.read(scratch.subarray(0, room));
      } catch (error) {
        if (!isDisconnect(error)) throw error;
        // The upstream broke off its answer (distribution 2.8 does after a 416, see the module
        // doc): the client's answer is broken off too.
        record.outcome = "upstream-error";
        drop();
        return false;
      }
      if (n === null) break;
      if (framing === "chunked") await writeChunk(conn, scratch.subarray(0, n));
      else await writeAll(conn, scratch.subarray(0, n));
      countRelayed(record, n);
    }
    if (framing === "chunked") await writeAll(conn, LAST_CHUNK);
    if (!reusable) drop();
    return stayOpen;
  }

  async function serveConn(conn: Deno.Conn): Promise<void> {
    const input = new ConnReader(conn);
    const link: { current: UpstreamLink | undefined } = { current: undefined };
    try {
      for (;;) {
        const rawHead = await input.readHead();
        if (rawHead === null) return;
        const head = parseHead(rawHead);
        const [method = "", target = "/"] = head.startLine;
        const contentLength = Number(head.header("content-length") ?? "0");
        const chunked = head.header("transfer-encoding")?.toLowerCase() === "chunked";
        const record: FaultProxyRecord = {
          method,
          target,
          path: target.split("?")[0] ?? target,
          contentLength: Number.isSafeInteger(contentLength) && !chunked ? contentLength : 0,
          chunked,
          bodyBytesReceived: 0,
          forwardedBytes: 0,
          outcome: "pending",
          fault: undefined,
          status: undefined,
          responseContentLength: undefined,
          responseBytesRelayed: 0,
        };
        requests.push(record);
        const keepAlive = head.header("connection")?.toLowerCase() !== "close";

        if (head.header("transfer-encoding") !== undefined && !chunked) {
          record.outcome = "rejected";
          record.status = 501;
          const text = encoder.encode("Fault proxy: unknown transfer encoding\n");
          await writeAll(
            conn,
            encodeResponseHead(501, [["content-length", String(text.length)]], false),
          );
          await writeAll(conn, text);
          return;
        }
        if (!Number.isSafeInteger(contentLength) || contentLength < 0) {
          record.outcome = "rejected";
          record.status = 400;
          await writeAll(conn, encodeResponseHead(400, [["content-length", "0"]], false));
          return;
        }

        const drawn = draw(
          method,
          target,
          record.path,
          chunked ? undefined : contentLength,
          head.header("content-range") ?? head.header("range"),
        );
        // A chunked body drawn for a cut counts as cut once it is (it may end before); an answer
        // drawn for a cut once it is (only a 200 or 206 with a body is).
        const cutLater = (drawn.fault === "cut" && chunked) || drawn.fault === "cut-response";
        record.fault = cutLater ? undefined : drawn.fault;
        if (record.fault !== undefined) counts[record.fault]++;
        if (head.header("expect")?.toLowerCase() === "100-continue") {
          await writeAll(conn, encoder.encode("HTTP/1.1 100 Continue\r\n\r\n"));
        }
        const body = new BodyReader(input, chunked ? "chunked" : contentLength);

        let stayOpen: boolean;
        if (drawn.fault === "503" || drawn.fault === "429") {
          // The body is read (and dropped) first, so the connection can carry the next request.
          const scratch = new Uint8Array(READ_BYTES);
          const end = await readBody(
            body,
            record,
            undefined,
            (room) => scratch.subarray(0, room),
            () => {},
          );
          if (end !== "complete") {
            record.outcome = end;
            return;
          }
          await inject(conn, record, drawn.fault, keepAlive);
          stayOpen = keepAlive;
        } else if (mode === "buffering") {
          stayOpen = await forwardBuffered(conn, record, head, body, drawn, keepAlive);
        } else {
          stayOpen = await forwardPassThrough(conn, record, head, body, drawn, keepAlive, link);
        }
        if (cutLater && record.outcome === drawn.fault) {
          record.fault = drawn.fault;
          counts[drawn.fault]++;
        }
        if (!stayOpen) return; // The finally block drops the connection.
      }
    } catch (error) {
      if (!closed && !isDisconnect(error)) throw error;
    } finally {
      closeQuietly(conn);
      if (link.current !== undefined) {
        closeQuietly(link.current.conn);
        conns.delete(link.current.conn);
      }
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
    mode,
    requests,
    errors,
    bytesReceived: () => received,
    forwardedBytes: () => forwarded,
    relayedBytes: () => relayed,
    faultCounts: () => ({ ...counts }),
    whenReceived(bytes) {
      if (received >= bytes) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ bytes, resolve }));
    },
    summary() {
      const outcomes = new Map<string, number>();
      for (const r of requests) {
        const key = r.outcome === "forwarded" || r.outcome === "injected" ||
            r.outcome === "cut-response"
          ? `${r.outcome} ${r.status}`
          : r.outcome;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      }
      const detail = [...outcomes].map(([key, n]) => `${key}: ${n}`).join(", ");
      return `fault proxy seed ${seed} (${mode}): ${requests.length} requests (${detail}); ` +
        `faults 503×${counts["503"]}, 429×${counts["429"]}, cut×${counts.cut}, ` +
        `lost-answer×${counts["lost-answer"]}, cut-response×${counts["cut-response"]}; ` +
        `body bytes received ${received}, forwarded ${forwarded}, answer bytes relayed ${relayed}` +
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
 * and `range`: the `Content-Range` of a chunk (which tells one blob's chunks from another's)
 * or the `Range` of a GET (so a resumed download, `bytes=N-`, is another request than the
 * first GET of the blob, and than a resume from elsewhere). Retries of the same request share
 * a key and count up its occurrence number.
 */
export function requestKey(method: string, target: string, range?: string): string {
  const [path = "", query = ""] = target.split("?");
  const normalized = path
    .replace(/^\/v2\/.+\/(blobs|manifests|tags)\//, "/v2/<name>/$1/")
    .replace(/(\/blobs\/uploads\/)[^/]+$/, "$1<id>");
  const digest = /(?:^|&)digest=([^&]*)/.exec(query)?.[1];
  return `${method} ${normalized}${digest === undefined ? "" : ` digest=${digest}`}` +
    (range === undefined ? "" : ` range=${range}`);
}

/** The upstream's answer head, interim (1xx) answers skipped. */
async function readResponseHead(input: ConnReader): Promise<ParsedHead> {
  for (;;) {
    const raw = await input.readHead();
    if (raw === null) throw new Deno.errors.UnexpectedEof("The upstream closed without answering");
    const head = parseHead(raw);
    const status = Number(head.startLine[1]);
    if (!Number.isInteger(status)) throw new Error(`Bad status line from the upstream: ${raw}`);
    if (status >= 200 || status === 101) return head;
  }
}

function concat(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
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

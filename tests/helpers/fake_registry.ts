/**
 * A scripted, in-memory fake registry for fault tests: enough of the distribution API to
 * push blobs (monolithic and chunked) and manifests, a record of every request, and a table of
 * injected faults in the manner of regclient's `internal/reqresp`: "the k-th request matching
 * this answers 503", "drop the connection after N body bytes", "never answer".
 *
 * Protocol paths are proved against the real registry (`registry.ts`); this fake exists for
 * what a real registry won't do on demand.
 *
 * Two front ends share one registry core:
 * - `server: "deno"` (default): `Deno.serve`.
 * - `server: "tcp"`: a minimal HTTP/1.1 server on `Deno.listen`. `Deno.serve` has no way to
 *   drop a connection in the middle of a request body (a handler that throws gets a 500
 *   answer, `Response.error()` is refused with a 500 too), so `drop` faults need this one.
 *   It also records headers exactly as sent (no server library in between).
 *
 * @example
 * ```ts
 * await using fake = await FakeRegistry.start({
 *   faults: [{ route: "blob-head", nth: [1, 2], action: respond(503) }],
 * });
 * // … point a RegistryClient at fake.url …
 * assertEquals(fake.requests.filter((r) => r.route === "blob-head").length, 3);
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { ProgressEvent } from "../../src/progress/events.ts";
import type { Credentials } from "../../src/registry/credentials.ts";
import type { BlobSource } from "../../src/image/graph.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { createTransport, type Transport } from "../../src/registry/transport.ts";

/** What a request is, in distribution API terms. */
export type Route =
  | "ping"
  | "token"
  | "blob-head"
  | "blob-get"
  | "upload-start"
  | "upload-patch"
  | "upload-status"
  | "upload-put"
  | "upload-delete"
  | "manifest-put"
  | "manifest-get"
  | "manifest-head"
  | "other";

/** One request as the fake saw it. */
export interface RecordedRequest {
  method: string;
  /** Path and query exactly as requested (`/v2/app/blobs/uploads/1?_state=…`). */
  target: string;
  pathname: string;
  route: Route;
  /** Header names lowercased. */
  headers: Record<string, string>;
  /** Body bytes the fake read (for a dropped request: those read before the drop). */
  bodyLength: number;
  /** The status answered, or what happened instead. */
  outcome: number | "dropped" | "stalled" | "pending";
  /** Headers of the answer (names lowercased); empty when there was none. */
  responseHeaders: Record<string, string>;
}

/** One entry of a distribution `errors` array. */
export interface DistributionError {
  code: string;
  message: string;
}

/** Answer with this status (and headers, and an `errors` body). */
export interface RespondFault {
  kind: "respond";
  status: number;
  headers?: Record<string, string>;
  errors?: DistributionError[];
  /** Read the request body before answering (default true). */
  readBody?: boolean;
}

/** Read some body bytes, then close the connection without answering (`server: "tcp"` only). */
export interface DropFault {
  kind: "drop";
  /** Body bytes to read first (default 0). */
  afterBodyBytes?: number;
  /** For a PATCH: append the bytes read to the upload session, as distribution does. */
  keepPartial?: boolean;
}

/** Never answer (until the fake closes). */
export interface StallFault {
  kind: "stall";
  /** Stop reading the body after this many bytes (default: read all of it first). */
  afterBodyBytes?: number;
}

/** Send the status line and headers, then never a byte of the body. */
export interface StallBodyFault {
  kind: "stall-body";
  status: number;
}

/** Send a response body slowly: `chunkBytes` every `intervalMs`. */
export interface TrickleFault {
  kind: "trickle";
  status: number;
  body: Uint8Array;
  chunkBytes: number;
  intervalMs: number;
}

export type FaultAction = RespondFault | DropFault | StallFault | StallBodyFault | TrickleFault;

/**
 * A row of the fault table: which requests, which of them, and what happens. Faults apply
 * before authentication, so a fault answers even a request without credentials.
 */
export interface FaultRule {
  route?: Route;
  method?: string;
  /** Tested against the path and query. */
  path?: RegExp;
  /**
   * 1-based occurrences, counted over the requests this rule matches, that get the fault
   * (default: every one). The first rule that fires wins; every matching rule counts.
   */
  nth?: number | readonly number[];
  action: FaultAction;
}

/** `{ kind: "respond" }`, shorter. */
export function respond(
  status: number,
  options: Omit<RespondFault, "kind" | "status"> = {},
): RespondFault {
  return { kind: "respond", status, ...options };
}

/** Authentication the fake demands on every `/v2/` request. */
export type FakeAuth =
  | { scheme: "basic"; username: string; password: string }
  | {
    scheme: "bearer";
    /** The token endpoint (`/token` on the fake) wants these as Basic credentials. */
    username?: string;
    password?: string;
    /** The token it issues, and the one the registry accepts. */
    token: string;
    service?: string;
  };

export interface FakeRegistryOptions {
  /** Front end; see the module doc. Default `"deno"`. */
  server?: "deno" | "tcp";
  auth?: FakeAuth;
  /**
   * Upload `Location` form: a relative path (default), an absolute URL, or a relative path
   * outside `/v2/` (`/upload-sessions/<id>`), as some registries do.
   */
  uploadLocation?: "relative" | "absolute" | "other-path";
  /** Sent as `OCI-Chunk-Min-Length` on the POST that opens a session. */
  chunkMinLength?: number;
  faults?: FaultRule[];
  /**
   * Keep connections open between requests (default true). With false, every response says
   * `Connection: close` and the connection is closed (`server: "tcp"` only), so each request
   * starts on a fresh connection.
   */
  keepAlive?: boolean;
  /**
   * Cancel a session when a request presents a `_state` issued at another offset than the
   * session holds, answering 404 BLOB_UPLOAD_INVALID, as distribution does. That is what a
   * PATCH cut off mid-body (a `drop` fault with `keepPartial`) or an answer that never reached
   * the client leaves behind. Default false: the fake then serves any state it issued.
   */
  checkStateOffset?: boolean;
}

interface Session {
  id: string;
  repository: string;
  chunks: Uint8Array[];
  length: number;
  /** Every `_state` issued, raw; the last one is the only one PATCH and PUT accept. */
  states: string[];
  /** The session's length when each state was issued. */
  stateOffsets: number[];
}

/** What the core decided; the front end turns it into bytes on the wire. */
type Outcome =
  | {
    kind: "response";
    status: number;
    headers: Headers;
    body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> | null;
  }
  | { kind: "drop" };

interface BodyReader {
  /** Next chunk, or null at the end. */
  next(): Promise<Uint8Array | null>;
}

interface Incoming {
  method: string;
  target: string;
  headers: Headers;
  body: BodyReader;
}

const DIGEST = "sha256:[a-f0-9]{64}";
const ROUTES: [string, RegExp, Route][] = [
  ["GET", /^\/v2\/$/, "ping"],
  ["GET", /^\/token$/, "token"],
  ["HEAD", new RegExp(`^/v2/(.+)/blobs/(${DIGEST})$`), "blob-head"],
  ["GET", new RegExp(`^/v2/(.+)/blobs/(${DIGEST})$`), "blob-get"],
  ["POST", /^\/v2\/(.+)\/blobs\/uploads\/$/, "upload-start"],
  ["PATCH", /^(?:\/v2\/.+\/blobs\/uploads|\/upload-sessions)\/([^/]+)$/, "upload-patch"],
  ["GET", /^(?:\/v2\/.+\/blobs\/uploads|\/upload-sessions)\/([^/]+)$/, "upload-status"],
  ["PUT", /^(?:\/v2\/.+\/blobs\/uploads|\/upload-sessions)\/([^/]+)$/, "upload-put"],
  ["DELETE", /^(?:\/v2\/.+\/blobs\/uploads|\/upload-sessions)\/([^/]+)$/, "upload-delete"],
  ["PUT", /^\/v2\/(.+)\/manifests\/([^/]+)$/, "manifest-put"],
  ["GET", /^\/v2\/(.+)\/manifests\/([^/]+)$/, "manifest-get"],
  ["HEAD", /^\/v2\/(.+)\/manifests\/([^/]+)$/, "manifest-head"],
];

/** The fake registry. Start with {@linkcode FakeRegistry.start}; close with `await using`. */
export class FakeRegistry implements AsyncDisposable {
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[] = [];
  /** Committed blobs by digest (all repositories share them). */
  readonly blobs = new Map<string, Uint8Array>();
  /** Manifests by `repository:reference` (tag and digest both). */
  readonly manifests = new Map<string, { mediaType: string; bytes: Uint8Array }>();
  /** Open upload sessions by id. */
  readonly sessions = new Map<string, Session>();
  /** Errors thrown inside the fake itself (should stay empty). */
  readonly serverErrors: unknown[] = [];

  #options: FakeRegistryOptions;
  #rules: { rule: FaultRule; seen: number }[] = [];
  #nextSession = 1;
  #release = new AbortController();
  #stop: () => Promise<void> = () => Promise.resolve();
  #port = 0;
  #closed = false;

  private constructor(options: FakeRegistryOptions) {
    if (options.keepAlive === false && options.server !== "tcp") {
      throw new TypeError('keepAlive: false needs server: "tcp"');
    }
    this.#options = options;
    for (const rule of options.faults ?? []) this.addFault(rule);
  }

  /** Starts a fake on a free port of 127.0.0.1. */
  static start(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
    const fake = new FakeRegistry(options);
    if (options.server === "tcp") fake.#serveTcp();
    else fake.#serveDeno();
    return Promise.resolve(fake);
  }

  /** `http://127.0.0.1:PORT/`. */
  get url(): URL {
    return new URL(`http://127.0.0.1:${this.#port}/`);
  }

  /** `127.0.0.1:PORT`. */
  get host(): string {
    return `127.0.0.1:${this.#port}`;
  }

  /** Adds a row to the fault table. */
  addFault(rule: FaultRule): void {
    if (rule.action.kind === "drop" && this.#options.server !== "tcp") {
      throw new TypeError('Cannot drop a connection mid-body with Deno.serve: use server: "tcp"');
    }
    this.#rules.push({ rule, seen: 0 });
  }

  /** Recorded requests of one route. */
  requestsTo(route: Route): RecordedRequest[] {
    return this.requests.filter((r) => r.route === route);
  }

  /** Total request body bytes received. */
  get bodyBytesReceived(): number {
    return this.requests.reduce((sum, r) => sum + r.bodyLength, 0);
  }

  /** Stops serving, releasing stalled requests and closing every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#release.abort();
    await this.#stop();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- front ends ----

  #serveDeno(): void {
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: () => {},
      onError: (error) => {
        this.serverErrors.push(error);
        return new Response("fake registry failed", { status: 500 });
      },
    }, async (request) => {
      const url = new URL(request.url);
      const reader = request.body?.getReader();
      const outcome = await this.#handle({
        method: request.method,
        target: url.pathname + url.search,
        headers: request.headers,
        body: {
          async next() {
            if (!reader) return null;
            const { done, value } = await reader.read();
            return done ? null : value;
          },
        },
      });
      // Only a released stall gets here with "drop"; nobody is listening any more.
      if (outcome.kind === "drop") return new Response(null, { status: 503 });
      const nullBody = request.method === "HEAD" || outcome.status === 204 ||
        outcome.status === 304;
      return new Response(nullBody ? null : outcome.body, {
        status: outcome.status,
        headers: outcome.headers,
      });
    });
    this.#port = server.addr.port;
    this.#stop = async () => {
      await server.shutdown();
      await server.finished;
    };
  }

  #serveTcp(): void {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#port = listener.addr.port;
    const conns = new Set<Deno.Conn>();
    const tasks = new Set<Promise<void>>();
    const accepting = (async () => {
      for (;;) {
        let conn: Deno.Conn;
        try {
          conn = await listener.accept();
        } catch {
          return; // Listener closed.
        }
        conns.add(conn);
        const task = this.#serveConn(conn).finally(() => {
          conns.delete(conn);
          tasks.delete(task);
        });
        tasks.add(task);
      }
    })();
    this.#stop = async () => {
      listener.close();
      await accepting;
      for (const conn of conns) closeQuietly(conn);
      await Promise.allSettled([...tasks]);
    };
  }

  async #serveConn(conn: Deno.Conn): Promise<void> {
    const input = new ConnReader(conn);
    try {
      for (;;) {
        const head = await input.readHead();
        if (head === null) return;
        const [requestLine = "", ...headerLines] = head.split("\r\n");
        const [method = "", target = ""] = requestLine.split(" ");
        const headers = new Headers();
        for (const line of headerLines) {
          const colon = line.indexOf(":");
          if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
        }
        if (headers.has("transfer-encoding")) {
          // Like a registry or proxy that wants every body's length up front (411): streams of
          // unknown length (layers compressed on the fly) must fall back to blobs as stored.
          this.#record(method, target, headers).outcome = 411;
          await writeAll(conn, encodeHead(411, new Headers({ "content-length": "0" })));
          return;
        }
        let remaining = Number(headers.get("content-length") ?? "0");
        const body: BodyReader = {
          async next() {
            if (remaining === 0) return null;
            const chunk = await input.readSome(remaining);
            if (chunk === null) throw new Error("Connection closed in the request body");
            remaining -= chunk.length;
            return chunk;
          },
        };
        const outcome = await this.#handle({ method, target, headers, body });
        if (outcome.kind === "drop") return;
        while (await body.next() !== null) {
          // Drain what the handler left so the connection can carry the next request.
        }
        const keepAlive = this.#options.keepAlive ?? true;
        if (!keepAlive) outcome.headers.set("Connection", "close");
        await writeResponse(conn, method, outcome);
        if (!keepAlive || headers.get("connection")?.toLowerCase() === "close") return;
      }
    } catch (error) {
      if (!this.#closed && !isDisconnect(error)) this.serverErrors.push(error);
    } finally {
      closeQuietly(conn);
    }
  }

  // ---- the registry ----

  #record(method: string, target: string, headers: Headers): RecordedRequest {
    const pathname = target.split("?")[0] ?? "";
    const route = ROUTES.find(([m, re]) => m === method && re.test(pathname))?.[2] ?? "other";
    const record: RecordedRequest = {
      method,
      target,
      pathname,
      route,
      headers: Object.fromEntries(headers),
      bodyLength: 0,
      outcome: "pending",
      responseHeaders: {},
    };
    this.requests.push(record);
    return record;
  }

  async #handle(request: Incoming): Promise<Outcome> {
    const record = this.#record(request.method, request.target, request.headers);
    const body: BodyReader = {
      async next() {
        const chunk = await request.body.next();
        if (chunk !== null) record.bodyLength += chunk.length;
        return chunk;
      },
    };
    const outcome = await this.#decide(record, request, body);
    if (outcome.kind === "response") record.responseHeaders = Object.fromEntries(outcome.headers);
    if (record.outcome === "pending") {
      record.outcome = outcome.kind === "drop" ? "dropped" : outcome.status;
    }
    return outcome;
  }

  async #decide(record: RecordedRequest, request: Incoming, body: BodyReader): Promise<Outcome> {
    const fault = this.#takeFault(record);
    if (fault) return await this.#fault(fault, record, body);
    if (record.route !== "token") {
      const challenge = this.#challenge(request.headers);
      if (challenge !== undefined) {
        await readAll(body);
        return errorResponse(401, "UNAUTHORIZED", "authentication required", {
          "WWW-Authenticate": challenge,
        });
      }
    }
    return await this.#route(record, request, body);
  }

  #takeFault(record: RecordedRequest): FaultAction | undefined {
    let chosen: FaultAction | undefined;
    for (const entry of this.#rules) {
      const { rule } = entry;
      if (rule.route !== undefined && rule.route !== record.route) continue;
      if (rule.method !== undefined && rule.method !== record.method) continue;
      if (rule.path !== undefined && !rule.path.test(record.target)) continue;
      entry.seen++;
      const nth = rule.nth === undefined ? undefined : [rule.nth].flat();
      if (chosen === undefined && (nth === undefined || nth.includes(entry.seen))) {
        chosen = rule.action;
      }
    }
    return chosen;
  }

  async #fault(
    fault: FaultAction,
    record: RecordedRequest,
    body: BodyReader,
  ): Promise<Outcome> {
    switch (fault.kind) {
      case "respond": {
        if (fault.readBody ?? true) await readAll(body);
        const headers = new Headers(fault.headers);
        let bytes: Uint8Array<ArrayBuffer> | null = null;
        if (fault.errors) {
          headers.set("Content-Type", "application/json");
          bytes = new TextEncoder().encode(JSON.stringify({ errors: fault.errors }));
        }
        return { kind: "response", status: fault.status, headers, body: bytes };
      }
      case "drop": {
        const partial = await readAll(body, fault.afterBodyBytes ?? 0);
        if (fault.keepPartial && record.route === "upload-patch") {
          const session = this.#session(record);
          if (session) append(session, partial);
        }
        return { kind: "drop" };
      }
      case "stall": {
        await readAll(body, fault.afterBodyBytes ?? Infinity);
        record.outcome = "stalled";
        await this.#released();
        return { kind: "drop" };
      }
      case "stall-body": {
        await readAll(body);
        const released = this.#released();
        const stream = new ReadableStream<Uint8Array>({
          async start(controller) {
            await released;
            controller.close();
          },
        });
        return { kind: "response", status: fault.status, headers: new Headers(), body: stream };
      }
      case "trickle": {
        await readAll(body);
        const signal = this.#release.signal;
        let at = 0;
        const stream = new ReadableStream<Uint8Array>({
          async pull(controller) {
            if (at >= fault.body.length) {
              controller.close();
              return;
            }
            await abortableDelay(fault.intervalMs, signal);
            const chunk = fault.body.slice(at, at + fault.chunkBytes);
            at += chunk.length;
            controller.enqueue(chunk);
          },
        });
        return { kind: "response", status: fault.status, headers: new Headers(), body: stream };
      }
    }
  }

  #released(): Promise<void> {
    const signal = this.#release.signal;
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => signal.addEventListener("abort", () => resolve()));
  }

  /** The `WWW-Authenticate` value to answer with, or undefined when the request may pass. */
  #challenge(headers: Headers): string | undefined {
    const auth = this.#options.auth;
    if (auth === undefined) return undefined;
    const given = headers.get("authorization") ?? "";
    if (auth.scheme === "basic") {
      if (given === `Basic ${btoa(`${auth.username}:${auth.password}`)}`) return undefined;
      return 'Basic realm="x"';
    }
    if (given === `Bearer ${auth.token}`) return undefined;
    return `Bearer realm="${this.url.origin}/token",service="${auth.service ?? "fake"}"`;
  }

  #session(record: RecordedRequest): Session | undefined {
    const id = record.pathname.split("/").at(-1) ?? "";
    return this.sessions.get(id);
  }

  #location(session: Session, request: Incoming): string {
    const state = `${btoa(JSON.stringify({ id: session.id, n: session.states.length }))}==`;
    session.states.push(state);
    session.stateOffsets.push(session.length);
    const path = this.#options.uploadLocation === "other-path"
      ? `/upload-sessions/${session.id}`
      : `/v2/${session.repository}/blobs/uploads/${session.id}`;
    const query = `?_state=${state}`;
    if (this.#options.uploadLocation === "absolute") {
      return `http://${request.headers.get("host") ?? this.host}${path}${query}`;
    }
    return path + query;
  }

  async #route(record: RecordedRequest, request: Incoming, body: BodyReader): Promise<Outcome> {
    const match = ROUTES.find(([m, re]) => m === record.method && re.test(record.pathname))?.[1]
      .exec(record.pathname);
    const [, p1 = "", p2 = ""] = match ?? [];
    switch (record.route) {
      case "ping":
        return response(200, { "Docker-Distribution-API-Version": "registry/2.0" }, "{}");
      case "token":
        return this.#token(request);
      case "blob-head":
      case "blob-get": {
        const blob = this.blobs.get(p2);
        if (!blob) return errorResponse(404, "BLOB_UNKNOWN", "blob unknown to registry");
        return response(200, {
          "Content-Length": String(blob.length),
          "Docker-Content-Digest": p2,
        }, record.route === "blob-get" ? blob.slice() : null);
      }
      case "upload-start": {
        await readAll(body);
        const session: Session = {
          id: String(this.#nextSession++),
          repository: p1,
          chunks: [],
          length: 0,
          states: [],
          stateOffsets: [],
        };
        this.sessions.set(session.id, session);
        const headers: Record<string, string> = {
          "Location": this.#location(session, request),
          "Range": "0-0",
          "Docker-Upload-UUID": session.id,
        };
        if (this.#options.chunkMinLength !== undefined) {
          headers["OCI-Chunk-Min-Length"] = String(this.#options.chunkMinLength);
        }
        return response(202, headers, null);
      }
      case "upload-patch":
      case "upload-status":
      case "upload-put":
      case "upload-delete":
        return await this.#upload(record, request, body);
      case "manifest-put": {
        const bytes = await readAll(body);
        const digest = sha256(bytes);
        const mediaType = request.headers.get("content-type") ?? "";
        this.manifests.set(`${p1}:${p2}`, { mediaType, bytes });
        this.manifests.set(`${p1}:${digest}`, { mediaType, bytes });
        return response(201, {
          "Location": `/v2/${p1}/manifests/${digest}`,
          "Docker-Content-Digest": digest,
        }, null);
      }
      case "manifest-get":
      case "manifest-head": {
        const manifest = this.manifests.get(`${p1}:${p2}`);
        if (!manifest) return errorResponse(404, "MANIFEST_UNKNOWN", "manifest unknown");
        return response(200, {
          "Content-Type": manifest.mediaType,
          "Content-Length": String(manifest.bytes.length),
          "Docker-Content-Digest": sha256(manifest.bytes),
        }, record.route === "manifest-get" ? manifest.bytes.slice() : null);
      }
      default:
        await readAll(body);
        return errorResponse(404, "NOT_FOUND", `no route for ${record.method} ${record.pathname}`);
    }
  }

  #token(request: Incoming): Outcome {
    const auth = this.#options.auth;
    if (auth?.scheme !== "bearer") return errorResponse(404, "NOT_FOUND", "no token service");
    if (auth.username !== undefined) {
      const expected = `Basic ${btoa(`${auth.username}:${auth.password ?? ""}`)}`;
      if (request.headers.get("authorization") !== expected) {
        return errorResponse(401, "UNAUTHORIZED", "bad credentials", {
          "WWW-Authenticate": 'Basic realm="token"',
        });
      }
    }
    return response(
      200,
      { "Content-Type": "application/json" },
      JSON.stringify({
        access_token: auth.token,
      }),
    );
  }

  async #upload(record: RecordedRequest, request: Incoming, body: BodyReader): Promise<Outcome> {
    const session = this.#session(record);
    if (!session) {
      await readAll(body);
      return errorResponse(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry");
    }
    const state = rawQueryParam(record.target, "_state");
    // distribution signs the state and rejects a stale one; a client must follow each Location.
    const fresh = state === session.states.at(-1);
    const known = state !== undefined && session.states.includes(state);
    const range = () => `0-${Math.max(0, session.length - 1)}`;
    const issuedAt = state === undefined ? -1 : session.states.indexOf(state);
    if (
      this.#options.checkStateOffset && issuedAt >= 0 &&
      session.stateOffsets[issuedAt] !== session.length
    ) {
      await readAll(body);
      this.sessions.delete(session.id);
      return errorResponse(404, "BLOB_UPLOAD_INVALID", "upload resumed at wrong offset");
    }
    switch (record.route) {
      case "upload-status":
        if (!known) return errorResponse(400, "BLOB_UPLOAD_INVALID", "unknown upload state");
        return response(204, {
          "Location": this.#location(session, request),
          "Range": range(),
          "Docker-Upload-UUID": session.id,
        }, null);
      case "upload-delete":
        this.sessions.delete(session.id);
        return response(204, {}, null);
      case "upload-patch": {
        if (!fresh) {
          await readAll(body);
          return errorResponse(400, "BLOB_UPLOAD_INVALID", "stale or missing upload state");
        }
        const contentRange = request.headers.get("content-range");
        const parsed = contentRange === null ? undefined : /^(\d+)-(\d+)$/.exec(contentRange);
        if (contentRange !== null && !parsed) {
          // ACR rejects `bytes 0-99`; so does this fake.
          await readAll(body);
          return errorResponse(400, "BLOB_UPLOAD_INVALID", `bad Content-Range ${contentRange}`);
        }
        if (parsed && Number(parsed[1]) !== session.length) {
          await readAll(body);
          return response(
            416,
            { "Range": range(), "Location": this.#location(session, request) },
            null,
          );
        }
        const bytes = await readAll(body);
        if (parsed && Number(parsed[2]) - Number(parsed[1]) + 1 !== bytes.length) {
          return errorResponse(400, "BLOB_UPLOAD_INVALID", "Content-Range does not match body");
        }
        append(session, bytes);
        return response(202, {
          "Location": this.#location(session, request),
          "Range": range(),
          "Docker-Upload-UUID": session.id,
        }, null);
      }
      default: {
        // upload-put
        if (!fresh) {
          await readAll(body);
          return errorResponse(400, "BLOB_UPLOAD_INVALID", "stale or missing upload state");
        }
        const bytes = await readAll(body);
        const declared = request.headers.get("content-length");
        if (declared !== null && Number(declared) !== bytes.length) {
          return errorResponse(400, "SIZE_INVALID", "Content-Length does not match body");
        }
        append(session, bytes);
        const digest = new URLSearchParams(record.target.split("?")[1] ?? "").get("digest");
        const content = concat(session.chunks, session.length);
        if (digest === null || digest !== sha256(content)) {
          return errorResponse(400, "DIGEST_INVALID", "provided digest did not match content");
        }
        this.sessions.delete(session.id);
        this.blobs.set(digest, content);
        return response(201, {
          "Location": `/v2/${session.repository}/blobs/${digest}`,
          "Docker-Content-Digest": digest,
        }, null);
      }
    }
  }
}

// ---- wiring the real client to the fake ----

/** A {@linkcode BlobSource} over bytes in memory, yielding `sliceBytes` at a time. */
export function memoryBlob(
  bytes: Uint8Array,
  options: { digest?: string; sliceBytes?: number } = {},
): BlobSource {
  const slice = options.sliceBytes ?? 16 * 1024;
  const digest = options.digest ?? sha256(bytes);
  return {
    digest,
    size: bytes.length,
    describe: `memory:${digest.slice(7, 19)}`,
    async *read(offset, length) {
      const end = Math.min(offset + length, bytes.length);
      for (let at = offset; at < end; at += slice) {
        yield bytes.slice(at, Math.min(at + slice, end));
        await Promise.resolve();
      }
    },
  };
}

/** A real {@linkcode RegistryClient} on a real transport, pointed at a fake. */
export interface ClientHarness extends Disposable {
  client: RegistryClient;
  transport: Transport;
  /** Every progress event the client emitted. */
  events: ProgressEvent[];
  /** Every delay the client's retry policy asked the (instant) injected sleep for. */
  sleeps: number[];
  /** The `retry` events so far. */
  readonly retryEvents: Extract<ProgressEvent, { type: "retry" }>[];
}

export interface ClientHarnessOptions {
  repository?: string;
  credentials?: Credentials;
  /** Default 3. */
  retries?: number;
  /** Default 5000 ms. */
  inactivityTimeoutMs?: number;
}

/** Connects the real client to `fake` with an instant, recording sleep; close with `using`. */
export function connectClient(
  fake: FakeRegistry,
  options: ClientHarnessOptions = {},
): ClientHarness {
  const transport = createTransport({ inactivityTimeoutMs: options.inactivityTimeoutMs ?? 5000 });
  const events: ProgressEvent[] = [];
  const sleeps: number[] = [];
  const client = new RegistryClient({
    baseUrl: fake.url,
    registryName: fake.host,
    repository: options.repository ?? "team/app",
    transport,
    ...(options.credentials ? { credentials: options.credentials } : {}),
    retries: options.retries ?? 3,
    sink: (event) => events.push(event),
    retryTuning: {
      baseDelayMs: 1,
      maxDelayMs: 2,
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
    },
  });
  return {
    client,
    transport,
    events,
    sleeps,
    get retryEvents() {
      return events.filter((e): e is Extract<ProgressEvent, { type: "retry" }> =>
        e.type === "retry"
      );
    },
    [Symbol.dispose]() {
      transport.close();
    },
  };
}

/** `sha256:<hex>` of some bytes (computed here, independently of the code under test). */
export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

// ---- small pieces ----

function response(
  status: number,
  headers: Record<string, string>,
  body: Uint8Array<ArrayBuffer> | string | null,
): Outcome {
  return {
    kind: "response",
    status,
    headers: new Headers(headers),
    body: typeof body === "string" ? new TextEncoder().encode(body) : body,
  };
}

function errorResponse(
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): Outcome {
  return response(
    status,
    { "Content-Type": "application/json", ...headers },
    JSON.stringify({ errors: [{ code, message }] }),
  );
}

/** Reads the body (or its first `limit` bytes, leaving the rest unread). */
async function readAll(body: BodyReader, limit = Infinity): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (total < limit) {
    const chunk = await body.next();
    if (chunk === null) break;
    const kept = chunk.subarray(0, Math.min(chunk.length, limit - total));
    chunks.push(kept);
    total += kept.length;
  }
  return concat(chunks, total);
}

function append(session: Session, bytes: Uint8Array): void {
  session.chunks.push(bytes.slice());
  session.length += bytes.length;
}

function concat(chunks: Uint8Array[], total: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** A query parameter's value exactly as sent (not percent-decoded). */
function rawQueryParam(target: string, name: string): string | undefined {
  const query = target.split("?")[1] ?? "";
  for (const pair of query.split("&")) {
    if (pair.startsWith(`${name}=`)) return pair.slice(name.length + 1);
  }
  return undefined;
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
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
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.Interrupted ||
    (error instanceof Error && error.message === "Connection closed in the request body");
}

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  201: "Created",
  202: "Accepted",
  204: "No Content",
  307: "Temporary Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  404: "Not Found",
  411: "Length Required",
  416: "Range Not Satisfiable",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

function encodeHead(status: number, headers: Headers): Uint8Array {
  let head = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Status"}\r\n`;
  headers.forEach((value, name) => head += `${name}: ${value}\r\n`);
  return new TextEncoder().encode(`${head}\r\n`);
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

async function writeResponse(
  conn: Deno.Conn,
  method: string,
  outcome: Extract<Outcome, { kind: "response" }>,
): Promise<void> {
  const headers = new Headers(outcome.headers);
  const { status, body } = outcome;
  if (status === 204 || status === 304) {
    headers.delete("content-length");
    await writeAll(conn, encodeHead(status, headers));
    return;
  }
  if (method === "HEAD") {
    if (!headers.has("content-length")) headers.set("content-length", "0");
    await writeAll(conn, encodeHead(status, headers));
    if (body instanceof ReadableStream) await body.cancel();
    return;
  }
  if (body === null || body instanceof Uint8Array) {
    headers.set("content-length", String(body?.length ?? 0));
    await writeAll(conn, encodeHead(status, headers));
    if (body) await writeAll(conn, body);
    return;
  }
  headers.delete("content-length");
  headers.set("transfer-encoding", "chunked");
  await writeAll(conn, encodeHead(status, headers));
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      await writeAll(conn, new TextEncoder().encode(`${value.length.toString(16)}\r\n`));
      await writeAll(conn, value);
      await writeAll(conn, new TextEncoder().encode("\r\n"));
    }
    await writeAll(conn, new TextEncoder().encode("0\r\n\r\n"));
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** Buffered reads from a connection: the request head, then body bytes. */
class ConnReader {
  #conn: Deno.Conn;
  #buffer: Uint8Array = new Uint8Array(0);

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** The request line and headers (without the blank line), or null at a clean end. */
  async readHead(): Promise<string | null> {
    for (;;) {
      const end = indexOfBlankLine(this.#buffer);
      if (end >= 0) {
        const head = new TextDecoder().decode(this.#buffer.subarray(0, end));
        this.#buffer = this.#buffer.subarray(end + 4);
        return head;
      }
      if (this.#buffer.length > 64 * 1024) throw new Error("Request head too large");
      if (!await this.#fill()) {
        if (this.#buffer.length === 0) return null;
        throw new Error("Connection closed in the request head");
      }
    }
  }

  /** Up to `max` bytes, or null when the connection has ended. */
  async readSome(max: number): Promise<Uint8Array | null> {
    if (this.#buffer.length === 0 && !await this.#fill()) return null;
    const n = Math.min(max, this.#buffer.length);
    const out = this.#buffer.slice(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return out;
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    const n = await this.#conn.read(chunk);
    if (n === null) return false;
    this.#buffer = concat([this.#buffer, chunk.subarray(0, n)], this.#buffer.length + n);
    return true;
  }
}

function indexOfBlankLine(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

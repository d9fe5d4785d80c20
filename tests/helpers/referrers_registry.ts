/**
 * A registry double with the OCI 1.1 referrers API, as a reverse proxy in front of a real
 * `docker-registry` (distribution has no such API, so this double adds it as the
 * distribution spec says, and relays everything else):
 *
 * - a manifest PUT whose body has a `subject` is passed through; when the registry stores it,
 *   the answer gets `OCI-Subject: <subject digest>` and the referrer is recorded;
 * - `GET /v2/<name>/referrers/<digest>[?artifactType=…]` answers an OCI image index
 *   (`Content-Type: application/vnd.oci.image.index.v1+json`) of the recorded referrers of that
 *   digest in that repository, each entry with `mediaType`, `digest`, `size`, `artifactType`
 *   (the manifest's, else its config's media type) and `annotations`. Never 404: an empty
 *   list when nothing refers to it. Filtered by `artifactType` with
 *   `OCI-Filters-Applied: artifactType`. Authorization is the registry's: the double asks it
 *   for the repository's tag list with the client's credentials and relays a 401;
 * - a manifest DELETE by digest drops the referrer it recorded.
 *
 * The list lives in the double's memory: a referrer pushed to the registry behind it directly
 * (not through the double) is not listed, and a new double starts with none.
 *
 * Other modes stand for registries without the API: `route: "absent"` relays the referrers
 * route to distribution (404) and sends no `OCI-Subject`; `route: "html"` answers it with an
 * HTML page and status 200, as some front ends answer unknown paths.
 *
 * @example
 * ```ts
 * await using double = await startReferrersRegistry();
 * // push through double.url; double.referrers, double.requests
 * ```
 *
 * @module
 */
import type { ReferrerDescriptor } from "../../src/image/referrer.ts";
import { forwardRequest } from "./proxy.ts";
import { sha256Digest } from "./random.ts";
import { startRegistry, type StartRegistryOptions, type TestRegistry } from "./registry.ts";

const INDEX = "application/vnd.oci.image.index.v1+json";
const MANIFEST_PATH = /^\/v2\/(.+)\/manifests\/([^/]+)$/;
const REFERRERS_PATH = /^\/v2\/(.+)\/referrers\/([^/]+)$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const NULL_BODY = new Set([101, 103, 204, 205, 304]);
const ANY_MANIFEST = [
  INDEX,
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
].join(", ");

/** A referrer the double recorded from a manifest PUT. */
export interface RecordedReferrer {
  repository: string;
  /** The digest its `subject` names. */
  subject: string;
  /** Its entry in a referrers list. */
  descriptor: ReferrerDescriptor;
}

/** One request the double answered. */
export interface DoubleRequest {
  method: string;
  /** The path, without the query. */
  path: string;
  /** The query with its `?` ("" when none). */
  search: string;
  status: number;
  /** Headers of the answer. */
  responseHeaders: Headers;
}

/** Options of {@linkcode startReferrersRegistry}. */
export interface ReferrersRegistryOptions {
  /**
   * The registry to put the double in front of (its origin). Default: a `docker-registry`
   * started for it (with `registry`'s options), stopped with the double.
   */
  upstream?: string;
  /** Options of the registry started when there is no `upstream`. */
  registry?: StartRegistryOptions;
  /**
   * How the referrers route answers: `api` (the default, per the spec), `absent` (relayed to
   * distribution: 404, and no `OCI-Subject` on PUTs), `html` (200 with an HTML page, and no
   * `OCI-Subject`).
   */
  route?: "api" | "absent" | "html";
  /** Answer the API in pages of this many entries, linked with `Link: <…>; rel="next"`. */
  pageSize?: number;
  /**
   * Apply `?artifactType=` (default true). False stands for a registry that lists every
   * referrer whatever the query, and says so by leaving out `OCI-Filters-Applied`.
   */
  applyFilter?: boolean;
  /**
   * Honour `If-Match` on manifest PUTs by tag, as a registry with conditional requests does:
   * 412 (`PRECONDITION_FAILED`) unless the tag's current `ETag` (`"<digest>"`) is the one
   * named. PUTs are then handled one at a time, so the check and the write are one step.
   * Default false: distribution ignores `If-Match`.
   */
  honourIfMatch?: boolean;
  /**
   * Called before each request is handled (awaited), to interleave another writer: the
   * `n`th request (1-based) with its method and path.
   */
  beforeRequest?: (request: { n: number; method: string; path: string }) => Promise<void>;
}

/** A running double; see {@linkcode startReferrersRegistry}. */
export interface ReferrersRegistry extends AsyncDisposable {
  /** `http://127.0.0.1:PORT` of the double (what clients talk to). */
  readonly url: string;
  /** `127.0.0.1:PORT`. */
  readonly host: string;
  /** The real registry behind it, when the double started one. */
  readonly registry: TestRegistry | undefined;
  /** The origin of the registry behind it. */
  readonly upstream: string;
  /** Every request answered, in order. */
  readonly requests: DoubleRequest[];
  /** The referrers recorded so far. */
  readonly referrers: RecordedReferrer[];
  /** Stops the double (and the registry it started). Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the double on a free port of 127.0.0.1, in front of `options.upstream` or of a
 * registry of its own.
 */
export async function startReferrersRegistry(
  options: ReferrersRegistryOptions = {},
): Promise<ReferrersRegistry> {
  const registry = options.upstream === undefined
    ? await startRegistry(options.registry)
    : undefined;
  const upstream = new URL(options.upstream ?? registry!.url);
  const route = options.route ?? "api";
  const requests: DoubleRequest[] = [];
  const referrers: RecordedReferrer[] = [];

  let seen = 0;
  let putQueue: Promise<unknown> = Promise.resolve();
  const handler = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const method = request.method;
    await options.beforeRequest?.({ n: ++seen, method, path: url.pathname });
    if (options.honourIfMatch && method === "PUT" && MANIFEST_PATH.test(url.pathname)) {
      // One conditional PUT at a time: the check and the write must not interleave.
      const turn = putQueue.then(() => handle(request, url, method));
      putQueue = turn.catch(() => {});
      return await turn;
    }
    return await handle(request, url, method);
  };

  const handle = async (request: Request, url: URL, method: string): Promise<Response> => {
    const respond = (status: number, headers: Headers, body: BodyInit | null) => {
      requests.push({
        method,
        path: url.pathname,
        search: url.search,
        status,
        responseHeaders: headers,
      });
      const empty = method === "HEAD" || NULL_BODY.has(status);
      return new Response(empty ? null : body, { status, headers });
    };
    const body = request.body ? new Uint8Array(await request.arrayBuffer()) : undefined;

    const listing = REFERRERS_PATH.exec(url.pathname);
    if (listing !== null && method === "GET" && route === "html") {
      return respond(
        200,
        new Headers({ "Content-Type": "text/html; charset=utf-8" }),
        "<!doctype html><html><body><h1>Welcome to our registry</h1></body></html>\n",
      );
    }
    if (listing !== null && method === "GET" && route === "api") {
      const [, repository = "", subject = ""] = listing;
      return respond(...await answerReferrers(request, url, repository, subject));
    }

    const ifMatch = request.headers.get("if-match");
    if (options.honourIfMatch && method === "PUT" && ifMatch !== null) {
      const current = await fetch(new URL(url.pathname, upstream), {
        method: "HEAD",
        headers: { Accept: ANY_MANIFEST, ...authorizationOf(request) },
      });
      await current.body?.cancel();
      const etag = current.headers.get("etag");
      if (current.status !== 200 || etag === null || etag !== ifMatch) {
        const error = { errors: [{ code: "PRECONDITION_FAILED", message: "the tag changed" }] };
        return respond(
          412,
          new Headers({ "Content-Type": "application/json" }),
          JSON.stringify(error),
        );
      }
    }
    const forwarded = await forwardRequest(
      request,
      new URL(url.pathname + url.search, upstream),
      body,
    );
    const headers = new Headers(forwarded.headers);
    const manifest = MANIFEST_PATH.exec(url.pathname);
    if (manifest !== null && forwarded.status >= 200 && forwarded.status < 300) {
      const [, repository = "", reference = ""] = manifest;
      if (method === "PUT" && body !== undefined && route === "api") {
        const subject = subjectOf(body);
        if (subject !== undefined) {
          record(repository, subject, body, request.headers.get("content-type") ?? undefined);
          headers.set("OCI-Subject", subject);
        }
      }
      if (method === "DELETE" && DIGEST.test(reference)) {
        for (let i = referrers.length - 1; i >= 0; i--) {
          const r = referrers[i]!;
          if (r.repository === repository && r.descriptor.digest === reference) {
            referrers.splice(i, 1);
          }
        }
      }
    }
    return respond(forwarded.status, headers, forwarded.body);
  };

  const record = (repository: string, subject: string, bytes: Uint8Array, type?: string) => {
    const digest = sha256Digest(bytes);
    const descriptor = entryOf(bytes, digest, type?.split(";")[0]?.trim() ?? "");
    const known = referrers.findIndex((r) =>
      r.repository === repository && r.descriptor.digest === digest
    );
    const entry = { repository, subject, descriptor };
    if (known >= 0) referrers[known] = entry;
    else referrers.push(entry);
  };

  /** The referrers API's answer: status, headers, body. */
  const answerReferrers = async (
    request: Request,
    url: URL,
    repository: string,
    subject: string,
  ): Promise<[number, Headers, BodyInit | null]> => {
    const json = new Headers({ "Content-Type": "application/json" });
    if (!DIGEST.test(subject)) {
      const error = { errors: [{ code: "DIGEST_INVALID", message: "invalid digest" }] };
      return [400, json, JSON.stringify(error)];
    }
    // The registry decides who may read the repository: ask it the cheapest question.
    const probe = new Request(new URL(`/v2/${repository}/tags/list`, upstream), {
      headers: authorizationOf(request),
    });
    const auth = await fetch(probe);
    const authBody = new Uint8Array(await auth.arrayBuffer());
    if (auth.status === 401 || auth.status === 403) {
      return [auth.status, new Headers(auth.headers), authBody];
    }
    const filter = options.applyFilter === false ? null : url.searchParams.get("artifactType");
    let listed = referrers
      .filter((r) => r.repository === repository && r.subject === subject)
      .map((r) => r.descriptor)
      .filter((d) => filter === null || d.artifactType === filter);
    const headers = new Headers({ "Content-Type": INDEX });
    if (filter !== null) headers.set("OCI-Filters-Applied", "artifactType");
    if (options.pageSize !== undefined) {
      const page = Number(url.searchParams.get("page") ?? "1");
      const start = (page - 1) * options.pageSize;
      if (start + options.pageSize < listed.length) {
        const next = new URL(url.pathname, url);
        if (filter !== null) next.searchParams.set("artifactType", filter);
        next.searchParams.set("page", String(page + 1));
        headers.set("Link", `<${next.pathname}${next.search}>; rel="next"`);
      }
      listed = listed.slice(start, start + options.pageSize);
    }
    const index = { schemaVersion: 2, mediaType: INDEX, manifests: listed };
    return [200, headers, JSON.stringify(index)];
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  const url = `http://127.0.0.1:${server.addr.port}`;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await server.shutdown();
    await registry?.stop();
  };
  return {
    url,
    host: `127.0.0.1:${server.addr.port}`,
    registry,
    upstream: upstream.origin,
    requests,
    referrers,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** The request's `Authorization`, to ask the registry with the client's credentials. */
function authorizationOf(request: Request): Record<string, string> {
  const authorization = request.headers.get("authorization");
  return authorization === null ? {} : { authorization };
}

/** The digest a manifest's `subject` names, if it is JSON with one. */
function subjectOf(bytes: Uint8Array): string | undefined {
  try {
    const parsed = JSON.parse(new TextDecoder().decode(bytes)) as {
      subject?: { digest?: unknown };
    };
    const digest = parsed.subject?.digest;
    return typeof digest === "string" && DIGEST.test(digest) ? digest : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A referrer's entry in the list, written here rather than by the code under test: the
 * manifest's media type (else the PUT's `Content-Type`), digest and size, its `artifactType`
 * or else its config's media type, and its annotations.
 */
function entryOf(bytes: Uint8Array, digest: string, contentType: string): ReferrerDescriptor {
  const manifest = JSON.parse(new TextDecoder().decode(bytes)) as {
    mediaType?: string;
    artifactType?: string;
    config?: { mediaType?: string };
    annotations?: Record<string, string>;
  };
  const entry: ReferrerDescriptor = {
    mediaType: manifest.mediaType ?? contentType,
    digest,
    size: bytes.length,
  };
  const artifactType = manifest.artifactType ?? manifest.config?.mediaType;
  if (artifactType !== undefined) entry.artifactType = artifactType;
  if (manifest.annotations !== undefined) entry.annotations = manifest.annotations;
  return entry;
}

/**
 * What refers to a manifest in a registry: the referrers API
 * (`GET /v2/<name>/referrers/<digest>`), else the referrers tag schema's fallback tag
 * (`sha256-<hex>`, an index kept up to date by the clients that push referrers).
 *
 * cosign's older tags (`.sig`, `.att`, `.sbom`) are probed in `referrers_cosign.ts`; the
 * fallback tag is read and written in `referrers_fallback.ts`; `ReferrersError` lives in
 * `referrers_error.ts`. Import each from where it lives.
 *
 * @example
 * ```ts ignore
 * const listing = await listReferrers(client, "sha256:…");
 * for (const d of listing.descriptors) console.log(d.artifactType, d.digest);
 * // listing.index.bytes: the index as served, to store byte for byte
 * ```
 */
import {
  fallbackTag,
  parseReferrersIndex,
  type ReferrerDescriptor,
  REFERRERS_INDEX_MEDIA_TYPE,
  referrersIndexBytes,
  ReferrersIndexError,
} from "../image/referrer.ts";
import type { RegistryClient } from "./client.ts";
import type { ManifestPutAnswer } from "./manifests.ts";
import { referrersContext, ReferrersError, type ReferrersErrorContext } from "./referrers_error.ts";
import {
  addToFallbackIndex,
  MAX_INDEX_BYTES,
  readFallbackIndex,
  type ServedIndex,
  servedIndex,
} from "./referrers_fallback.ts";
import { answerOf } from "./answer_class.ts";
import type { TransportResponse } from "./transport.ts";

/** At most this many pages of a paginated referrers answer (a `Link` loop ends here). */
const MAX_PAGES = 64;

/**
 * Which registries were found to have the referrers API, and which to lack it, so a run asks
 * a registry without it once, not once per manifest. Keyed by the registry's origin (the API
 * is the registry's, whatever the repository).
 */
export class ReferrersSupport {
  #known = new Map<string, boolean>();

  /** What is known of `client`'s registry: true (has the API), false (lacks it), undefined. */
  get(client: RegistryClient): boolean | undefined {
    return this.#known.get(client.baseUrl.origin);
  }

  /** Records whether `client`'s registry has the API. */
  set(client: RegistryClient, available: boolean): void {
    this.#known.set(client.baseUrl.origin, available);
  }

  /** Forgets everything (a registry that was upgraded). */
  clear(): void {
    this.#known.clear();
  }
}

/**
 * The process-wide record used when a call is given none. Tests that start registries on
 * ports another test used before pass a `new ReferrersSupport()` of their own.
 */
export const referrersSupport: ReferrersSupport = new ReferrersSupport();

/** Options of {@linkcode listReferrers} and {@linkcode referrersApiAvailable}. */
export interface ListReferrersOptions {
  /**
   * Only referrers of this artifact type. Sent as `?artifactType=`; a registry that did not
   * filter (no `OCI-Filters-Applied: artifactType`), and the fallback tag, are filtered here.
   * Default: every referrer.
   */
  artifactType?: string;
  /** Where what is learnt of the registry's API is kept. Default: {@linkcode referrersSupport}. */
  support?: ReferrersSupport;
}

/** What refers to a manifest, and where that was found. */
export interface ReferrersListing {
  /** The manifest the referrers refer to. */
  subject: string;
  /** `api`: the referrers API answered; `fallback-tag`: the registry lacks it, the tag was read. */
  found: "api" | "fallback-tag";
  /** The fallback tag (`sha256-<hex>`), whichever way they were found. */
  tag: string;
  /** The referrers, filtered by `artifactType` when one was asked for. */
  descriptors: ReferrerDescriptor[];
  /**
   * The index they were listed in, as served: the API's answer (an empty index when nothing
   * refers to the subject), or what the fallback tag holds (undefined when there is no tag).
   * An answer the registry split into pages has no one served document: this is then an
   * index we wrote listing every page's entries (`paged` is true).
   */
  index: ServedIndex | undefined;
  /** The API answered in more than one page (see `index`). */
  paged: boolean;
  /** Who applied the `artifactType` filter: the registry, or this client (undefined: none). */
  filteredBy: "registry" | "client" | undefined;
}

/**
 * Lists what refers to `subjectDigest` in the client's repository: the referrers API, or,
 * on a registry that lacks it (it answered 404, or something that is not an index, such as an
 * HTML page), the fallback tag, where a 404 means nothing refers to it. A registry found to
 * lack the API is remembered (`options.support`), and later calls go straight to the tag.
 *
 * @throws {RegistryError} when the registry refuses a request (auth, 5xx after retries).
 * @throws {ReferrersError} when the API's answer or the fallback tag holds a malformed index,
 * or the fallback tag holds something else than an index.
 */
export async function listReferrers(
  client: RegistryClient,
  subjectDigest: string,
  options: ListReferrersOptions = {},
): Promise<ReferrersListing> {
  const support = options.support ?? referrersSupport;
  if (support.get(client) !== false) {
    const listing = await queryReferrersApi(client, subjectDigest, options.artifactType);
    if (listing !== "unsure") support.set(client, listing !== "absent");
    if (typeof listing === "object") return listing;
  }
  const served = await readFallbackIndex(client, subjectDigest);
  const all = served === undefined ? [] : served.descriptors;
  const filter = options.artifactType;
  return {
    subject: subjectDigest,
    found: "fallback-tag",
    tag: fallbackTag(subjectDigest),
    descriptors: filter === undefined ? all : all.filter((d) => d.artifactType === filter),
    index: served?.index,
    paged: false,
    filteredBy: filter === undefined ? undefined : "client",
  };
}

/**
 * Whether the client's registry has the referrers API: `GET /v2/<name>/referrers/<digest>`
 * answers 200 with an index (an empty one for a digest nothing refers to). A 404, or an
 * answer that is not an index, means it lacks it. The answer is remembered like
 * {@linkcode listReferrers}'s, except a 404 quoting `NAME_UNKNOWN`/`MANIFEST_UNKNOWN`: false,
 * and nothing remembered (see `queryReferrersApi`).
 *
 * @throws {RegistryError} when the registry refuses the request (auth, 5xx after retries).
 */
export async function referrersApiAvailable(
  client: RegistryClient,
  digest: string,
  options: Pick<ListReferrersOptions, "support"> = {},
): Promise<boolean> {
  const support = options.support ?? referrersSupport;
  const known = support.get(client);
  if (known !== undefined) return known;
  const answer = await queryReferrersApi(client, digest, undefined);
  if (answer === "unsure") return false;
  support.set(client, answer !== "absent");
  return answer !== "absent";
}

/**
 * Records what a manifest PUT's answer says of the API: a registry that answered a referrer's
 * PUT with `OCI-Subject: <its subject>` has it. Returns whether it did; when it did not, the
 * pusher keeps the fallback tag up to date ({@linkcode addToFallbackIndex}).
 */
export function noteSubjectAnswer(
  client: RegistryClient,
  subjectDigest: string,
  answer: ManifestPutAnswer,
  support: ReferrersSupport = referrersSupport,
): boolean {
  const listed = answer.ociSubject === subjectDigest;
  if (listed) support.set(client, true);
  return listed;
}

/**
 * The referrers API's answer, every page of it; `absent` when the registry lacks the API (the
 * answer table's `api-absent`: a bare 404, 405 or 501); `unsure` for one of those quoting
 * `NAME_UNKNOWN` or `MANIFEST_UNKNOWN` (`not-found`: an API handler saying the repository or
 * subject is unknown, or a registry without the API that words its 404s so). Either way
 * nothing is listed there; the caller reads the fallback tag, and after `unsure` remembers
 * nothing.
 */
async function queryReferrersApi(
  client: RegistryClient,
  subject: string,
  artifactType: string | undefined,
): Promise<ReferrersListing | "absent" | "unsure"> {
  const context = referrersContext(client, subject, "list referrers");
  let url: URL | undefined = client.url(`referrers/${subject}`);
  if (artifactType !== undefined) url.searchParams.set("artifactType", artifactType);
  const descriptors: ReferrerDescriptor[] = [];
  const pages: ServedIndex[] = [];
  let filteredBy: ReferrersListing["filteredBy"] = artifactType === undefined
    ? undefined
    : "registry";
  while (url !== undefined) {
    if (pages.length === MAX_PAGES) {
      throw new ReferrersError(context, `the answer has more than ${MAX_PAGES} pages`);
    }
    let response: TransportResponse;
    try {
      response = await client.request({
        method: "GET",
        url,
        headers: { Accept: REFERRERS_INDEX_MEDIA_TYPE },
        expect: [200],
        action: `list referrers of ${client.repository}@${subject}`,
      });
    } catch (error) {
      const answer = answerOf(error, "referrers");
      if (answer.kind !== "api-absent" && answer.kind !== "not-found") throw error;
      if (pages.length === 0) return answer.kind === "api-absent" ? "absent" : "unsure";
      throw new ReferrersError(context, `page ${pages.length + 1} answered ${answer.httpStatus}`, {
        cause: error,
      });
    }
    const bytes = await response.bytes(MAX_INDEX_BYTES);
    if (!looksLikeIndex(response, bytes)) {
      // An HTML error page or a catch-all route that happens to answer 200.
      if (pages.length === 0) return "absent";
      throw new ReferrersError(context, `page ${pages.length + 1} is not an image index`);
    }
    try {
      descriptors.push(...parseReferrersIndex(bytes));
    } catch (error) {
      if (!(error instanceof ReferrersIndexError)) throw error;
      throw new ReferrersError(context, error.message, { cause: error });
    }
    pages.push(servedIndex(bytes));
    const applied = (response.headers.get("oci-filters-applied") ?? "").split(",")
      .map((f) => f.trim());
    if (artifactType !== undefined && !applied.includes("artifactType")) filteredBy = "client";
    url = nextPage(response, url, context);
  }
  const listed = filteredBy === "client"
    ? descriptors.filter((d) => d.artifactType === artifactType)
    : descriptors;
  // A paged answer has no one served document: one index listing every page's entries.
  const index = pages.length === 1 ? pages[0] : servedIndex(referrersIndexBytes(descriptors));
  return {
    subject,
    found: "api",
    tag: fallbackTag(subject),
    descriptors: listed,
    index,
    paged: pages.length > 1,
    filteredBy,
  };
}

/**
 * Whether an answer is an image index: JSON with a `manifests` array, not an HTML page (some
 * registries and the proxies in front of them answer unknown routes with one, even with 200).
 */
function looksLikeIndex(response: TransportResponse, bytes: Uint8Array): boolean {
  const type = (response.headers.get("content-type") ?? "").toLowerCase();
  if (type.includes("html")) return false;
  try {
    const parsed = JSON.parse(new TextDecoder().decode(bytes)) as { manifests?: unknown };
    return typeof parsed === "object" && parsed !== null && Array.isArray(parsed.manifests);
  } catch {
    return false;
  }
}

/**
 * The next page a `Link: <url>; rel="next"` header names, resolved against the request URL;
 * undefined when there is none.
 *
 * @throws {ReferrersError} when it points to another host: credentials stay on the
 * registry's host, and a listing cut short there would silently lose referrers.
 */
function nextPage(
  response: TransportResponse,
  url: URL,
  context: ReferrersErrorContext,
): URL | undefined {
  const link = response.headers.get("link");
  if (link === null) return undefined;
  for (const part of link.split(",")) {
    const match = /<([^>]*)>\s*;(.*)$/.exec(part.trim());
    if (match === null || !/\brel="?next"?/i.test(match[2] ?? "")) continue;
    const next = new URL(match[1] ?? "", url);
    if (next.host !== url.host) {
      throw new ReferrersError(context, `the next page is on another host (${next.host})`);
    }
    return next;
  }
  return undefined;
}

/**
 * After a referrer manifest's PUT: a registry that answered `OCI-Subject` lists it in its
 * referrers API already (`api`); else its descriptor is added to the subject's fallback tag
 * (`fallback-tag`), as the distribution spec asks of a client pushing to a registry without
 * the API.
 *
 * @example
 * ```ts ignore
 * const answer = await putManifestAnswer(client, digest, mediaType, bytes);
 * await recordReferrer(client, subject, describeReferrer(bytes, answer.digest), answer);
 * ```
 */
export async function recordReferrer(
  client: RegistryClient,
  subjectDigest: string,
  descriptor: ReferrerDescriptor,
  answer: ManifestPutAnswer,
  support: ReferrersSupport = referrersSupport,
): Promise<"api" | "fallback-tag"> {
  if (noteSubjectAnswer(client, subjectDigest, answer, support)) return "api";
  await addToFallbackIndex(client, subjectDigest, [descriptor]);
  return "fallback-tag";
}

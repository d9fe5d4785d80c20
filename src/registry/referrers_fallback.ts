/**
 * The referrers tag schema's fallback tag: on a registry without the referrers API, the
 * index under `sha256-<hex of the subject>` lists the subject's referrers, and every client
 * that pushes a referrer keeps it up to date (read it, add the new descriptor, put it back).
 *
 * Several tools write this one tag, so an update never drops an entry it did not add, and
 * leaves the index alone when it already lists everything.
 *
 * **The race.** Two clients that read the tag at the same time and both put it back lose one
 * of the two additions: the tag is an ordinary mutable tag and the spec has no lock. We narrow
 * it two ways: the PUT carries `If-Match: <the ETag we read>` (a registry that honours it
 * answers 412 when the tag moved, and we read and merge again), and after the PUT we read the
 * tag back: if our entries are gone (someone else's PUT landed after ours), we merge and put
 * once more, up to {@linkcode MAX_ROUNDS} times. What stays open is the other side: a writer
 * whose PUT we overwrote loses its entry unless it checks as we do (distribution ignores
 * `If-Match`). Within this process there is no race: updates of one tag of one repository
 * take turns (a push sending an image's SBOM and signature at once).
 */
import { sha256Digest } from "../digest.ts";
import { MANIFEST_ACCEPT } from "../image/media_types.ts";
import {
  descriptorJson,
  fallbackTag,
  parseReferrersIndex,
  type ReferrerDescriptor,
  REFERRERS_INDEX_MEDIA_TYPE,
  ReferrersIndexError,
} from "../image/referrer.ts";
import { answerOf } from "./answer_class.ts";
import type { RegistryClient } from "./client.ts";
import { putManifestAnswer } from "./manifests.ts";
import { referrersContext, ReferrersError } from "./referrers_error.ts";
import { RegistryError } from "./registry_error.ts";

/** Registries serve manifests of at least 4 MB; a referrers index is one. */
export const MAX_INDEX_BYTES = 4 * 1024 * 1024;

/** Read–merge–put rounds before giving up on a tag that keeps changing under us. */
export const MAX_ROUNDS = 3;

/** An index as a registry served it. */
export interface ServedIndex {
  /** The bytes as served (byte for byte what an archive stores). */
  bytes: Uint8Array;
  /** The sha256 of `bytes`. */
  digest: string;
  /** The index's media type (an OCI image index). */
  mediaType: string;
}

/** `bytes` as a served referrers index: its digest and the OCI index media type. */
export function servedIndex(bytes: Uint8Array): ServedIndex {
  return { bytes, digest: sha256Digest(bytes), mediaType: REFERRERS_INDEX_MEDIA_TYPE };
}

/** What the fallback tag holds. */
export interface FallbackIndex {
  /** `sha256-<hex>`. */
  tag: string;
  /** The index as served. */
  index: ServedIndex;
  /** Its entries. */
  descriptors: ReferrerDescriptor[];
  /** The index as parsed, other tools' fields and all (an update keeps them). */
  json: Record<string, unknown>;
  /** The `ETag` it was served with, if any (sent back as `If-Match`). */
  etag: string | undefined;
}

/** What {@linkcode addToFallbackIndex} did. */
export interface FallbackIndexUpdate {
  /** `sha256-<hex>`. */
  tag: string;
  /** Whether the tag was written (false: it already listed every descriptor). */
  changed: boolean;
  /** The descriptors that were missing and are now listed. */
  added: ReferrerDescriptor[];
  /** The digest of the index the tag holds now (undefined: no tag, and nothing to add). */
  digest: string | undefined;
  /**
   * Entries dropped because the registry no longer has their manifest (deleted since): it
   * refuses to store an index naming one (distribution: 400 `MANIFEST_BLOB_UNKNOWN`), so an
   * entry it confirms gone (404) is the one thing ever left out.
   */
  dropped: string[];
}

/**
 * The index under the fallback tag of `subjectDigest`; undefined when there is none (404, or
 * the repository does not exist yet).
 *
 * @throws {ReferrersError} when the tag holds something else than an index, or a malformed one.
 * @throws {RegistryError} when the registry refuses the request.
 */
export async function readFallbackIndex(
  client: RegistryClient,
  subjectDigest: string,
): Promise<FallbackIndex | undefined> {
  const tag = fallbackTag(subjectDigest);
  const context = referrersContext(client, subjectDigest, `read fallback tag ${tag}`);
  const response = await client.request({
    method: "GET",
    url: client.url(`manifests/${tag}`),
    headers: { Accept: MANIFEST_ACCEPT },
    expect: [200, 404],
    action: `read fallback tag ${client.repository}:${tag}`,
  });
  if (response.status === 404) {
    await response.discard();
    return undefined;
  }
  const bytes = await response.bytes(MAX_INDEX_BYTES);
  let json: Record<string, unknown>;
  let descriptors: ReferrerDescriptor[];
  try {
    const parsed: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new ReferrersIndexError("not a JSON object");
    }
    json = parsed as Record<string, unknown>;
    const declared = json["mediaType"];
    if (
      !Array.isArray(json["manifests"]) ||
      (declared !== undefined && declared !== REFERRERS_INDEX_MEDIA_TYPE)
    ) {
      // Someone tagged an image here: not ours to read as referrers, nor to overwrite.
      throw new ReferrersIndexError(
        `the tag holds ${typeof declared === "string" ? declared : "a manifest"}, not an OCI index`,
      );
    }
    descriptors = parseReferrersIndex(bytes);
  } catch (error) {
    throw new ReferrersError(context, error instanceof Error ? error.message : String(error), {
      cause: error,
    });
  }
  return {
    tag,
    index: servedIndex(bytes),
    descriptors,
    json,
    etag: response.headers.get("etag") ?? undefined,
  };
}

/**
 * Adds `descriptors` to the fallback tag's index of `subjectDigest`: reads it (none yet is
 * an empty one), appends those it does not list (by digest), keeps every entry and field
 * already there (another tool's), and puts it back only if that changed anything. See the
 * module's doc for what is done about concurrent writers.
 *
 * The registry must have every referrer named already: distribution refuses an index naming
 * a manifest it lacks. Push each referrer manifest first, then list it here. An entry of
 * someone else's whose manifest was deleted since is dropped (see `dropped`).
 *
 * @throws {ReferrersError} when the tag holds something else than an index, or kept changing
 * for {@linkcode MAX_ROUNDS} rounds.
 * @throws {RegistryError} when the registry refuses a request.
 */
export function addToFallbackIndex(
  client: RegistryClient,
  subjectDigest: string,
  descriptors: readonly ReferrerDescriptor[],
): Promise<FallbackIndexUpdate> {
  const key = `${client.baseUrl.origin}/${client.repository}:${fallbackTag(subjectDigest)}`;
  const previous = turns.get(key) ?? Promise.resolve();
  const update = previous.then(() => mergeIntoTag(client, subjectDigest, descriptors));
  const settled = update.then(() => {}, () => {});
  turns.set(key, settled);
  // The last in line clears the entry, so the map holds only tags being written.
  void settled.then(() => {
    if (turns.get(key) === settled) turns.delete(key);
  });
  return update;
}

/** Updates of one fallback tag in progress in this process, by registry, repository and tag. */
const turns = new Map<string, Promise<void>>();

async function mergeIntoTag(
  client: RegistryClient,
  subjectDigest: string,
  descriptors: readonly ReferrerDescriptor[],
): Promise<FallbackIndexUpdate> {
  const tag = fallbackTag(subjectDigest);
  const wanted = unique(descriptors);
  if (wanted.length === 0) {
    const current = await readFallbackIndex(client, subjectDigest);
    return { tag, changed: false, added: [], digest: current?.index.digest, dropped: [] };
  }
  let added: ReferrerDescriptor[] = [];
  const dead = new Set<string>();
  for (let puts = 0;; puts++) {
    // After a PUT, this read also checks that our entries survived a concurrent one.
    const current = await readFallbackIndex(client, subjectDigest);
    const listed = new Set(current?.descriptors.map((d) => d.digest));
    const missing = wanted.filter((d) => !listed.has(d.digest));
    if (current !== undefined && missing.length === 0) {
      return {
        tag,
        changed: added.length > 0,
        added,
        digest: current.index.digest,
        dropped: [...dead],
      };
    }
    if (puts === MAX_ROUNDS) {
      throw new ReferrersError(
        referrersContext(client, subjectDigest, `update fallback tag ${tag}`),
        `the tag changed under us ${MAX_ROUNDS} times (other clients are writing it)`,
      );
    }
    const json: Record<string, unknown> = current === undefined
      ? { schemaVersion: 2, mediaType: REFERRERS_INDEX_MEDIA_TYPE, manifests: [] }
      : { ...current.json };
    json["mediaType"] ??= REFERRERS_INDEX_MEDIA_TYPE;
    const kept = (json["manifests"] as unknown[]).filter((entry) =>
      !dead.has((entry as { digest?: unknown }).digest as string)
    );
    json["manifests"] = [...kept, ...missing.map(descriptorJson)];
    const bytes = new TextEncoder().encode(JSON.stringify(json));
    try {
      await putManifestAnswer(
        client,
        tag,
        REFERRERS_INDEX_MEDIA_TYPE,
        bytes,
        current?.etag !== undefined ? { "If-Match": current.etag } : {},
      );
    } catch (error) {
      // The tag moved since we read it (a registry that honours If-Match): merge again.
      if (answerOf(error, "write").kind === "tag-moved") continue;
      if (error instanceof RegistryError && error.hasCode("MANIFEST_BLOB_UNKNOWN")) {
        const context = referrersContext(client, subjectDigest, `update fallback tag ${tag}`);
        const gone = await absentManifests(client, [
          ...(current?.descriptors ?? []).filter((d) => !dead.has(d.digest)),
          ...missing,
        ]);
        const ours = new Set(missing.map((d) => d.digest));
        const oursGone = gone.filter((digest) => ours.has(digest));
        if (oursGone.length > 0) {
          throw new ReferrersError(
            context,
            `the registry lacks referrer ${oursGone.join(", ")}: push it before listing it`,
            { cause: error },
          );
        }
        if (gone.length === 0) throw error;
        // Someone else's entries whose manifests were deleted: the registry confirms them gone.
        for (const digest of gone) dead.add(digest);
        continue;
      }
      throw error;
    }
    added = unique([...added, ...missing]);
  }
}

/** The digests among `descriptors` whose manifest the registry does not have (HEAD 404). */
async function absentManifests(
  client: RegistryClient,
  descriptors: readonly ReferrerDescriptor[],
): Promise<string[]> {
  const absent: string[] = [];
  for (const { digest } of descriptors) {
    const response = await client.request({
      method: "HEAD",
      url: client.url(`manifests/${digest}`),
      headers: { Accept: MANIFEST_ACCEPT },
      expect: [200, 404],
      action: `look for referrer ${client.repository}@${digest}`,
    });
    await response.discard();
    if (response.status === 404) absent.push(digest);
  }
  return absent;
}

/** Each digest once, the first descriptor given for it. */
function unique(descriptors: readonly ReferrerDescriptor[]): ReferrerDescriptor[] {
  const seen = new Map<string, ReferrerDescriptor>();
  for (const d of descriptors) if (!seen.has(d.digest)) seen.set(d.digest, d);
  return [...seen.values()];
}

/**
 * cosign's older scheme: a signature, attestation or SBOM of a manifest sits under a tag
 * named after the manifest's digest (`sha256-<hex>.sig`, `.att`, `.sbom`), not in the
 * referrers list. Probed with HEAD: Docker Hub counts manifest GETs against its pull rate
 * limit, and HEADs are not counted.
 */
import { isSha256Digest, sha256Digest } from "../digest.ts";
import { MANIFEST_ACCEPT } from "../image/media_types.ts";
import { type CosignSuffix, cosignTag } from "../image/referrer.ts";
import type { RegistryClient } from "./client.ts";
import { referrersContext, ReferrersError } from "./referrers_error.ts";
import { MAX_INDEX_BYTES } from "./referrers_fallback.ts";

/** The suffixes probed, in this order. */
export const COSIGN_SUFFIXES: readonly CosignSuffix[] = ["sig", "att", "sbom"];

/** A cosign-style tag that exists. */
export interface CosignTagFound {
  /** `sha256-<hex>.sig`. */
  tag: string;
  /** `sig`, `att` or `sbom`. */
  suffix: CosignSuffix;
  /** The digest of the manifest under the tag. */
  digest: string;
  /** Its media type, as served. */
  mediaType: string;
  /** Its size in bytes. */
  size: number;
}

/**
 * Which of `sha256-<hex>.sig`, `.att` and `.sbom` exist for `subjectDigest` in the client's
 * repository, each with its manifest's digest, media type and size (from the HEAD answer's
 * `Docker-Content-Digest`, `Content-Type` and `Content-Length`; a registry that leaves one
 * out is asked with a GET for that tag alone).
 *
 * @throws {RegistryError} when the registry refuses a request (auth, 5xx after retries).
 * @throws {ReferrersError} when a tag's answer does not say what it holds.
 */
export async function findCosignTags(
  client: RegistryClient,
  subjectDigest: string,
): Promise<CosignTagFound[]> {
  const found = await Promise.all(
    COSIGN_SUFFIXES.map((suffix) => probe(client, subjectDigest, suffix)),
  );
  return found.filter((tag): tag is CosignTagFound => tag !== undefined);
}

async function probe(
  client: RegistryClient,
  subject: string,
  suffix: CosignSuffix,
): Promise<CosignTagFound | undefined> {
  const tag = cosignTag(subject, suffix);
  const head = await client.request({
    method: "HEAD",
    url: client.url(`manifests/${tag}`),
    headers: { Accept: MANIFEST_ACCEPT },
    expect: [200, 404],
    action: `look for ${client.repository}:${tag}`,
  });
  await head.discard();
  if (head.status === 404) return undefined;
  const digest = head.headers.get("docker-content-digest") ?? "";
  const mediaType = mediaTypeOf(head.headers.get("content-type"));
  const size = Number(head.headers.get("content-length") ?? "");
  if (isSha256Digest(digest) && mediaType !== "" && Number.isSafeInteger(size)) {
    return { tag, suffix, digest, mediaType, size };
  }
  // The HEAD answer left something out: one GET of this tag says it all.
  const get = await client.request({
    method: "GET",
    url: client.url(`manifests/${tag}`),
    headers: { Accept: MANIFEST_ACCEPT },
    expect: [200, 404],
    action: `read ${client.repository}:${tag}`,
  });
  if (get.status === 404) {
    await get.discard();
    return undefined;
  }
  const bytes = await get.bytes(MAX_INDEX_BYTES);
  let served = mediaTypeOf(get.headers.get("content-type"));
  try {
    const declared = (JSON.parse(new TextDecoder().decode(bytes)) as { mediaType?: unknown })
      .mediaType;
    if (typeof declared === "string" && declared !== "") served = declared;
  } catch {
    // The served type, if any, has to do.
  }
  if (served === "") {
    throw new ReferrersError(
      referrersContext(client, subject, `read ${tag}`),
      "the registry names no media type for it",
    );
  }
  return { tag, suffix, digest: sha256Digest(bytes), mediaType: served, size: bytes.length };
}

/** `Content-Type` without parameters. */
function mediaTypeOf(header: string | null): string {
  return (header ?? "").split(";")[0]!.trim();
}

/**
 * Artifacts that refer to an image: signatures, SBOMs and attestations. Where they live in a
 * registry (the referrers API, the fallback tag, cosign's tags), and how a graph carries them:
 * each `ReferrerNode` (`graph.ts`) hangs off the manifest it refers to and is pushed after it.
 */
import { asDescriptor, type Descriptor } from "./descriptor.ts";
import { JsonShapeError } from "./json_guards.ts";
import { MEDIA_TYPES } from "./media_types.ts";

/** What a referrer is, as far as its artifact type (or cosign tag suffix) tells. */
export type ReferrerKind = "signature" | "sbom" | "attestation" | "artifact";

/** cosign's older scheme: a tag named after the subject's digest, with one of these suffixes. */
export type CosignSuffix = "sig" | "att" | "sbom";

/** How a referrer is attached to its subject. */
export type Attachment =
  /** An OCI 1.1 referrer: its manifest's `subject` names the manifest it hangs off. */
  | { by: "subject" }
  /** cosign's older scheme: the manifest sits under the tag `sha256-<hex>.<suffix>`. */
  | { by: "tag"; tag: string };

/** The config of an artifact with no config: the blob `{}`. */
export const EMPTY_DESCRIPTOR = {
  mediaType: "application/vnd.oci.empty.v1+json",
  digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
  size: 2,
} as const;

/** The annotations buildx puts on an attestation manifest's entry in an image index. */
export const ATTESTATION_TYPE_ANNOTATION = "vnd.docker.reference.type";
/** The platform manifest an attestation entry is about. */
export const ATTESTATION_DIGEST_ANNOTATION = "vnd.docker.reference.digest";
/** The value of {@linkcode ATTESTATION_TYPE_ANNOTATION} on an attestation entry. */
export const ATTESTATION_MANIFEST = "attestation-manifest";

/** Whether an index entry is a buildx attestation manifest rather than a platform's image. */
export function isAttestationEntry(
  entry: { annotations?: Readonly<Record<string, string>> | undefined },
): boolean {
  return entry.annotations?.[ATTESTATION_TYPE_ANNOTATION] === ATTESTATION_MANIFEST;
}

/**
 * The referrers tag schema's tag for `digest` (`sha256:ab…` → `sha256-ab…`): where a
 * registry without the referrers API keeps the index that lists a manifest's referrers.
 *
 * @example
 * ```ts
 * import { fallbackTag } from "./referrer.ts";
 * fallbackTag("sha256:" + "a".repeat(64)); // "sha256-aaaa…"
 * ```
 */
export function fallbackTag(digest: string): string {
  return digest.replace(":", "-");
}

/** cosign's tag for a `suffix` artifact of `digest`: `sha256-<hex>.sig`. */
export function cosignTag(digest: string, suffix: CosignSuffix): string {
  return `${fallbackTag(digest)}.${suffix}`;
}

/** The subject digest and suffix a cosign-style or fallback tag names, if it is one. */
export function parseReferrerTag(
  tag: string,
): { subject: string; suffix?: CosignSuffix } | undefined {
  const match = /^sha256-([0-9a-f]{64})(?:\.(sig|att|sbom))?$/.exec(tag);
  if (match === null) return undefined;
  const subject = `sha256:${match[1]}`;
  return match[2] === undefined ? { subject } : { subject, suffix: match[2] as CosignSuffix };
}

const SIGNATURE_TYPES = [
  "application/vnd.dev.cosign.simplesigning.v1+json",
  "application/vnd.dev.cosign.artifact.sig.v1+json",
  "application/vnd.dev.sigstore.bundle",
  "application/vnd.cncf.notary.signature",
  "application/pkcs7-signature",
];
const SBOM_TYPES = ["spdx", "cyclonedx", "syft", "sbom"];
const ATTESTATION_TYPES = ["in-toto", "intoto", "provenance", "slsa", "attestation"];

/**
 * What kind of referrer an artifact type (or a cosign tag suffix) names. Unknown types are
 * `artifact`: never an error.
 */
export function referrerKind(artifactType: string, suffix?: CosignSuffix): ReferrerKind {
  if (suffix === "sig") return "signature";
  if (suffix === "sbom") return "sbom";
  if (suffix === "att") return "attestation";
  const type = artifactType.toLowerCase();
  if (SIGNATURE_TYPES.some((t) => type.startsWith(t))) return "signature";
  if (SBOM_TYPES.some((t) => type.includes(t))) return "sbom";
  if (ATTESTATION_TYPES.some((t) => type.includes(t))) return "attestation";
  return "artifact";
}

/**
 * What kind a listed referrer is: a buildx attestation by its list entry's annotations (its
 * artifact type is only its config's media type), otherwise as {@linkcode referrerKind} says.
 * Pull and the archive readers both ask this, so a referrer keeps its kind across the gap.
 */
export function kindOfListed(
  entry: { annotations?: Readonly<Record<string, string>> | undefined },
  artifactType: string,
  suffix?: CosignSuffix,
): ReferrerKind {
  return isAttestationEntry(entry) ? "attestation" : referrerKind(artifactType, suffix);
}

/** The media type of the index the referrers API and the fallback tag hold. */
export const REFERRERS_INDEX_MEDIA_TYPE: string = MEDIA_TYPES.ociIndex;

/**
 * One entry of a referrers list: the descriptor of a manifest that refers to the subject, as
 * the referrers API or the fallback tag lists it.
 */
export type ReferrerDescriptor = Pick<
  Descriptor,
  "mediaType" | "digest" | "size" | "artifactType" | "annotations"
>;

/** A referrers index that is not one: not JSON, not an object, or a malformed entry. */
export class ReferrersIndexError extends SyntaxError {
  /** Always "ReferrersIndexError". */
  override name = "ReferrersIndexError";
}

/**
 * The entries of a referrers index (`{"manifests":[…]}`): each checked for a media type, a
 * sha256 digest and a size. Unknown fields and artifact types are accepted, never an error.
 *
 * @throws {ReferrersIndexError} when the bytes are not an index, or an entry is malformed.
 *
 * @example
 * ```ts
 * import { parseReferrersIndex } from "./referrer.ts";
 * const bytes = new TextEncoder().encode('{"schemaVersion":2,"manifests":[]}');
 * parseReferrersIndex(bytes); // []
 * ```
 */
export function parseReferrersIndex(bytes: Uint8Array): ReferrerDescriptor[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new ReferrersIndexError(`Not a referrers index: not JSON (${(cause as Error).message})`, {
      cause,
    });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ReferrersIndexError("Not a referrers index: not a JSON object");
  }
  const manifests = (parsed as { manifests?: unknown }).manifests;
  // An index with no referrers may leave the list out or write null (Go's nil slice).
  if (manifests === undefined || manifests === null) return [];
  if (!Array.isArray(manifests)) {
    throw new ReferrersIndexError("Not a referrers index: manifests is not an array");
  }
  return manifests.map((entry, i) => referrerDescriptor(entry, `manifests[${i}]`));
}

/**
 * Checks one index entry into a {@linkcode ReferrerDescriptor} (with the one descriptor guard,
 * `asDescriptor`): a media type, a sha256 digest and a size are required; an empty
 * `artifactType` counts as none, and annotations that are not strings are dropped.
 *
 * @throws {ReferrersIndexError} naming `where` and what is wrong.
 */
export function referrerDescriptor(value: unknown, where = "descriptor"): ReferrerDescriptor {
  let checked: Descriptor;
  try {
    const entry = typeof value === "object" && value !== null && !Array.isArray(value) &&
        (value as { artifactType?: unknown }).artifactType === ""
      ? { ...value, artifactType: undefined }
      : value;
    checked = asDescriptor(entry, where);
  } catch (error) {
    if (!(error instanceof JsonShapeError)) throw error;
    throw new ReferrersIndexError(`Malformed referrers index: ${error.message}`, { cause: error });
  }
  const descriptor: ReferrerDescriptor = {
    mediaType: checked.mediaType,
    digest: checked.digest,
    size: checked.size,
  };
  if (checked.artifactType !== undefined) descriptor.artifactType = checked.artifactType;
  if (checked.annotations !== undefined) descriptor.annotations = checked.annotations;
  return descriptor;
}

/**
 * The bytes of a new referrers index listing `descriptors`, each written as
 * `{mediaType, digest, size, artifactType?, annotations?}` (what the fallback tag holds).
 */
export function referrersIndexBytes(descriptors: readonly ReferrerDescriptor[]): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: REFERRERS_INDEX_MEDIA_TYPE,
    manifests: descriptors.map(descriptorJson),
  }));
}

/** A descriptor as JSON, its fields in the spec's order, absent ones left out. */
export function descriptorJson(descriptor: ReferrerDescriptor): Record<string, unknown> {
  return {
    mediaType: descriptor.mediaType,
    digest: descriptor.digest,
    size: descriptor.size,
    ...(descriptor.artifactType !== undefined ? { artifactType: descriptor.artifactType } : {}),
    ...(descriptor.annotations !== undefined && Object.keys(descriptor.annotations).length > 0
      ? { annotations: descriptor.annotations }
      : {}),
  };
}

/**
 * The descriptor a referrer manifest gets in a referrers list: its media type (the manifest's
 * own, else `mediaType`), digest and size, `artifactType` (the manifest's, else its config's
 * media type, as the distribution spec says) and annotations.
 *
 * @throws {ReferrersIndexError} when the bytes are not a JSON object.
 */
export function describeReferrer(
  bytes: Uint8Array,
  digest: string,
  mediaType?: string,
): ReferrerDescriptor {
  let manifest: unknown;
  try {
    manifest = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new ReferrersIndexError(`Referrer ${digest} is not JSON`, { cause });
  }
  if (typeof manifest !== "object" || manifest === null || Array.isArray(manifest)) {
    throw new ReferrersIndexError(`Referrer ${digest} is not a JSON object`);
  }
  const m = manifest as {
    mediaType?: unknown;
    artifactType?: unknown;
    config?: { mediaType?: unknown };
    annotations?: unknown;
  };
  const declared = typeof m.mediaType === "string" && m.mediaType !== "" ? m.mediaType : undefined;
  const type = typeof m.artifactType === "string" && m.artifactType !== ""
    ? m.artifactType
    : typeof m.config?.mediaType === "string" && m.config.mediaType !== ""
    ? m.config.mediaType
    : undefined;
  const descriptor: ReferrerDescriptor = {
    mediaType: declared ?? mediaType ?? "application/vnd.oci.image.manifest.v1+json",
    digest,
    size: bytes.length,
  };
  if (type !== undefined) descriptor.artifactType = type;
  if (typeof m.annotations === "object" && m.annotations !== null) {
    const annotations = Object.fromEntries(
      Object.entries(m.annotations).filter(([, v]) => typeof v === "string"),
    ) as Record<string, string>;
    if (Object.keys(annotations).length > 0) descriptor.annotations = annotations;
  }
  return descriptor;
}

/** The `subject` digest a manifest names, if it names one (an OCI 1.1 referrer). */
export function subjectOf(bytes: Uint8Array): string | undefined {
  try {
    const parsed = JSON.parse(new TextDecoder().decode(bytes)) as {
      subject?: { digest?: unknown };
    };
    const digest = parsed?.subject?.digest;
    return typeof digest === "string" && digest !== "" ? digest : undefined;
  } catch {
    return undefined;
  }
}

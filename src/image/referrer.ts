/**
 * Artifacts that refer to an image: signatures, SBOMs and attestations. Where they live in a
 * registry (the referrers API, the fallback tag, cosign's tags), and how a graph carries them:
 * each {@linkcode ReferrerNode} hangs off the manifest it refers to and is pushed after it.
 */
import type { ManifestNode } from "../archive/image.ts";

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

/** A manifest that refers to another, with what refers to it in turn. */
export interface ReferrerNode {
  /** The referrer's own manifest, its blobs, and its own referrers (a signature of an SBOM). */
  node: ManifestNode;
  attached: Attachment;
  kind: ReferrerKind;
  /** The manifest's `artifactType`, else its config's media type. */
  artifactType: string;
}

/** The config of an artifact with no config: the blob `{}`. */
export const EMPTY_DESCRIPTOR = {
  mediaType: "application/vnd.oci.empty.v1+json",
  digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
  size: 2,
} as const;

/** The annotations buildx puts on an attestation manifest's entry in an image index. */
export const ATTESTATION_TYPE_ANNOTATION = "vnd.docker.reference.type";
export const ATTESTATION_DIGEST_ANNOTATION = "vnd.docker.reference.digest";
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

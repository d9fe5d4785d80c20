/**
 * Signatures, SBOMs and attestations stored in an OCI layout beside their images, in the three
 * shapes an archive carries them (our pull writes the first two; oras and Docker ≥ 29.1 the
 * third):
 * - an `index.json` entry named by the fallback tag `sha256-<hex>`: an index listing the OCI 1.1
 *   referrers of the manifest `sha256:<hex>`;
 * - an entry named by a cosign tag `sha256-<hex>.sig` (`.att`, `.sbom`): that tag's manifest;
 * - an entry whose manifest carries a `subject`: a referrer listed by itself;
 * - an entry annotated `org.opencontainers.image.referrer.subject: <digest>`: how containerd's
 *   archive export (Docker ≥ 29.1 with the containerd store, containerd#12311, after
 *   image-spec#1171) adds referrers that are not in an image's tree, cosign's tag-scheme
 *   signatures (which carry no `subject`) among them.
 *
 * Each becomes a {@linkcode ReferrerNode} hanging off the manifest with the subject's digest,
 * wherever it sits in the archive's trees (an image, a platform of an index, another referrer:
 * a signature of an SBOM). None is an image of its own: no tag, no `all`, no `images` choice.
 */
import { ArchiveError } from "../errors.ts";
import { type Descriptor, REF_NAME_ANNOTATION } from "../image/descriptor.ts";
import { isSha256Digest } from "../digest.ts";
import { artifactTypeOf, type Manifest } from "../image/manifest.ts";
import {
  type Attachment,
  type CosignSuffix,
  cosignTag,
  kindOfListed,
  parseReferrerTag,
  referrerKind,
} from "../image/referrer.ts";
import type { ManifestNode, ReferrerNode } from "../image/graph.ts";
import type { ArchiveImage } from "./image.ts";
import { hasBlob, loadNode, readManifest, type StoredManifest } from "./oci_nodes.ts";
import type { TarIndex } from "./tar_index.ts";

/** containerd's annotation on an exported referrer's `index.json` entry: its subject's digest. */
export const REFERRER_SUBJECT_ANNOTATION = "org.opencontainers.image.referrer.subject";

/** A referrer found in `index.json`, before it is attached to its subject. */
export interface ReferrerEntry {
  /** The referrer manifest's descriptor (from `index.json`, or from the fallback tag's list). */
  descriptor: Descriptor;
  /** The digest of the manifest it refers to. */
  subject: string;
  attached: Attachment;
  /** The cosign tag's suffix, which says the kind when the artifact type does not. */
  suffix?: CosignSuffix;
  /** The manifest, when it was read to find its `subject`. */
  stored?: StoredManifest;
}

/** What one `index.json` entry is: referrers, or an image (with its manifest, if read). */
export type IndexEntry =
  | { kind: "referrers"; entries: ReferrerEntry[]; note?: string }
  | { kind: "image"; stored?: StoredManifest };

/**
 * Tells whether an `index.json` entry is referrers (named by a fallback or cosign tag, or a
 * manifest carrying `subject`) or an image. An entry whose manifest is missing is left to the
 * image loader, which says so.
 */
export async function classifyEntry(
  index: TarIndex,
  descriptor: Descriptor,
): Promise<IndexEntry> {
  const name = descriptor.annotations?.[REF_NAME_ANNOTATION];
  const tag = name === undefined ? undefined : parseReferrerTag(name);
  if (name !== undefined && tag?.suffix !== undefined) {
    const attached: Attachment = { by: "tag", tag: name };
    return {
      kind: "referrers",
      entries: [{ descriptor, subject: tag.subject, attached, suffix: tag.suffix }],
    };
  }
  const annotated = descriptor.annotations?.[REFERRER_SUBJECT_ANNOTATION];
  if (tag === undefined && annotated !== undefined && isSha256Digest(annotated)) {
    return await annotatedReferrer(index, descriptor, annotated);
  }
  if (!hasBlob(index, descriptor.digest)) {
    if (tag === undefined) return { kind: "image" };
    // The list of a referrer-tagged entry is gone: what it listed cannot be read, and no
    // image is lost for it.
    return {
      kind: "referrers",
      entries: [],
      note: `the referrers list ${name} (${descriptor.digest}) is missing from the archive: ` +
        `what refers to ${tag.subject} through it is left out`,
    };
  }
  const stored = await readManifest(index, descriptor);
  if (tag !== undefined) {
    // The fallback tag's index: each entry a referrer of the tag's digest.
    if (stored.manifest.kind !== "index") {
      throw new ArchiveError(
        index.label,
        `index.json entry ${name} is named as the referrers list of ${tag.subject} ` +
          `(the fallback tag) but ${descriptor.digest} is not an index`,
      );
    }
    return {
      kind: "referrers",
      entries: stored.manifest.manifests.map((listed) => ({
        descriptor: listed,
        subject: tag.subject,
        attached: { by: "subject" },
      })),
    };
  }
  const subject = stored.manifest.subject;
  if (subject === undefined) return { kind: "image", stored };
  return {
    kind: "referrers",
    entries: [{ descriptor, subject: subject.digest, attached: { by: "subject" }, stored }],
  };
}

/**
 * An entry containerd exported as a referrer of `subject`. A manifest without a `subject` of its
 * own (cosign's tag scheme) goes back under the cosign tag its layers say: a signature's
 * `.sig`, an attestation's `.att`, an SBOM's `.sbom`; anything else joins the subject's
 * referrers list.
 */
async function annotatedReferrer(
  index: TarIndex,
  descriptor: Descriptor,
  subject: string,
): Promise<IndexEntry> {
  if (!hasBlob(index, descriptor.digest)) {
    return {
      kind: "referrers",
      entries: [],
      note: `referrer ${descriptor.digest} of ${subject} is missing from the archive: left out`,
    };
  }
  const stored = await readManifest(index, descriptor);
  const own = stored.manifest.subject?.digest;
  if (own !== undefined) {
    return {
      kind: "referrers",
      entries: [{ descriptor, subject: own, attached: { by: "subject" }, stored }],
    };
  }
  const suffix = cosignSuffixOf(stored.manifest);
  const entry: ReferrerEntry = suffix === undefined
    ? { descriptor, subject, attached: { by: "subject" }, stored }
    : {
      descriptor,
      subject,
      attached: { by: "tag", tag: cosignTag(subject, suffix) },
      suffix,
      stored,
    };
  return { kind: "referrers", entries: [entry] };
}

/** The cosign tag suffix a manifest's layers call for; undefined for other artifacts. */
function cosignSuffixOf(manifest: Manifest): CosignSuffix | undefined {
  if (manifest.kind !== "manifest") return undefined;
  const kinds = manifest.layers.map((layer) => referrerKind(layer.mediaType));
  if (kinds.includes("signature")) return "sig";
  if (kinds.includes("attestation") || manifest.layers.some((l) => l.mediaType.includes("dsse"))) {
    return "att";
  }
  if (kinds.includes("sbom")) return "sbom";
  return undefined;
}

/**
 * Hangs each referrer off the manifest its subject names, anywhere in `images` (and in
 * referrers already attached, so a signature of an SBOM finds the SBOM). Returns notes on
 * the referrers left out: their subject is in no image, or their manifest or blobs are
 * missing or broken.
 */
export async function attachReferrers(
  index: TarIndex,
  images: readonly ArchiveImage[],
  entries: readonly ReferrerEntry[],
): Promise<string[]> {
  const nodes = new Map<string, ManifestNode>();
  const register = (node: ManifestNode): void => {
    if (!nodes.has(node.digest)) nodes.set(node.digest, node);
    node.children.forEach(register);
    node.referrers?.forEach((r) => register(r.node));
  };
  images.forEach((image) => register(image.root));
  const notes: string[] = [];
  let pending = unique(entries);
  for (let attached = true; attached && pending.length > 0;) {
    attached = false;
    const waiting: ReferrerEntry[] = [];
    for (const entry of pending) {
      const subject = nodes.get(entry.subject);
      if (subject === undefined) {
        waiting.push(entry);
        continue;
      }
      attached = true;
      const referrer = await loadReferrer(index, entry, notes);
      if (referrer === undefined) continue;
      subject.referrers = [...(subject.referrers ?? []), referrer];
      register(referrer.node);
    }
    pending = waiting;
  }
  for (const entry of pending) {
    notes.push(
      `${describeEntry(entry)} refers to ${entry.subject}, which no image of the archive ` +
        "holds as it is: left out",
    );
  }
  return notes;
}

/** The referrer's node with its blobs; undefined (and a note) when the archive lacks them. */
async function loadReferrer(
  index: TarIndex,
  entry: ReferrerEntry,
  notes: string[],
): Promise<ReferrerNode | undefined> {
  try {
    const stored = entry.stored ?? await readManifest(index, entry.descriptor);
    const node = await loadNode(index, entry.descriptor, 0, [], { exact: true, stored });
    const artifactType = artifactTypeOf(stored.manifest) ?? entry.descriptor.artifactType ??
      node.mediaType;
    return {
      node,
      attached: entry.attached,
      kind: kindOfListed(entry.descriptor, artifactType, entry.suffix),
      artifactType,
    };
  } catch (error) {
    if (!(error instanceof ArchiveError)) throw error;
    const problem = error.message.startsWith(`${index.label}: `)
      ? error.message.slice(index.label.length + 2)
      : error.message;
    notes.push(`${describeEntry(entry)} of ${entry.subject} is left out: ${problem}`);
    return undefined;
  }
}

/** `signature sha256:ab… (tag sha256-….sig)`, for notes. */
function describeEntry(entry: ReferrerEntry): string {
  const type = (entry.stored ? artifactTypeOf(entry.stored.manifest) : undefined) ??
    entry.descriptor.artifactType ?? "";
  const kind = type === "" && entry.suffix === undefined
    ? "referrer"
    : kindOfListed(entry.descriptor, type, entry.suffix);
  const via = entry.attached.by === "tag" ? ` (tag ${entry.attached.tag})` : "";
  return `${kind} ${entry.descriptor.digest}${via}`;
}

/** Each referrer once per subject and attachment, in the order found. */
function unique(entries: readonly ReferrerEntry[]): ReferrerEntry[] {
  const seen = new Set<string>();
  return entries.filter((entry) => {
    const how = entry.attached.by === "tag" ? entry.attached.tag : "subject";
    const key = `${entry.subject} ${entry.descriptor.digest} ${how}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

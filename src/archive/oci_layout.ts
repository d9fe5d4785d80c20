/**
 * OCI image-layout archives (`oci-archive:`, `buildx --output type=oci`) and Docker 25+ saves,
 * which carry an OCI layout beside the legacy `manifest.json`. `index.json` names manifests
 * (or indexes, for multi-platform images) stored under `blobs/<alg>/<hex>` (read into graph nodes by
 * `oci_nodes.ts`); they are pushed byte-for-byte, so digests stay what the archive says.
 *
 * Not every entry of `index.json` is an image: signatures, SBOMs and attestations stored with
 * their images are entries too (see `oci_referrers.ts`), and hang off the manifest they refer
 * to instead of becoming images of their own.
 */
import { ArchiveError } from "../errors.ts";
import { MAX_MANIFEST_BYTES, readJsonEntry } from "./archive_reader.ts";
import type { ArchiveImage } from "./image.ts";
import { type Descriptor, REF_NAME_ANNOTATION } from "../image/descriptor.ts";
import { JsonShapeError } from "../image/json_guards.ts";
import { parseManifestValue } from "../image/manifest.ts";
import { MEDIA_TYPES } from "../image/media_types.ts";
import { loadNode } from "./oci_nodes.ts";
import { attachReferrers, classifyEntry, type ReferrerEntry } from "./oci_referrers.ts";
import type { TarIndex } from "./tar_index.ts";

/** Annotations that name an image in an index: containerd's full name, then the OCI ref name. */
const NAME_ANNOTATIONS = ["io.containerd.image.name", REF_NAME_ANNOTATION];

/** Checks an OCI `index.json` (or an index blob): the descriptors of its manifests. */
export function parseIndex(value: unknown): Descriptor[] {
  const parsed = parseManifestValue(value, MEDIA_TYPES.ociIndex);
  if (parsed.kind !== "index") throw new JsonShapeError("manifests must be an array");
  return parsed.manifests;
}

/** What an OCI layout holds: its images, and notes on what was left out of them. */
export interface OciLayoutContents {
  images: ArchiveImage[];
  /** Referrers whose subject no image holds, and other things left out. */
  notes: string[];
}

/**
 * Reads every image `index.json` names, with the referrers stored beside them. Images listed
 * twice (two tags) merge their names.
 */
export async function loadOciLayout(index: TarIndex): Promise<OciLayoutContents> {
  const { value: descriptors } = await readJsonEntry(
    index,
    "index.json",
    MAX_MANIFEST_BYTES,
    parseIndex,
  );
  if (descriptors.length === 0) {
    throw new ArchiveError(index.label, "index.json lists no images");
  }
  const byDigest = new Map<string, ArchiveImage>();
  const referrers: ReferrerEntry[] = [];
  const archiveNotes: string[] = [];
  for (const descriptor of descriptors) {
    const entry = await classifyEntry(index, descriptor);
    if (entry.kind === "referrers") {
      referrers.push(...entry.entries);
      if (entry.note !== undefined) archiveNotes.push(entry.note);
      continue;
    }
    const names = NAME_ANNOTATIONS.map((a) => descriptor.annotations?.[a]).filter(
      (n): n is string => n !== undefined && n !== "",
    );
    const existing = byDigest.get(descriptor.digest);
    if (existing) {
      existing.names.push(...names.filter((n) => !existing.names.includes(n)));
      continue;
    }
    const notes: string[] = [];
    const root = await loadNode(
      index,
      descriptor,
      0,
      notes,
      entry.stored ? { stored: entry.stored } : {},
    );
    byDigest.set(descriptor.digest, { names: [...new Set(names)], root, notes });
  }
  const images = [...byDigest.values()];
  if (images.length === 0) {
    throw new ArchiveError(
      index.label,
      "index.json lists no images, only signatures, SBOMs or attestations of images it lacks",
    );
  }
  archiveNotes.push(...await attachReferrers(index, images, referrers));
  return { images, notes: archiveNotes };
}

/**
 * OCI image-layout archives (`oci-archive:`, `buildx --output type=oci`) and Docker 25+ saves,
 * which carry an OCI layout beside the legacy `manifest.json`. `index.json` names manifests
 * (or indexes, for multi-platform images) stored under `blobs/<alg>/<hex>`; they are pushed
 * byte-for-byte, so digests stay what the archive says.
 *
 * Not every entry of `index.json` is an image: signatures, SBOMs and attestations stored with
 * their images are entries too (see `oci_referrers.ts`), and hang off the manifest they refer
 * to instead of becoming images of their own.
 */
import { ArchiveError } from "../errors.ts";
import { sha256Digest } from "../digest.ts";
import { entryBlob, MAX_MANIFEST_BYTES, readEntry, readJsonEntry } from "./archive_reader.ts";
import type { ArchiveImage, ManifestNode } from "./image.ts";
import type { Descriptor } from "../image/descriptor.ts";
import { JsonShapeError } from "../image/json_guards.ts";
import {
  type ImageIndex,
  type Manifest,
  parseManifest,
  parseManifestValue,
} from "../image/manifest.ts";
import { MEDIA_TYPES } from "../image/media_types.ts";
import { attachReferrers, classifyEntry, type ReferrerEntry } from "./oci_referrers.ts";
import type { TarEntry, TarIndex } from "./tar_index.ts";

/** Annotations that name an image in an index: containerd's full name, then the OCI ref name. */
const NAME_ANNOTATIONS = ["io.containerd.image.name", "org.opencontainers.image.ref.name"];
const MAX_DEPTH = 4;

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

function blobEntry(index: TarIndex, digest: string): TarEntry | undefined {
  const [algorithm, hex] = digest.split(":");
  const name = `blobs/${algorithm}/${hex}`;
  return index.get(name) === undefined ? undefined : index.resolve(name);
}

/** Whether the archive stores the blob (or manifest) `digest`. */
export function hasBlob(index: TarIndex, digest: string): boolean {
  return blobEntry(index, digest) !== undefined;
}

function requireBlob(index: TarIndex, descriptor: Descriptor, what: string): TarEntry {
  const entry = blobEntry(index, descriptor.digest);
  if (!entry) {
    throw new ArchiveError(index.label, `${what} ${descriptor.digest} is missing from the archive`);
  }
  if (entry.size !== descriptor.size) {
    throw new ArchiveError(
      index.label,
      `${what} ${descriptor.digest} is ${entry.size} bytes in the archive but its descriptor ` +
        `says ${descriptor.size}`,
    );
  }
  return entry;
}

/** A manifest's bytes (checked against its digest) and what they say. */
export interface StoredManifest {
  bytes: Uint8Array;
  manifest: Manifest;
}

/** Reads the manifest `descriptor` names from `blobs/`, checked against its digest, parsed. */
export async function readManifest(
  index: TarIndex,
  descriptor: Descriptor,
): Promise<StoredManifest> {
  const entry = requireBlob(index, descriptor, "manifest");
  const bytes = await readEntry(index, entry, MAX_MANIFEST_BYTES);
  if (sha256Digest(bytes) !== descriptor.digest) {
    throw new ArchiveError(index.label, `manifest ${entry.name} does not match its digest`);
  }
  try {
    return { bytes, manifest: parseManifest(bytes, descriptor.mediaType, entry.name) };
  } catch (error) {
    if (error instanceof JsonShapeError) {
      throw new ArchiveError(index.label, error.message, { cause: error });
    }
    throw error;
  }
}

/** Options for {@linkcode loadNode}. */
export interface LoadNodeOptions {
  /**
   * The node must be what the archive stores, byte for byte (a referrer: what it signs is its
   * digest). An index missing platforms is then an error, never rebuilt from those present.
   */
  exact?: boolean;
  /** The manifest, already read. */
  stored?: StoredManifest;
}

/** Reads the manifest `descriptor` names, with its blobs and (for an index) its children. */
export async function loadNode(
  index: TarIndex,
  descriptor: Descriptor,
  depth: number,
  notes: string[],
  options: LoadNodeOptions = {},
): Promise<ManifestNode> {
  if (depth > MAX_DEPTH) throw new ArchiveError(index.label, "indexes nested too deeply");
  const { bytes, manifest } = options.stored ?? await readManifest(index, descriptor);
  const { mediaType, digest } = { mediaType: manifest.mediaType, digest: descriptor.digest };
  if (manifest.kind === "index") {
    return await loadIndexNode(
      index,
      { mediaType, digest, bytes },
      manifest,
      depth,
      notes,
      options,
    );
  }
  const config = requireBlob(index, manifest.config, "config");
  const configBytes = await readEntry(index, config, 64 * 1024 * 1024);
  if (sha256Digest(configBytes) !== manifest.config.digest) {
    throw new ArchiveError(index.label, `config ${config.name} does not match its digest`);
  }
  const blobs = [
    entryBlob(index, config, manifest.config.digest, manifest.config.mediaType),
    ...manifest.layers.map((layer) =>
      entryBlob(index, requireBlob(index, layer, "layer"), layer.digest, layer.mediaType)
    ),
  ];
  return { mediaType, digest, bytes, blobs, children: [] };
}

async function loadIndexNode(
  index: TarIndex,
  node: Pick<ManifestNode, "mediaType" | "digest" | "bytes">,
  manifest: ImageIndex,
  depth: number,
  notes: string[],
  options: LoadNodeOptions,
): Promise<ManifestNode> {
  const children: ManifestNode[] = [];
  const descriptors = manifest.manifests;
  let missing = 0;
  for (const child of descriptors) {
    // Docker's containerd store saves the whole index but only the host platform's blobs.
    if (!blobEntry(index, child.digest)) {
      missing++;
      continue;
    }
    children.push(
      await loadNode(index, child, depth + 1, notes, { exact: options.exact ?? false }),
    );
  }
  if (options.exact && missing > 0) {
    throw new ArchiveError(
      index.label,
      `${missing} of the ${descriptors.length} manifests index ${node.digest} names are ` +
        "missing from the archive",
    );
  }
  if (children.length === 0) {
    throw new ArchiveError(
      index.label,
      `no manifest named by index ${node.digest} is in the archive`,
    );
  }
  if (missing === 0) return { ...node, blobs: [], children };
  if (children.length === 1) {
    notes.push(
      `the archive holds 1 of ${descriptors.length} platforms of index ${node.digest}; ` +
        "pushing that platform's manifest alone",
    );
    return children[0]!;
  }
  // Several platforms present, some not: push an index of those we have.
  const json = JSON.parse(new TextDecoder().decode(node.bytes)) as Record<string, unknown>;
  const present = new Set(children.map((c) => c.digest));
  const rebuilt = {
    ...json,
    manifests: (json["manifests"] as unknown[]).filter((_, i) =>
      present.has(descriptors[i]!.digest)
    ),
  };
  const bytes = new TextEncoder().encode(JSON.stringify(rebuilt));
  notes.push(
    `the archive holds ${children.length} of ${descriptors.length} platforms of index ` +
      `${node.digest}; pushing a new index of those`,
  );
  return { mediaType: node.mediaType, digest: sha256Digest(bytes), bytes, blobs: [], children };
}

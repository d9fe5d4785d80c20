/**
 * An OCI layout's manifests as nodes of the image graph: a manifest read from `blobs/` and
 * checked against its digest, with its config and layers (byte ranges of the archive) and, for
 * an index, the manifests it names. `oci_layout.ts` loads the images `index.json` names through
 * it, and `oci_referrers.ts` the signatures, SBOMs and attestations stored beside them.
 */
import { ArchiveError } from "../errors.ts";
import { sha256Digest } from "../digest.ts";
import type { Descriptor } from "../image/descriptor.ts";
import type { ManifestNode } from "../image/graph.ts";
import { JsonShapeError } from "../image/json_guards.ts";
import { type ImageIndex, type Manifest, parseManifest } from "../image/manifest.ts";
import { entryBlob, MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, readEntry } from "./archive_reader.ts";
import type { TarEntry } from "./tar_names.ts";
import type { TarIndex } from "./tar_index.ts";

/** Indexes nest at most this deep (an index of indexes of …), so a loop in a layout ends. */
const MAX_DEPTH = 4;

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
  const { mediaType } = manifest;
  const { digest } = descriptor;
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
  const configBytes = await readEntry(index, config, MAX_CONFIG_BYTES);
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

/**
 * OCI image-layout archives (`oci-archive:`, `buildx --output type=oci`) and Docker 25+ saves,
 * which carry an OCI layout beside the legacy `manifest.json`. `index.json` names manifests
 * (or indexes, for multi-platform images) stored under `blobs/<alg>/<hex>`; they are pushed
 * byte-for-byte, so digests stay what the archive says.
 */
import { ArchiveError } from "../errors.ts";
import { sha256Digest } from "../digest.ts";
import {
  entryBlob,
  MAX_MANIFEST_BYTES,
  parseJsonBytes,
  readEntry,
  readJsonEntry,
} from "./archive_reader.ts";
import type { ArchiveImage, ManifestNode } from "./image.ts";
import { asDescriptor, type Descriptor } from "../image/descriptor.ts";
import { isIndexMediaType, MEDIA_TYPES } from "../image/media_types.ts";
import { asArray, asObject, type JsonObject } from "../image/json_guards.ts";
import type { TarEntry, TarIndex } from "./tar_index.ts";

/** Annotations that name an image in an index: containerd's full name, then the OCI ref name. */
const NAME_ANNOTATIONS = ["io.containerd.image.name", "org.opencontainers.image.ref.name"];
const MAX_DEPTH = 4;

/** Checks an OCI `index.json` (or an index blob): the descriptors of its manifests. */
export function parseIndex(value: unknown): Descriptor[] {
  const obj = asObject(value, "the top level");
  return asArray(obj["manifests"], "manifests").map((d, i) =>
    asDescriptor(d, `manifests[${i}]`, { defaultMediaType: MEDIA_TYPES.ociManifest })
  );
}

/** Reads every image `index.json` names. Images listed twice (two tags) merge their names. */
export async function loadOciLayout(index: TarIndex): Promise<ArchiveImage[]> {
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
  for (const descriptor of descriptors) {
    const names = NAME_ANNOTATIONS.map((a) => descriptor.annotations?.[a]).filter(
      (n): n is string => n !== undefined && n !== "",
    );
    const existing = byDigest.get(descriptor.digest);
    if (existing) {
      existing.names.push(...names.filter((n) => !existing.names.includes(n)));
      continue;
    }
    const notes: string[] = [];
    const root = await loadNode(index, descriptor, 0, notes);
    byDigest.set(descriptor.digest, { names: [...new Set(names)], root, notes });
  }
  return [...byDigest.values()];
}

function blobEntry(index: TarIndex, digest: string): TarEntry | undefined {
  const [algorithm, hex] = digest.split(":");
  const name = `blobs/${algorithm}/${hex}`;
  return index.get(name) === undefined ? undefined : index.resolve(name);
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

async function loadNode(
  index: TarIndex,
  descriptor: Descriptor,
  depth: number,
  notes: string[],
): Promise<ManifestNode> {
  if (depth > MAX_DEPTH) throw new ArchiveError(index.label, "indexes nested too deeply");
  const entry = requireBlob(index, descriptor, "manifest");
  const bytes = await readEntry(index, entry, MAX_MANIFEST_BYTES);
  const digest = sha256Digest(bytes);
  if (digest !== descriptor.digest) {
    throw new ArchiveError(index.label, `manifest ${entry.name} does not match its digest`);
  }
  const json = parseJsonBytes(index, entry.name, bytes, (v) => asObject(v, "manifest"));
  const mediaType = descriptor.mediaType ?? mediaTypeOf(json);
  if (isIndexMediaType(mediaType) || (json["manifests"] !== undefined && !json["layers"])) {
    return await loadIndexNode(index, { mediaType, digest, bytes }, json, depth, notes);
  }
  const check = (v: unknown) => {
    const obj = asObject(v, "manifest");
    return {
      config: asDescriptor(obj["config"], "config", { defaultMediaType: MEDIA_TYPES.ociConfig }),
      layers: asArray(obj["layers"], "layers").map((l, i) =>
        asDescriptor(l, `layers[${i}]`, { defaultMediaType: MEDIA_TYPES.ociLayer })
      ),
    };
  };
  const manifest = parseJsonBytes(index, entry.name, bytes, check);
  const config = requireBlob(index, manifest.config, "config");
  const configBytes = await readEntry(index, config, 64 * 1024 * 1024);
  if (sha256Digest(configBytes) !== manifest.config.digest) {
    throw new ArchiveError(index.label, `config ${config.name} does not match its digest`);
  }
  const blobs = [
    entryBlob(
      index,
      config,
      manifest.config.digest,
      manifest.config.mediaType ?? MEDIA_TYPES.ociConfig,
    ),
    ...manifest.layers.map((layer) =>
      entryBlob(
        index,
        requireBlob(index, layer, "layer"),
        layer.digest,
        layer.mediaType ?? MEDIA_TYPES.ociLayer,
      )
    ),
  ];
  return { mediaType, digest, bytes, blobs, children: [] };
}

async function loadIndexNode(
  index: TarIndex,
  node: Pick<ManifestNode, "mediaType" | "digest" | "bytes">,
  json: JsonObject,
  depth: number,
  notes: string[],
): Promise<ManifestNode> {
  const children: ManifestNode[] = [];
  const descriptors = parseJsonBytes(index, node.digest, node.bytes, () => parseIndex(json));
  let missing = 0;
  for (const child of descriptors) {
    // Docker's containerd store saves the whole index but only the host platform's blobs.
    if (!blobEntry(index, child.digest)) {
      missing++;
      continue;
    }
    children.push(await loadNode(index, child, depth + 1, notes));
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
  const present = descriptors.filter((d) => children.some((c) => c.digest === d.digest));
  const rebuilt = {
    ...json,
    manifests: (json["manifests"] as unknown[]).filter((_, i) => present.includes(descriptors[i]!)),
  };
  const bytes = new TextEncoder().encode(JSON.stringify(rebuilt));
  notes.push(
    `the archive holds ${children.length} of ${descriptors.length} platforms of index ` +
      `${node.digest}; pushing a new index of those`,
  );
  return { mediaType: node.mediaType, digest: sha256Digest(bytes), bytes, blobs: [], children };
}

function mediaTypeOf(json: JsonObject): string {
  if (typeof json["mediaType"] === "string") return json["mediaType"];
  return json["manifests"] !== undefined ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.ociManifest;
}

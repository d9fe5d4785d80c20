/**
 * containers/image's `dir:` layout, which `skopeo copy … dir:DIR` and
 * `podman save --format docker-dir` write: `manifest.json` is the image's own manifest (Docker
 * schema 2 or OCI), `version` says `Directory Transport Version: 1.1`, and every blob is a file
 * named by its sha256 hex. With `skopeo copy --all`, `manifest.json` is an index and each
 * platform's manifest is `<hex>.manifest.json`. The layout carries no image name.
 *
 * Read from a directory in place (`directory_index.ts`), or from a tar or a stream of one.
 */
import { ArchiveError } from "../errors.ts";
import { sha256Digest } from "../digest.ts";
import {
  detectCompression,
  entryBlob,
  MAX_CONFIG_BYTES,
  MAX_MANIFEST_BYTES,
  parseJsonBytes,
  readEntry,
} from "./archive_reader.ts";
import type { ArchiveBlob, ArchiveImage } from "./image.ts";
import type { ManifestNode } from "../image/graph.ts";
import type { Descriptor } from "../image/descriptor.ts";
import { parseManifestValue } from "../image/manifest.ts";
import { declaredCompression, layerTypeFor, MEDIA_TYPES } from "../image/media_types.ts";
import { asArray, asObject, type JsonObject, JsonShapeError } from "../image/json_guards.ts";
import type { TarEntry } from "./tar_names.ts";
import type { TarIndex } from "./tar_index.ts";

/** The `version` file's text, up to the minor version (1.1 is what containers/image writes). */
const VERSION_PREFIX = "Directory Transport Version: 1.";

/**
 * A `dir:` layout's manifest: an image's, or an index of per-platform manifests, parsed by the
 * one manifest parser, with its JSON kept to rewrite media types that lie.
 */
export type DirManifest =
  | { kind: "image"; json: JsonObject; config: Descriptor; layers: Descriptor[] }
  | { kind: "index"; json: JsonObject; manifests: Descriptor[] };

/**
 * Checks a manifest as the `dir:` layout stores it. Docker schema 1 is refused: registries
 * no longer take it.
 */
export function parseDirManifest(value: unknown): DirManifest {
  const json = asObject(value, "the top level");
  if (json["schemaVersion"] === undefined) {
    // Most likely one entry of docker save's list, written without the list around it.
    throw new JsonShapeError(
      "the top level must be an array (docker save) or a manifest with a schemaVersion " +
        "(a dir: layout)",
    );
  }
  const manifest = parseManifestValue(json, undefined);
  return manifest.kind === "index"
    ? { kind: "index", json, manifests: manifest.manifests }
    : { kind: "image", json, config: manifest.config, layers: manifest.layers };
}

/** Reads the one image a `dir:` layout holds. */
export async function loadDirLayout(index: TarIndex): Promise<ArchiveImage> {
  await checkVersion(index);
  const notes: string[] = [];
  const bytes = await readEntry(index, index.resolve("manifest.json"), MAX_MANIFEST_BYTES);
  const manifest = parseJsonBytes(index, "manifest.json", bytes, parseDirManifest);
  const root = manifest.kind === "index"
    ? await loadIndex(index, bytes, manifest, notes)
    : await loadImage(index, "manifest.json", bytes, manifest, notes);
  return { names: [], root, notes };
}

async function checkVersion(index: TarIndex): Promise<void> {
  if (index.get("version") === undefined) return; // older writers left it out
  const text = new TextDecoder().decode(await readEntry(index, index.resolve("version"), 256));
  if (!text.startsWith(VERSION_PREFIX)) {
    throw new ArchiveError(
      index.label,
      `version says "${text.trim()}"; only "${VERSION_PREFIX}x" dir: layouts are read`,
    );
  }
}

async function loadIndex(
  index: TarIndex,
  bytes: Uint8Array,
  manifest: Extract<DirManifest, { kind: "index" }>,
  notes: string[],
): Promise<ManifestNode> {
  if (manifest.manifests.length === 0) {
    throw new ArchiveError(index.label, "manifest.json is an index that lists no manifests");
  }
  const children: ManifestNode[] = [];
  const listed = asArray(manifest.json["manifests"], "manifests") as JsonObject[];
  let changed = false;
  for (const [i, descriptor] of manifest.manifests.entries()) {
    const name = `${hexOf(index, descriptor.digest)}.manifest.json`;
    const entry = requireFile(index, name, descriptor, "manifest");
    const childBytes = await readEntry(index, entry, MAX_MANIFEST_BYTES);
    if (sha256Digest(childBytes) !== descriptor.digest) {
      throw new ArchiveError(index.label, `manifest ${name} does not match its digest`);
    }
    const child = parseJsonBytes(index, name, childBytes, parseDirManifest);
    if (child.kind !== "image") {
      throw new ArchiveError(index.label, `${name} is an index inside an index`);
    }
    const node = await loadImage(index, name, childBytes, child, notes);
    if (node.digest !== descriptor.digest) {
      // Its layers' media types were corrected: the index must name the corrected manifest.
      listed[i] = { ...listed[i], digest: node.digest, size: node.bytes.length };
      changed = true;
    }
    children.push(node);
  }
  const mediaType = mediaTypeOf(manifest.json, MEDIA_TYPES.ociIndex);
  const indexBytes = changed
    ? new TextEncoder().encode(JSON.stringify({ ...manifest.json, manifests: listed }))
    : bytes;
  return { mediaType, digest: sha256Digest(indexBytes), bytes: indexBytes, blobs: [], children };
}

async function loadImage(
  index: TarIndex,
  name: string,
  bytes: Uint8Array,
  manifest: Extract<DirManifest, { kind: "image" }>,
  notes: string[],
): Promise<ManifestNode> {
  const configEntry = requireFile(
    index,
    hexOf(index, manifest.config.digest),
    manifest.config,
    "config",
  );
  const configBytes = await readEntry(index, configEntry, MAX_CONFIG_BYTES);
  if (sha256Digest(configBytes) !== manifest.config.digest) {
    throw new ArchiveError(index.label, `config ${configEntry.name} does not match its digest`);
  }
  const oci = !mediaTypeOf(manifest.json, MEDIA_TYPES.ociManifest).startsWith(
    "application/vnd.docker.",
  );
  const blobs: ArchiveBlob[] = [
    entryBlob(
      index,
      configEntry,
      manifest.config.digest,
      manifest.config.mediaType ?? (oci ? MEDIA_TYPES.ociConfig : MEDIA_TYPES.dockerConfig),
    ),
  ];
  const layers = asArray(manifest.json["layers"], "layers") as JsonObject[];
  const corrected: string[] = [];
  for (const [i, layer] of manifest.layers.entries()) {
    const entry = requireFile(index, hexOf(index, layer.digest), layer, "layer");
    let mediaType = layer.mediaType ?? MEDIA_TYPES.ociLayer;
    const declared = declaredCompression(mediaType);
    // Only rootfs layers are sniffed: an artifact's blobs may hold anything.
    const found = declared === undefined ? undefined : await detectCompression(index, entry);
    if (found !== undefined && found !== declared) {
      // skopeo and podman label a docker-archive's uncompressed layers gzip when they write a
      // dir: layout; pushed as labelled, clients would be told to gunzip a plain tar.
      const fixed = layerTypeFor(mediaType, found);
      if (fixed === undefined) {
        throw new ArchiveError(
          index.label,
          `layer ${layer.digest} is ${found}-compressed, which its Docker media type ` +
            `${mediaType} cannot say`,
        );
      }
      layers[i] = { ...layers[i], mediaType: fixed };
      corrected.push(`${layer.digest.slice(7, 19)} (${declared} → ${found})`);
      mediaType = fixed;
    }
    blobs.push(entryBlob(index, entry, layer.digest, mediaType));
  }
  let manifestBytes = bytes;
  if (corrected.length > 0) {
    manifestBytes = new TextEncoder().encode(JSON.stringify({ ...manifest.json, layers }));
    notes.push(
      `${name} gives ${corrected.length} layer(s) a media type that does not match their ` +
        `bytes: ${corrected.join(", ")}; pushing a manifest with the right ones ` +
        `(its digest differs from the directory's)`,
    );
  }
  return {
    mediaType: mediaTypeOf(manifest.json, MEDIA_TYPES.ociManifest),
    digest: sha256Digest(manifestBytes),
    bytes: manifestBytes,
    blobs,
    children: [],
  };
}

/** The file name of a blob: its hex digits (containers/image names sha256 blobs so). */
function hexOf(index: TarIndex, digest: string): string {
  const [algorithm, hex] = digest.split(":");
  if (algorithm !== "sha256" || hex === undefined) {
    throw new ArchiveError(index.label, `unsupported digest ${digest}`);
  }
  return hex;
}

function requireFile(
  index: TarIndex,
  name: string,
  descriptor: Descriptor,
  what: string,
): TarEntry {
  if (index.get(name) === undefined) {
    throw new ArchiveError(
      index.label,
      `${what} ${descriptor.digest} is missing (no file ${name})`,
    );
  }
  const entry = index.resolve(name);
  if (entry.size !== descriptor.size) {
    throw new ArchiveError(
      index.label,
      `${what} ${descriptor.digest} is ${entry.size} bytes in ${name} but its descriptor ` +
        `says ${descriptor.size}`,
    );
  }
  return entry;
}

function mediaTypeOf(json: JsonObject, fallback: string): string {
  const declared = json["mediaType"];
  return typeof declared === "string" && declared !== "" ? declared : fallback;
}

/**
 * `docker save` archives (Docker before 25, and skopeo/podman `docker-archive:`):
 * `manifest.json` lists each image's config and layer paths. Layer paths are `<id>/layer.tar`
 * where `<id>` is not the layer's digest (skopeo writes `<digest>.tar` with symlinks to it).
 *
 * The registry gets a Docker v2 schema 2 manifest, as `docker push` would send. An uncompressed
 * layer's digest is the config's `rootfs.diff_ids[i]`; it is verified while uploading.
 */
import { ArchiveError } from "../errors.ts";
import { sha256Digest } from "../digest.ts";
import {
  entryBlob,
  hashEntry,
  MAX_CONFIG_BYTES,
  MAX_MANIFEST_BYTES,
  parseJsonBytes,
  readEntry,
  readJsonEntry,
  sniffCompression,
} from "./archive_reader.ts";
import type { ArchiveBlob, ArchiveImage } from "./image.ts";
import { MEDIA_TYPES } from "../image/media_types.ts";
import { asArray, asDigest, asObject, asString, JsonShapeError } from "../image/json_guards.ts";
import type { TarIndex } from "./tar_index.ts";

/** One image of `docker save`'s `manifest.json`. */
export interface SaveEntry {
  config: string;
  repoTags: string[];
  layers: string[];
}

/** Checks `docker save`'s `manifest.json`: a list of images, each with its config and layers. */
export function parseSaveManifest(value: unknown): SaveEntry[] {
  const list = asArray(value, "the top level");
  if (list.length === 0) throw new JsonShapeError("lists no images");
  return list.map((item, i) => {
    const obj = asObject(item, `entry ${i}`);
    const tags = obj["RepoTags"] === null || obj["RepoTags"] === undefined
      ? []
      : asArray(obj["RepoTags"], `entry ${i}.RepoTags`).map((t, j) =>
        asString(t, `entry ${i}.RepoTags[${j}]`)
      );
    return {
      config: asString(obj["Config"], `entry ${i}.Config`),
      repoTags: tags,
      layers: asArray(obj["Layers"], `entry ${i}.Layers`).map((l, j) =>
        asString(l, `entry ${i}.Layers[${j}]`)
      ),
    };
  });
}

function parseDiffIds(value: unknown): string[] {
  const config = asObject(value, "config");
  const rootfs = asObject(config["rootfs"], "config.rootfs");
  return asArray(rootfs["diff_ids"], "config.rootfs.diff_ids").map((d, i) =>
    asDigest(d, `config.rootfs.diff_ids[${i}]`)
  );
}

/** Reads every image `manifest.json` lists. */
export async function loadDockerSave(index: TarIndex): Promise<ArchiveImage[]> {
  const { value: entries } = await readJsonEntry(
    index,
    "manifest.json",
    MAX_MANIFEST_BYTES,
    parseSaveManifest,
  );
  const images: ArchiveImage[] = [];
  for (const entry of entries) images.push(await loadImage(index, entry));
  return images;
}

async function loadImage(index: TarIndex, entry: SaveEntry): Promise<ArchiveImage> {
  const configEntry = index.resolve(entry.config);
  const configBytes = await readEntry(index, configEntry, MAX_CONFIG_BYTES);
  const diffIds = parseJsonBytes(index, entry.config, configBytes, parseDiffIds);
  if (diffIds.length !== entry.layers.length) {
    throw new ArchiveError(
      index.label,
      `${entry.config} lists ${diffIds.length} layers (rootfs.diff_ids) but manifest.json ` +
        `lists ${entry.layers.length}`,
    );
  }
  const configDigest = sha256Digest(configBytes);
  const layers: ArchiveBlob[] = [];
  let zstd = false;
  for (const [i, path] of entry.layers.entries()) {
    const layerEntry = index.resolve(path);
    const compression = await sniffCompression(index, layerEntry);
    // An uncompressed layer's digest is its diff_id; a compressed one must be hashed.
    const digest = compression === "none" ? diffIds[i]! : await hashEntry(index, layerEntry);
    // A stream hashed the layer as it went past, and cannot be read again to find out later.
    const known = compression === "none" ? index.knownDigest?.(layerEntry) : undefined;
    if (known !== undefined && known !== digest) {
      throw new ArchiveError(
        index.label,
        `${layerEntry.name}: content does not match its digest ${digest} ` +
          `(rootfs.diff_ids[${i}] of ${entry.config}; the archive is corrupt)`,
      );
    }
    zstd ||= compression === "zstd";
    layers.push(entryBlob(index, layerEntry, digest, compression));
  }
  // Docker's schema 2 has no zstd media type: such an image goes up as OCI.
  const oci = zstd;
  for (const layer of layers) layer.mediaType = layerMediaType(layer.mediaType, oci);
  const config = entryBlob(
    index,
    configEntry,
    configDigest,
    oci ? MEDIA_TYPES.ociConfig : MEDIA_TYPES.dockerConfig,
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: oci ? MEDIA_TYPES.ociManifest : MEDIA_TYPES.dockerManifest,
    config: { mediaType: config.mediaType, size: config.size, digest: config.digest },
    layers: layers.map((l) => ({ mediaType: l.mediaType, size: l.size, digest: l.digest })),
  };
  // Docker indents with three spaces; matching it keeps digests equal to `docker push`'s.
  const bytes = new TextEncoder().encode(JSON.stringify(manifest, null, 3));
  return {
    names: entry.repoTags,
    notes: oci ? ["zstd layers found: pushing an OCI manifest instead of Docker schema 2"] : [],
    root: {
      mediaType: manifest.mediaType,
      digest: sha256Digest(bytes),
      bytes,
      blobs: [config, ...layers],
      children: [],
    },
  };
}

function layerMediaType(compression: string, oci: boolean): string {
  if (compression === "gzip") return oci ? MEDIA_TYPES.ociLayerGzip : MEDIA_TYPES.dockerLayerGzip;
  if (compression === "zstd") return MEDIA_TYPES.ociLayerZstd;
  return oci ? MEDIA_TYPES.ociLayer : MEDIA_TYPES.dockerLayer;
}

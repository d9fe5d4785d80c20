/**
 * Generators of image archives for tests: `docker save` before Docker 25,
 * Docker 25+ saves (OCI layout plus `manifest.json`), plain OCI image-layout
 * tars, and a single-layer archive of any size for benchmarks.
 *
 * Layers are real tar files holding a few files of pseudo-random content
 * derived from a seed, so every layer has its own digest and the output is
 * reproducible. Each generator returns the digests a test can compare with
 * what it pulls back from a registry.
 *
 * @example
 * ```ts
 * const { images } = await writeDockerSaveLegacy(`${dir}/app.tar`, [
 *   { name: "app:1", layerSizes: [1000, 2000] },
 * ]);
 * // images[0].configDigest, images[0].layerDiffIds
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { tarBytes, tarStream, TarWriter } from "./tar_writer.ts";
import { hashing, seededBytes, seededStream, sha256Digest, sha256Hex } from "./random.ts";

/** Media types the fixtures use. */
export const MediaType = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;

/** One image to put in an archive. */
export interface FixtureImage {
  /** "name:tag", e.g. "app:1" or "localhost:5000/team/app:1". */
  name: string;
  /** Bytes of pseudo-random payload per layer. Default: [1000, 3000]. */
  layerSizes?: number[];
  /**
   * Seed of each layer's content. Layers with the same seed and size are
   * byte-identical: that is how two images share a layer. Default:
   * `${name}#${index}`.
   */
  layerSeeds?: string[];
  /** Config `architecture`. Default: "amd64". */
  architecture?: string;
  /** Config `os`. Default: "linux". */
  os?: string;
}

/** What a generator wrote for one image. */
export interface FixtureImageInfo {
  /** The image's "name:tag", as given. */
  name: string;
  /** "sha256:…" of the config JSON. */
  configDigest: string;
  /** sha256 of each uncompressed layer tar, which the config lists as `rootfs.diff_ids`. */
  layerDiffIds: string[];
  /** Digest of each layer blob as stored (equals `layerDiffIds` unless compressed). */
  layerDigests: string[];
  /** Digest of the image's OCI manifest, when the archive holds one. */
  manifestDigest?: string;
}

/** What a generator wrote. */
export interface FixtureArchive {
  /** The archive's path. */
  path: string;
  /** One entry per image, in the order given. */
  images: FixtureImageInfo[];
  /** Digest of the image index, for {@linkcode writeOciArchive} with `index`. */
  indexDigest?: string;
}

/** Options for {@linkcode writeDocker25Save}. */
export interface Docker25SaveOptions {
  /**
   * Also write the legacy `<id>/VERSION`, `<id>/json` and `<id>/layer.tar`
   * entries, `layer.tar` being a symlink to `../blobs/sha256/<hex>`, as some
   * Docker 25 releases do. Default: false.
   */
  layerSymlinks?: boolean;
}

/** Options for {@linkcode writeOciArchive}. */
export interface OciArchiveOptions {
  /**
   * The `org.opencontainers.image.ref.name` of each manifest in `index.json`:
   * the tag ("1", as skopeo writes it), the whole name ("app:1"), or none.
   * Default: "tag".
   */
  refName?: "tag" | "full" | "none";
  /**
   * Put all images in one image index (a multi-platform image; give each a
   * distinct `architecture`/`os`), referenced from `index.json` under
   * `refName`. Default: each image's manifest is listed in `index.json`.
   */
  index?: { refName: string };
  /** Layer compression. Default: "gzip". */
  compression?: "gzip" | "none";
}

/** Options for {@linkcode makeBigLayerArchive}. */
export interface BigLayerOptions {
  /** Image "name:tag". Default: "big:latest". */
  name?: string;
  /** Seed of the layer content. Default: "big". */
  seed?: string;
}

type Entry =
  | { path: string; kind: "file"; data: Uint8Array }
  | { path: string; kind: "dir" }
  | { path: string; kind: "symlink"; target: string };

interface BuiltLayer {
  tar: Uint8Array;
  diffId: string;
}

interface BuiltImage {
  image: FixtureImage;
  layers: BuiltLayer[];
  config: Uint8Array;
  configDigest: string;
}

const CREATED = "2024-01-01T00:00:00Z";
const encoder = new TextEncoder();
const DEFAULT_LAYER_SIZES = [1000, 3000];

/**
 * Writes a `docker save` archive as Docker before 25 does: `<id>/layer.tar`,
 * `<id>/VERSION`, `<id>/json`, `<config-hex>.json`, then `manifest.json` and
 * `repositories` last. The `<id>` is a v1-style id, not the layer digest. A
 * layer shared by several images is stored once; a copy under another `<id>`
 * is a symlink `../<first-id>/layer.tar`, as Docker writes it.
 */
export async function writeDockerSaveLegacy(
  path: string,
  images: FixtureImage[],
): Promise<FixtureArchive> {
  const built = await buildImages(images);
  const entries = new Map<string, Entry>();
  const firstIdOfLayer = new Map<string, string>();
  const manifest: unknown[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const { image, layers, config, configDigest } of built) {
    const configHex = configDigest.slice("sha256:".length);
    entries.set(`${configHex}.json`, { path: `${configHex}.json`, kind: "file", data: config });
    const layerPaths: string[] = [];
    let parent = "";
    for (const [index, layer] of layers.entries()) {
      const top = index === layers.length - 1;
      const id = sha256Hex(`v1:${parent}:${layer.diffId}:${top ? configDigest : ""}`);
      layerPaths.push(`${id}/layer.tar`);
      if (!entries.has(`${id}/`)) {
        entries.set(`${id}/`, { path: `${id}/`, kind: "dir" });
        entries.set(`${id}/VERSION`, {
          path: `${id}/VERSION`,
          kind: "file",
          data: encoder.encode("1.0"),
        });
        entries.set(`${id}/json`, {
          path: `${id}/json`,
          kind: "file",
          data: json(v1Json(id, parent, image, top)),
        });
        const firstId = firstIdOfLayer.get(layer.diffId);
        entries.set(
          `${id}/layer.tar`,
          firstId === undefined
            ? { path: `${id}/layer.tar`, kind: "file", data: layer.tar }
            : { path: `${id}/layer.tar`, kind: "symlink", target: `../${firstId}/layer.tar` },
        );
        if (firstId === undefined) firstIdOfLayer.set(layer.diffId, id);
      }
      parent = id;
    }
    manifest.push({ Config: `${configHex}.json`, RepoTags: [image.name], Layers: layerPaths });
    const { repository, tag } = splitName(image.name);
    (repositories[repository] ??= {})[tag] = parent;
  }
  await writeArchive(path, sorted(entries), [
    { path: "manifest.json", kind: "file", data: json(manifest) },
    { path: "repositories", kind: "file", data: json(repositories) },
  ]);
  return {
    path,
    images: built.map(({ image, layers, configDigest }) => ({
      name: image.name,
      configDigest,
      layerDiffIds: layers.map((l) => l.diffId),
      layerDigests: layers.map((l) => l.diffId),
    })),
  };
}

/**
 * Writes a save as Docker 25+ does: `blobs/sha256/…` (OCI manifests, configs,
 * uncompressed layers), `index.json` with `io.containerd.image.name` and
 * `org.opencontainers.image.ref.name` annotations, `manifest.json` whose paths
 * point into `blobs/`, `oci-layout` and `repositories`, in name order.
 */
export async function writeDocker25Save(
  path: string,
  images: FixtureImage[],
  options: Docker25SaveOptions = {},
): Promise<FixtureArchive> {
  const built = await buildImages(images);
  const entries = new Map<string, Entry>();
  addDir(entries, "blobs/");
  addDir(entries, "blobs/sha256/");
  const index: unknown[] = [];
  const legacyManifest: unknown[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const infos: FixtureImageInfo[] = [];
  for (const { image, layers, config, configDigest } of built) {
    addBlob(entries, configDigest, config);
    for (const layer of layers) addBlob(entries, layer.diffId, layer.tar);
    const manifest = json({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: configDigest, size: config.byteLength },
      layers: layers.map((l) => ({
        mediaType: MediaType.ociLayer,
        digest: l.diffId,
        size: l.tar.byteLength,
      })),
    });
    const manifestDigest = sha256Digest(manifest);
    addBlob(entries, manifestDigest, manifest);
    const { repository, tag } = splitName(image.name);
    index.push({
      mediaType: MediaType.ociManifest,
      digest: manifestDigest,
      size: manifest.byteLength,
      annotations: {
        "io.containerd.image.name": normalizeName(image.name),
        "org.opencontainers.image.ref.name": tag,
      },
    });
    legacyManifest.push({
      Config: blobPath(configDigest),
      RepoTags: [image.name],
      Layers: layers.map((l) => blobPath(l.diffId)),
    });
    let parent = "";
    for (const [i, layer] of layers.entries()) {
      const id = sha256Hex(
        `v1:${parent}:${layer.diffId}:${i === layers.length - 1 ? configDigest : ""}`,
      );
      if (options.layerSymlinks === true && !entries.has(`${id}/`)) {
        addDir(entries, `${id}/`);
        addFile(entries, `${id}/VERSION`, encoder.encode("1.0"));
        addFile(entries, `${id}/json`, json(v1Json(id, parent, image, i === layers.length - 1)));
        entries.set(`${id}/layer.tar`, {
          path: `${id}/layer.tar`,
          kind: "symlink",
          target: `../${blobPath(layer.diffId)}`,
        });
      }
      parent = id;
    }
    (repositories[repository] ??= {})[tag] = parent;
    infos.push({
      name: image.name,
      configDigest,
      layerDiffIds: layers.map((l) => l.diffId),
      layerDigests: layers.map((l) => l.diffId),
      manifestDigest,
    });
  }
  addFile(
    entries,
    "index.json",
    json({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: index }),
  );
  addFile(entries, "manifest.json", json(legacyManifest));
  addFile(entries, "oci-layout", json({ imageLayoutVersion: "1.0.0" }));
  addFile(entries, "repositories", json(repositories));
  await writeArchive(path, sorted(entries), []);
  return { path, images: infos };
}

/**
 * Writes an OCI image-layout tar as `skopeo copy … oci-archive:` does:
 * `blobs/sha256/…`, `index.json` and `oci-layout`, no `manifest.json`.
 * Layers are gzip-compressed (`…layer.v1.tar+gzip`) unless told otherwise.
 */
export async function writeOciArchive(
  path: string,
  images: FixtureImage[],
  options: OciArchiveOptions = {},
): Promise<FixtureArchive> {
  const built = await buildImages(images);
  const gzip = (options.compression ?? "gzip") === "gzip";
  const entries = new Map<string, Entry>();
  addDir(entries, "blobs/");
  addDir(entries, "blobs/sha256/");
  const descriptors: Record<string, unknown>[] = [];
  const infos: FixtureImageInfo[] = [];
  for (const { image, layers, config, configDigest } of built) {
    addBlob(entries, configDigest, config);
    const stored = layers.map((l) => {
      const blob = gzip ? gzipSync(l.tar) : l.tar;
      const digest = sha256Digest(blob);
      addBlob(entries, digest, blob);
      return { digest, size: blob.byteLength };
    });
    const manifest = json({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: configDigest, size: config.byteLength },
      layers: stored.map((s) => ({
        mediaType: gzip ? MediaType.ociLayerGzip : MediaType.ociLayer,
        ...s,
      })),
    });
    const manifestDigest = sha256Digest(manifest);
    addBlob(entries, manifestDigest, manifest);
    const descriptor: Record<string, unknown> = {
      mediaType: MediaType.ociManifest,
      digest: manifestDigest,
      size: manifest.byteLength,
    };
    if (options.index !== undefined) {
      descriptor.platform = {
        architecture: image.architecture ?? "amd64",
        os: image.os ?? "linux",
      };
    } else if ((options.refName ?? "tag") !== "none") {
      const refName = options.refName === "full" ? image.name : splitName(image.name).tag;
      descriptor.annotations = { "org.opencontainers.image.ref.name": refName };
    }
    descriptors.push(descriptor);
    infos.push({
      name: image.name,
      configDigest,
      layerDiffIds: layers.map((l) => l.diffId),
      layerDigests: stored.map((s) => s.digest),
      manifestDigest,
    });
  }
  let top = descriptors;
  let indexDigest: string | undefined;
  if (options.index !== undefined) {
    const imageIndex = json({
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: descriptors,
    });
    indexDigest = sha256Digest(imageIndex);
    addBlob(entries, indexDigest, imageIndex);
    top = [{
      mediaType: MediaType.ociIndex,
      digest: indexDigest,
      size: imageIndex.byteLength,
      annotations: { "org.opencontainers.image.ref.name": options.index.refName },
    }];
  }
  addFile(entries, "index.json", json({ schemaVersion: 2, manifests: top }));
  addFile(entries, "oci-layout", json({ imageLayoutVersion: "1.0.0" }));
  await writeArchive(path, sorted(entries), []);
  return { path, images: infos, ...(indexDigest === undefined ? {} : { indexDigest }) };
}

/**
 * Writes an archive with one image whose single layer holds one file of
 * `sizeBytes` incompressible bytes, streamed so memory stays flat (for 1 GiB
 * benchmarks). "docker-legacy" is a pre-25 `docker save` written in one pass;
 * "oci" is an OCI image-layout tar with an uncompressed
 * `application/vnd.oci.image.layer.v1.tar` layer, written in two passes
 * because the layer's file name is its digest (gzip would only make random
 * data bigger and slower).
 */
export async function makeBigLayerArchive(
  path: string,
  sizeBytes: number,
  kind: "docker-legacy" | "oci",
  options: BigLayerOptions = {},
): Promise<FixtureArchive> {
  const name = options.name ?? "big:latest";
  const seed = options.seed ?? "big";
  const layerTar = () =>
    tarStream(async (tar) => {
      await tar.addFile("big.bin", { size: sizeBytes, stream: seededStream(seed, sizeBytes) });
    });
  const layerSize = singleFileTarSize(sizeBytes);
  const image: FixtureImage = { name };
  await using tar = await TarWriter.create(path);

  if (kind === "docker-legacy") {
    const id = sha256Hex(`v1:big:${seed}`);
    await tar.addDirectory(`${id}/`);
    await tar.addFile(`${id}/VERSION`, encoder.encode("1.0"));
    await tar.addFile(`${id}/json`, json(v1Json(id, "", image, true)));
    const hash = createHash("sha256");
    await tar.addFile(`${id}/layer.tar`, { size: layerSize, stream: hashing(layerTar(), hash) });
    const diffId = `sha256:${hash.digest("hex")}`;
    const config = imageConfig(image, [diffId]);
    const configDigest = sha256Digest(config);
    const configHex = configDigest.slice("sha256:".length);
    await tar.addFile(`${configHex}.json`, config);
    await tar.addFile(
      "manifest.json",
      json([{ Config: `${configHex}.json`, RepoTags: [name], Layers: [`${id}/layer.tar`] }]),
    );
    const { repository, tag } = splitName(name);
    await tar.addFile("repositories", json({ [repository]: { [tag]: id } }));
    await tar.close();
    return {
      path,
      images: [{ name, configDigest, layerDiffIds: [diffId], layerDigests: [diffId] }],
    };
  }

  // First pass: the layer's digest names its blob, so it is needed before the header.
  const firstHash = createHash("sha256");
  for await (const chunk of layerTar()) firstHash.update(chunk);
  const diffId = `sha256:${firstHash.digest("hex")}`;
  const config = imageConfig(image, [diffId]);
  const configDigest = sha256Digest(config);
  const manifest = json({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: configDigest, size: config.byteLength },
    layers: [{ mediaType: MediaType.ociLayer, digest: diffId, size: layerSize }],
  });
  const manifestDigest = sha256Digest(manifest);
  await tar.addDirectory("blobs/");
  await tar.addDirectory("blobs/sha256/");
  const secondHash = createHash("sha256");
  await tar.addFile(blobPath(diffId), { size: layerSize, stream: hashing(layerTar(), secondHash) });
  if (`sha256:${secondHash.digest("hex")}` !== diffId) {
    throw new Error(`Failed to write ${path}: the layer stream is not deterministic`);
  }
  await tar.addFile(blobPath(configDigest), config);
  await tar.addFile(blobPath(manifestDigest), manifest);
  await tar.addFile(
    "index.json",
    json({
      schemaVersion: 2,
      manifests: [{
        mediaType: MediaType.ociManifest,
        digest: manifestDigest,
        size: manifest.byteLength,
        annotations: { "org.opencontainers.image.ref.name": splitName(name).tag },
      }],
    }),
  );
  await tar.addFile("oci-layout", json({ imageLayoutVersion: "1.0.0" }));
  await tar.close();
  return {
    path,
    images: [{
      name,
      configDigest,
      layerDiffIds: [diffId],
      layerDigests: [diffId],
      manifestDigest,
    }],
  };
}

/**
 * Splits "name:tag" into repository and tag ("latest" when there is none).
 * A colon before the last "/" belongs to a registry host's port.
 */
export function splitName(name: string): { repository: string; tag: string } {
  const colon = name.lastIndexOf(":");
  if (colon > name.lastIndexOf("/")) {
    return { repository: name.slice(0, colon), tag: name.slice(colon + 1) };
  }
  return { repository: name, tag: "latest" };
}

/** "app:1" → "docker.io/library/app:1", as Docker writes `io.containerd.image.name`. */
export function normalizeName(name: string): string {
  const { repository, tag } = splitName(name);
  const first = repository.split("/")[0] ?? "";
  const hasDomain = repository.includes("/") &&
    (first.includes(".") || first.includes(":") || first === "localhost");
  if (hasDomain) return `${repository}:${tag}`;
  return repository.includes("/")
    ? `docker.io/${repository}:${tag}`
    : `docker.io/library/${repository}:${tag}`;
}

/** A layer tar holding a directory, the seed as text and three files of seeded bytes. */
export async function buildLayerTar(seed: string, payloadBytes: number): Promise<Uint8Array> {
  const dir = `layer-${sha256Hex(seed).slice(0, 12)}`;
  const first = Math.floor(payloadBytes / 2);
  const second = Math.floor(payloadBytes / 3);
  const sizes = [first, second, payloadBytes - first - second];
  return await tarBytes(async (tar) => {
    await tar.addDirectory(`${dir}/`, { mtime: 1700000000 });
    await tar.addFile(`${dir}/seed.txt`, encoder.encode(`${seed}\n`), { mtime: 1700000000 });
    for (const [i, size] of sizes.entries()) {
      await tar.addFile(`${dir}/file-${i}.bin`, seededBytes(`${seed}/${i}`, size), {
        mtime: 1700000000,
      });
    }
  });
}

async function buildImages(images: FixtureImage[]): Promise<BuiltImage[]> {
  const names = new Set<string>();
  const cache = new Map<string, BuiltLayer>();
  const built: BuiltImage[] = [];
  for (const image of images) {
    if (names.has(image.name)) throw new TypeError(`Duplicate fixture image name: ${image.name}`);
    names.add(image.name);
    const sizes = image.layerSizes ?? DEFAULT_LAYER_SIZES;
    const layers: BuiltLayer[] = [];
    for (const [i, size] of sizes.entries()) {
      const seed = image.layerSeeds?.[i] ?? `${image.name}#${i}`;
      const key = `${size}:${seed}`;
      let layer = cache.get(key);
      if (layer === undefined) {
        const tar = await buildLayerTar(seed, size);
        layer = { tar, diffId: sha256Digest(tar) };
        cache.set(key, layer);
      }
      layers.push(layer);
    }
    const config = imageConfig(image, layers.map((l) => l.diffId));
    built.push({ image, layers, config, configDigest: sha256Digest(config) });
  }
  return built;
}

function imageConfig(image: FixtureImage, diffIds: string[]): Uint8Array {
  return json({
    architecture: image.architecture ?? "amd64",
    os: image.os ?? "linux",
    config: {
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      Cmd: ["/bin/sh"],
      Labels: { "org.example.fixture": image.name },
    },
    created: CREATED,
    history: diffIds.map((_, i) => ({ created: CREATED, created_by: `fixture layer ${i}` })),
    rootfs: { type: "layers", diff_ids: diffIds },
  });
}

function v1Json(id: string, parent: string, image: FixtureImage, top: boolean): unknown {
  return {
    id,
    ...(parent === "" ? {} : { parent }),
    created: CREATED,
    container_config: { Cmd: top ? ["/bin/sh"] : null },
    ...(top ? { architecture: image.architecture ?? "amd64" } : {}),
    os: image.os ?? "linux",
  };
}

/** Size of a tar with one regular file of `size` bytes and a short name. */
function singleFileTarSize(size: number): number {
  const pax = size > 0o77777777777 ? 1024 : 0;
  return pax + 512 + Math.ceil(size / 512) * 512 + 1024;
}

function json(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

function blobPath(digest: string): string {
  return `blobs/${digest.replace(":", "/")}`;
}

function addDir(entries: Map<string, Entry>, path: string): void {
  entries.set(path, { path, kind: "dir" });
}

function addFile(entries: Map<string, Entry>, path: string, data: Uint8Array): void {
  entries.set(path, { path, kind: "file", data });
}

function addBlob(entries: Map<string, Entry>, digest: string, data: Uint8Array): void {
  addFile(entries, blobPath(digest), data);
}

/** Entries in name order, as Docker's tar of its export directory has them. */
function sorted(entries: Map<string, Entry>): Entry[] {
  return [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function writeArchive(path: string, entries: Entry[], tail: Entry[]): Promise<void> {
  await using tar = await TarWriter.create(path);
  for (const entry of [...entries, ...tail]) {
    switch (entry.kind) {
      case "dir":
        await tar.addDirectory(entry.path);
        break;
      case "file":
        await tar.addFile(entry.path, entry.data);
        break;
      case "symlink":
        await tar.addSymlink(entry.path, entry.target);
        break;
    }
  }
  await tar.close();
}

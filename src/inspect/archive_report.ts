/**
 * What an image archive holds, as plain data: its kind, each image's names, manifests,
 * platforms, configs and layers (with their compression, from the bytes), and totals. This is
 * the document `inspect --output json` prints; the README's "inspect" section documents every
 * field, and `INSPECT_SCHEMA_VERSION` changes when one is removed or changes meaning.
 */
import type { ArchiveBlob, ImageArchive } from "../archive/image.ts";
import { type ManifestNode, type ReferrerNode, referrersOf } from "../image/graph.ts";
import { artifactTypeOf, type Manifest, parseManifest } from "../image/manifest.ts";
import {
  ATTESTATION_DIGEST_ANNOTATION,
  isAttestationEntry,
  type ReferrerKind,
} from "../image/referrer.ts";
import { declaredCompression, isIndexMediaType } from "../image/media_types.ts";
import { type JsonObject, JsonShapeError, parseJson } from "../image/json_guards.ts";
import { isSkippableFrameMagic } from "../archive/stream_format.ts";
import type { TarIndex } from "../archive/tar_index.ts";
import { ArchiveError } from "../errors.ts";
import { type ArchiveKind, archiveKind } from "./archive_kind.ts";

/** Version of the report's shape; bumped only for changes that break a reader. */
export const INSPECT_SCHEMA_VERSION = 1;

/** How a blob's bytes are compressed, told from its first bytes. */
export type BlobCompression = "none" | "gzip" | "zstd";

/** How the archive file (or stream) itself was compressed. */
export type ArchiveCompression = "none" | "gzip" | "zstd" | "xz";

/** A layer of an image, as the archive holds it. */
export interface LayerReport {
  /** The layer's digest. */
  digest: string;
  /** Its size in bytes, as stored. */
  size: number;
  /** Its media type, from the manifest. */
  mediaType: string;
  /** Its compression, told from its first bytes. */
  compression: BlobCompression;
}

/** One platform of an image: its manifest, config and layers. */
export interface PlatformReport {
  /** From the config; else from the index's descriptor; else "unknown". */
  os: string;
  /** From the config; else from the index's descriptor; else "unknown". */
  architecture: string;
  /** `v7`, `v8`, …; null when neither the config nor the index names one. */
  variant: string | null;
  /** The platform manifest's digest. */
  manifestDigest: string;
  /** The platform manifest's media type. */
  mediaType: string;
  /** The config's digest. */
  configDigest: string;
  /** The manifest's layers, in order. */
  layers: LayerReport[];
}

/**
 * A signature, SBOM or attestation stored with an image: never a platform, never an image of
 * its own. `push` sends it after the manifest it refers to.
 */
export interface ReferrerReport {
  /** What it is, from its artifact type (or cosign tag suffix); `artifact` when unknown. */
  kind: ReferrerKind;
  /**
   * Its `artifactType`, else its config's media type; for a buildx attestation manifest, its
   * statements' media type (`application/vnd.in-toto+json`).
   */
  artifactType: string;
  /** Its manifest's digest. */
  digest: string;
  /** Its manifest's media type. */
  mediaType: string;
  /** The digest of the manifest it refers to (the image, a platform, or another referrer). */
  subject: string;
  /**
   * How it is attached: `subject` (an OCI 1.1 referrer), `tag` (cosign's `sha256-<hex>.sig`,
   * `.att`, `.sbom`), or `index` (a buildx attestation manifest inside the image's index).
   */
  attachedBy: "subject" | "tag" | "index";
  /** The cosign tag it sits under; null unless `attachedBy` is `tag`. */
  tag: string | null;
  /** Its manifest's size in bytes. */
  size: number;
  /** Its manifest and blobs added up, as stored. */
  totalBytes: number;
  /** The in-toto predicate types of an attestation's statements, as their layers name them. */
  predicateTypes: string[];
}

/** One image of the archive. */
export interface ImageReport {
  /** Names the archive gives the image; may be empty. */
  names: string[];
  /**
   * Names a Docker 25+ save's `manifest.json` gives the image that `index.json` (whose `names`
   * a push uses) does not; a push's `images` matches them too. Empty when the files agree.
   */
  manifestJsonNames: string[];
  /** The image's top manifest: an index for a multi-platform image. */
  manifestDigest: string;
  /** The top manifest's media type. */
  mediaType: string;
  /**
   * One per image manifest: one for a single-platform image, every child of an index (buildx
   * attestation manifests excepted: they are in `referrers`).
   */
  platforms: PlatformReport[];
  /** The config of a single-platform image; null for an index (see `platforms`). */
  configDigest: string | null;
  /** Every layer of the image, each digest once (for an index: of all its platforms). */
  layers: LayerReport[];
  /** How the image was read, and anything odd about it. */
  notes: string[];
  /** Its signatures, SBOMs and attestations, each subject before what refers to it. */
  referrers: ReferrerReport[];
}

/** What an image archive holds: the document `inspect` returns. */
export interface ArchiveReport {
  /** The version of this shape (see `INSPECT_SCHEMA_VERSION`). */
  schemaVersion: typeof INSPECT_SCHEMA_VERSION;
  /** The archive itself: how it was given and read. */
  archive: {
    /** The path given, or "-" for standard input. */
    path: string;
    compression: ArchiveCompression;
    /** Whether it was read front to back once (stdin, compressed) rather than indexed in place. */
    streamed: boolean;
    /** Whether it is an image directory (read in place) rather than a tar. */
    directory: boolean;
    /** Bytes of the (uncompressed) tar; for a directory, of its files. */
    tarBytes: number;
  };
  /** The archive's layout (docker save, OCI layout, …). */
  format: ArchiveKind;
  /** Every image, in the order the archive lists them. */
  images: ImageReport[];
  /** What the archive holds that no image took (a referrer of a manifest it lacks). */
  notes: string[];
  /** Counts and bytes over every image. */
  totals: {
    images: number;
    platforms: number;
    /** Signatures, SBOMs and attestations over every image. */
    referrers: number;
    /** Configs and layers (referrers' too), each digest once across all images. */
    blobs: number;
    /** Their sizes added up, as stored. */
    bytes: number;
  };
}

/** How the archive was read, for {@linkcode reportArchive}. */
export interface ArchiveSourceInfo {
  path: string;
  compression: ArchiveCompression;
  streamed: boolean;
  directory: boolean;
}

/**
 * Describes the images `archive` holds. `index` is what they were read from; layer heads and
 * configs are read again from it (a stream kept both).
 */
export async function reportArchive(
  archive: ImageArchive,
  index: TarIndex,
  source: ArchiveSourceInfo,
): Promise<ArchiveReport> {
  const images: ImageReport[] = [];
  /** Sizes of configs and layers, by digest, across all images. */
  const blobs = new Map<string, number>();
  for (const image of archive.images) {
    const walk: Walk = { index, platforms: [], notes: [...image.notes], blobs, referrers: [] };
    await collectPlatforms(walk, image.root, undefined);
    for (const { subject, referrer } of referrersOf(image.root)) {
      walk.referrers.push(referrerReport(walk, subject, referrer));
    }
    const { platforms, notes, referrers } = walk;
    const isIndex = isIndexNode(image.root);
    images.push({
      names: [...image.names],
      manifestJsonNames: [...(image.legacyNames ?? [])],
      manifestDigest: image.root.digest,
      mediaType: image.root.mediaType,
      platforms,
      configDigest: isIndex ? null : platforms[0]!.configDigest,
      layers: uniqueLayers(platforms),
      notes,
      referrers,
    });
  }
  return {
    schemaVersion: INSPECT_SCHEMA_VERSION,
    archive: {
      path: source.path,
      compression: source.compression,
      streamed: source.streamed,
      directory: source.directory,
      tarBytes: index.size,
    },
    format: archiveKind(index, archive.format),
    images,
    notes: [...(archive.notes ?? [])],
    totals: {
      images: images.length,
      platforms: images.reduce((n, image) => n + image.platforms.length, 0),
      referrers: images.reduce((n, image) => n + image.referrers.length, 0),
      blobs: blobs.size,
      bytes: [...blobs.values()].reduce((a, b) => a + b, 0),
    },
  };
}

type PlatformHint = { os?: string; architecture?: string; variant?: string };

/** What walking one image's manifest tree gathers. */
interface Walk {
  index: TarIndex;
  platforms: PlatformReport[];
  notes: string[];
  /** Shared by every image: the totals count each digest once. */
  blobs: Map<string, number>;
  referrers: ReferrerReport[];
}

function isIndexNode(node: ManifestNode): boolean {
  return node.children.length > 0 || isIndexMediaType(node.mediaType);
}

/** Adds a report for each image manifest under `node`, depth first. */
async function collectPlatforms(
  walk: Walk,
  node: ManifestNode,
  hint: PlatformHint | undefined,
): Promise<void> {
  const { index, notes } = walk;
  if (isIndexNode(node)) {
    const { hints, attestations } = indexEntries(index, node);
    for (const child of node.children) {
      const subject = attestations.get(child.digest);
      if (subject !== undefined) {
        // buildx's attestation manifest: what it attests, never a platform.
        walk.referrers.push(attestationReport(walk, subject, child));
        continue;
      }
      await collectPlatforms(walk, child, hints.get(child.digest));
    }
    return;
  }
  const manifest = parseManifestBytes(index, node);
  const blob = (digest: string, what: string) => {
    const found = node.blobs.find((b) => b.digest === digest);
    if (found === undefined) {
      throw new ArchiveError(
        index.label,
        `${what} ${digest} of manifest ${node.digest} is missing`,
      );
    }
    return found;
  };
  const config = blob(manifest.configDigest, "config");
  const fromConfig = await configPlatform(config);
  walk.blobs.set(config.digest, config.size);
  const layers: LayerReport[] = [];
  for (const digest of manifest.layerDigests) {
    const layer = blob(digest, "layer");
    const compression = await sniffBlob(layer);
    const declared = declaredCompression(layer.mediaType);
    if (declared !== undefined && declared !== compression) {
      notes.push(
        `layer ${layer.digest} is ${describe(compression)} but its media type ` +
          `${layer.mediaType} says ${describe(declared)}`,
      );
    }
    layers.push({ digest, size: layer.size, mediaType: layer.mediaType, compression });
    walk.blobs.set(digest, layer.size);
  }
  walk.platforms.push({
    os: fromConfig.os ?? hint?.os ?? "unknown",
    architecture: fromConfig.architecture ?? hint?.architecture ?? "unknown",
    variant: fromConfig.variant ?? hint?.variant ?? null,
    manifestDigest: node.digest,
    mediaType: node.mediaType,
    configDigest: config.digest,
    layers,
  });
}

/** The config and layer digests a manifest names, in order. */
function parseManifestBytes(
  index: TarIndex,
  node: ManifestNode,
): { configDigest: string; layerDigests: string[] } {
  const manifest = parseNode(index, `manifest ${node.digest}`, node);
  if (manifest.kind !== "manifest") {
    throw new ArchiveError(index.label, `manifest ${node.digest}: config must be an object`);
  }
  return {
    configDigest: manifest.config.digest,
    layerDigests: manifest.layers.map((l) => l.digest),
  };
}

/**
 * What an index says of its children, by digest: the platform each is listed for (`hints`),
 * and for each buildx attestation manifest the digest of the platform manifest it attests
 * (`attestations`). A rebuilt index (some platforms missing from the archive) reads the same.
 */
function indexEntries(
  index: TarIndex,
  node: ManifestNode,
): { hints: Map<string, PlatformHint>; attestations: Map<string, string> } {
  const hints = new Map<string, PlatformHint>();
  const attestations = new Map<string, string>();
  const parsed = parseNode(index, `index ${node.digest}`, node);
  if (parsed.kind !== "index") return { hints, attestations };
  for (const entry of parsed.manifests) {
    if (entry.platform !== undefined) hints.set(entry.digest, entry.platform);
    if (isAttestationEntry(entry)) {
      attestations.set(entry.digest, entry.annotations?.[ATTESTATION_DIGEST_ANNOTATION] ?? "");
    }
  }
  return { hints, attestations };
}

/** A referrer hanging off `subject`, as the report lists it. */
function referrerReport(walk: Walk, subject: string, referrer: ReferrerNode): ReferrerReport {
  const { node, attached } = referrer;
  const manifest = parseNode(walk.index, `referrer ${node.digest}`, node);
  return {
    kind: referrer.kind,
    artifactType: referrer.artifactType,
    digest: node.digest,
    mediaType: node.mediaType,
    subject,
    attachedBy: attached.by,
    tag: attached.by === "tag" ? attached.tag : null,
    size: node.bytes.length,
    totalBytes: countBlobs(walk, node),
    predicateTypes: predicateTypes(manifest),
  };
}

/** A buildx attestation manifest of the platform manifest `subject`. */
function attestationReport(walk: Walk, subject: string, node: ManifestNode): ReferrerReport {
  const manifest = parseNode(walk.index, `attestation ${node.digest}`, node);
  const statements = manifest.kind === "manifest" ? manifest.layers[0]?.mediaType : undefined;
  return {
    kind: "attestation",
    artifactType: manifest.artifactType ?? statements ?? artifactTypeOf(manifest) ??
      node.mediaType,
    digest: node.digest,
    mediaType: node.mediaType,
    subject,
    attachedBy: "index",
    tag: null,
    size: node.bytes.length,
    totalBytes: countBlobs(walk, node),
    predicateTypes: predicateTypes(manifest),
  };
}

/** Adds a manifest tree's blobs to the totals; its bytes and theirs, added up. */
function countBlobs(walk: Walk, node: ManifestNode): number {
  let total = node.bytes.length;
  for (const blob of node.blobs) {
    walk.blobs.set(blob.digest, blob.size);
    total += blob.size;
  }
  for (const child of node.children) total += countBlobs(walk, child);
  return total;
}

function predicateTypes(manifest: Manifest): string[] {
  if (manifest.kind !== "manifest") return [];
  const types = manifest.layers.map((l) => l.annotations?.["in-toto.io/predicate-type"]);
  return [...new Set(types.filter((t): t is string => t !== undefined))];
}

/** `node`'s manifest through the shared parser; a malformed one is an `ArchiveError`. */
function parseNode(index: TarIndex, what: string, node: ManifestNode): Manifest {
  try {
    return parseManifest(node.bytes, node.mediaType, what);
  } catch (error) {
    if (error instanceof JsonShapeError) {
      throw new ArchiveError(index.label, error.message, { cause: error });
    }
    throw error;
  }
}

/** os, architecture and variant from an image config; fields it lacks are absent. */
async function configPlatform(config: ArchiveBlob): Promise<PlatformHint> {
  const bytes = await readWhole(config);
  let json: unknown;
  try {
    json = parseJson(bytes);
  } catch {
    // Not JSON (an artifact's config): the index's descriptor, if any, says the platform.
    return {};
  }
  return isObject(json) ? platformFields(json) : {};
}

function platformFields(json: JsonObject): PlatformHint {
  const hint: PlatformHint = {};
  for (const key of ["os", "architecture", "variant"] as const) {
    const value = json[key];
    if (typeof value === "string" && value !== "") hint[key] = value;
  }
  return hint;
}

/** Layers of every platform, each digest once, in the order they first appear. */
function uniqueLayers(platforms: PlatformReport[]): LayerReport[] {
  const seen = new Map<string, LayerReport>();
  for (const platform of platforms) {
    for (const layer of platform.layers) if (!seen.has(layer.digest)) seen.set(layer.digest, layer);
  }
  return [...seen.values()];
}

/** Compression told from the first bytes; anything not gzip or zstd counts as none. */
async function sniffBlob(blob: ArchiveBlob): Promise<BlobCompression> {
  const head = await readRange(blob, Math.min(4, blob.size));
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  if (isSkippableFrameMagic(head)) return "zstd";
  return "none";
}

function describe(compression: BlobCompression): string {
  return compression === "none" ? "uncompressed" : `${compression}-compressed`;
}

async function readWhole(blob: ArchiveBlob): Promise<Uint8Array> {
  return await readRange(blob, blob.size);
}

async function readRange(blob: ArchiveBlob, length: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  let at = 0;
  for await (const chunk of blob.read(0, length)) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

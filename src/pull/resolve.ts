/**
 * What a pull fetches before any layer: the manifest a reference names (an image manifest, or
 * an index whose platform is chosen here), and each image's config. Everything is checked
 * against its digest and validated into typed values once; layers are only described here
 * (digest, size, media type) and downloaded later.
 */
import { sha256Digest } from "../digest.ts";
import { isIndexMediaType, MEDIA_TYPES } from "../image/media_types.ts";
import { asDescriptor, type Descriptor } from "../image/descriptor.ts";
import {
  asArray,
  asObject,
  asOptionalString,
  JsonShapeError,
  parseJson,
} from "../image/json_guards.ts";
import type { RegistryClient } from "../registry/client.ts";
import { RegistryError } from "../registry/registry_error.ts";
import { type Platform, type PlatformChoice, platformMatches } from "../image/platform.ts";
import { BlobTally, downloadBlob } from "./blob_download.ts";
import { ImageNotFoundError, PlatformNotFoundError, PullError } from "./pull_errors.ts";

/** Every manifest type we can store, most wanted first (docker pull sends the same set). */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.dockerManifestList,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerManifest,
].join(", ");

const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;
const MAX_CONFIG_BYTES = 64 * 1024 * 1024;

/** A blob a manifest names: stored in the archive byte for byte. */
export interface BlobRef {
  mediaType: string;
  digest: string;
  size: number;
}

/** Raw manifest (or index) bytes as the registry served them, with their digest. */
export interface RawManifest {
  mediaType: string;
  digest: string;
  bytes: Uint8Array;
}

/** One platform's image: its manifest, its config (fetched), its layers (described). */
export interface ResolvedManifest extends RawManifest {
  config: BlobRef & { bytes: Uint8Array };
  layers: BlobRef[];
  /** From the index entry, else the config's `os`/`architecture`/`variant`. */
  platform: Platform | undefined;
}

/** What one source reference resolved to. */
export interface ResolvedImage {
  /** What `index.json` points at: the image manifest, or the whole index with `all`. */
  root: RawManifest & { platform?: Platform };
  /** The image manifests to store: one, or every one the index names. */
  manifests: ResolvedManifest[];
  /** The image `manifest.json` describes (docker load reads one image per name). */
  primary: ResolvedManifest;
}

/** What {@linkcode resolveImage} needs besides the client. */
export interface ResolveOptions {
  /** A tag or `sha256:…` digest. */
  reference: string;
  /** Name for messages: `127.0.0.1:5000/app:1`. */
  name: string;
  platform: PlatformChoice;
  /** With `all`: the platform whose image `manifest.json` describes. */
  defaultPlatform: Platform;
}

/**
 * Fetches the manifest `options.reference` names in the client's repository, picks the
 * platform, and fetches each chosen image's manifest and config.
 */
export async function resolveImage(
  client: RegistryClient,
  options: ResolveOptions,
): Promise<ResolvedImage> {
  const top = await fetchManifest(client, options.reference, options.name);
  const json = parseManifestJson(top, options.name);
  if (!isIndexMediaType(top.mediaType)) {
    const image = await resolveManifest(client, top, json, undefined, options.name);
    if (options.platform.kind === "one" && image.platform !== undefined) {
      const wanted = options.platform.platform;
      if (!platformMatches(wanted, image.platform)) {
        throw new PlatformNotFoundError(options.name, wanted, [image.platform]);
      }
    }
    return {
      root: rootOf(image),
      manifests: [image],
      primary: image,
    };
  }
  const children = indexEntries(json, options.name);
  const manifests = children.filter((c) => !isIndexMediaType(c.mediaType ?? ""));
  const platformOf = (d: Descriptor & { platform?: Platform }) => d.platform;
  if (options.platform.kind === "one") {
    const wanted = options.platform.platform;
    const match = manifests.find((c) => c.platform && platformMatches(wanted, c.platform));
    if (match === undefined) {
      throw new PlatformNotFoundError(
        options.name,
        wanted,
        manifests.map(platformOf).filter((p): p is Platform => p !== undefined && !isUnknown(p)),
      );
    }
    const image = await fetchChild(client, match, options.name);
    return {
      root: rootOf(image),
      manifests: [image],
      primary: image,
    };
  }
  if (manifests.length !== children.length) {
    throw new PullError(`${options.name}: an index inside an index is not supported`);
  }
  const images: ResolvedManifest[] = [];
  for (const child of manifests) images.push(await fetchChild(client, child, options.name));
  const primary =
    images.find((m) => m.platform && platformMatches(options.defaultPlatform, m.platform)) ??
      images.find((m) => m.platform && !isUnknown(m.platform)) ?? images[0];
  if (primary === undefined) throw new PullError(`${options.name}: the index lists no manifests`);
  return { root: top, manifests: images, primary };
}

/** An image manifest as what `index.json` points at. */
function rootOf(image: ResolvedManifest): ResolvedImage["root"] {
  const { mediaType, digest, bytes, platform } = image;
  return { mediaType, digest, bytes, ...(platform ? { platform } : {}) };
}

/** `unknown/unknown`: buildx's attestation manifests, never an image to run. */
function isUnknown(platform: Platform): boolean {
  return platform.os === "unknown" && platform.architecture === "unknown";
}

async function fetchChild(
  client: RegistryClient,
  child: Descriptor & { platform?: Platform },
  name: string,
): Promise<ResolvedManifest> {
  const raw = await fetchManifest(client, child.digest, name);
  if (raw.bytes.length !== child.size) {
    throw new PullError(
      `${name}: manifest ${child.digest} is ${raw.bytes.length} bytes, its index says ${child.size}`,
    );
  }
  return await resolveManifest(client, raw, parseManifestJson(raw, name), child.platform, name);
}

async function resolveManifest(
  client: RegistryClient,
  raw: RawManifest,
  json: Record<string, unknown>,
  platform: Platform | undefined,
  name: string,
): Promise<ResolvedManifest> {
  let config: BlobRef;
  let layers: BlobRef[];
  try {
    const c = asDescriptor(json["config"], "config");
    config = blobRef(
      c,
      raw.mediaType === MEDIA_TYPES.ociManifest ? MEDIA_TYPES.ociConfig : MEDIA_TYPES.dockerConfig,
    );
    layers = asArray(json["layers"], "layers").map((l, i) =>
      blobRef(asDescriptor(l, `layers[${i}]`), MEDIA_TYPES.ociLayerGzip)
    );
  } catch (error) {
    throw shapeError(name, raw.digest, error);
  }
  const bytes = await fetchSmallBlob(client, config, MAX_CONFIG_BYTES);
  let fromConfig: Platform | undefined;
  try {
    const obj = asObject(parseJson(bytes), "config");
    const os = asOptionalString(obj["os"], "os");
    const architecture = asOptionalString(obj["architecture"], "architecture");
    const variant = asOptionalString(obj["variant"], "variant");
    if (os !== undefined && architecture !== undefined) {
      fromConfig = { os, architecture, ...(variant ? { variant } : {}) };
    }
  } catch {
    // Not an image config (an artifact): stored as it is, with no platform.
  }
  return {
    ...raw,
    config: { ...config, bytes },
    layers,
    platform: platform ?? fromConfig,
  };
}

function blobRef(d: Descriptor, fallbackType: string): BlobRef {
  return { mediaType: d.mediaType ?? fallbackType, digest: d.digest, size: d.size };
}

function indexEntries(
  json: Record<string, unknown>,
  name: string,
): (Descriptor & { platform?: Platform })[] {
  try {
    return asArray(json["manifests"], "manifests").map((value, i) => {
      const descriptor = asDescriptor(value, `manifests[${i}]`);
      const p = (value as Record<string, unknown>)["platform"];
      if (p === undefined || p === null) return descriptor;
      const obj = asObject(p, `manifests[${i}].platform`);
      const os = asOptionalString(obj["os"], `manifests[${i}].platform.os`);
      const architecture = asOptionalString(
        obj["architecture"],
        `manifests[${i}].platform.architecture`,
      );
      const variant = asOptionalString(obj["variant"], `manifests[${i}].platform.variant`);
      if (os === undefined || architecture === undefined) return descriptor;
      return { ...descriptor, platform: { os, architecture, ...(variant ? { variant } : {}) } };
    });
  } catch (error) {
    throw shapeError(name, "index", error);
  }
}

function parseManifestJson(raw: RawManifest, name: string): Record<string, unknown> {
  try {
    return asObject(parseJson(raw.bytes), "manifest");
  } catch (error) {
    throw shapeError(name, raw.digest, error);
  }
}

function shapeError(name: string, what: string, error: unknown): Error {
  if (error instanceof JsonShapeError) {
    return new PullError(`${name}: manifest ${what} is malformed: ${error.message}`, {
      cause: error,
    });
  }
  return error as Error;
}

/**
 * `GET /v2/<name>/manifests/<reference>` accepting every manifest type; the bytes are checked
 * against the digest asked for, and against `Docker-Content-Digest` when the registry sends it.
 */
export async function fetchManifest(
  client: RegistryClient,
  reference: string,
  name: string,
): Promise<RawManifest> {
  let response;
  try {
    response = await client.request({
      method: "GET",
      url: client.url(`manifests/${reference}`),
      headers: { Accept: MANIFEST_ACCEPT },
      expect: [200],
      action: `fetch manifest ${client.repository}:${reference}`,
    });
  } catch (error) {
    if (
      error instanceof RegistryError &&
      (error.status === 404 || error.hasCode("MANIFEST_UNKNOWN") || error.hasCode("NAME_UNKNOWN"))
    ) {
      throw new ImageNotFoundError(name, reference, error);
    }
    throw error;
  }
  const bytes = await response.bytes(MAX_MANIFEST_BYTES);
  const digest = sha256Digest(bytes);
  const reported = response.headers.get("docker-content-digest");
  if (reference.startsWith("sha256:") && digest !== reference) {
    throw new PullError(`${name}: the registry served manifest ${reference} with digest ${digest}`);
  }
  if (reported && reported.startsWith("sha256:") && reported !== digest) {
    throw new PullError(
      `${name}: the registry says manifest ${reference} is ${reported}, its bytes are ${digest}`,
    );
  }
  const served = (response.headers.get("content-type") ?? "").split(";")[0]!.trim();
  let mediaType = served;
  try {
    const declared = (parseJson(bytes) as { mediaType?: unknown }).mediaType;
    if (typeof declared === "string" && declared !== "") mediaType = declared;
  } catch {
    // Reported as malformed by the caller.
  }
  if (mediaType.startsWith("application/vnd.docker.distribution.manifest.v1")) {
    throw new PullError(
      `${name}: the registry serves a Docker schema 1 manifest, which cannot be stored in an ` +
        "OCI archive",
    );
  }
  if (mediaType === "" || mediaType === "application/json") {
    mediaType = (parseJson(bytes) as { manifests?: unknown }).manifests !== undefined
      ? MEDIA_TYPES.ociIndex
      : MEDIA_TYPES.ociManifest;
  }
  return { mediaType, digest, bytes };
}

/**
 * A small blob (a config), whole, checked against its digest and size. It comes through the
 * same download as a layer, so an answer cut part-way goes on from the cut with a Range
 * request (a plain retry of the whole GET would fail the pull on `bytes()`'s truncated body).
 */
async function fetchSmallBlob(
  client: RegistryClient,
  blob: BlobRef,
  limit: number,
): Promise<Uint8Array> {
  if (blob.size > limit) {
    throw new PullError(`Config ${blob.digest} is ${blob.size} bytes, more than ${limit} allowed`);
  }
  const bytes = new Uint8Array(blob.size);
  // A mismatch throws BlobDigestError: the download checks the digest, and the size.
  await downloadBlob(client, new BlobTally(blob.digest, blob.size), {
    rewritable: true,
    write: (chunk, at) => Promise.resolve(bytes.set(chunk, at)),
  });
  return bytes;
}

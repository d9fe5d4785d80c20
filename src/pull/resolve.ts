/**
 * What a pull fetches before any layer: the manifest a reference names (an image manifest, or
 * an index whose platform is chosen here), and each image's config. Everything is checked
 * against its digest and parsed into the one image model (`src/image/manifest.ts`) once;
 * layers are only described here (their descriptors) and downloaded later.
 */
import { sha256Digest } from "../digest.ts";
import type { Descriptor } from "../image/descriptor.ts";
import { asObject, asOptionalString, JsonShapeError, parseJson } from "../image/json_guards.ts";
import { type ImageManifest, type Manifest, parseManifest } from "../image/manifest.ts";
import { isIndexMediaType, MANIFEST_ACCEPT } from "../image/media_types.ts";
import { type Platform, type PlatformChoice, platformMatches } from "../image/platform.ts";
import { ATTESTATION_DIGEST_ANNOTATION, isAttestationEntry } from "../image/referrer.ts";
import type { RegistryClient } from "../registry/client.ts";
import { answerOf } from "../registry/answer_class.ts";
import { RegistryError } from "../registry/registry_error.ts";
import { BlobTally, downloadBlob } from "./blob_download.ts";
import { ImageNotFoundError, PlatformNotFoundError, PullError } from "./pull_errors.ts";

const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;
const MAX_CONFIG_BYTES = 64 * 1024 * 1024;

/** A manifest (or index) as the registry served it: its bytes, their digest, what they say. */
export interface FetchedManifest {
  mediaType: string;
  digest: string;
  /** Stored in the archive byte for byte. */
  bytes: Uint8Array;
  manifest: Manifest;
}

/** One platform's image: its manifest (naming its layers), and its config, fetched. */
export interface ResolvedManifest extends FetchedManifest {
  manifest: ImageManifest;
  config: Descriptor & { bytes: Uint8Array };
  /** From the index entry, else the config's `os`/`architecture`/`variant`. */
  platform: Platform | undefined;
  /** A buildx attestation manifest kept as a child of its index: never a platform. */
  attestation?: true;
}

/** What one source reference resolved to. */
export interface ResolvedImage {
  /** What `index.json` points at: the image manifest, or the whole index with `all`. */
  root: FetchedManifest & { platform?: Platform };
  /** The image manifests to store: one, or every one the index names. */
  manifests: ResolvedManifest[];
  /** The image `manifest.json` describes (docker load reads one image per name). */
  primary: ResolvedManifest;
  /**
   * With one platform picked from an index: the index's buildx attestation entries for that
   * platform's manifest (`vnd.docker.reference.digest`), left out of `manifests`. A pull with
   * referrers stores them as referrers of the platform manifest.
   */
  attestations: Descriptor[];
  /** The digest of the index one platform was picked from (not stored); absent otherwise. */
  pickedFrom?: string;
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
  if (top.manifest.kind === "manifest") {
    const image = await resolveManifest(client, { ...top, manifest: top.manifest }, undefined);
    if (options.platform.kind === "one" && image.platform !== undefined) {
      const wanted = options.platform.platform;
      if (!platformMatches(wanted, image.platform)) {
        throw new PlatformNotFoundError(options.name, wanted, [image.platform]);
      }
    }
    return { root: rootOf(image), manifests: [image], primary: image, attestations: [] };
  }
  const children = top.manifest.manifests;
  const manifests = children.filter((c) => !isIndexMediaType(c.mediaType));
  // buildx's attestation manifests (platform unknown/unknown) are never a platform to pick.
  const platforms = manifests.filter((c) => !isAttestationEntry(c));
  if (options.platform.kind === "one") {
    const wanted = options.platform.platform;
    const match = platforms.find((c) => c.platform && platformMatches(wanted, c.platform));
    if (match === undefined) {
      throw new PlatformNotFoundError(
        options.name,
        wanted,
        platforms.map((c) => c.platform).filter((p): p is Platform =>
          p !== undefined && !isUnknown(p)
        ),
      );
    }
    const image = await fetchChild(client, match, options.name);
    return {
      root: rootOf(image),
      manifests: [image],
      primary: image,
      pickedFrom: top.digest,
      attestations: manifests.filter((c) =>
        isAttestationEntry(c) && c.annotations?.[ATTESTATION_DIGEST_ANNOTATION] === match.digest
      ),
    };
  }
  if (manifests.length !== children.length) {
    throw new PullError(`${options.name}: an index inside an index is not supported`);
  }
  const images: ResolvedManifest[] = [];
  for (const child of manifests) {
    const image = await fetchChild(client, child, options.name);
    images.push(isAttestationEntry(child) ? { ...image, attestation: true } : image);
  }
  const runnable = images.filter((m) => !m.attestation);
  const primary =
    runnable.find((m) => m.platform && platformMatches(options.defaultPlatform, m.platform)) ??
      runnable.find((m) => m.platform && !isUnknown(m.platform)) ?? runnable[0] ?? images[0];
  if (primary === undefined) throw new PullError(`${options.name}: the index lists no manifests`);
  return { root: top, manifests: images, primary, attestations: [] };
}

/** An image manifest as what `index.json` points at. */
function rootOf(image: ResolvedManifest): ResolvedImage["root"] {
  const { mediaType, digest, bytes, manifest, platform } = image;
  return { mediaType, digest, bytes, manifest, ...(platform ? { platform } : {}) };
}

/** `unknown/unknown`: buildx's attestation manifests, never an image to run. */
function isUnknown(platform: Platform): boolean {
  return platform.os === "unknown" && platform.architecture === "unknown";
}

async function fetchChild(
  client: RegistryClient,
  child: Descriptor,
  name: string,
): Promise<ResolvedManifest> {
  const fetched = await fetchManifest(client, child.digest, name, child.mediaType);
  if (fetched.bytes.length !== child.size) {
    throw new PullError(
      `${name}: manifest ${child.digest} is ${fetched.bytes.length} bytes, its index says ${child.size}`,
    );
  }
  if (fetched.manifest.kind !== "manifest") {
    throw new PullError(`${name}: an index inside an index is not supported`);
  }
  return await resolveManifest(client, { ...fetched, manifest: fetched.manifest }, child.platform);
}

async function resolveManifest(
  client: RegistryClient,
  fetched: FetchedManifest & { manifest: ImageManifest },
  platform: Platform | undefined,
): Promise<ResolvedManifest> {
  const { config } = fetched.manifest;
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
    ...fetched,
    config: { ...config, bytes },
    platform: platform ?? fromConfig,
  };
}

/**
 * `GET /v2/<name>/manifests/<reference>` accepting every manifest type; the bytes are checked
 * against the digest asked for, and against `Docker-Content-Digest` when the registry sends it,
 * then parsed. `mediaTypeHint` is what the descriptor naming it says.
 */
export async function fetchManifest(
  client: RegistryClient,
  reference: string,
  name: string,
  mediaTypeHint?: string,
): Promise<FetchedManifest> {
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
    // 404, MANIFEST_UNKNOWN or NAME_UNKNOWN (answer_class.ts's table decides).
    if (error instanceof RegistryError && answerOf(error).kind === "not-found") {
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
  let manifest: Manifest;
  try {
    manifest = parseManifest(bytes, served || mediaTypeHint, `manifest ${digest}`);
  } catch (error) {
    if (error instanceof JsonShapeError) {
      throw new PullError(`${name}: ${error.message}`, { cause: error });
    }
    throw error;
  }
  return { mediaType: manifest.mediaType, digest, bytes, manifest };
}

/**
 * A small blob (a config), whole, checked against its digest and size. It comes through the
 * same download as a layer, so an answer cut part-way goes on from the cut with a Range
 * request (a plain retry of the whole GET would fail the pull on `bytes()`'s truncated body).
 */
async function fetchSmallBlob(
  client: RegistryClient,
  blob: Descriptor,
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

/**
 * Joining per-platform images into one multi-platform index: each input contributes entries
 * (an image manifest, or every manifest of an index it already holds), each with the platform
 * it serves; two entries for one platform are refused before anything is pushed; the index is
 * then written from the descriptors of the manifests as they were pushed.
 *
 * Platforms are read from the archive, by the manifests' original digests. The index is built
 * from the final descriptors, since layers compressed on the way up change a manifest's digest.
 *
 * @example
 * ```ts ignore
 * const entries = [
 *   ...(await platformEntries(amd64.root, "app-amd64.tar (app:1)")),
 *   ...(await platformEntries(arm64.root, "app-arm64.tar (app:1)")),
 * ];
 * checkDistinctPlatforms(entries); // before any push
 * const pushed = new Map<string, PushedManifest>(); // original digest → what was pushed
 * // … push each entry.node by digest, recording its final descriptor in `pushed` …
 * const index = buildIndex(indexChildren(entries, pushed));
 * // … push index.bytes (index.mediaType) under the tag.
 * ```
 */
import { MAX_CONFIG_BYTES } from "../archive/archive_reader.ts";
import type { ArchiveBlob } from "../archive/image.ts";
import type { ManifestNode } from "../image/graph.ts";
import { isIndexMediaType, MEDIA_TYPES } from "../image/media_types.ts";
import { asDescriptor, type Descriptor } from "../image/descriptor.ts";
import { asObject, type JsonObject, JsonShapeError, parseJson } from "../image/json_guards.ts";
import { sha256Digest } from "../digest.ts";
import { ArchiveError, InvalidOptionError } from "../errors.ts";
import { asPlatform, formatPlatform, type Platform } from "../image/platform.ts";
import { parseManifest } from "../image/manifest.ts";
import { isAttestationEntry } from "../image/referrer.ts";
import { followAttestation } from "./manifest_rewrite.ts";

/** One manifest an input contributes to the index. */
export interface PlatformEntry {
  /** The image manifest as the archive holds it, to push; its digest is the original one. */
  node: ManifestNode;
  platform: Platform;
  /** Where it came from, for messages: `app-amd64.tar (app:1)`. */
  label: string;
  /** The annotations the input's index gave it, kept as they were. */
  annotations?: Record<string, string>;
  /** A buildx attestation manifest: never counted as an image for its platform. */
  attestation: boolean;
}

/** What a manifest became once pushed (a different digest when its layers were compressed). */
export interface PushedManifest {
  mediaType: string;
  digest: string;
  size: number;
}

/** An entry of the index to write. */
export interface IndexChild extends PushedManifest {
  platform: Platform;
  annotations?: Record<string, string>;
}

/** An index ready to push. */
export interface BuiltIndex {
  mediaType: string;
  bytes: Uint8Array;
  digest: string;
}

/** Options for reading platforms from an archive. */
export interface ReadPlatformOptions {
  /** Cancels reading config blobs. */
  signal?: AbortSignal;
}

/**
 * The platform of an image manifest, read from its config blob (OCI's image config requires
 * `os` and `architecture`; `variant`, `os.version` and `os.features` are kept when present).
 * Throws an {@linkcode ArchiveError} naming `label` when the config is missing or unreadable,
 * and an {@linkcode InvalidOptionError} naming it, with a hint, when the config names no os or
 * architecture.
 *
 * @example
 * ```ts ignore
 * await readPlatform(image.root, "app-arm64.tar (app:1)");
 * // { os: "linux", architecture: "arm64", variant: "v8" }
 * ```
 */
export async function readPlatform(
  node: ManifestNode,
  label: string,
  options: ReadPlatformOptions = {},
): Promise<Platform> {
  if (isIndex(node)) {
    throw new TypeError(`readPlatform reads an image manifest; ${node.digest} is an index`);
  }
  const blob = configBlob(node, label);
  const bytes = await readConfig(blob, label, options.signal);
  try {
    const config = asObject(parseJson(bytes), "the image config");
    const missing = (["os", "architecture"] as const)
      .filter((key) => optionalText(config, key, "the image config") === undefined);
    const platform = asPlatform(config, "the image config");
    if (missing.length > 0 || platform === undefined) throw noPlatform(label, blob.digest, missing);
    return platform;
  } catch (error) {
    throw archiveError(label, `config ${blob.digest}`, error);
  }
}

/**
 * An image with no platform cannot join an index: a usage error (like two images for one
 * platform), since the same archive pushes fine on its own. Nothing here can give it one: the
 * platform is in the config, and changing the config changes the image.
 */
function noPlatform(
  label: string,
  config: string,
  missing: readonly string[],
): InvalidOptionError {
  return new InvalidOptionError(
    `Cannot join ${label} into a multi-platform index: its config ${config} names no ` +
      `${missing.join(" and no ")}, and an index needs both os and architecture`,
    {
      option: "multiArch",
      reason: "no-platform",
      value: label,
      hint: "Rebuild the image for a platform, or push it on its own, not joined into an index",
    },
  );
}

/**
 * The entries an input contributes. An image manifest gives one, its platform read from its
 * config. An index gives one per manifest it lists, in its order, with the platform and
 * annotations the index gives (the platform read from the manifest's config when the index
 * gives none); an index nested in it contributes its own entries the same way. Entries always
 * hold image manifests, as the archive has them: the caller pushes each by digest.
 */
export async function platformEntries(
  root: ManifestNode,
  label: string,
  options: ReadPlatformOptions = {},
): Promise<PlatformEntry[]> {
  if (!isIndex(root)) {
    return [{
      node: root,
      platform: await readPlatform(root, label, options),
      label,
      attestation: false,
    }];
  }
  let listed: { descriptor: Descriptor; platform: Platform | undefined }[];
  try {
    listed = parseIndex(root.bytes);
  } catch (error) {
    throw archiveError(label, `index ${root.digest}`, error);
  }
  const entries: PlatformEntry[] = [];
  for (const { descriptor, platform } of listed) {
    const child = root.children.find((c) => c.digest === descriptor.digest);
    if (child === undefined) {
      throw new ArchiveError(
        label,
        `index ${root.digest} lists manifest ${descriptor.digest}, which the archive does not hold`,
      );
    }
    if (isIndex(child)) {
      entries.push(...await platformEntries(child, label, options));
      continue;
    }
    const annotations = descriptor.annotations;
    entries.push({
      node: child,
      platform: platform ?? await readPlatform(child, label, options),
      label,
      ...(annotations ? { annotations } : {}),
      attestation: isAttestationEntry({ annotations }),
    });
  }
  return entries;
}

/**
 * Throws an {@linkcode InvalidOptionError} naming both inputs when two entries that are not attestations
 * serve one platform: os, architecture, variant and `os.version` all equal. Architectures and
 * variants are compared as containerd normalizes them, since that is how a client picks an
 * entry: `arm64` is `arm64/v8`, `arm` is `arm/v7`, `amd64/v1` is `amd64`, `aarch64` is `arm64`,
 * `x86_64` is `amd64`. A missing `os.version` differs from any given one. Call it before
 * pushing anything, so a refused index leaves nothing half-pushed.
 */
export function checkDistinctPlatforms(entries: readonly PlatformEntry[]): void {
  const seen = new Map<string, PlatformEntry>();
  for (const entry of entries) {
    if (entry.attestation) continue;
    const key = platformKey(entry.platform);
    const first = seen.get(key);
    if (first === undefined) {
      seen.set(key, entry);
      continue;
    }
    const [a, b] = [describePlatform(first.platform), describePlatform(entry.platform)];
    const platforms = a === b ? a : `${a} and ${b}, the same platform`;
    const who = first.label === entry.label
      ? `${entry.label} holds two images for ${platforms} (${first.node.digest} and ` +
        `${entry.node.digest})`
      : `${first.label} and ${entry.label} are both for ${platforms}`;
    throw new InvalidOptionError(`Cannot join the images into one index: ${who}`, {
      option: "multiArch",
      reason: "same-platform",
      hint: "A multi-platform index holds one image per platform; leave one of them out.",
    });
  }
}

/**
 * The index entries for `entries`, each with the descriptor its manifest was pushed as
 * (`pushed`, keyed by original digest). An attestation's `vnd.docker.reference.digest` is
 * moved to its subject's pushed digest (see `followAttestation`), so it still names the image
 * it attests.
 */
export function indexChildren(
  entries: readonly PlatformEntry[],
  pushed: ReadonlyMap<string, PushedManifest>,
): IndexChild[] {
  return entries.map((entry) => {
    const final = pushed.get(entry.node.digest);
    if (final === undefined) {
      throw new RangeError(
        `No pushed descriptor for manifest ${entry.node.digest} of ${entry.label}`,
      );
    }
    const annotations = followAttestation(entry.annotations, (d) => pushed.get(d)?.digest);
    const { mediaType, digest, size } = final;
    return {
      mediaType,
      digest,
      size,
      platform: entry.platform,
      ...(annotations ? { annotations } : {}),
    };
  });
}

/**
 * The index listing `children` in their order: a Docker manifest list when every child is a
 * Docker schema 2 manifest (as `docker manifest push` would make), an OCI image index
 * otherwise. The bytes depend only on `children`: keys in a fixed order (`schemaVersion`,
 * `mediaType`, `manifests`; platform fields in the OCI spec's order; annotations sorted, as Go
 * writes maps). A manifest list is indented with three spaces, as Docker's distribution library
 * writes it; an OCI index is compact, as buildx writes it.
 */
export function buildIndex(children: readonly IndexChild[]): BuiltIndex {
  if (children.length === 0) throw new RangeError("Cannot build an index of no manifests");
  const docker = children.every((c) => c.mediaType === MEDIA_TYPES.dockerManifest);
  const mediaType = docker ? MEDIA_TYPES.dockerManifestList : MEDIA_TYPES.ociIndex;
  const index = {
    schemaVersion: 2,
    mediaType,
    manifests: children.map((child) => ({
      mediaType: child.mediaType,
      digest: child.digest,
      size: child.size,
      platform: platformJson(child.platform),
      ...(child.annotations && Object.keys(child.annotations).length > 0
        ? { annotations: sortedKeys(child.annotations) }
        : {}),
    })),
  };
  const bytes = new TextEncoder().encode(
    docker ? JSON.stringify(index, null, 3) : JSON.stringify(index),
  );
  return { mediaType, bytes, digest: sha256Digest(bytes) };
}

/**
 * Where `digest` sits below `root`: the index that lists it and the platform that index gives
 * it (undefined when it gives none, or cannot be read). Undefined when `digest` is `root`'s own
 * or no index below it lists it. Reads no blob, so a check before a push can use it.
 */
export function findListed(
  root: ManifestNode,
  digest: string,
): { index: ManifestNode; platform: Platform | undefined } | undefined {
  for (const child of root.children) {
    if (child.digest === digest) {
      let platform: Platform | undefined;
      try {
        platform = parseIndex(root.bytes).find((e) => e.descriptor.digest === digest)?.platform;
      } catch {
        // An unreadable index is reported where it is pushed; here it only names no platform.
      }
      return { index: root, platform };
    }
    const deeper = findListed(child, digest);
    if (deeper !== undefined) return deeper;
  }
  return undefined;
}

/** `linux/arm64/v8`, with the OS version when there is one: `windows/amd64 10.0.20348.2113`. */
export function describePlatform(platform: Platform): string {
  const version = platform["os.version"];
  return version === undefined
    ? formatPlatform(platform)
    : `${formatPlatform(platform)} ${version}`;
}

// An index always lists at least one manifest the archive holds (the loaders make sure), and a
// manifest has none; the children also catch an index whose media type says otherwise.
function isIndex(node: ManifestNode): boolean {
  return isIndexMediaType(node.mediaType) || node.children.length > 0;
}

function configBlob(node: ManifestNode, label: string): ArchiveBlob {
  let digest: string;
  try {
    const manifest = asObject(parseJson(node.bytes), "the manifest");
    digest = asDescriptor(manifest["config"], "config").digest;
  } catch (error) {
    throw archiveError(label, `manifest ${node.digest}`, error);
  }
  const blob = node.blobs.find((b) => b.digest === digest);
  if (blob === undefined) {
    throw new ArchiveError(
      label,
      `manifest ${node.digest} names config ${digest}, which the archive does not hold`,
    );
  }
  return blob;
}

async function readConfig(
  blob: ArchiveBlob,
  label: string,
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  signal?.throwIfAborted();
  // The loaders accept configs up to this size; refusing a smaller one here would stop an image
  // that pushes alone from joining an index.
  if (blob.size > MAX_CONFIG_BYTES) {
    throw new ArchiveError(
      label,
      `config ${blob.digest} is ${blob.size} bytes, more than the ${MAX_CONFIG_BYTES} allowed`,
    );
  }
  const bytes = new Uint8Array(blob.size);
  let at = 0;
  for await (const chunk of blob.read(0, blob.size, signal)) {
    if (at + chunk.length > blob.size) {
      throw new ArchiveError(
        label,
        `config ${blob.describe} is longer than its ${blob.size} bytes`,
      );
    }
    bytes.set(chunk, at);
    at += chunk.length;
  }
  if (at !== blob.size) {
    throw new ArchiveError(
      label,
      `config ${blob.describe} ended after ${at} of its ${blob.size} bytes`,
    );
  }
  // The platform must be the one of the config the manifest names, not of some other bytes.
  if (sha256Digest(bytes) !== blob.digest) {
    throw new ArchiveError(
      label,
      `config ${blob.describe} does not match its digest ${blob.digest}`,
    );
  }
  return bytes;
}

function parseIndex(
  bytes: Uint8Array,
): { descriptor: Descriptor; platform: Platform | undefined }[] {
  const index = parseManifest(bytes, undefined, "the index");
  if (index.kind !== "index") throw new JsonShapeError("the index lists no manifests");
  const raw = asObject(parseJson(bytes), "the index")["manifests"] as unknown[];
  return index.manifests.map((descriptor, i) => {
    // An entry's platform may not be partial here: each names the platform it serves.
    const given = (raw[i] as JsonObject)["platform"];
    if (descriptor.platform === undefined && given !== undefined && given !== null) {
      const where = `manifests[${i}].platform`;
      const missing = (["os", "architecture"] as const)
        .filter((key) => optionalText(asObject(given, where), key, where) === undefined);
      throw new JsonShapeError(
        `${where} names no ${missing.join(" or ")}, which an image in a multi-platform index needs`,
      );
    }
    return { descriptor, platform: descriptor.platform };
  });
}

/** A string field; absent, null and "" are all "not given" (Go writes them with omitempty). */
function optionalText(obj: JsonObject, key: string, where: string): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw new JsonShapeError(`${where}.${key} must be a string`);
  return value;
}

/** Platform fields in the OCI image spec's order. */
function platformJson(platform: Platform): Platform {
  const { os, architecture, variant } = platform;
  const osVersion = platform["os.version"];
  const osFeatures = platform["os.features"];
  return {
    architecture,
    os,
    ...(osVersion !== undefined ? { "os.version": osVersion } : {}),
    ...(osFeatures !== undefined && osFeatures.length > 0 ? { "os.features": osFeatures } : {}),
    ...(variant !== undefined ? { variant } : {}),
  };
}

function sortedKeys(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}

/** containerd's architecture aliases, with the variant an alias implies. */
const ARCH_ALIASES: Record<string, { architecture: string; variant?: string }> = {
  aarch64: { architecture: "arm64" },
  x86_64: { architecture: "amd64" },
  "x86-64": { architecture: "amd64" },
  i386: { architecture: "386" },
  armhf: { architecture: "arm", variant: "v7" },
  armel: { architecture: "arm", variant: "v6" },
};

/** Equal for platforms a client cannot tell apart (containerd's `platforms.Normalize`). */
function platformKey(platform: Platform): string {
  const os = platform.os.toLowerCase();
  const alias = ARCH_ALIASES[platform.architecture.toLowerCase()];
  const architecture = alias?.architecture ?? platform.architecture.toLowerCase();
  let variant = (platform.variant ?? alias?.variant ?? "").toLowerCase();
  if (/^[0-9]/.test(variant)) variant = `v${variant}`;
  if (architecture === "arm64" && (variant === "v8" || variant === "v8.0")) variant = "";
  if (architecture === "arm" && variant === "") variant = "v7";
  if (architecture === "amd64" && variant === "v1") variant = "";
  return JSON.stringify([os, architecture, variant, platform["os.version"] ?? null]);
}

function archiveError(label: string, what: string, error: unknown): unknown {
  if (!(error instanceof JsonShapeError)) return error;
  return new ArchiveError(label, `${what}: ${error.message}`, { cause: error });
}

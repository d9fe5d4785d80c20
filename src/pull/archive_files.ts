/**
 * The files of the archive a pull writes, as `docker save` writes them since Docker 25: an OCI
 * image layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) plus the legacy
 * `manifest.json` and `repositories`, so old and new `docker load`, `podman load`, skopeo
 * (`docker-archive:` and `oci-archive:`) and our own push all read it.
 *
 * Referrers (signatures, SBOMs, attestations) are stored byte for byte in `blobs/sha256/`, and
 * `index.json` names them as a registry without the referrers API does: for each subject with
 * OCI 1.1 referrers, the index listing them under the fallback tag's name (`sha256-<hex>`),
 * and each cosign-style tag's manifest under that tag (`sha256-<hex>.sig`). `manifest.json`
 * never lists them.
 *
 * Order: directories, then layers, then configs and manifests, then the small JSON files last,
 * so a reader of a pipe (`push -f -`) sees every blob before the files that name them.
 */
import { familiarName } from "../image/reference.ts";
import { formatPlatform, type Platform } from "../image/platform.ts";
import { fallbackTag } from "../image/referrer.ts";
import { MEDIA_TYPES } from "../image/media_types.ts";
import { REF_NAME_ANNOTATION } from "../image/descriptor.ts";
import type { FoundReferrers } from "./find_referrers.ts";
import type { ResolvedImage } from "./resolve.ts";
import type { LayoutInput } from "./tar_layout.ts";

/** One image of the bundle, with the names it is stored under. */
export interface BundleImage {
  /** Normalized as docker does: `127.0.0.1:5000/src/app:1`, `docker.io/library/alpine:latest`. */
  name: string;
  /** The tag, when the source named one (an image pulled by digest alone has none). */
  tag: string | undefined;
  resolved: ResolvedImage;
  /** What refers to its manifests, stored with it; absent when referrers are left out. */
  referrers?: FoundReferrers;
}

const encoder = new TextEncoder();
const json = (value: unknown) => encoder.encode(JSON.stringify(value));

/** The path of a blob inside the layout. */
export function blobPath(digest: string): string {
  const [algorithm, hex] = digest.split(":");
  return `blobs/${algorithm}/${hex}`;
}

/** Every entry of the archive, in archive order, each blob once. */
export function bundleEntries(images: readonly BundleImage[]): LayoutInput[] {
  const seen = new Set<string>();
  const layers: LayoutInput[] = [];
  const small: LayoutInput[] = [];
  const addBlob = ({ digest, size }: { digest: string; size: number }) => {
    if (seen.has(digest)) return;
    seen.add(digest);
    layers.push({ kind: "blob", name: blobPath(digest), digest, size });
  };
  for (const { resolved } of images) {
    for (const manifest of resolved.manifests) manifest.manifest.layers.forEach(addBlob);
  }
  // A referrer's blobs (a signature's payload, an SBOM) download as layers do.
  for (const { referrers } of images) {
    for (const referrer of referrers?.referrers ?? []) referrer.blobs.forEach(addBlob);
  }
  const addBytes = (digest: string, data: Uint8Array) => {
    if (seen.has(digest)) return;
    seen.add(digest);
    small.push({ kind: "bytes", name: blobPath(digest), data });
  };
  for (const { resolved } of images) {
    for (const manifest of resolved.manifests) {
      addBytes(manifest.config.digest, manifest.config.bytes);
      addBytes(manifest.digest, manifest.bytes);
    }
    addBytes(resolved.root.digest, resolved.root.bytes);
  }
  for (const { referrers } of images) {
    for (const referrer of referrers?.referrers ?? []) addBytes(referrer.digest, referrer.bytes);
    for (const list of referrers?.lists ?? []) addBytes(list.digest, list.bytes);
  }
  return [
    { kind: "dir", name: "blobs/" },
    { kind: "dir", name: "blobs/sha256/" },
    ...layers,
    ...small,
    { kind: "bytes", name: "index.json", data: indexJson(images) },
    { kind: "bytes", name: "manifest.json", data: manifestJson(images) },
    { kind: "bytes", name: "oci-layout", data: json({ imageLayoutVersion: "1.0.0" }) },
    { kind: "bytes", name: "repositories", data: repositoriesJson(images) },
  ];
}

/**
 * `index.json`: one descriptor per name, annotated as Docker 25 does (containerd's full name,
 * and the tag as the OCI ref name), so a reader picks an image of a bundle by name.
 */
export function indexJson(images: readonly BundleImage[]): Uint8Array {
  return json({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociIndex,
    manifests: [
      ...images.map(({ name, tag, resolved: { root } }) => ({
        mediaType: root.mediaType,
        digest: root.digest,
        size: root.bytes.length,
        annotations: {
          "io.containerd.image.name": name,
          ...(tag !== undefined ? { [REF_NAME_ANNOTATION]: tag } : {}),
        },
        ...(root.platform ? { platform: ociPlatform(root.platform) } : {}),
      })),
      ...referrerEntries(images),
    ],
  });
}

/**
 * `index.json`'s entries for referrers, named by their tags: each subject's referrer list at
 * its fallback tag, each cosign-style manifest at its own tag. A tag two images share (the same
 * image pulled under two names) is one entry.
 */
function referrerEntries(images: readonly BundleImage[]): Record<string, unknown>[] {
  const entries = new Map<string, Record<string, unknown>>();
  for (const { referrers } of images) {
    for (const list of referrers?.lists ?? []) {
      const tag = fallbackTag(list.subject);
      if (entries.has(tag)) continue;
      entries.set(tag, {
        mediaType: MEDIA_TYPES.ociIndex,
        digest: list.digest,
        size: list.bytes.length,
        annotations: { [REF_NAME_ANNOTATION]: tag },
      });
    }
    for (const referrer of referrers?.referrers ?? []) {
      if (referrer.attached.by !== "tag" || entries.has(referrer.attached.tag)) continue;
      entries.set(referrer.attached.tag, {
        mediaType: referrer.mediaType,
        digest: referrer.digest,
        size: referrer.bytes.length,
        annotations: { [REF_NAME_ANNOTATION]: referrer.attached.tag },
      });
    }
  }
  return [...entries.values()];
}

function ociPlatform(platform: Platform): Record<string, string> {
  return {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
  };
}

/**
 * `manifest.json`: one entry per image (images named twice share one), each the image's config
 * and layers by path. It can describe single-platform images only: for a whole index it lists
 * the primary platform's image (see `ResolvedImage.primary`).
 */
export function manifestJson(images: readonly BundleImage[]): Uint8Array {
  const entries = new Map<string, { Config: string; RepoTags: string[]; Layers: string[] }>();
  for (const { name, tag, resolved: { primary } } of images) {
    let entry = entries.get(primary.digest);
    if (entry === undefined) {
      entry = {
        Config: blobPath(primary.config.digest),
        RepoTags: [],
        Layers: primary.manifest.layers.map((l) => blobPath(l.digest)),
      };
      entries.set(primary.digest, entry);
    }
    // Docker writes familiar names here (alpine:latest); docker load reads either.
    const repoTag = tag === undefined ? undefined : familiarName(name);
    if (repoTag !== undefined && !entry.RepoTags.includes(repoTag)) entry.RepoTags.push(repoTag);
  }
  return json([...entries.values()]);
}

/** The legacy `repositories`: repository → tag → the top layer's id, for tagged images. */
function repositoriesJson(images: readonly BundleImage[]): Uint8Array {
  const repositories: Record<string, Record<string, string>> = {};
  for (const { name, tag, resolved: { primary } } of images) {
    const top = primary.manifest.layers.at(-1);
    if (tag === undefined || top === undefined) continue;
    const repository = familiarName(name).slice(0, -(tag.length + 1));
    (repositories[repository] ??= {})[tag] = top.digest.split(":")[1]!;
  }
  return json(repositories);
}

/** `linux/amd64` for each platform stored, for the summary. */
export function storedPlatforms(image: BundleImage): string[] {
  return image.resolved.manifests.flatMap((m) =>
    m.platform && !m.attestation ? [formatPlatform(m.platform)] : []
  );
}

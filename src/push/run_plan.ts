/**
 * What a run pushes where: the archives' images mapped to targets, decided before anything is
 * sent, so a mistake in the mapping (a name two images claim, an image nobody named) is a
 * usage error with nothing half-pushed.
 *
 * - One image (the default): the archive's only image, or the one `--image` names, to each
 *   `-r` under its tag and every `--tag`.
 * - `--all`: every image (or those `--image` names) to `PREFIX/<repository path>` under each
 *   of its tags, as `skopeo sync` and registry replication place them: `nginx:1.25` goes to
 *   `PREFIX/library/nginx:1.25`. Untagged images are skipped, unless `--image` names them:
 *   then they go to the prefix repository by digest.
 * - `--multi-arch`: every image (or those `--image` names) joined into one index under the
 *   tag of each `-r`.
 */
import { findImages, selectImage } from "../archive/image_archive.ts";
import type { ArchiveImage, ImageArchive } from "../archive/image.ts";
import { InvalidOptionError } from "../errors.ts";
import {
  familiarName,
  formatReference,
  type ImageReference,
  parseReference,
} from "../image/reference.ts";

/** An image as read from an archive. */
export interface SourceImage {
  /** The archive's label (its path, or "standard input"). */
  archive: string;
  image: ArchiveImage;
  /** How messages call it: its first name as docker shows it, or its digest. */
  label: string;
}

/** One push of a run: an image (or, joined, several) to one repository of one registry. */
export interface PushJob {
  /** `image`: one manifest (or index) as the archive holds it; `multi-arch`: joined. */
  kind: "image" | "multi-arch";
  sources: SourceImage[];
  /** Which `-r` (0-based): registry, and the repository to push to. */
  targetIndex: number;
  target: ImageReference;
  /** Tags the root manifest goes under; none means by digest. */
  tags: string[];
  /** The digest the root manifest must have (`-r …@sha256:…`). */
  digest?: string;
}

/** An image `--all` leaves out, and why. */
export interface SkippedImage {
  archive: string;
  digest: string;
  reason: string;
}

export interface RunPlan {
  jobs: PushJob[];
  skipped: SkippedImage[];
}

export interface PlanSettings {
  targets: readonly ImageReference[];
  tags: readonly string[];
  all: boolean;
  multiArch: boolean;
  images: readonly string[];
}

/** Maps the archives' images to jobs, one list per `-r` in order. */
export function planRun(archives: readonly ImageArchive[], settings: PlanSettings): RunPlan {
  if (settings.all) return planAll(archives, settings);
  const sources = settings.multiArch ? chosenImages(archives, settings.images) : [
    singleImage(archives, settings.images),
  ];
  const jobs = settings.targets.map((target, targetIndex): PushJob => {
    const tags = unique([...(target.tag !== undefined ? [target.tag] : []), ...settings.tags]);
    return {
      kind: settings.multiArch ? "multi-arch" : "image",
      sources,
      targetIndex,
      target,
      tags,
      ...(target.digest !== undefined ? { digest: target.digest } : {}),
    };
  });
  return { jobs, skipped: [] };
}

/** `--all`: each image under its own names, below each target's prefix. */
function planAll(archives: readonly ImageArchive[], settings: PlanSettings): RunPlan {
  const named = settings.images.length > 0;
  const sources = chosenImages(archives, settings.images);
  const skipped: SkippedImage[] = [];
  /** Where each image goes: repository path → tags, per image (by digest, once). */
  const placements: { source: SourceImage; path: string | undefined; tags: string[] }[] = [];
  const seen = new Set<string>();
  for (const source of sources) {
    const digest = source.image.root.digest;
    // The same image in two archives (or named twice) goes up once.
    if (seen.has(digest)) continue;
    seen.add(digest);
    const byPath = new Map<string, string[]>();
    for (const name of source.image.names) {
      const parsed = parseImageName(name);
      if (parsed === undefined) continue;
      const tags = byPath.get(parsed.path) ?? [];
      if (!tags.includes(parsed.tag)) tags.push(parsed.tag);
      byPath.set(parsed.path, tags);
    }
    if (byPath.size === 0) {
      if (!named) {
        skipped.push({
          archive: source.archive,
          digest,
          reason: source.image.names.length === 0
            ? "untagged"
            : `untagged: its only name, "${source.image.names[0]}", has no repository`,
        });
        continue;
      }
      // Named by --image: it goes into the prefix repository, by digest.
      placements.push({ source, path: undefined, tags: [] });
      continue;
    }
    for (const [path, tags] of byPath) placements.push({ source, path, tags });
  }
  const jobs: PushJob[] = [];
  settings.targets.forEach((prefix, targetIndex) => {
    /** `repository:tag` → the image that claimed it, to refuse two images for one tag. */
    const claimed = new Map<string, SourceImage>();
    for (const { source, path, tags } of placements) {
      if (path === undefined && prefix.repository === "") {
        throw new InvalidOptionError(
          `${source.label} (${source.archive}) is untagged, and ${
            formatReference(prefix)
          } has no prefix repository to push it to by digest`,
          {
            option: "targets",
            reason: "untagged-no-prefix",
            value: source.label,
            hint: "Add a prefix to the target (registry/prefix), or push the image alone to " +
              "registry/repository:tag",
          },
        );
      }
      const repository = path === undefined
        ? prefix.repository
        : prefix.repository === ""
        ? path
        : `${prefix.repository}/${path}`;
      const allTags = unique([...tags, ...settings.tags]);
      for (const tag of allTags) {
        const other = claimed.get(`${repository}:${tag}`);
        if (other !== undefined && other.image.root.digest !== source.image.root.digest) {
          throw new InvalidOptionError(
            `Two images would be pushed as ${prefix.registry}/${repository}:${tag}: ` +
              `${other.label} (${other.archive}) and ${source.label} (${source.archive})`,
            {
              option: "images",
              reason: "name-claimed-twice",
              value: `${repository}:${tag}`,
              hint: "Choose one of them, or push them in separate runs",
            },
          );
        }
        claimed.set(`${repository}:${tag}`, source);
      }
      jobs.push({
        kind: "image",
        sources: [source],
        targetIndex,
        target: { ...prefix, repository },
        tags: allTags,
      });
    }
  });
  return { jobs, skipped };
}

/** The images `wanted` names across the archives (each must name one), or all of them. */
function chosenImages(
  archives: readonly ImageArchive[],
  wanted: readonly string[],
): SourceImage[] {
  const all = archives.flatMap((archive) =>
    archive.images.map((image) => sourceImage(archive, image))
  );
  if (wanted.length === 0) return all;
  const chosen = new Set<ArchiveImage>();
  for (const name of wanted) {
    const found = archives.flatMap((archive) => findImages(archive, name));
    if (found.length === 0) {
      throw new InvalidOptionError(`No image named "${name}" in ${archiveList(archives)}`, {
        option: "images",
        reason: "image-not-found",
        value: name,
        hint: `Available: ${all.map((s) => s.label).join(", ")}`,
      });
    }
    found.forEach((image) => chosen.add(image));
  }
  return all.filter((source) => chosen.has(source.image));
}

/** The one image to push: the only one, or the one `--image` names. */
function singleImage(archives: readonly ImageArchive[], wanted: readonly string[]): SourceImage {
  if (wanted.length > 1) {
    throw new InvalidOptionError(`${wanted.length} images are named for one target image`, {
      option: "images",
      reason: "several-images-one-target",
      value: String(wanted.length),
      hint: "Push each image under its own name (all), or join them into one index (multiArch)",
    });
  }
  const archive = archives[0]!;
  return sourceImage(archive, selectImage(archive, wanted[0]));
}

function sourceImage(archive: ImageArchive, image: ArchiveImage): SourceImage {
  const first = image.names.find((n) => parseImageName(n) !== undefined) ?? image.names[0];
  return {
    archive: archive.path,
    image,
    label: first === undefined ? image.root.digest : familiarName(first),
  };
}

/**
 * The repository path (without the registry) and tag of an image's name, as docker normalizes
 * it; undefined for a bare OCI ref name (`1.0`: a tag alone, no repository) or a name that
 * does not parse.
 */
function parseImageName(name: string): { path: string; tag: string } | undefined {
  if (!/[:/]/.test(name)) return undefined;
  try {
    const ref = parseReference(name);
    if (ref.tag === undefined) return undefined;
    return { path: ref.repository, tag: ref.tag };
  } catch {
    return undefined;
  }
}

function archiveList(archives: readonly ImageArchive[]): string {
  return archives.map((a) => a.path).join(", ");
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

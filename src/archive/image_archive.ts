/**
 * Opening an image archive of any supported format, and choosing one image from it.
 *
 * Formats are told apart by their files: `index.json` (OCI layout, including Docker 25+
 * saves, whose legacy `manifest.json` is then ignored so blobs go up unchanged) or
 * `manifest.json` alone (`docker save` before 25, skopeo/podman docker-archive).
 */
import { ArchiveError, UsageError } from "../errors.ts";
import { parseReference } from "../registry/reference.ts";
import { loadDockerSave } from "./docker_save.ts";
import type { ArchiveImage, ImageArchive } from "./image.ts";
import { loadOciLayout } from "./oci_layout.ts";
import { indexTar, type TarIndex } from "./tar_index.ts";

/** Indexes the archive and reads every image's manifests; layer data is not read. */
export async function openImageArchive(
  path: string,
  options: { signal?: AbortSignal } = {},
): Promise<ImageArchive> {
  return await loadImages(await indexTar(path, options));
}

/**
 * Reads every image of an indexed archive, from a file or from what a stream kept
 * (`streamed_index.ts`); `path` of the result is the index's label.
 */
export async function loadImages(index: TarIndex): Promise<ImageArchive> {
  const path = index.label;
  if (index.get("index.json")) {
    return { path, format: "oci-layout", images: await loadOciLayout(index) };
  }
  if (index.get("manifest.json")) {
    return { path, format: "docker-save", images: await loadDockerSave(index) };
  }
  throw new ArchiveError(
    path,
    `not an image archive: it has neither manifest.json (docker save) nor index.json ` +
      `(OCI layout) among its ${index.entries.size} entries` +
      (index.endMarker ? "" : "; it also lacks an end-of-archive marker, so it may be truncated"),
  );
}

/**
 * Picks the image to push: the only one, or the one `wanted` names (`app:1`,
 * `docker.io/library/app:1`, or an OCI ref name). More than one without `wanted` is a usage
 * error listing the choices.
 */
export function selectImage(archive: ImageArchive, wanted: string | undefined): ArchiveImage {
  const { images } = archive;
  if (wanted === undefined) {
    if (images.length === 1) return images[0]!;
    throw new UsageError(`${archive.path} holds ${images.length} images; choose one with --image`, {
      hint: `Available: ${describeChoices(images)}`,
    });
  }
  const match = findImages(archive, wanted);
  if (match.length === 1) return match[0]!;
  if (match.length === 0) {
    throw new UsageError(`No image named "${wanted}" in ${archive.path}`, {
      hint: `Available: ${describeChoices(images)}`,
    });
  }
  throw new UsageError(`"${wanted}" names ${match.length} images in ${archive.path}`, {
    hint: `Available: ${describeChoices(images)}`,
  });
}

/**
 * The images of `archive` that `wanted` names: by a name (`app:1` and `docker.io/library/app:1`
 * are one), or by a manifest digest or a prefix of it of 12+ hex digits.
 */
export function findImages(archive: ImageArchive, wanted: string): ArchiveImage[] {
  const key = canonicalName(wanted);
  // A manifest digest (or a prefix of 12+ hex digits) picks images that share a name.
  const digest = /^(sha256:)?[a-f0-9]{12,64}$/.test(wanted)
    ? (wanted.startsWith("sha256:") ? wanted : `sha256:${wanted}`)
    : undefined;
  return archive.images.filter((image) =>
    image.names.some((name) => name === wanted || canonicalName(name) === key) ||
    (digest !== undefined && image.root.digest.startsWith(digest))
  );
}

/** The images of `archives` and what each is called: `name (untagged)` when nameless. */
export function describeChoices(images: ArchiveImage[]): string {
  const names = images.map((image) => image.names[0]);
  return images.map((image, i) => {
    const name = names[i];
    const short = image.root.digest.slice(0, 19);
    if (name === undefined) return `${short} (untagged)`;
    // Names shared by several images need the digest to tell them apart.
    return names.filter((n) => n === name).length > 1 ? `${name} (${short})` : name;
  }).join(", ");
}

/** `app:1` and `docker.io/library/app:1` name the same image. */
function canonicalName(name: string): string {
  try {
    const ref = parseReference(name);
    return `${ref.registry}/${ref.repository}:${ref.tag ?? ""}@${ref.digest ?? ""}`;
  } catch {
    return name;
  }
}

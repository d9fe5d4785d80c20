/**
 * Opening an image archive of any supported format, and choosing one image from it.
 *
 * Formats are told apart by their files: `index.json` (OCI layout, including Docker 25+
 * saves, whose legacy `manifest.json` then only adds names, so blobs go up unchanged), or
 * `manifest.json` alone: a list (`docker save` before 25, skopeo/podman docker-archive) or one
 * image's manifest (containers/image's `dir:` layout).
 *
 * Every check that needs only the archive's table of contents and its small JSON files is done
 * here, before a registry is contacted: which files the manifests name, that they exist with the
 * sizes and (for configs and manifests) the digests named. Layer bytes are verified as they go up.
 */
import { ArchiveError, InvalidOptionError } from "../errors.ts";
import { MAX_MANIFEST_BYTES, readEntry } from "./archive_reader.ts";
import { loadDirLayout } from "./dir_layout.ts";
import { indexDirectory } from "./directory_index.ts";
import { loadDockerSave } from "./docker_save.ts";
import type { ArchiveImage, ImageArchive } from "./image.ts";
import { canonicalName } from "./image_names.ts";
import { parseJson } from "../image/json_guards.ts";
import { addLegacyNames } from "./legacy_names.ts";
import { loadOciLayout } from "./oci_layout.ts";
import { indexTar, type TarIndex } from "./tar_index.ts";

/** Options for {@linkcode openImageArchive} and {@linkcode indexArchive}. */
export interface OpenArchiveOptions {
  /** Stops indexing. Default: none. */
  signal?: AbortSignal;
}

/**
 * Indexes the archive (a tar file, or an image directory) and reads every image's manifests;
 * layer data is not read.
 */
export async function openImageArchive(
  path: string,
  options: OpenArchiveOptions = {},
): Promise<ImageArchive> {
  return await loadImages(await indexArchive(path, options));
}

/**
 * The entries of a tar file, or of an image directory (an OCI layout, a `dir:` layout or an
 * unpacked `docker save`), to read in place.
 */
export async function indexArchive(
  path: string,
  options: OpenArchiveOptions = {},
): Promise<TarIndex> {
  const info = await Deno.stat(path).catch(() => undefined);
  if (info?.isDirectory) return await indexDirectory(path, options);
  return await indexTar(path, options);
}

/**
 * Reads every image of an indexed archive, from a file or from what a stream kept
 * (`streamed_index.ts`); `path` of the result is the index's label.
 */
export async function loadImages(index: TarIndex): Promise<ImageArchive> {
  const path = index.label;
  if (index.get("index.json")) {
    const { images, notes } = await loadOciLayout(index);
    if (index.get("manifest.json")) await addLegacyNames(index, images);
    return { path, format: "oci-layout", images, ...(notes.length > 0 ? { notes } : {}) };
  }
  if (index.get("manifest.json")) {
    // docker save's manifest.json is a list; a dir: layout's is the image's manifest itself.
    const bytes = await readEntry(index, index.resolve("manifest.json"), MAX_MANIFEST_BYTES);
    if (isJsonObject(bytes)) return { path, format: "dir", images: [await loadDirLayout(index)] };
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
    throw new InvalidOptionError(`${archive.path} holds ${images.length} images; choose one`, {
      option: "images",
      reason: "image-ambiguous",
      value: archive.path,
      hint: `Available: ${describeChoices(images)}`,
    });
  }
  const match = findImages(archive, wanted);
  if (match.length === 1) return match[0]!;
  if (match.length === 0) {
    throw new InvalidOptionError(`No image named "${wanted}" in ${archive.path}`, {
      option: "images",
      reason: "image-not-found",
      value: wanted,
      hint: `Available: ${describeChoices(images)}`,
    });
  }
  throw new InvalidOptionError(`"${wanted}" names ${match.length} images in ${archive.path}`, {
    option: "images",
    reason: "image-name-ambiguous",
    value: wanted,
    hint: `Available: ${describeChoices(images)}`,
  });
}

/**
 * The images of `archive` that `wanted` names: by a name (`app:1` and `docker.io/library/app:1`
 * are one; a name only a Docker 25+ save's `manifest.json` gives counts too), or by a manifest
 * digest or a prefix of it of 12+ hex digits.
 */
export function findImages(archive: ImageArchive, wanted: string): ArchiveImage[] {
  const key = canonicalName(wanted);
  // A manifest digest (or a prefix of 12+ hex digits) picks images that share a name.
  const digest = /^(sha256:)?[a-f0-9]{12,64}$/.test(wanted)
    ? (wanted.startsWith("sha256:") ? wanted : `sha256:${wanted}`)
    : undefined;
  return archive.images.filter((image) =>
    [...image.names, ...(image.legacyNames ?? [])].some((name) =>
      name === wanted || canonicalName(name) === key
    ) ||
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

/** Whether JSON bytes hold an object at the top (a list, or not JSON, is left to the loader). */
function isJsonObject(bytes: Uint8Array): boolean {
  try {
    const value = parseJson(bytes);
    return typeof value === "object" && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

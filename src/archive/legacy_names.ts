/**
 * The names a Docker 25+ save's legacy `manifest.json` gives its images, where they disagree
 * with `index.json`'s. The index is what we push from (its blobs go up unchanged), so its names
 * win; a name only `manifest.json` gives is kept beside them, said in a note, and matched by
 * `--image`, so an image can be chosen by either file's name.
 */
import { digestFromBlobPath, sha256Digest } from "../digest.ts";
import { ArchiveError } from "../errors.ts";
import {
  MAX_CONFIG_BYTES,
  MAX_MANIFEST_BYTES,
  readEntry,
  readJsonEntry,
} from "./archive_reader.ts";
import { parseSaveManifest } from "./docker_save.ts";
import type { ArchiveImage } from "./image.ts";
import type { ManifestNode } from "../image/graph.ts";
import { canonicalName } from "./image_names.ts";
import type { TarIndex } from "./tar_index.ts";

/**
 * What a note on names that disagree says about choosing the image, in the library's terms;
 * the CLI says the same with its flag.
 */
export const EITHER_NAME_SELECTS = "either name selects it (images)";

/**
 * Adds to each of `images` (read from `index.json`) the `manifest.json` names it lacks, matched
 * by config digest, with a note. A `manifest.json` that is not `docker save`'s list is an
 * error (a stream of the archive fails on it as it passes); one naming a config the archive
 * lacks adds nothing, as the index alone is what the archive is pushed from.
 */
export async function addLegacyNames(index: TarIndex, images: ArchiveImage[]): Promise<void> {
  const { value: entries } = await readJsonEntry(
    index,
    "manifest.json",
    MAX_MANIFEST_BYTES,
    parseSaveManifest,
  );
  for (const entry of entries) {
    if (entry.repoTags.length === 0) continue;
    const config = await configDigest(index, entry.config);
    if (config === undefined) continue;
    const image = images.find((candidate) => configsOf(candidate.root).includes(config));
    if (image === undefined) continue;
    const known = new Set(image.names.map(canonicalName));
    const extra = entry.repoTags.filter((tag) => !known.has(canonicalName(tag)));
    if (extra.length === 0) continue;
    image.legacyNames = [...new Set([...(image.legacyNames ?? []), ...extra])];
    const indexNames = image.names.length === 0
      ? "no name"
      : image.names.map((n) => `"${n}"`).join(", ");
    image.notes.push(
      `manifest.json names this image ${extra.map((n) => `"${n}"`).join(", ")}, index.json ` +
        `${indexNames}: a push uses index.json's; ${EITHER_NAME_SELECTS}`,
    );
  }
}

/** The digest of the config at `path`, or undefined when it is not there to read. */
async function configDigest(index: TarIndex, path: string): Promise<string | undefined> {
  // Docker 25 names it `blobs/sha256/<hex>`: the digest is in the name, unread.
  const named = digestFromBlobPath(path);
  if (named) return named;
  try {
    return sha256Digest(await readEntry(index, index.resolve(path), MAX_CONFIG_BYTES));
  } catch (error) {
    if (error instanceof ArchiveError) return undefined;
    throw error;
  }
}

/** The config digests of every image manifest under `node` (the first blob of each). */
function configsOf(node: ManifestNode): string[] {
  const own = node.blobs[0] === undefined ? [] : [node.blobs[0].digest];
  return [...own, ...node.children.flatMap(configsOf)];
}

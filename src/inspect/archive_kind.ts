/**
 * Which tool wrote an image archive, told from its entry names alone (no data is read):
 *
 * | kind                    | what tells it                                                    |
 * |-------------------------|------------------------------------------------------------------|
 * | `docker-save-25`        | `index.json` and `manifest.json` (Docker 25+: an OCI layout with the legacy manifest beside it) |
 * | `oci-layout`            | `index.json` without `manifest.json` (`oci-archive:`, buildx `type=oci`) |
 * | `skopeo-docker-archive` | `manifest.json` and layers stored as `<sha256 hex>.tar` at the root (skopeo, podman; legacy `<id>/` dirs, if any, hold symlinks to them) |
 * | `docker-save`           | `manifest.json` otherwise: `<id>/layer.tar`, `<id>/VERSION`, `<id>/json`, `repositories` (Docker before 25) |
 * | `dir`                   | `manifest.json` is one image's manifest, blobs named by their hex, `version` (`skopeo copy … dir:`, `podman save --format docker-dir`) |
 *
 * The loaders (`image_archive.ts`) tell the formats apart (the last by `manifest.json`'s content,
 * which they read); the finer kinds are for people.
 */
import type { ArchiveFormat } from "../archive/image.ts";
import type { TarIndex } from "../archive/tar_index.ts";
import { SHA256_HEX } from "../digest.ts";

/** What {@linkcode archiveKind} finds. */
export type ArchiveKind =
  | "docker-save"
  | "docker-save-25"
  | "skopeo-docker-archive"
  | "oci-layout"
  | "dir";

/** Words for each kind, for text output. */
export const ARCHIVE_KIND_NAMES: Readonly<Record<ArchiveKind, string>> = {
  "docker-save": "docker save (before Docker 25)",
  "docker-save-25": "docker save (Docker 25+, OCI layout with manifest.json)",
  "skopeo-docker-archive": "docker-archive written by skopeo or podman",
  "oci-layout": "OCI image layout",
  "dir": "dir: layout written by skopeo or podman (docker-dir)",
};

/** A layer named by its digest at the archive's root, as containers/image writes it. */
const DIGEST_TAR = new RegExp(`^${SHA256_HEX}\\.tar$`);

/**
 * Tells the kind of an archive that `loadImages` accepted (it has `index.json` or
 * `manifest.json`) as `format`.
 */
export function archiveKind(index: TarIndex, format: ArchiveFormat): ArchiveKind {
  if (format === "dir") return "dir";
  const hasIndex = index.get("index.json") !== undefined;
  const hasManifest = index.get("manifest.json") !== undefined;
  if (hasIndex) return hasManifest ? "docker-save-25" : "oci-layout";
  for (const entry of index.entries.values()) {
    if (entry.type === "file" && DIGEST_TAR.test(entry.name)) return "skopeo-docker-archive";
  }
  return "docker-save";
}

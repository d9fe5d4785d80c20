/**
 * The warning a pull gives when the archive it writes holds zstd-compressed layers: Docker
 * Engine before 23.0 cannot read them (Docker 20.10's `docker load` fails with "ApplyLayer exit
 * status 1 … archive/tar: invalid tar header"), and Debian 12 still ships Docker 20.10.
 *
 * Docker Engine 23.0's release notes list "Add support for pulling zstd compressed layers"
 * (moby/moby#41759, moby/moby#42862); `docker load` decompresses through the same code.
 */
import type { ProgressEvent } from "../progress/events.ts";
import type { BundleImage } from "./archive_files.ts";

/** The first Docker Engine release that reads zstd layers. */
export const DOCKER_ZSTD_SINCE = "23.0";

/** Whether a layer of this media type is zstd-compressed (`…tar+zstd`, nondistributable too). */
export function isZstdLayer(mediaType: string): boolean {
  return mediaType.endsWith("+zstd");
}

/**
 * The warning event for `images`, or undefined when none of the layers the archive will hold is
 * zstd-compressed. Names the images concerned and the Docker version that reads them.
 *
 * @example
 * ```ts ignore
 * const warning = zstdLayerWarning(images);
 * if (warning !== undefined) sink(warning);
 * ```
 */
export function zstdLayerWarning(images: readonly BundleImage[]): ProgressEvent | undefined {
  const layers = new Set<string>();
  const names: string[] = [];
  for (const image of images) {
    let found = false;
    for (const manifest of image.resolved.manifests) {
      for (const layer of manifest.manifest.layers) {
        if (!isZstdLayer(layer.mediaType)) continue;
        layers.add(layer.digest);
        found = true;
      }
    }
    if (found && !names.includes(image.name)) names.push(image.name);
  }
  if (layers.size === 0) return undefined;
  const count = layers.size === 1
    ? "1 zstd-compressed layer"
    : `${layers.size} zstd-compressed layers`;
  return {
    type: "notice",
    kind: "zstd-layers",
    level: "warning",
    message: `The archive holds ${count} (${names.join(", ")}): docker load needs ` +
      `Docker Engine ${DOCKER_ZSTD_SINCE} or later to read them (podman and skopeo read them)`,
  };
}

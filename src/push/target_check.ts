/**
 * Where an image goes (tags, or a digest), and what a push to a digest must satisfy, checked
 * before anything is sent: the digest is the manifest's own, and stays so (compressing layers
 * would change it).
 */
import type { ArchiveImage } from "../archive/image.ts";
import { uniqueBlobs } from "../image/graph.ts";
import type { Compression } from "../compress/codec.ts";
import { InvalidOptionError } from "../errors.ts";
import { isUncompressedLayer } from "./manifest_rewrite.ts";
import { describePlatform, findListed } from "./multi_arch.ts";

/**
 * Where the image goes: under each of `tags`, or by digest when there are none (`digest`, when
 * given, is the one the root manifest must have).
 */
export interface PushTarget {
  tags: readonly string[];
  digest?: string;
}

/**
 * Refuses a push the user cannot mean, before anything is sent: to a digest the manifest
 * will not have (another image's, one that compressing its layers changes, or a platform
 * manifest inside the archive's index, which is pushed only with the whole index). The hint
 * names a push that works: its digest is the archive's, and its layers go as stored.
 */
export function checkTarget(
  image: ArchiveImage,
  target: PushTarget,
  compression: Compression,
): void {
  if (target.digest === undefined) return;
  const { root } = image;
  const compressible = compression.codec !== "none" &&
    uniqueBlobs(root).some((blob) => isUncompressedLayer(blob.mediaType));
  const asStored = compressible ? ' with compression: "none"' : "";
  if (target.digest !== root.digest) {
    const listed = findListed(root, target.digest);
    if (listed !== undefined) {
      // Pushing the index by its digest pushes every manifest below it by digest too.
      const platform = listed.platform === undefined
        ? "a platform manifest"
        : `the ${describePlatform(listed.platform)} manifest`;
      const where = listed.index === root
        ? `the archive's index ${root.digest}`
        : `index ${listed.index.digest}, inside the archive's index ${root.digest}`;
      throw new InvalidOptionError(
        `${target.digest} is ${platform} of ${where}, and cannot be pushed without it`,
        {
          option: "targets",
          reason: "digest-in-index",
          value: target.digest,
          hint: compressible
            ? `Push the index by its digest, @${root.digest}, with compression: "none" (the ` +
              `layers as stored): the registry then has ${target.digest} too`
            : `Push the index by its digest, @${root.digest}, or by a tag: either way the ` +
              `registry then has ${target.digest} too`,
        },
      );
    }
    throw new InvalidOptionError(
      `The archive's manifest is ${root.digest}, not ${target.digest} as the reference says`,
      {
        option: "targets",
        reason: "digest-mismatch",
        value: target.digest,
        hint: `Push by tag, or by the digest the archive holds: @${root.digest}${asStored}`,
      },
    );
  }
  if (compressible) {
    throw new InvalidOptionError(
      `Compressing the archive's uncompressed layers changes its manifest, so it cannot be ` +
        `pushed as ${target.digest}`,
      {
        option: "compression",
        reason: "digest-compressed",
        value: target.digest,
        hint: 'Set compression: "none" to push the layers as stored',
      },
    );
  }
}

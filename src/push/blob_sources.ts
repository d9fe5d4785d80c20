/**
 * Where a blob's bytes, and the descriptor the manifest ends up naming, come from. Three
 * sources, one writer (see `writer.ts`):
 * - **as stored**: the archive's bytes, under the archive's digest;
 * - **compressed on the way**: an uncompressed layer, compressed as it goes up (or found
 *   compressed by an earlier push, through the blob-info cache); its digest comes late, and
 *   the manifest is rewritten to name it (`manifest_rewrite.ts`);
 * - **streamed**: a blob that went up as the archive streamed past (`stream_blobs.ts`), and
 *   cannot be read again: found here, or mounted from the repository it went into.
 *
 * Each source asks the same writer the same questions, so a dry run (another writer) places
 * blobs through the same code.
 */
import type { ArchiveBlob } from "../archive/image.ts";
import { InvalidOptionError } from "../errors.ts";
import type { LayerCompressor } from "./layer_compressor.ts";
import { isUncompressedLayer } from "./manifest_rewrite.ts";
import type { PassedBlob } from "./stream_blobs.ts";
import type { Outcome, Placement, Writer } from "./writer.ts";

/** What placing a blob needs besides the blob. */
export interface BlobSources {
  writer: Writer;
  /** Upload even when the repository has the blob. */
  forceUpload: boolean;
  /** Compresses uncompressed layers on the way; absent to push every layer as stored. */
  compressor?: LayerCompressor;
  /** Where to try mounting a blob from, if anywhere. */
  mountSource: (digest: string) => string | undefined;
  /** Blobs that went up as the archive streamed past, by the digest of their bytes. */
  streamed?: ReadonlyMap<string, PassedBlob>;
  /** The repository the stream's blobs went into, when it is not this one. */
  streamedInto?: string;
  /** Streamed blobs an image of the run already counted as its upload. */
  claimed?: Set<string>;
}

/** Whether `blob` goes up compressed on the way. */
export function compressible(blob: ArchiveBlob, sources: BlobSources): boolean {
  return sources.compressor !== undefined && isUncompressedLayer(blob.mediaType);
}

/** Places one blob in the writer's repository, from whichever source it comes. */
export async function placeBlob(blob: ArchiveBlob, sources: BlobSources): Promise<Placement> {
  const passed = sources.streamed?.get(blob.digest);
  if (passed !== undefined) return await placeStreamed(blob, passed, sources);
  if (sources.compressor !== undefined && compressible(blob, sources)) {
    return await placeCompressed(blob, sources.compressor, sources);
  }
  return await placeStored(blob, sources);
}

/** As stored: found in the repository, else uploaded (mounted first where one may be). */
async function placeStored(blob: ArchiveBlob, sources: BlobSources): Promise<Placement> {
  const { writer } = sources;
  if (!sources.forceUpload && await writer.has(blob.digest)) {
    await writer.found(blob);
    return { outcome: "skipped" };
  }
  return { outcome: await writer.upload(blob, sources.mountSource(blob.digest)) };
}

/**
 * Compressed on the way: the form another registry's push sent here already; else the form
 * an earlier push made (the blob-info cache knows its digest), found here or mounted from a
 * repository that holds it; else compressed now, as it goes up.
 */
async function placeCompressed(
  blob: ArchiveBlob,
  compressor: LayerCompressor,
  sources: BlobSources,
): Promise<Placement> {
  const { writer } = sources;
  const sent = writer.fannedOut(blob);
  if (sent !== undefined) return { outcome: "uploaded", stored: sent, compressedHere: true };
  const known = sources.forceUpload ? undefined : compressor.known(blob);
  if (known !== undefined) {
    if (await writer.has(known.digest)) return { outcome: "skipped", stored: known };
    const describe = `${blob.describe} (${compressor.codec})`;
    for (const from of compressor.mountSources(writer.client, known)) {
      const mounted = await writer.mount(known.digest, from, describe);
      if (mounted !== undefined) return { outcome: mounted, stored: known };
    }
  }
  return await writer.compress(blob, compressor, () => sources.mountSource(blob.digest));
}

/**
 * Streamed: in this repository, or in `streamedInto`, from which it is mounted. The first
 * image to take a blob the stream uploaded counts the upload; the others, what they did.
 */
async function placeStreamed(
  blob: ArchiveBlob,
  passed: PassedBlob,
  sources: BlobSources,
): Promise<Placement> {
  const { writer } = sources;
  let outcome: Outcome = passed.outcome;
  const first = !sources.claimed?.has(passed.digest);
  sources.claimed?.add(passed.digest);
  const from = sources.streamedInto;
  if (from !== undefined && from !== writer.client.repository) {
    const stored = passed.compressed?.digest ?? blob.digest;
    const placed = await writer.has(stored)
      ? "skipped"
      : await writer.mountStreamed(stored, from, blob.describe);
    outcome = placed === "skipped" || !first ? placed : passed.outcome;
  }
  if (passed.compressed === undefined) return { outcome };
  const rewrites = compressible(blob, sources);
  if (!rewrites && isUncompressedLayer(blob.mediaType)) {
    return await keptFromStream(blob, passed, sources);
  }
  return {
    outcome,
    stored: {
      mediaType: sources.compressor?.compressedType(blob.mediaType) ?? blob.mediaType,
      ...passed.compressed,
    },
    replaces: rewrites,
    compressedHere: rewrites && outcome === "uploaded",
  };
}

/**
 * A layer that went up compressed as the stream passed, in a push that keeps its layers as
 * stored (signatures name its manifest as the archive has it): fine if the repository has
 * the layer as stored already; otherwise those bytes are gone with the stream, and the push
 * stops before any manifest names a blob the registry lacks.
 */
async function keptFromStream(
  blob: ArchiveBlob,
  passed: PassedBlob,
  sources: BlobSources,
): Promise<Placement> {
  if (await sources.writer.has(blob.digest)) return { outcome: "skipped" };
  throw new InvalidOptionError(
    `${blob.describe} went up compressed as the stream passed, but what refers to the image ` +
      `(signatures, SBOMs or attestations) names its manifest with the layer as stored, and a ` +
      `stream cannot be read again`,
    {
      option: "compression",
      reason: "stream-compressed-referrers",
      value: passed.name,
      hint: 'Push the stream again with compression: "none" to keep its layers as stored, or ' +
        "with referrers set to false to push the image without them",
    },
  );
}

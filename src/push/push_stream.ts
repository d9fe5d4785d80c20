/**
 * Reading an image archive that can be read only front to back, once: a pipe (`-f -`), or a
 * gzip-, zstd- or xz-compressed file. One pass: the stream is decompressed, its tar entries read
 * in order; small entries (manifests, configs, `index.json`) are kept, large ones are hashed and
 * sent to the registry as they go past (see `stream_blobs.ts`). At the end the images are read
 * from what was kept, exactly as from a file, and pushed with the blobs already in place.
 */
import type { ImageArchive } from "../archive/image.ts";
import { loadImages } from "../archive/image_archive.ts";
import { readArchiveStream } from "../archive/stream_archive.ts";
import type { RegistryClient } from "../registry/client.ts";
import { type PassedBlob, StreamBlobs, type StreamBlobsOptions } from "./stream_blobs.ts";

export interface StreamSource {
  /** Names the stream in messages: the file's path, or "standard input". */
  label: string;
  stream: ReadableStream<Uint8Array>;
}

export interface StreamedArchive {
  archive: ImageArchive;
  /** The stream's compression ("tar" when it was none). */
  format: string;
  /** Large entries, by the sha256 of their bytes. */
  passed: ReadonlyMap<string, PassedBlob>;
}

/**
 * Reads `source` to its end, sending its large entries into the client's repository as they go
 * past, and returns the images it holds.
 */
export async function readStreamedArchive(
  client: RegistryClient,
  source: StreamSource,
  options: StreamBlobsOptions,
): Promise<StreamedArchive> {
  const signal = client.signal;
  const blobs = new StreamBlobs(client, options);
  const { index, format } = await readArchiveStream(source, {
    ...(signal ? { signal } : {}),
    pass: (entry, label, head, body) => blobs.pass(entry, label, head, body),
  });
  const archive = await loadImages(index);
  return {
    archive,
    format,
    passed: new Map(blobs.passed.map((blob) => [blob.digest, blob])),
  };
}

/**
 * Reading an image archive that can be read only front to back, once: a pipe (`-f -`), or a
 * gzip-, zstd- or xz-compressed file. One pass: the stream is decompressed, its tar entries read
 * in order; small entries (manifests, configs, `index.json`) are kept, large ones are hashed and
 * sent to the registry as they go past (see `stream_blobs.ts`). At the end the images are read
 * from what was kept, exactly as from a file, and pushed with the blobs already in place.
 */
import { openDecompressed } from "../archive/decompress.ts";
import type { ImageArchive } from "../archive/image.ts";
import { loadImages } from "../archive/image_archive.ts";
import { type KeptData, StreamedIndex } from "../archive/streamed_index.ts";
import { readTarStream } from "../archive/tar_stream.ts";
import type { RegistryClient } from "../registry/client.ts";
import { type PassedBlob, peekBody, StreamBlobs, type StreamBlobsOptions } from "./stream_blobs.ts";

/** Entries up to this size are kept in memory (every JSON file of an image archive fits). */
export const HOLD_BYTES = 1024 * 1024;
/** JSON entries (configs with long histories) are kept up to this size, and also sent. */
const HOLD_JSON_BYTES = 64 * 1024 * 1024;

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
  const { format, stream } = await openDecompressed(
    source.stream,
    source.label,
    signal ? { signal } : {},
  );
  const label = format === "tar" ? source.label : `${source.label} (${format})`;
  const tar = readTarStream(stream, label, signal ? { signal } : {});
  const blobs = new StreamBlobs(client, options);
  const kept = new Map<string, KeptData>();
  for await (const entry of tar) {
    if (entry.type !== "file") continue;
    if (entry.size <= HOLD_BYTES) {
      kept.set(entry.name, { kind: "held", bytes: await entry.bytes() });
      continue;
    }
    const { head, body } = await peekBody(entry);
    // A config with a long history can be large; it is read at the end, so it is kept whole.
    if (entry.size <= HOLD_JSON_BYTES && head[0] === 0x7b /* { */) {
      kept.set(entry.name, { kind: "held", bytes: await collect(body, entry.size) });
      continue;
    }
    kept.set(entry.name, await blobs.pass(entry, label, head, body));
  }
  const index = new StreamedIndex(label, tar.position, tar.names, kept);
  const archive = await loadImages(index);
  return {
    archive,
    format,
    passed: new Map(blobs.passed.map((blob) => [blob.digest, blob])),
  };
}

/** The whole of a body of `size` bytes, in one buffer. */
async function collect(body: AsyncIterable<Uint8Array>, size: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(size);
  let at = 0;
  for await (const chunk of body) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

/**
 * Writing a laid-out archive to a stream (`-o -`): entries in archive order, layers first and
 * the JSON files last, so `push -f -` at the other end of a pipe can send each layer as it
 * arrives. One layer downloads at a time, straight into the stream: memory stays that of one
 * chunk, and the stream's backpressure paces the download. A cut download continues with a
 * Range request (skipping bytes already sent if the registry ignores the range); there is no
 * resume across runs.
 */
import type { ProgressSink } from "../progress/events.ts";
import type { RegistryClient } from "../registry/client.ts";
import { BlobTally, downloadBlob } from "./blob_download.ts";
import { endOfArchive, paddingFor, tarHeader, type TarLayout } from "./tar_layout.ts";

export interface WriteStreamOptions {
  clientFor: (digest: string) => RegistryClient;
  sink: ProgressSink;
  signal?: AbortSignal;
}

/** Writes `layout` into `stream`, closing it at the end (aborting it on failure). */
export async function writeArchiveStream(
  stream: WritableStream<Uint8Array>,
  layout: TarLayout,
  options: WriteStreamOptions,
): Promise<{ downloaded: number }> {
  const writer = stream.getWriter();
  let downloaded = 0;
  const blobs = layout.entries.filter((e) => e.kind === "blob");
  options.sink({
    type: "plan",
    image: "standard output",
    blobs: blobs.length,
    bytes: blobs.reduce((sum, b) => sum + b.size, 0),
  });
  try {
    for (const entry of layout.entries) {
      options.signal?.throwIfAborted();
      await writer.write(tarHeader(entry));
      if (entry.kind === "bytes") {
        await writer.write(entry.data);
      } else if (entry.kind === "blob") {
        const tally = new BlobTally(entry.digest, entry.size);
        options.sink({ type: "blob-start", digest: entry.digest, size: entry.size, attempt: 1 });
        await downloadBlob(options.clientFor(entry.digest), tally, {
          rewritable: false,
          write: (chunk) => writer.write(chunk),
        }, {
          onProgress: (t) =>
            options.sink({
              type: "blob-progress",
              digest: entry.digest,
              done: t.done,
              size: t.size,
            }),
        });
        downloaded += entry.size;
        options.sink({
          type: "blob-done",
          digest: entry.digest,
          size: entry.size,
          outcome: "uploaded",
        });
      }
      if (entry.size % 512 !== 0) await writer.write(paddingFor(entry.size));
    }
    await writer.write(endOfArchive());
    await writer.close();
  } catch (error) {
    await writer.abort(error).catch(() => {});
    throw error;
  } finally {
    writer.releaseLock();
  }
  return { downloaded };
}

/**
 * Chunked uploads: `PATCH` chunks with `Content-Range`, each response's `Location` replacing
 * the last, then `PUT ?digest=`. A failed chunk asks the registry where the session stands
 * (`GET`, `Range`) and continues from there, not from zero; a saved session from an earlier
 * run continues the same way (`upload_session.ts`). What a failed chunk's answer means is the
 * answer table's (`answer_class.ts`): refused chunks, a body-size cap, a lost session.
 */
import { Sha256 } from "../digest.ts";
import { answerOf } from "./answer_class.ts";
import type { BlobSource } from "../image/graph.ts";
import type { RegistryClient } from "./client.ts";
import type { BodySource } from "./transport.ts";
import { type ChunkSettings, commitUpload, type UploadOptions } from "./upload_common.ts";
import { ChunkedUploadRefusedError, digestMismatch } from "./upload_errors.ts";
import { patchSession, recoverSession, resumeStatus } from "./upload_session.ts";

/** Uploads `blob` in chunks into the session at `start`, which already holds `startOffset`. */
export async function patchChunks(
  client: RegistryClient,
  blob: BlobSource,
  start: URL,
  startOffset: number,
  chunks: ChunkSettings,
  options: UploadOptions,
): Promise<void> {
  const hash = new Sha256();
  // Bytes a resumed session already holds are hashed locally, so the digest check still covers
  // every byte the registry will commit.
  for await (const piece of blob.read(0, startOffset, client.signal)) hash.update(piece);
  let hashedUpTo = startOffset;
  let location = start;
  let offset = startOffset;
  let failures = 0;
  while (offset < blob.size) {
    const from = offset;
    const length = Math.min(chunks.size, blob.size - from);
    const body: BodySource = {
      length,
      ownsChunks: true,
      async *open(signal) {
        let position = from;
        for await (const chunk of blob.read(from, length, signal)) {
          // Hash each byte once, in order, even when a chunk is resent from an earlier offset.
          if (position + chunk.length > hashedUpTo) {
            hash.update(chunk.subarray(Math.max(0, hashedUpTo - position)));
            hashedUpTo = position + chunk.length;
          }
          position += chunk.length;
          yield chunk;
        }
      },
    };
    try {
      ({ location, offset } = await patchSession(client, location, {
        // No `bytes ` prefix: the spec's form; ACR rejects the prefixed one.
        headers: { "Content-Range": `${from}-${from + length - 1}` },
        body,
        action: `upload chunk ${from}-${from + length - 1} of ${blob.digest}`,
        end: () => from + length,
        ...(options.onProgress
          ? { onBodyProgress: (sent: number) => options.onProgress!(from + sent) }
          : {}),
      }));
      if (offset < from + length) offset = Math.max(offset, from); // registry kept less: resend
      failures = 0;
      await options.onCommitted?.(location, offset);
    } catch (error) {
      const answer = answerOf(error, from === 0 ? "first-chunk" : "chunk");
      if (answer.kind === "method-refused") {
        throw new ChunkedUploadRefusedError(
          `${client.registryName} refused a chunked upload (${answer.httpStatus})`,
          { cause: error },
        );
      }
      if (answer.kind === "too-large" && chunks.size > chunks.minSize) {
        // A body-size cap (Cloudflare ~100 MB, GHCR 4 MiB chunks): smaller chunks, same spot.
        chunks.size = Math.max(chunks.minSize, Math.floor(Math.min(chunks.size, length) / 2));
        client.sink({
          type: "notice",
          kind: "chunk-size-reduced",
          digest: blob.digest,
          message: `${client.registryName} refused a ${length}-byte chunk (413); ` +
            `sending ${chunks.size}-byte chunks`,
        });
        ({ location, offset } = await resumeStatus(client, location));
        continue;
      }
      failures++;
      ({ location, offset } = await recoverSession(client, error, answer, {
        failures,
        subject: { kind: "chunk", digest: blob.digest, offset: from },
        location,
        ...(options.onCommitted ? { onCommitted: options.onCommitted } : {}),
      }));
    }
    options.onProgress?.(offset);
  }
  if (hashedUpTo === blob.size && hash.digest() !== blob.digest) throw digestMismatch(blob);
  await commitUpload(client, location, blob, `complete upload of ${blob.digest}`);
}

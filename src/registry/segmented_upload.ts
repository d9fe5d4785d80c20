/**
 * Resumable uploads of a stream whose length and digest are known only at its end (a large
 * layer compressed on the fly): `PATCH` requests of a chunk each, with chunked transfer
 * encoding, each appending to the session, then `PUT ?digest=`. A failed segment asks the
 * registry where the session stands and continues from there; the stream can be produced
 * again from any offset (`CompressedStream.open`), so nothing is sent twice.
 */
import { answerOf } from "./answer_class.ts";
import type { RegistryClient } from "./client.ts";
import type { BodySource } from "./transport.ts";
import { commitUpload } from "./upload_common.ts";
import { cancelSession, openSession } from "./uploads.ts";
import { patchSession, recoverSession, resumeStatus } from "./upload_session.ts";

export interface SegmentedBlob {
  /** Human name for errors: `app.tar:…/layer.tar (gzip)`. */
  describe: string;
  /** The stream from byte `from` on, a fresh pass each call. */
  open(from: number): AsyncIterable<Uint8Array>;
  /**
   * Called once every byte is in the session, before the registry is asked to commit: the
   * stream's digest. Throws to abandon the upload (the input did not match its digest).
   */
  finish(): string;
  /** Bytes per `PATCH` (the last one may be shorter). */
  segmentSize: number;
  /** A saved session to continue instead of starting one. */
  resume?: URL;
  /** Called whenever the registry confirms an offset (to save resume state). */
  onCommitted?: (location: URL, offset: number) => Promise<void> | void;
  /**
   * Whether `open`'s chunks are the upload's to free once sent (default true); false when the
   * source holds on to them (see `HeldStream`).
   */
  ownsChunks?: boolean;
  /** Bytes of the stream the registry has been sent so far (running total). */
  onProgress?: (sent: number) => void;
  /**
   * Whether a failed upload leaves its session for a later run to continue (default true).
   * False for a source read once as it streams past (a pipe): no run can continue it, so the
   * session is cancelled rather than left open in the registry.
   */
  keepOnFailure?: boolean;
}

/**
 * Uploads `blob`; returns the digest it was stored under. On failure the session is left for a
 * later run to continue (a session the registry dropped raises `UploadSessionLostError`), or
 * cancelled when `keepOnFailure` is false.
 */
export async function uploadInSegments(
  client: RegistryClient,
  blob: SegmentedBlob,
): Promise<string> {
  let location: URL | undefined;
  try {
    return await sendSegments(client, blob, (at) => location = at);
  } catch (error) {
    if (blob.keepOnFailure === false && location !== undefined) {
      await cancelSession(client, location);
    }
    throw error;
  }
}

/** {@linkcode uploadInSegments}'s work; `at` hears each session location as it changes. */
async function sendSegments(
  client: RegistryClient,
  blob: SegmentedBlob,
  at: (location: URL) => void,
): Promise<string> {
  let location: URL;
  let offset = 0;
  if (blob.resume !== undefined) {
    ({ location, offset } = await resumeStatus(client, blob.resume, { saved: true }));
  } else {
    location = (await openSession(client, `start upload of ${blob.describe}`)).url;
  }
  at(location);
  let stream = blob.open(offset)[Symbol.asyncIterator]();
  /**
   * The stream failed while a segment was being sent (a truncated or stalled input): the
   * transport reports that as a failed request, but it is not the registry's, and retrying
   * cannot help, so it ends the upload as it is.
   */
  let sourceError: { error: unknown } | undefined;
  const throwIfSourceFailed = () => {
    if (sourceError !== undefined) throw sourceError.error;
  };
  /** The body's read of the stream under way, if any. */
  let pendingRead: Promise<unknown> | undefined;
  try {
    let next = await stream.next();
    let failures = 0;
    while (!next.done) {
      const from = offset;
      let sent = 0;
      const body: BodySource = {
        ownsChunks: blob.ownsChunks ?? true,
        async *open() {
          while (!next.done && sent < blob.segmentSize) {
            const chunk = next.value;
            const room = blob.segmentSize - sent;
            if (chunk.length > room) {
              // The rest of this chunk opens the next segment: no segment exceeds the size
              // (a body-size cap in front of the registry may be just that).
              sent += room;
              yield chunk.subarray(0, room);
              next = { done: false, value: chunk.subarray(room) };
              return;
            }
            sent += chunk.length;
            yield chunk;
            try {
              const reading = stream.next();
              pendingRead = reading;
              next = await reading;
            } catch (error) {
              sourceError ??= { error };
              throw error;
            } finally {
              pendingRead = undefined;
            }
          }
        },
      };
      try {
        ({ location, offset } = await patchSession(client, location, {
          body,
          action: `upload ${blob.describe} from byte ${from}`,
          end: () => from + sent,
          ...(blob.onProgress ? { onBodyProgress: (n: number) => blob.onProgress!(from + n) } : {}),
        }));
        failures = 0;
        at(location);
        await blob.onCommitted?.(location, offset);
        if (offset !== from + sent) {
          // The registry kept another amount than was sent: go on from what it has.
          await stream.return?.();
          stream = blob.open(offset)[Symbol.asyncIterator]();
          next = await stream.next();
        }
      } catch (error) {
        // A request that failed while its body waited on the stream (an input that stalls
        // times the request out too): what the stream does next decides.
        await pendingRead?.catch(() => {});
        throwIfSourceFailed();
        // A refused stream or a body-size cap is the caller's to decide (answerOf(error,
        // "stream")): the blob can go as stored.
        failures++;
        ({ location, offset } = await recoverSession(client, error, answerOf(error, "stream"), {
          failures,
          subject: { kind: "segment", blob: blob.describe, offset: from },
          location,
          ...(blob.onCommitted ? { onCommitted: blob.onCommitted } : {}),
        }));
        at(location);
        // Waits for a read of the stream still under way; one that failed ends the upload.
        await stream.return?.();
        throwIfSourceFailed();
        stream = blob.open(offset)[Symbol.asyncIterator]();
        next = await stream.next();
      }
    }
  } finally {
    await stream.return?.();
  }
  const digest = blob.finish();
  await commitUpload(
    client,
    location,
    { digest, describe: blob.describe },
    `complete upload of ${blob.describe} as ${digest}`,
  );
  return digest;
}

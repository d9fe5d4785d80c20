/**
 * Uploads of a stream whose digest and length are known only at its end (a layer compressed on
 * the fly): one `PATCH` with chunked transfer encoding, as `docker push` sends, then
 * `PUT ?digest=` with the digest the stream turned out to have.
 */
import type { RegistryClient } from "./client.ts";
import { resolveLocation } from "./location.ts";
import type { BodySource } from "./transport.ts";
import { cancelSession, openSession } from "./uploads.ts";
import { commitUpload } from "./upload_common.ts";

export interface StreamedBlob {
  /** Human name for errors: `app.tar:blobs/sha256/ab… (gzip)`. */
  describe: string;
  /** The bytes, read once. */
  chunks: AsyncIterable<Uint8Array>;
  /**
   * Called once every byte is sent, before the registry is asked to commit: the stream's
   * digest. Throws to abandon the upload (the input did not match its digest).
   */
  finish: () => string;
  /** Bytes handed to the socket so far. */
  onProgress?: (sent: number) => void;
  /** The stream's length, when known: sent as `Content-Length` instead of chunked encoding. */
  length?: number;
}

/** Uploads `blob` into a new session; returns the digest it was stored under. */
export async function uploadStreamed(client: RegistryClient, blob: StreamedBlob): Promise<string> {
  const session = await openSession(client, `start upload of ${blob.describe}`);
  try {
    let used = false;
    const body: BodySource = {
      ownsChunks: true,
      ...(blob.length !== undefined ? { length: blob.length } : {}),
      open() {
        if (used) throw new Error(`${blob.describe}: a streamed body cannot be sent twice`);
        used = true;
        return blob.chunks;
      },
    };
    const action = `upload ${blob.describe}`;
    const patched = await client.request({
      method: "PATCH",
      url: session.url,
      headers: { "Content-Type": "application/octet-stream" },
      body,
      expect: [202],
      action,
      retry: false,
      ...(blob.onProgress ? { onBodyProgress: blob.onProgress } : {}),
    });
    await patched.discard();
    const digest = blob.finish();
    const location = resolveLocation(
      patched.headers.get("location") ?? session.url.href,
      session.url,
      action,
    );
    await commitUpload(
      client,
      location,
      { digest, describe: blob.describe },
      `complete upload of ${blob.describe} as ${digest}`,
    );
    return digest;
  } catch (error) {
    await cancelSession(client, session.url);
    throw error;
  }
}

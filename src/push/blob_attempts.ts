/**
 * The attempts of one blob upload, shared by blobs sent as stored and layers compressed on the
 * way: a failure worth retrying backs off and tries the blob again (continuing its saved
 * session, when it has one), and a session the registry lost starts the blob again in a new
 * one. Both count against `--retry-attempts` for that blob.
 */
import type { RegistryClient } from "../registry/client.ts";
import { isRetryable, withRetries } from "../registry/retry.ts";
import { UploadSessionLostError } from "../registry/upload_errors.ts";

/** The blob as the progress events name it. */
export interface AttemptedBlob {
  digest: string;
  size: number;
}

export interface BlobAttemptsOptions {
  /**
   * Called when the registry lost the blob's session mid-upload, before the next attempt:
   * forget what was saved of it, and pick how the next attempt sends it.
   */
  onSessionLost: (error: UploadSessionLostError) => Promise<void>;
  /**
   * Each attempt announces itself, calling the `started` it is given once its bytes are to go
   * (with `from`, the bytes its session holds already, when it continues one): an upload that
   * tries a cross-repository mount first sends none when the mount takes the blob, and must not
   * have said it was uploading. Default false: each attempt is announced as it begins.
   */
  startsLate?: boolean;
}

/**
 * Runs `attempt` for `blob` until it succeeds, fails in a way retrying can't help, or the
 * retries run out. Each attempt is announced (`blob-start` with its number, once; see
 * `startsLate`), so the progress display drops the bytes of a failed one; each retry says why
 * (`retry`).
 */
export async function attemptBlob<T>(
  client: RegistryClient,
  blob: AttemptedBlob,
  attempt: (started: (from?: number) => void) => Promise<T>,
  options: BlobAttemptsOptions,
): Promise<T> {
  const retry = client.retryOptions({ kind: "blob", digest: blob.digest });
  return await withRetries(async (n) => {
    let announced = false;
    const started = (from = 0) => {
      if (announced) return;
      announced = true;
      client.sink({
        type: "blob-start",
        digest: blob.digest,
        size: blob.size,
        attempt: n,
        // Bytes the registry confirmed already: the rate and ETA count only what moves now.
        ...(from > 0 ? { from } : {}),
      });
    };
    if (options.startsLate !== true) started();
    try {
      return await attempt(started);
    } catch (error) {
      if (error instanceof UploadSessionLostError && !client.signal?.aborted) {
        await options.onSessionLost(error);
      }
      throw error;
    }
  }, {
    ...retry,
    retryable: (error) => error instanceof UploadSessionLostError || isRetryable(error),
    onRetry: (info) =>
      retry.onRetry?.(
        info.error instanceof UploadSessionLostError
          ? {
            ...info,
            error: new Error(`${info.error.message}; starting the blob again in a new session`),
          }
          : info,
      ),
  });
}

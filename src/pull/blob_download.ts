/**
 * Downloading one blob: `GET /v2/<name>/blobs/<digest>`, streamed to a writer in constant
 * memory and hashed on the way, resumed with `Range: bytes=N-` after a cut or from a saved
 * prefix. Redirects to object storage are followed without `Authorization` (the client never
 * sends credentials to another host); each retry asks the registry again, so an expired signed
 * URL is replaced by a fresh one.
 *
 * | answer                                   | action                                         |
 * |------------------------------------------|------------------------------------------------|
 * | 206 from the offset asked for            | continue the blob there                        |
 * | 200 to a Range request (range ignored)   | start over (a file), or skip what we have (a pipe) |
 * | 206 from another offset                  | start over without a Range                     |
 * | cut, reset, timeout mid-body             | retry from the bytes in place, with backoff    |
 * | all bytes in, digest differs             | fail; once start over if the prefix was saved  |
 */
import { createHash, type Hash } from "node:crypto";
import type { RegistryClient } from "../registry/client.ts";
import { isRetryable } from "../registry/retry.ts";
import { NetworkError } from "../registry/registry_error.ts";
import { BlobDigestError, PullError } from "./pull_errors.ts";

/** What is in place of a blob so far: a byte count and the running sha256 of those bytes. */
export class BlobTally {
  done = 0;
  #hash: Hash = createHash("sha256");

  constructor(readonly digest: string, readonly size: number) {}

  add(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.done += chunk.length;
  }

  reset(): void {
    this.#hash = createHash("sha256");
    this.done = 0;
  }

  /** The sha256 (hex) of the bytes in place, without ending the running hash. */
  prefixHex(): string {
    return this.#hash.copy().digest("hex");
  }
}

/** Where a blob's bytes go. */
export interface BlobWriter {
  /** Writes `chunk` at offset `at` within the blob (the next byte after those in place). */
  write(chunk: Uint8Array, at: number): Promise<void>;
  /** Whether bytes already written can be written again from the start (a file, not a pipe). */
  readonly rewritable: boolean;
}

export interface DownloadOptions {
  /** The tally's bytes came from an earlier run (a saved, re-hashed prefix). */
  resumed?: boolean;
  /** Called after each chunk is in place, with the tally. */
  onProgress?: (tally: BlobTally) => void;
  /** Called when the blob starts over from byte 0 (and why), for a notice. */
  onRestart?: (reason: string) => void;
}

/**
 * Downloads the rest of `tally`'s blob into `writer`, from `tally.done` on; resolves once all of
 * it is in place and its digest checked. Throws {@linkcode BlobDigestError} on a mismatch.
 */
export async function downloadBlob(
  client: RegistryClient,
  tally: BlobTally,
  writer: BlobWriter,
  options: DownloadOptions = {},
): Promise<void> {
  const { digest, size } = tally;
  let resumed = options.resumed === true && tally.done > 0;
  let failures = 0;
  const restart = (reason: string) => {
    tally.reset();
    resumed = false;
    options.onRestart?.(reason);
  };
  for (;;) {
    if (tally.done === size) {
      const actual = `sha256:${tally.prefixHex()}`;
      if (actual === digest) return;
      if (resumed && writer.rewritable) {
        restart(`the bytes kept from an earlier run did not make ${digest}`);
        continue;
      }
      throw new BlobDigestError(digest, actual, `${client.registryName}/${client.repository}`);
    }
    const from = tally.done;
    const response = await client.request({
      method: "GET",
      url: client.url(`blobs/${digest}`),
      headers: from > 0 ? { Range: `bytes=${from}-` } : {},
      expect: [200, 206],
      action: `download blob ${digest}`,
      followRedirects: true,
    });
    let skip = 0;
    if (from > 0 && response.status === 200) {
      if (writer.rewritable) restart("the registry ignored the Range request");
      else skip = from; // a pipe keeps what it sent: read past those bytes
    } else if (response.status === 206) {
      const start = /^bytes (\d+)-/.exec(response.headers.get("content-range") ?? "")?.[1];
      if (start === undefined || Number(start) !== from) {
        await response.discard();
        if (!writer.rewritable) {
          throw new PullError(
            `The registry answered a Range request for ${digest} from the wrong offset`,
          );
        }
        restart(`the registry answered the Range request from byte ${start ?? "?"}`);
        continue;
      }
    }
    const before = tally.done;
    try {
      for await (let chunk of response.stream()) {
        if (skip > 0) {
          const dropped = Math.min(skip, chunk.length);
          skip -= dropped;
          chunk = chunk.subarray(dropped);
          if (chunk.length === 0) continue;
        }
        if (tally.done + chunk.length > size) {
          throw new PullError(`Blob ${digest} is larger than its descriptor's ${size} bytes`);
        }
        await writer.write(chunk, tally.done);
        tally.add(chunk);
        options.onProgress?.(tally);
      }
      if (tally.done < size) {
        throw new NetworkError("GET", `blob ${digest}`, "response ended early", {
          temporary: true,
        });
      }
    } catch (error) {
      if (client.signal?.aborted || !isRetryable(error)) throw error;
      // A long download over a flaky link goes on as long as each attempt moves bytes.
      failures = tally.done > before ? 1 : failures + 1;
      if (failures > client.retries) throw error;
      await client.waitBeforeRetry(`download blob ${digest}`, failures + 1, error);
    }
  }
}

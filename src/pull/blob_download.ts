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
import { answerOf } from "../registry/answer_class.ts";
import { fetchBlob } from "../registry/blobs.ts";
import type { RegistryClient } from "../registry/client.ts";
import { NetworkError } from "../registry/registry_error.ts";
import { BlobDigestError, PullError } from "./pull_errors.ts";
import { localHash, type RunningHash } from "./running_hash.ts";

/** What is in place of a blob so far: a byte count and the running sha256 of those bytes. */
export class BlobTally {
  done = 0;
  readonly #hash: RunningHash;

  /** `hash` defaults to one on this thread. */
  constructor(readonly digest: string, readonly size: number, hash: RunningHash = localHash()) {
    this.#hash = hash;
  }

  /** Counts bytes now in place; resolves once they are hashed. Leave `chunk` unchanged till then. */
  add(chunk: Uint8Array): Promise<void> {
    this.done += chunk.length;
    return this.#hash.update(chunk);
  }

  reset(): void {
    this.#hash.reset();
    this.done = 0;
  }

  /**
   * The sha256 (hex) of the bytes in place, without ending the running hash: of the `done`
   * bytes counted when this is called.
   */
  prefixHex(): Promise<string> {
    return this.#hash.hex();
  }
}

/** Where a blob's bytes go. */
export interface BlobWriter {
  /**
   * Writes `chunk` at offset `at` within the blob (the next byte after those in place),
   * resolving once it is in place. `chunk` is lent: its buffer is filled again after that, so
   * a writer that holds on to the bytes keeps a copy.
   */
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
      const actual = `sha256:${await tally.prefixHex()}`;
      if (actual === digest) return;
      if (resumed && writer.rewritable) {
        restart(`the bytes kept from an earlier run did not make ${digest}`);
        continue;
      }
      throw new BlobDigestError(digest, actual, `${client.registryName}/${client.repository}`);
    }
    const from = tally.done;
    const { response, start, whole } = await fetchBlob(client, digest, from);
    let skip = 0;
    if (from > 0 && whole) {
      if (writer.rewritable) restart("the registry ignored the Range request");
      else skip = from; // a pipe keeps what it sent: read past those bytes
    } else if (!whole && start !== from) {
      await response.discard();
      if (!writer.rewritable) {
        throw new PullError(
          `The registry answered a Range request for ${digest} from the wrong offset`,
        );
      }
      restart(`the registry answered the Range request from byte ${start ?? "?"}`);
      continue;
    }
    const before = tally.done;
    const batches = new Batches(tally, writer, options.onProgress, size - tally.done);
    try {
      try {
        for await (let chunk of response.stream()) {
          if (skip > 0) {
            const dropped = Math.min(skip, chunk.length);
            skip -= dropped;
            chunk = chunk.subarray(dropped);
            if (chunk.length === 0) continue;
          }
          if (batches.end + chunk.length > size) {
            throw new PullError(`Blob ${digest} is larger than its descriptor's ${size} bytes`);
          }
          await batches.add(chunk);
        }
      } finally {
        // What arrived before a cut is as good as the rest: keep it, so the resume asks for
        // nothing twice. A write that fails wins over the download's error.
        await batches.flush();
      }
      if (tally.done < size) {
        throw new NetworkError("GET", `blob ${digest}`, "response ended early", {
          temporary: true,
        });
      }
    } catch (error) {
      if (client.signal?.aborted || answerOf(error).kind !== "retry") throw error;
      // A long download over a flaky link goes on as long as each attempt moves bytes.
      failures = tally.done > before ? 1 : failures + 1;
      if (failures > client.retries) throw error;
      await client.waitBeforeRetry({ kind: "download", digest }, failures + 1, error);
    }
  }
}

/**
 * Bytes gathered from the network before one write and one message to the hashing worker. A
 * read is smaller (what arrived, up to the transport's buffer: tens to hundreds of KB), and a
 * write, a hash request and a progress event per read cost more than copying reads together.
 */
const BATCH_BYTES = 1024 * 1024;

/**
 * A blob's bytes on their way to the writer: gathered into batches of {@linkcode BATCH_BYTES},
 * one batch written (then hashed) while the next fills (two buffers, used in turn). Each batch
 * joins the tally (and so the saved state and the digest) only once written, so the tally never
 * counts a byte that is not in place.
 */
class Batches {
  readonly #tally: BlobTally;
  readonly #writer: BlobWriter;
  readonly #onProgress: ((tally: BlobTally) => void) | undefined;
  #filling: Uint8Array | undefined;
  #spare: Uint8Array | undefined;
  #fill = 0;
  #writing: Promise<void> | undefined;
  #writingBytes = 0;
  readonly #batchBytes: number;

  /** `expected`: the bytes still to come (a small blob gets buffers of its size). */
  constructor(
    tally: BlobTally,
    writer: BlobWriter,
    onProgress: ((tally: BlobTally) => void) | undefined,
    expected: number,
  ) {
    this.#tally = tally;
    this.#writer = writer;
    this.#onProgress = onProgress;
    this.#batchBytes = Math.max(1, Math.min(BATCH_BYTES, expected));
  }

  /** Offset within the blob of the next byte added. */
  get end(): number {
    return this.#tally.done + this.#writingBytes + this.#fill;
  }

  /** Takes `chunk` (copied: the caller may reuse it), writing a batch once one is full. */
  async add(chunk: Uint8Array): Promise<void> {
    for (let at = 0; at < chunk.length;) {
      if (this.#filling === undefined) {
        // Shared memory, so a hashing worker reads a batch where it is (see running_hash.ts).
        this.#filling = this.#spare ?? new Uint8Array(new SharedArrayBuffer(this.#batchBytes));
        this.#spare = undefined;
      }
      const n = Math.min(chunk.length - at, this.#filling.length - this.#fill);
      this.#filling.set(chunk.subarray(at, at + n), this.#fill);
      this.#fill += n;
      at += n;
      if (this.#fill === this.#filling.length) await this.#write();
    }
  }

  /** Writes what is gathered and waits for every write; throws a failed write's error. */
  async flush(): Promise<void> {
    if (this.#fill > 0) await this.#write();
    await this.#writing;
  }

  /** Waits for the batch being written (at most one is), then starts writing the filled one. */
  async #write(): Promise<void> {
    await this.#writing;
    const buffer = this.#filling!;
    const bytes = buffer.subarray(0, this.#fill);
    this.#filling = undefined;
    this.#fill = 0;
    this.#writingBytes = bytes.length;
    const tally = this.#tally;
    const writing = this.#writer.write(bytes, tally.done).then(async () => {
      // In place: the tally counts the bytes from now on, their hash follows.
      this.#writingBytes = 0;
      await tally.add(bytes);
      this.#writing = undefined;
      this.#spare = buffer;
      this.#onProgress?.(tally);
    });
    // Awaited by the next write or the flush; until then its failure is not "unhandled".
    writing.catch(() => {});
    this.#writing = writing;
  }
}

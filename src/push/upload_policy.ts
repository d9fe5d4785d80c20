/**
 * How each blob goes up: monolithic or chunked, mount first or not, and what to do when a
 * registry turns a method away. Decisions learnt on one blob (chunks refused, a smaller chunk
 * size after a 413) hold for the rest of the push.
 */
import type { ArchiveBlob } from "../archive/image.ts";
import type { RegistryClient } from "../registry/client.ts";
import { answerOf } from "../registry/answer_class.ts";
import type { ResumeStore } from "./resume_store.ts";
import { attemptBlob } from "./blob_attempts.ts";
import type { ChunkSettings, UploadOptions, UploadOutcome } from "../registry/upload_common.ts";
import { ChunkedUploadRefusedError, SavedSessionGoneError } from "../registry/upload_errors.ts";
import { uploadBlob } from "../registry/uploads.ts";

/**
 * What a refusal of chunks advises when chunks were asked for, in the library's terms; the CLI
 * says the same with its flag.
 */
export const ONE_REQUEST_ADVICE = "set chunked to false to upload in one request";

/**
 * `auto` chunks blobs at or above the threshold, but falls back to one PUT when the registry
 * refuses chunks, and starts that way on ECR; `always` (`--chunked`) chunks at the threshold
 * with no fallback; `never` (`--no-chunked`) always sends one PUT.
 */
export type ChunkedMode = "auto" | "always" | "never";

export interface UploadPolicyOptions {
  largeLayerThreshold: number;
  chunkSize: number;
  chunked: ChunkedMode;
  mountFrom?: string;
  /** Where chunked uploads save their progress; absent with `--no-resume`. */
  resume?: ResumeStore;
}

/** What one attempt of a blob goes with: where to mount it from first, and how to announce it. */
interface AttemptSettings {
  mountFrom: string | undefined;
  /**
   * Announces the attempt (`blob-start`): called once its bytes are to go, not before a mount,
   * with what a continued session holds already (`from`).
   */
  started: (from: number) => void;
}

/** Smallest chunk a 413 may shrink chunks to. */
const MIN_SHRUNK_CHUNK = 1024 * 1024;

/**
 * ECR has silently dropped chunks of PATCH uploads (see PROTOCOL.md): monolithic streaming is
 * the safe default there. `--chunked` still forces chunks.
 */
export function isEcrHost(host: string): boolean {
  return /\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?(:\d+)?$/i.test(host);
}

export class UploadPolicy {
  #client: RegistryClient;
  #options: UploadPolicyOptions;
  #chunks: ChunkSettings;
  #chunksOff: boolean;
  /** A session was lost: blobs go in as few requests as the registry takes. */
  #oneRequest = false;
  /** The registry refused a body as too large (413). */
  #refusedTooLarge = false;

  constructor(client: RegistryClient, options: UploadPolicyOptions) {
    this.#client = client;
    this.#options = options;
    this.#chunks = {
      size: options.chunkSize,
      minSize: Math.min(options.chunkSize, MIN_SHRUNK_CHUNK),
    };
    this.#chunksOff = options.chunked === "never" ||
      (options.chunked === "auto" && isEcrHost(client.baseUrl.host));
  }

  /**
   * Uploads (or mounts) one blob, retrying it whole on failure. A chunked upload continues
   * its saved session (from this run's earlier attempt, or an earlier run) when there is one;
   * a session the registry lost starts the blob again (see {@linkcode attemptBlob}).
   * `inChunks` sends it in chunks whatever its size (a body-size cap refused it whole).
   */
  async upload(
    blob: ArchiveBlob,
    mountFrom = this.#options.mountFrom,
    { inChunks = false } = {},
  ): Promise<UploadOutcome> {
    const outcome = await attemptBlob(this.#client, blob, async (started) => {
      const chunked = inChunks || this.chunks(blob);
      const how = { mountFrom, started };
      try {
        return await this.#uploadOnce(blob, chunked, how);
      } catch (error) {
        return await this.#fallBack(blob, chunked, error, how);
      }
    }, {
      // A mount tried first may take the blob: it is announced only once its bytes are to go.
      startsLate: true,
      onSessionLost: async () => {
        await this.forget(blob);
        this.sessionLost();
      },
    });
    await this.forget(blob);
    return outcome;
  }

  /**
   * The registry lost a session mid-upload. Behind a front end that forwards request bodies
   * as they arrive (Harbor's nginx, a registry reached directly), a request cut off mid-body
   * spoils the whole session, so each request of a blob is another chance to lose all of it:
   * from now on, in `auto` mode, blobs go in one request each, or in chunks as large as a
   * body-size cap (413) allows. `--chunked` keeps its chunks.
   */
  sessionLost(): void {
    if (this.#options.chunked !== "auto" || this.#oneRequest) return;
    this.#oneRequest = true;
    this.#client.sink({
      type: "notice",
      kind: "session-lost-fallback",
      message: `${this.#client.registryName} lost an upload session; sending each blob in ` +
        (this.#capped ? `chunks of ${this.#chunks.size} bytes (its size limit)` : "one request") +
        " from now on",
    });
  }

  /** Whether `blob` goes up in (resumable) chunks, as things stand in this push. */
  chunks(blob: ArchiveBlob): boolean {
    if (this.#chunksOff || blob.size < this.#options.largeLayerThreshold) return false;
    // After a lost session, only a body-size cap keeps blobs in chunks.
    return !this.#oneRequest || (this.#capped && blob.size > this.#chunks.size);
  }

  /**
   * For a layer compressed on the way (its length unknown until the end): the size of its
   * resumable segments, or undefined to send it in one streamed request.
   */
  segmentSize(blob: ArchiveBlob): number | undefined {
    return this.chunks(blob) ? this.#chunks.size : undefined;
  }

  /** Bytes per chunk, as things stand in this push (a 413 may have lowered it). */
  get chunkSize(): number {
    return this.#chunks.size;
  }

  /** Drops saved progress for a blob the registry now has. */
  async forget(blob: ArchiveBlob): Promise<void> {
    await this.#options.resume?.remove(this.#registry, this.#client.repository, blob.digest);
  }

  /** Whether a body-size cap keeps requests at most `#chunks.size` bytes. */
  get #capped(): boolean {
    return this.#refusedTooLarge || this.#chunks.size < this.#options.chunkSize;
  }

  get #registry(): string {
    return this.#client.baseUrl.host;
  }

  /**
   * One attempt: continue the saved session if there is one, else start one. A saved session
   * the registry no longer has (expired, or spoilt by a request cut off mid-body or whose
   * answer was lost) means starting the blob again, in this attempt.
   */
  async #uploadOnce(
    blob: ArchiveBlob,
    chunked: boolean,
    how: AttemptSettings,
  ): Promise<UploadOutcome> {
    const store = this.#options.resume;
    const saved = chunked && store
      ? await store.load(this.#registry, this.#client.repository, blob.digest)
      : undefined;
    const options = this.#uploadOptions(blob, chunked, how);
    if (saved) {
      this.#client.sink({
        type: "notice",
        kind: "upload-resumed",
        digest: blob.digest,
        message: `Resuming the saved upload of ${blob.digest} (${saved.offset} of ${blob.size} ` +
          "bytes were confirmed)",
      });
      try {
        return await uploadBlob(this.#client, blob, {
          ...options,
          resume: new URL(saved.location),
        });
      } catch (error) {
        if (!(error instanceof SavedSessionGoneError)) throw error;
        this.#client.sink({
          type: "notice",
          kind: "upload-restarted",
          digest: blob.digest,
          message: `Uploading ${blob.digest} from the start: ${error.message}`,
        });
        await this.forget(blob);
      }
    }
    return await uploadBlob(this.#client, blob, options);
  }

  #uploadOptions(
    blob: ArchiveBlob,
    chunked: boolean,
    { mountFrom, started }: AttemptSettings,
  ): UploadOptions {
    const client = this.#client;
    const store = this.#options.resume;
    return {
      ...(chunked ? { chunks: this.#chunks } : {}),
      ...(mountFrom !== undefined ? { mountFrom } : {}),
      onStart: started,
      onProgress: (done) =>
        client.sink({ type: "blob-progress", digest: blob.digest, done, size: blob.size }),
      ...(chunked && store
        ? {
          keepSessionOnFailure: true,
          onCommitted: async (location: URL, offset: number) => {
            await store.save({
              registry: this.#registry,
              repository: client.repository,
              digest: blob.digest,
              location: location.href,
              offset,
            });
          },
        }
        : {}),
    };
  }

  /** In `auto` mode, a method the registry refuses is swapped for the other one. */
  async #fallBack(
    blob: ArchiveBlob,
    chunked: boolean,
    error: unknown,
    how: AttemptSettings,
  ): Promise<UploadOutcome> {
    const client = this.#client;
    const mode = this.#options.chunked;
    if (error instanceof ChunkedUploadRefusedError) {
      if (mode !== "auto") {
        throw new Error(`${error.message}; ${ONE_REQUEST_ADVICE}`, {
          cause: error,
        });
      }
      if (!this.#chunksOff) {
        this.#chunksOff = true;
        client.sink({
          type: "notice",
          kind: "chunks-refused-fallback",
          message: `${error.message}; uploading each blob in one request instead`,
        });
      }
      return await uploadBlob(client, blob, this.#uploadOptions(blob, false, how));
    }
    const tooLarge = answerOf(error).kind === "too-large";
    if (tooLarge) this.#refusedTooLarge = true;
    if (tooLarge && !chunked && mode === "auto" && blob.size > this.#chunks.minSize) {
      // The registry took less than the whole blob: start chunks at half of what it refused.
      this.#chunks.size = Math.max(
        this.#chunks.minSize,
        Math.min(this.#chunks.size, Math.floor(blob.size / 2)),
      );
      client.sink({
        type: "notice",
        kind: "too-large-chunked",
        digest: blob.digest,
        message: `${client.registryName} refused ${blob.size} bytes in one request (413); ` +
          `uploading ${blob.digest} in chunks`,
      });
      return await uploadBlob(client, blob, this.#uploadOptions(blob, true, how));
    }
    throw error;
  }
}

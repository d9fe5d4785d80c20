/**
 * How each blob goes up: monolithic or chunked, mount first or not, and what to do when a
 * registry turns a method away. Decisions learnt on one blob (chunks refused, a smaller chunk
 * size after a 413) hold for the rest of the push.
 */
import type { ArchiveBlob } from "../archive/image.ts";
import type { RegistryClient } from "../registry/client.ts";
import { RegistryError } from "../registry/registry_error.ts";
import { withRetries } from "../registry/retry.ts";
import { UploadSessionExpiredError } from "../registry/chunked_upload.ts";
import type { ResumeStore } from "./resume_store.ts";
import {
  ChunkedUploadRefusedError,
  type ChunkSettings,
  uploadBlob,
  type UploadOptions,
  type UploadOutcome,
} from "../registry/uploads.ts";

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
   * its saved session (from this run's earlier attempt, or an earlier run) when there is one.
   * `inChunks` sends it in chunks whatever its size (a body-size cap refused it whole).
   */
  async upload(
    blob: ArchiveBlob,
    mountFrom = this.#options.mountFrom,
    { inChunks = false } = {},
  ): Promise<UploadOutcome> {
    const client = this.#client;
    const outcome = await withRetries(async (attempt) => {
      client.sink({ type: "blob-start", digest: blob.digest, size: blob.size, attempt });
      const chunked = inChunks || this.chunks(blob);
      try {
        return await this.#uploadOnce(blob, chunked, mountFrom);
      } catch (error) {
        return await this.#fallBack(blob, chunked, error, mountFrom);
      }
    }, client.retryOptions(`blob ${blob.digest}`));
    await this.forget(blob);
    return outcome;
  }

  /** Whether `blob` goes up in (resumable) chunks, as things stand in this push. */
  chunks(blob: ArchiveBlob): boolean {
    return !this.#chunksOff && blob.size >= this.#options.largeLayerThreshold;
  }

  /** Bytes per chunk, as things stand in this push (a 413 may have lowered it). */
  get chunkSize(): number {
    return this.#chunks.size;
  }

  /** Drops saved progress for a blob the registry now has. */
  async forget(blob: ArchiveBlob): Promise<void> {
    await this.#options.resume?.remove(this.#registry, this.#client.repository, blob.digest);
  }

  get #registry(): string {
    return this.#client.baseUrl.host;
  }

  /**
   * One attempt: continue the saved session if there is one, else start one. A session the
   * registry has discarded (expired, or spoilt by a chunk cut off mid-body) means starting the
   * blob again, once, in this attempt.
   */
  async #uploadOnce(
    blob: ArchiveBlob,
    chunked: boolean,
    mountFrom: string | undefined,
  ): Promise<UploadOutcome> {
    const store = this.#options.resume;
    const saved = chunked && store
      ? await store.load(this.#registry, this.#client.repository, blob.digest)
      : undefined;
    if (saved) {
      this.#client.sink({
        type: "notice",
        message: `Resuming the saved upload of ${blob.digest} (${saved.offset} of ${blob.size} ` +
          "bytes were confirmed)",
      });
    }
    const options = this.#uploadOptions(blob, chunked, mountFrom);
    try {
      return await uploadBlob(this.#client, blob, {
        ...options,
        ...(saved ? { resume: new URL(saved.location) } : {}),
      });
    } catch (error) {
      if (!(error instanceof UploadSessionExpiredError)) throw error;
      this.#client.sink({
        type: "notice",
        message: `Uploading ${blob.digest} from the start: ${error.message}`,
      });
      await this.forget(blob);
      return await uploadBlob(this.#client, blob, options);
    }
  }

  #uploadOptions(
    blob: ArchiveBlob,
    chunked: boolean,
    mountFrom: string | undefined,
  ): UploadOptions {
    const client = this.#client;
    const store = this.#options.resume;
    return {
      ...(chunked ? { chunks: this.#chunks } : {}),
      ...(mountFrom !== undefined ? { mountFrom } : {}),
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
    mountFrom: string | undefined,
  ): Promise<UploadOutcome> {
    const client = this.#client;
    const mode = this.#options.chunked;
    if (error instanceof ChunkedUploadRefusedError) {
      if (mode !== "auto") {
        throw new Error(`${error.message}; use --no-chunked to upload in one request`, {
          cause: error,
        });
      }
      if (!this.#chunksOff) {
        this.#chunksOff = true;
        client.sink({
          type: "notice",
          message: `${error.message}; uploading each blob in one request instead`,
        });
      }
      return await uploadBlob(client, blob, this.#uploadOptions(blob, false, mountFrom));
    }
    const tooLarge = error instanceof RegistryError && error.status === 413;
    if (tooLarge && !chunked && mode === "auto" && blob.size > this.#chunks.minSize) {
      // The registry took less than the whole blob: start chunks at half of what it refused.
      this.#chunks.size = Math.max(
        this.#chunks.minSize,
        Math.min(this.#chunks.size, Math.floor(blob.size / 2)),
      );
      client.sink({
        type: "notice",
        message: `${client.registryName} refused ${blob.size} bytes in one request (413); ` +
          `uploading ${blob.digest} in chunks`,
      });
      return await uploadBlob(client, blob, this.#uploadOptions(blob, true, mountFrom));
    }
    throw error;
  }
}

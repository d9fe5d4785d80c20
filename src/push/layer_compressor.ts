/**
 * Where a layer is compressed: layers the archive holds uncompressed, compressed on the worker
 * pool in one pass while hashed and uploaded, and remembered in the blob-info cache for next
 * time (a later push finds the compressed form there, see `blob_sources.ts`, and compresses
 * nothing).
 */
import type { ArchiveBlob } from "../archive/image.ts";
import { type Codec, CODER, type Compression } from "../compress/codec.ts";
import { BlockBudget, compressBlob, type CompressedStream } from "../compress/compress_blob.ts";
import { LevelControl } from "../compress/level_control.ts";
import { CompressorPool } from "../compress/worker_pool.ts";
import type { BlobSource } from "../image/graph.ts";
import type { RegistryClient } from "../registry/client.ts";
import { uploadStreamed } from "../registry/streamed_upload.ts";
import { HeldStream } from "./held_stream.ts";
import { broadcast } from "./broadcast.ts";
import {
  BlobDigestMismatchError,
  digestMismatch,
  SavedSessionGoneError,
} from "../registry/upload_errors.ts";
import { uploadInSegments } from "../registry/segmented_upload.ts";
import { attemptBlob } from "./blob_attempts.ts";
import type { BlobInfoCache, CompressedInfo } from "./blob_info_cache.ts";
import type { ResumeStore, UploadRecord } from "./resume_store.ts";
import { compressedLayerType } from "./manifest_rewrite.ts";
import type { Descriptor } from "../image/descriptor.ts";

export interface LayerCompressorOptions {
  codec: Codec;
  level: number | "auto";
  cache?: BlobInfoCache;
  /** Where resumable uploads save their progress; absent with `--no-resume`. */
  resume?: ResumeStore;
  /** `--mount-from`: tried first for layers whose compressed form the cache knows. */
  mountFrom?: string;
  /** Workers (default: one per core). */
  workers?: number;
}

/** How a compressed layer goes up, decided afresh for each attempt (see `UploadPolicy`). */
export interface SegmentPlan {
  /** Bytes per resumable segment, or undefined for one streamed request. */
  segmentSize(blob: ArchiveBlob): number | undefined;
  /** The registry lost a session mid-upload. */
  sessionLost(): void;
}

export class LayerCompressor {
  #options: LayerCompressorOptions;
  #pool: CompressorPool;
  #control: LevelControl;
  #window: number;
  #budget: BlockBudget;
  /**
   * The level of every block of each layer this run compressed: a second registry gets the
   * same stream (so the same digests, and the same manifest) by compressing it again at them.
   */
  #levels = new Map<string, readonly number[]>();

  constructor(options: LayerCompressorOptions) {
    this.#options = options;
    this.#pool = new CompressorPool(options.workers);
    this.#control = new LevelControl(options.codec, options.level);
    // Enough blocks in flight to keep every worker busy on one layer, and one ready to send;
    // all layers together, one more than that.
    const workers = options.workers ?? (navigator.hardwareConcurrency || 1);
    this.#window = workers + 1;
    this.#budget = new BlockBudget(workers + 2);
  }

  /** The codec layers are compressed with. */
  get codec(): Codec {
    return this.#options.codec;
  }

  get #setting(): { codec: Codec; level: number | "auto" } {
    return { codec: this.#options.codec, level: this.#options.level };
  }

  /** The compressed form of the layer with this digest, if an earlier push recorded it. */
  knownForm(digest: string): CompressedInfo | undefined {
    return this.#options.cache?.compressed(digest, this.#setting);
  }

  /** The descriptor `blob` gets once compressed, if an earlier push recorded it. */
  known(blob: ArchiveBlob): Descriptor | undefined {
    const info = this.#options.cache?.compressed(blob.digest, this.#setting);
    return info && { mediaType: this.#mediaType(blob), ...info };
  }

  /**
   * Where a compressed form the cache knows may be mounted from, in the order to try:
   * `--mount-from`, then the repositories of the registry that the cache says hold it. Two at
   * most: a declined mount costs a request, and the upload remains.
   */
  mountSources(client: RegistryClient, descriptor: Descriptor): string[] {
    const known = this.#options.cache?.repositoriesWith(descriptor.digest, client.baseUrl.host) ??
      [];
    const first = this.#options.mountFrom;
    const sources = first === undefined ? known : [first, ...known.filter((r) => r !== first)];
    return sources.filter((r) => r !== client.repository).slice(0, 2);
  }

  /**
   * Compresses and uploads `blob`, retrying it whole (see {@linkcode attemptBlob}); returns its
   * new descriptor. Each attempt asks `plan` how: in resumable segments of about a chunk (see
   * {@linkcode uploadInSegments}), or in one streamed request.
   */
  async upload(client: RegistryClient, blob: ArchiveBlob, plan: SegmentPlan): Promise<Descriptor> {
    const result = await attemptBlob(client, blob, async () => {
      const segmentSize = plan.segmentSize(blob);
      return segmentSize === undefined
        ? await this.#uploadWhole(client, blob)
        : await this.#uploadResumable(client, blob, segmentSize);
    }, {
      onSessionLost: async () => {
        await this.#options.resume?.remove(client.baseUrl.host, client.repository, this.#key(blob));
        plan.sessionLost();
      },
    });
    this.#options.cache?.recordCompressed(blob.digest, this.#setting, result);
    return { mediaType: this.#mediaType(blob), ...result };
  }

  /**
   * Compresses `blob` once and sends the stream to every one of `clients` at once, one
   * streamed request each (see `broadcast.ts`): a run with several registries compresses each
   * layer once, and every registry gets the same bytes. Returns each client's outcome; one
   * that failed does not stop the others (its push can still upload the layer on its own,
   * compressed again at the same levels).
   */
  async uploadToAll(
    clients: readonly RegistryClient[],
    blob: ArchiveBlob,
  ): Promise<({ descriptor: Descriptor } | { error: unknown })[]> {
    const stream = this.#compress(clients[0]!, blob, this.#levels.get(blob.digest));
    const branches = broadcast(stream.chunks, clients.length);
    const describe = `${blob.describe} (${this.#options.codec})`;
    const results = await Promise.all(clients.map(async (client, i) => {
      const branch = branches[i]!;
      try {
        const digest = await uploadStreamed(client, {
          describe,
          chunks: branch,
          finish: () => this.#finish(blob, stream),
        });
        const descriptor = {
          mediaType: this.#mediaType(blob),
          digest,
          size: stream.summary().size,
        };
        this.#options.cache?.recordLocation(digest, client.baseUrl.host, client.repository);
        return { descriptor };
      } catch (error) {
        return { error };
      } finally {
        branch.close();
      }
    }));
    const sent = results.find((r) => "descriptor" in r);
    if (sent !== undefined && "descriptor" in sent) {
      this.#levels.set(blob.digest, [...stream.levels]);
      const { digest, size } = sent.descriptor;
      this.#options.cache?.recordCompressed(blob.digest, this.#setting, { digest, size });
    }
    return results;
  }

  /**
   * Resume state is saved per compression setting and coder: another level, or another coder
   * (`CODER`), would make another stream.
   */
  #key(blob: ArchiveBlob): string {
    return `${blob.digest} ${this.#options.codec}:${this.#options.level} coder ${CODER}`;
  }

  /**
   * Compresses and uploads a layer that can be read only once, as it streams past (a pipe, a
   * compressed archive), in segments of `segmentSize` bytes: the compressed bytes the registry
   * has not confirmed are held (see {@linkcode HeldStream}), so a failed segment is sent again
   * from them, but a lost session cannot be started again. `expected`, when the archive named
   * the layer's digest, is checked against what was read before the registry commits anything;
   * the digest read is returned either way, and the compressed form is remembered under it.
   */
  async uploadOnce(
    client: RegistryClient,
    source: BlobSource,
    expected: string | undefined,
    segmentSize: number,
  ): Promise<{ inputDigest: string; compressed: CompressedInfo }> {
    const stream = this.#compress(client, source);
    const describe = `${source.describe} (${this.#options.codec})`;
    const held = new HeldStream(stream.chunks, describe);
    let digest: string;
    try {
      digest = await uploadInSegments(client, {
        describe,
        open: (from) => held.open(from),
        ownsChunks: false,
        segmentSize,
        onCommitted: (_location, offset) => held.confirm(offset),
        // Read once as it streamed past: no later run can continue the session.
        keepOnFailure: false,
        finish: () => {
          const summary = stream.summary();
          if (expected !== undefined && summary.inputDigest !== expected) {
            throw digestMismatch({ ...source, digest: expected });
          }
          return summary.digest;
        },
      });
    } finally {
      await held.close();
    }
    const { inputDigest, size } = stream.summary();
    const compressed = { digest, size };
    this.#options.cache?.recordCompressed(inputDigest, this.#setting, compressed);
    return { inputDigest, compressed };
  }

  /** The media type a layer of `mediaType` gets once compressed with this codec. */
  compressedType(mediaType: string): string {
    return compressedLayerType(mediaType, this.#options.codec);
  }

  #compress(
    client: RegistryClient,
    blob: BlobSource,
    levels?: readonly number[],
  ): CompressedStream {
    return compressBlob(blob, {
      pool: this.#pool,
      control: this.#control,
      window: this.#window,
      budget: this.#budget,
      ...(client.signal ? { signal: client.signal } : {}),
      ...(levels ? { levels } : {}),
      onProgress: (done) =>
        client.sink({ type: "blob-progress", digest: blob.digest, done, size: blob.size }),
    });
  }

  /** The stream's digest once it is all sent; throws if the archive's bytes were wrong. */
  #finish(blob: ArchiveBlob, stream: CompressedStream): string {
    const summary = stream.summary();
    if (summary.inputDigest !== blob.digest) throw digestMismatch(blob);
    return summary.digest;
  }

  async #uploadWhole(client: RegistryClient, blob: ArchiveBlob): Promise<CompressedInfo> {
    const stream = this.#compress(client, blob, this.#levels.get(blob.digest));
    const digest = await uploadStreamed(client, {
      describe: `${blob.describe} (${this.#options.codec})`,
      chunks: stream.chunks,
      finish: () => this.#finish(blob, stream),
    });
    this.#levels.set(blob.digest, [...stream.levels]);
    return { digest, size: stream.summary().size };
  }

  /**
   * Segments, saving after each one the session, the offset and the level of every block, so
   * a later run (or attempt) makes the same stream again and continues where the registry
   * stands. A saved session the registry no longer has means starting again, with a notice.
   */
  async #uploadResumable(
    client: RegistryClient,
    blob: ArchiveBlob,
    segmentSize: number,
  ): Promise<CompressedInfo> {
    const store = this.#options.resume;
    const registry = client.baseUrl.host;
    const key = this.#key(blob);
    const saved = await store?.load(registry, client.repository, key);
    if (saved) {
      client.sink({
        type: "notice",
        kind: "upload-resumed",
        digest: blob.digest,
        message: `Resuming the saved upload of ${blob.digest} (${saved.offset} bytes of its ` +
          `${this.#options.codec} stream were confirmed)`,
      });
    }
    const attempt = async (from?: UploadRecord): Promise<CompressedInfo> => {
      const stream = this.#compress(client, blob, from?.levels ?? this.#levels.get(blob.digest));
      const digest = await uploadInSegments(client, {
        describe: `${blob.describe} (${this.#options.codec})`,
        open: (offset) => stream.open(offset),
        finish: () => this.#finish(blob, stream),
        segmentSize,
        ...(from ? { resume: new URL(from.location) } : {}),
        ...(store
          ? {
            onCommitted: (location: URL, offset: number) =>
              store.save({
                registry,
                repository: client.repository,
                digest: key,
                location: location.href,
                offset,
                levels: [...stream.levels],
              }),
          }
          : {}),
      });
      this.#levels.set(blob.digest, [...stream.levels]);
      return { digest, size: stream.summary().size };
    };
    try {
      let result: CompressedInfo;
      try {
        result = await attempt(saved);
      } catch (error) {
        if (!(error instanceof SavedSessionGoneError)) throw error;
        client.sink({
          type: "notice",
          kind: "upload-restarted",
          digest: blob.digest,
          message: `Uploading ${blob.digest} from the start: ${error.message}`,
        });
        await store?.remove(registry, client.repository, key);
        result = await attempt();
      }
      await store?.remove(registry, client.repository, key);
      return result;
    } catch (error) {
      // A corrupt archive can't be resumed into anything good.
      if (error instanceof BlobDigestMismatchError) {
        await store?.remove(registry, client.repository, key);
      }
      throw error;
    }
  }

  /** Stops the workers. */
  close(): void {
    this.#pool.close();
  }

  #mediaType(blob: ArchiveBlob): string {
    return compressedLayerType(blob.mediaType, this.#options.codec);
  }
}

/** A push's settings that {@linkcode layerCompressor} makes a compressor from. */
export interface LayerCompressorSettings {
  /** How layers the archive holds uncompressed go up; `codec: "none"` makes no compressor. */
  compression: Compression;
  cache?: BlobInfoCache;
  /** Where resumable uploads save their progress; absent with `--no-resume`. */
  resume?: ResumeStore;
  /** `--mount-from`: tried first for layers whose compressed form the cache knows. */
  mountFrom?: string;
  /** Workers (default: one per core). */
  workers?: number;
}

/**
 * The compressor for layers stored uncompressed, as the push's settings say, or undefined when
 * they go as stored (`codec: "none"`). The one place one is made: for a run, which shares it
 * between its images and its stream (`api/push_run.ts`), and for a push of its own
 * (`push_image.ts`). The caller closes it.
 */
export function layerCompressor(settings: LayerCompressorSettings): LayerCompressor | undefined {
  if (settings.compression.codec === "none") return undefined;
  return new LayerCompressor({
    ...settings.compression,
    ...(settings.cache ? { cache: settings.cache } : {}),
    ...(settings.mountFrom !== undefined ? { mountFrom: settings.mountFrom } : {}),
    ...(settings.resume ? { resume: settings.resume } : {}),
    ...(settings.workers !== undefined ? { workers: settings.workers } : {}),
  });
}

/**
 * Large entries of a tar stream, as they go past: each is hashed and sent to the registry in the
 * same pass (compressed on the way when it is an uncompressed layer and compression is on), or
 * skipped when its digest is known before its bytes (OCI layouts and skopeo archives name blobs
 * by digest) and the registry already has it. Which image an entry belongs to is known only at
 * the end of the stream, so every large entry goes up; those no pushed image names are reported.
 */
import type { KeptData } from "../archive/streamed_index.ts";
import { ArchiveError } from "../errors.ts";
import type { StreamedTarEntry } from "../archive/tar_stream.ts";
import { digestFromBlobPath, Sha256, SHA256_HEX } from "../digest.ts";
import type { CompressedForm, ProgressSink } from "../progress/events.ts";
import { blobExists } from "../registry/blobs.ts";
import type { BlobSource } from "../image/graph.ts";
import type { RegistryClient } from "../registry/client.ts";
import { uploadInSegments } from "../registry/segmented_upload.ts";
import { HeldStream } from "./held_stream.ts";
import { BlobDigestMismatchError, digestMismatch } from "../registry/upload_errors.ts";
import type { BlobInfoCache, CompressedInfo } from "./blob_info_cache.ts";
import type { LayerCompressor } from "./layer_compressor.ts";

/** What became of one large entry. */
export interface PassedBlob {
  /** The entry's name in the archive. */
  name: string;
  /** sha256 of the entry's bytes (for a skipped entry: the digest its name gave). */
  digest: string;
  size: number;
  outcome: "uploaded" | "skipped" | "would-upload";
  /** The form the registry holds, when the layer went compressed. */
  compressed?: CompressedInfo;
}

export interface StreamBlobsOptions {
  /** Compresses uncompressed layers; absent with `--compression none`. */
  compressor?: LayerCompressor;
  /** Digests of entries seen in earlier streams (see `BlobInfoCache.entryDigest`). */
  cache?: BlobInfoCache;
  /** Upload even when the registry has the blob (`--force-upload`). */
  forceUpload: boolean;
  /** Hash and report, send nothing. */
  dryRun: boolean;
  /**
   * Bytes per request; what the registry has not confirmed of a layer is held in memory (a
   * stream can't be read again), so a failed request is sent again from there.
   */
  segmentSize: number;
  sink: ProgressSink;
}

const SKOPEO_LAYER = new RegExp(`^(${SHA256_HEX})\\.tar$`);

/** The digest an entry's name gives: `blobs/sha256/<hex>` (OCI), `<hex>.tar` (skopeo). */
export function digestFromName(name: string): string | undefined {
  const hex = SKOPEO_LAYER.exec(name)?.[1];
  return hex === undefined ? digestFromBlobPath(name) : `sha256:${hex}`;
}

/** Whether the first bytes of an entry are those of an uncompressed tar (a layer to compress). */
export function looksLikeTar(head: Uint8Array): boolean {
  if (head.length < 512) return false;
  const magic = new TextDecoder().decode(head.subarray(257, 262));
  return magic === "ustar" || head.every((b) => b === 0);
}

/** Sends (or skips) large stream entries into the client's repository. */
export class StreamBlobs {
  readonly #client: RegistryClient;
  readonly #options: StreamBlobsOptions;
  /** Every large entry so far, in stream order. */
  readonly passed: PassedBlob[] = [];

  constructor(client: RegistryClient, options: StreamBlobsOptions) {
    this.#client = client;
    this.#options = options;
  }

  /**
   * Handles one large entry, whose first bytes `head` were read already (see `peekBody` in
   * `archive/stream_archive.ts`) and `body` yields them again; returns what the index keeps of it.
   */
  async pass(
    entry: StreamedTarEntry,
    label: string,
    head: Uint8Array,
    body: AsyncIterable<Uint8Array>,
  ): Promise<KeptData> {
    const named = digestFromName(entry.name);
    const cache = this.#options.cache;
    // A digest the name gives is checked against the bytes; one an earlier stream taught us is
    // only a hint to ask the registry with.
    const hinted = named ?? cache?.entryDigest(entry.name, entry.size);
    const compressor = looksLikeTar(head) ? this.#options.compressor : undefined;
    const id = hinted ?? `${label}:${entry.name}`;
    const record = (passed: Omit<PassedBlob, "name" | "size">): KeptData => {
      this.passed.push({ name: entry.name, size: entry.size, ...passed });
      if (passed.outcome !== "skipped" && !this.#options.dryRun) {
        cache?.recordEntry(entry.name, entry.size, passed.digest);
      }
      return { kind: "passed", digest: passed.digest, head };
    };

    if (hinted !== undefined && !this.#options.forceUpload) {
      const existing = await this.#existing(hinted, compressor);
      if (existing !== undefined) {
        await drain(body);
        this.#options.sink({ type: "blob-done", digest: id, size: entry.size, outcome: "skipped" });
        return record({
          digest: hinted,
          outcome: "skipped",
          ...(existing === true ? {} : { compressed: existing }),
        });
      }
    }
    const source = oneShotSource(id, `${label}:${entry.name}`, entry.size, body);
    this.#options.sink({ type: "blob-start", digest: id, size: entry.size, attempt: 1 });
    if (this.#options.dryRun) {
      const digest = await hashAll(source, this.#options.sink);
      if (named !== undefined && digest !== named) {
        throw digestMismatch({ ...source, digest: named });
      }
      return record({ digest, outcome: "would-upload" });
    }
    try {
      if (compressor !== undefined) {
        const { inputDigest, compressed } = await compressor.uploadOnce(
          this.#client,
          source,
          named,
          this.#options.segmentSize,
        );
        // What went up is the compressed form: the renderers say both sizes.
        this.#done(id, entry.size, { size: compressed.size, codec: compressor.codec });
        return record({ digest: inputDigest, outcome: "uploaded", compressed });
      }
      const digest = await this.#uploadAsStored(source, named);
      this.#done(id, entry.size);
      return record({ digest, outcome: "uploaded" });
    } catch (error) {
      // The stream itself failed (cut short, corrupt, stalled): that is the error to report.
      if (error instanceof ArchiveError) throw error;
      if (!(error instanceof BlobDigestMismatchError) && !this.#client.signal?.aborted) {
        const why = error instanceof Error ? error.message : String(error);
        throw new StreamUploadError(
          `${source.describe} could not be sent, and a stream cannot be read again (${why}); ` +
            "run the same command again (what the registry has is skipped), or push the " +
            "archive from a file, whose layers can start again",
          { cause: error },
        );
      }
      throw error;
    }
  }

  #done(id: string, size: number, compressed?: CompressedForm): void {
    this.#options.sink({
      type: "blob-done",
      digest: id,
      size,
      outcome: "uploaded",
      ...(compressed ? { compressed } : {}),
    });
  }

  /**
   * Whether the registry has the entry named `digest`: true, or the compressed form it has of an
   * uncompressed layer (from the blob-info cache); undefined when it has neither.
   */
  async #existing(
    digest: string,
    compressor: LayerCompressor | undefined,
  ): Promise<true | CompressedInfo | undefined> {
    if (compressor === undefined) {
      return await blobExists(this.#client, digest) ? true : undefined;
    }
    const known = compressor.knownForm(digest);
    if (known === undefined || !await blobExists(this.#client, known.digest)) return undefined;
    return known;
  }

  async #uploadAsStored(source: BlobSource, expected: string | undefined): Promise<string> {
    const hash = new Sha256();
    async function* hashed(): AsyncGenerator<Uint8Array> {
      for await (const chunk of source.read(0, source.size)) {
        hash.update(chunk);
        yield chunk;
      }
    }
    const held = new HeldStream(hashed(), source.describe);
    const sink = this.#options.sink;
    try {
      return await uploadInSegments(this.#client, {
        describe: source.describe,
        open: (from) => held.open(from),
        ownsChunks: false,
        segmentSize: this.#options.segmentSize,
        // Read once as it streamed past: no later run can continue the session.
        keepOnFailure: false,
        onCommitted: (_location, offset) => held.confirm(offset),
        onProgress: (done) =>
          sink({ type: "blob-progress", digest: source.digest, done, size: source.size }),
        finish: () => {
          const digest = hash.digest();
          if (expected !== undefined && digest !== expected) {
            throw digestMismatch({ ...source, digest: expected });
          }
          return digest;
        },
      });
    } finally {
      await held.close();
    }
  }
}

/**
 * An entry failed to upload as it streamed past: nothing of it is left to send again. A run of
 * the same command skips what the registry has by then; a file can resume within a layer.
 */
export class StreamUploadError extends Error {
  override name = "StreamUploadError";
}

/** A blob source over a body that can be read once, from the start. */
function oneShotSource(
  digest: string,
  describe: string,
  size: number,
  body: AsyncIterable<Uint8Array>,
): BlobSource {
  let used = false;
  return {
    digest,
    size,
    describe,
    read(offset, length) {
      if (used || offset !== 0 || length !== size) {
        throw new Error(`${describe}: a stream can be read only once, from the start`);
      }
      used = true;
      return owned(body);
    },
  };
}

/**
 * The body's chunks, each safe for the consumer to free (`release.ts`): a chunk that is a view
 * of a whole buffer may be a buffer the reader or the decompressor still holds, so it is
 * copied; a view of part of a buffer is never freed, so it goes as it is.
 */
async function* owned(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    yield chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength
      ? chunk.slice()
      : chunk;
  }
}

async function hashAll(source: BlobSource, sink: ProgressSink): Promise<string> {
  const hash = new Sha256();
  let done = 0;
  for await (const chunk of source.read(0, source.size)) {
    hash.update(chunk);
    done += chunk.length;
    sink({ type: "blob-progress", digest: source.digest, done, size: source.size });
  }
  return hash.digest();
}

async function drain(body: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const _ of body) {
    // skipped: the registry has it
  }
}

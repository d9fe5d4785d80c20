/**
 * The writer that sends: blobs through the {@linkcode UploadPolicy} (one upload path: mount,
 * monolithic or chunked, resumable), layers compressed on the way through the
 * {@linkcode LayerCompressor} (once for every registry of a run that wants them), manifests with
 * a `PUT`. See `writer.ts` for the seam it fills.
 */
import type { ArchiveBlob } from "../archive/image.ts";
import type { ProgressSink } from "../progress/events.ts";
import { blobExists } from "../registry/blobs.ts";
import type { RegistryClient } from "../registry/client.ts";
import type { ReferrerDescriptor } from "../image/referrer.ts";
import { type ManifestPutAnswer, putManifestAnswer } from "../registry/manifests.ts";
import { addToFallbackIndex } from "../registry/referrers_fallback.ts";
import { noteSubjectAnswer, referrersApiAvailable } from "../registry/referrers.ts";
import { answerOf } from "../registry/answer_class.ts";
import { cancelSession, startSession } from "../registry/uploads.ts";
import type { BlobInfoCache } from "./blob_info_cache.ts";
import type { CompressedFanOut } from "./fan_out.ts";
import type { LayerCompressor } from "./layer_compressor.ts";
import type { Descriptor } from "../image/descriptor.ts";
import type { ChunkedMode, UploadPolicy } from "./upload_policy.ts";
import type { ManifestBytes, Outcome, Placement, ReferrerListing, Writer } from "./writer.ts";

export interface RegistryWriterOptions {
  policy: UploadPolicy;
  /** `auto` lets a refused compressed stream go as stored instead. */
  chunked: ChunkedMode;
  /** Learns where blobs are, and the compressed forms of layers. */
  cache?: BlobInfoCache;
  /** The run's other registries that want the same layers compressed. */
  fanOut?: CompressedFanOut;
  sink: ProgressSink;
}

export class RegistryWriter implements Writer {
  readonly client: RegistryClient;
  readonly dryRun = false;
  readonly #options: RegistryWriterOptions;

  constructor(client: RegistryClient, options: RegistryWriterOptions) {
    this.client = client;
    this.#options = options;
  }

  has(digest: string): Promise<boolean> {
    return blobExists(this.client, digest);
  }

  async found(blob: ArchiveBlob): Promise<void> {
    await this.#options.policy.forget(blob);
  }

  async mount(digest: string, from: string, describe: string): Promise<"mounted" | undefined> {
    const client = this.client;
    client.addPullScope(from);
    const session = await startSession(client, { digest, describe }, from);
    if (session === "mounted") return "mounted";
    // Declined (the source lost it, or we may not read it): drop the session.
    await cancelSession(client, session.url);
    return undefined;
  }

  upload(blob: ArchiveBlob, from: string | undefined): Promise<Outcome> {
    return this.#options.policy.upload(blob, from);
  }

  fannedOut(blob: ArchiveBlob): Descriptor | undefined {
    return this.#options.fanOut?.sent(this.client, blob.digest);
  }

  async compress(
    blob: ArchiveBlob,
    compressor: LayerCompressor,
    from: () => string | undefined,
  ): Promise<Placement> {
    const sent = await this.#fanOut(blob, compressor);
    if (sent !== undefined) return { outcome: "uploaded", stored: sent, compressedHere: true };
    let stored: Descriptor;
    try {
      // Blobs that would go in chunks go in resumable segments of about a chunk.
      stored = await compressor.upload(this.client, blob, this.#options.policy);
    } catch (error) {
      return { outcome: await this.#asStored(blob, error, from) };
    }
    return { outcome: "uploaded", stored, compressedHere: true };
  }

  async mountStreamed(digest: string, from: string, describe: string): Promise<"mounted"> {
    if (await this.mount(digest, from, describe) === "mounted") return "mounted";
    throw new Error(
      `${this.client.registryName} did not mount ${digest} from ${from} into ` +
        `${this.client.repository}; a stream's layers went into ${from} as they passed and ` +
        `cannot be read again: push the archive from a tar file, or one image per run`,
    );
  }

  learn(digest: string): void {
    this.#options.cache?.recordLocation(digest, this.client.baseUrl.host, this.client.repository);
  }

  async commitManifest(
    manifest: ManifestBytes,
    reference: string,
    shown = reference,
  ): Promise<ManifestPutAnswer> {
    const answer = await putManifestAnswer(
      this.client,
      reference,
      manifest.mediaType,
      manifest.bytes,
    );
    this.#options.sink({ type: "manifest-done", reference: shown, digest: manifest.digest });
    return answer;
  }

  async listReferrer(
    subject: string,
    referrer: ReferrerDescriptor,
    answer: ManifestPutAnswer | undefined,
  ): Promise<ReferrerListing> {
    if (answer !== undefined && noteSubjectAnswer(this.client, subject, answer)) return "api";
    // A registry may have the API and still not say so in its answer to the PUT.
    if (await referrersApiAvailable(this.client, subject)) return "api";
    await addToFallbackIndex(this.client, subject, [referrer]);
    return "fallback-tag";
  }

  /**
   * Other registries of the run want `blob` compressed too: one compression goes to all of them
   * at once. Returns what this repository got, unless its branch failed (it then gets the layer
   * on its own, with retries).
   */
  async #fanOut(blob: ArchiveBlob, compressor: LayerCompressor): Promise<Descriptor | undefined> {
    const fanOut = this.#options.fanOut;
    const others = await lacking(fanOut?.others(blob.digest, this.client) ?? [], blob, compressor);
    if (others.length === 0) return undefined;
    const results = await compressor.uploadToAll([this.client, ...others], blob);
    others.forEach((other, i) => {
      const result = results[i + 1];
      if (result !== undefined && "descriptor" in result) {
        fanOut?.record(other, blob.digest, result.descriptor);
      }
    });
    const own = results[0];
    return own !== undefined && "descriptor" in own ? own.descriptor : undefined;
  }

  /**
   * The registry, or a proxy in front of it, won't take a stream of unknown length: a
   * body-size cap (413) on one request, or streamed PATCHes refused outright. The layer goes as
   * stored instead: in chunks that shrink to fit a cap, or as the registry takes blobs.
   */
  async #asStored(
    blob: ArchiveBlob,
    error: unknown,
    from: () => string | undefined,
  ): Promise<Outcome> {
    const answer = answerOf(error, "stream");
    const tooLarge = answer.kind === "too-large";
    if (!(tooLarge || answer.kind === "method-refused") || this.#options.chunked !== "auto") {
      throw error;
    }
    this.#options.sink({
      type: "notice",
      kind: "compressed-refused",
      digest: blob.digest,
      message: `${this.client.registryName} refused ${blob.digest}, compressed on the fly ` +
        `(${answer.said}); sending it as stored${tooLarge ? ", in chunks" : ""}`,
    });
    return await this.#options.policy.upload(blob, from(), { inChunks: tooLarge });
  }
}

/**
 * Of `clients`, those whose repository lacks `blob`'s compressed form (as far as the cache
 * knows it: a form it does not know, no registry can be asked for).
 */
async function lacking(
  clients: readonly RegistryClient[],
  blob: ArchiveBlob,
  compressor: LayerCompressor,
): Promise<RegistryClient[]> {
  if (clients.length === 0) return [];
  const known = compressor.known(blob);
  if (known === undefined) return [...clients];
  const has = await Promise.all(clients.map((c) => blobExists(c, known.digest)));
  return clients.filter((_, i) => !has[i]);
}

/**
 * The writer that only looks: where a dry run differs from a push. It asks what a push would
 * ask (`HEAD`s: is the blob here, does the repository a push would mount from hold it), and
 * hashes every blob a push would upload, so a dry run proves the archive sound. It sends no
 * `POST`, `PATCH` or `PUT`, and teaches the blob-info cache nothing: nothing went anywhere.
 */
import type { ArchiveBlob } from "../archive/image.ts";
import { blobExists } from "../registry/blobs.ts";
import type { RegistryClient } from "../registry/client.ts";
import type { Descriptor } from "../image/descriptor.ts";
import { verifyBlob } from "./verify.ts";
import type { Outcome, Placement, ReferrerListing, Writer } from "./writer.ts";

export interface DryRunWriterOptions {
  /**
   * Where the run would place each blob (`registry digest` → repositories): another image of
   * the run that would upload a blob first lets this repository find or mount it.
   */
  planned: Map<string, Set<string>>;
  /** Every blob was hashed already (`verify`): a would-be upload is not hashed again. */
  verified: boolean;
}

export class DryRunWriter implements Writer {
  readonly client: RegistryClient;
  readonly dryRun = true;
  readonly #options: DryRunWriterOptions;

  constructor(client: RegistryClient, options: DryRunWriterOptions) {
    this.client = client;
    this.#options = options;
  }

  has(digest: string): Promise<boolean> {
    return blobExists(this.client, digest);
  }

  async found(): Promise<void> {
    // A push would drop the blob's saved upload progress; a dry run keeps everything.
  }

  /** A push would mount `digest` when `from` holds it (and we may read it): a `HEAD` there. */
  async mount(digest: string, from: string): Promise<"would-mount" | undefined> {
    this.client.addPullScope(from);
    return await blobExists(this.client, digest, from) ? "would-mount" : undefined;
  }

  async upload(blob: ArchiveBlob, from: string | undefined): Promise<Outcome> {
    if (from !== undefined && await this.mount(blob.digest, from) !== undefined) {
      return "would-mount";
    }
    return await this.#wouldUpload(blob);
  }

  fannedOut(): Descriptor | undefined {
    return undefined;
  }

  async compress(blob: ArchiveBlob): Promise<Placement> {
    return { outcome: await this.#wouldUpload(blob) };
  }

  /** The stream sent nothing (it was a dry run too): a push would mount what it sent. */
  mountStreamed(): Promise<"would-mount"> {
    return Promise.resolve("would-mount");
  }

  learn(): void {
    // Nothing went anywhere.
  }

  commitManifest(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  listReferrer(): Promise<ReferrerListing> {
    return Promise.resolve("planned");
  }

  /**
   * A blob a push would upload: hashed, unless another image of the run would upload it first
   * (this repository would then find it, or mount it from there).
   */
  async #wouldUpload(blob: ArchiveBlob): Promise<Outcome> {
    const key = `${this.client.baseUrl.host} ${blob.digest}`;
    const repository = this.client.repository;
    const placed = this.#options.planned.get(key);
    if (placed !== undefined) {
      if (placed.has(repository)) return "skipped";
      placed.add(repository);
      return "would-mount";
    }
    this.#options.planned.set(key, new Set([repository]));
    if (!this.#options.verified) await verifyBlob(blob, this.client.signal);
    return "would-upload";
  }
}

/**
 * What a single pass over a tar stream keeps, as a {@linkcode TarIndex} the image loaders can
 * read: every entry's metadata, the data of small entries (manifests, configs, `index.json`),
 * and of each large entry that went past only its sha256 and first bytes. A loader that asks for
 * more of a large entry gets an error: the stream cannot be read again.
 */
import { ArchiveError } from "../errors.ts";
import { sha256Digest } from "../digest.ts";
import type { TarIndex } from "./tar_index.ts";
import { IndexedNames, type TarEntry, type TarNames } from "./tar_names.ts";

/** Bytes of each large entry kept, enough to tell a tar from gzip or zstd. */
export const HEAD_BYTES = 512;

/** What was kept of one entry's data. */
export type KeptData =
  | { kind: "held"; bytes: Uint8Array }
  | { kind: "passed"; digest: string; head: Uint8Array };

export class StreamedIndex extends IndexedNames implements TarIndex {
  readonly #data: ReadonlyMap<string, KeptData>;

  /**
   * `names` must have seen the whole stream; `data` holds what was kept of each file entry, by
   * normalized name.
   */
  constructor(
    readonly label: string,
    readonly size: number,
    names: TarNames,
    data: ReadonlyMap<string, KeptData>,
  ) {
    super(names);
    this.#data = data;
  }

  async *read(entry: TarEntry, offset: number, length: number): AsyncIterable<Uint8Array> {
    const kept = this.#data.get(entry.name);
    const bytes = kept?.kind === "held" ? kept.bytes : kept?.head;
    if (bytes === undefined || offset + length > bytes.length) {
      throw new ArchiveError(
        this.label,
        `${entry.name} went past in the stream and cannot be read again`,
      );
    }
    await Promise.resolve();
    yield bytes.slice(offset, offset + length);
  }

  knownDigest(entry: TarEntry): string | undefined {
    const kept = this.#data.get(entry.name);
    if (kept === undefined) return undefined;
    if (kept.kind === "passed") return kept.digest;
    return sha256Digest(kept.bytes);
  }
}

/**
 * The rules for a sequence of tar headers, shared by the random-access indexer
 * (`tar_index.ts`) and the sequential reader (`tar_stream.ts`): what PAX and GNU long-name
 * headers say about the entry that follows them, how big they may be, what an entry's type
 * is, and how an input that is not a tar archive is explained.
 */
import { ArchiveError } from "../errors.ts";
import {
  BLOCK_SIZE,
  type HeaderKind,
  parseGnuLongName,
  parsePaxRecords,
  type TarHeader,
} from "./tar_header.ts";
import type { TarEntry } from "./tar_names.ts";

/** PAX and GNU long-name payloads are small; a bigger one means a corrupt or hostile archive. */
export const MAX_EXTENDED_HEADER = 1024 * 1024;

/** Header kinds that describe the entry after them rather than being entries. */
export type MetaKind = Exclude<HeaderKind, TarEntry["type"]>;

const META_NAMES: Record<MetaKind, string> = {
  "pax": "PAX header",
  "pax-global": "PAX global header",
  "gnu-long-name": "GNU long name header",
  "gnu-long-link": "GNU long link header",
};

/** Whether a header of this kind is metadata for the next entry (PAX, GNU long name/link). */
export function isMetaKind(kind: HeaderKind): kind is MetaKind {
  return kind in META_NAMES;
}

/** How error messages name a metadata header, e.g. "PAX header at offset 1024". */
export function describeMeta(kind: MetaKind, offset: number): string {
  return `${META_NAMES[kind]} at offset ${offset}`;
}

/** The bytes a header's data takes in the archive: its size rounded up to a whole block. */
export function padded(size: number): number {
  return Math.ceil(size / BLOCK_SIZE) * BLOCK_SIZE;
}

/** An entry's fields once the extended headers before it are applied. */
export interface EntryFields {
  /** The name as stored (PAX `path` or GNU long name if any), not yet normalized. */
  rawName: string;
  type: TarEntry["type"];
  size: number;
  /** Only for hard links and symlinks. */
  linkName?: string;
}

/** What PAX and GNU long-name headers say about the entry that follows them. */
interface Overrides {
  /** Offset of the first extended header, for errors. */
  at?: number;
  path?: string;
  linkPath?: string;
  size?: number;
  /** GNU sparse data is a map plus fragments, not the file's bytes. */
  sparse?: boolean;
}

/**
 * Collects PAX (`x`, `g`) and GNU `L`/`K` headers and applies them to the entry after them.
 * Feed every metadata header to {@linkcode apply}, every entry header to {@linkcode take}, and
 * call {@linkcode finish} at the end of the archive.
 */
export class ExtendedHeaders {
  readonly #archive: string;
  #overrides: Overrides = {};

  /** `archive` names the archive in error messages. */
  constructor(archive: string) {
    this.#archive = archive;
  }

  /**
   * Throws when a metadata header declares more than {@linkcode MAX_EXTENDED_HEADER} bytes.
   * Call it once the payload is known to be in the archive (a truncation is reported first).
   */
  checkSize(kind: MetaKind, offset: number, size: number): void {
    if (size > MAX_EXTENDED_HEADER) {
      throw new ArchiveError(
        this.#archive,
        `${describeMeta(kind, offset)} is ${size} bytes, over the 1 MiB limit`,
      );
    }
  }

  /**
   * Applies the payload of the metadata header at `offset`.
   *
   * @throws {ArchiveError} on malformed PAX records or an invalid PAX `size`.
   */
  apply(kind: MetaKind, offset: number, payload: Uint8Array): void {
    const what = describeMeta(kind, offset);
    if (kind !== "pax-global") this.#overrides.at ??= offset;
    if (kind === "pax") {
      this.#overrides = applyPax(
        this.#overrides,
        parsePaxRecords(payload, this.#archive, what),
        this.#archive,
        what,
      );
    } else if (kind === "pax-global") {
      parsePaxRecords(payload, this.#archive, what); // validated, but globals don't affect indexing
    } else if (kind === "gnu-long-name") {
      this.#overrides.path = parseGnuLongName(payload);
    } else {
      this.#overrides.linkPath = parseGnuLongName(payload);
    }
  }

  /**
   * The fields of the entry `header` describes (`kind` is its narrowed `header.kind`), with the
   * pending headers applied and cleared.
   */
  take(header: TarHeader, kind: TarEntry["type"]): EntryFields {
    const overrides = this.#overrides;
    this.#overrides = {};
    const rawName = overrides.path ?? header.name;
    let type = kind;
    // Old tars mark directories only by a trailing slash on a regular-file header.
    if (type === "file" && rawName.endsWith("/")) type = "directory";
    if (overrides.sparse) type = "other";
    const fields: EntryFields = { rawName, type, size: overrides.size ?? header.size };
    if (type === "hardlink" || type === "symlink") {
      fields.linkName = overrides.linkPath ?? header.linkName;
    }
    return fields;
  }

  /** @throws {ArchiveError} when extended headers are waiting for an entry that never came. */
  finish(): void {
    if (this.#overrides.at !== undefined) {
      throw new ArchiveError(
        this.#archive,
        `extended header at offset ${this.#overrides.at} is not followed by an entry (truncated?)`,
      );
    }
  }
}

function applyPax(
  overrides: Overrides,
  records: Map<string, string>,
  archive: string,
  what: string,
): Overrides {
  const next = { ...overrides };
  for (const [key, value] of records) {
    // An empty value removes the key: the header field applies again.
    if (key === "path") {
      if (value === "") delete next.path;
      else next.path = value;
    } else if (key === "linkpath") {
      if (value === "") delete next.linkPath;
      else next.linkPath = value;
    } else if (key === "size") {
      const size = Number(value);
      if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(size)) {
        throw new ArchiveError(archive, `invalid size "${value}" in the ${what}`);
      }
      next.size = size;
    } else if (key.startsWith("GNU.sparse.")) {
      next.sparse = true;
      if (key === "GNU.sparse.name") next.path = value;
    }
  }
  return next;
}

const COMPRESSIONS = [
  { magic: [0x1f, 0x8b], name: "gzip", tool: "gunzip -k" },
  { magic: [0x28, 0xb5, 0x2f, 0xfd], name: "zstd", tool: "zstd -d" },
  { magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], name: "xz", tool: "unxz -k" },
  { magic: [0x42, 0x5a, 0x68], name: "bzip2", tool: "bunzip2 -k" },
];

/**
 * Why an input whose first block is `start` (shorter than a block when the input is) is not a
 * tar archive: compressed, too short, or a bad checksum.
 */
export function notTar(archive: string, start: Uint8Array): ArchiveError {
  for (const { magic, name, tool } of COMPRESSIONS) {
    if (magic.every((byte, i) => start[i] === byte)) {
      return new ArchiveError(
        archive,
        `the archive is ${name}-compressed; decompress it first (e.g. \`${tool}\`)`,
      );
    }
  }
  if (start.length < BLOCK_SIZE) {
    return new ArchiveError(
      archive,
      `not a tar archive (${start.length} bytes, shorter than one ${BLOCK_SIZE}-byte header)`,
    );
  }
  return new ArchiveError(archive, "not a tar archive (bad header checksum at offset 0)");
}

/** Reading entries of an indexed tar as blobs and JSON, with errors that name the archive. */
import { ArchiveError } from "../errors.ts";
import { Sha256 } from "../digest.ts";
import type { ArchiveBlob } from "./image.ts";
import { JsonShapeError, parseJson } from "../image/json_guards.ts";
import type { TarEntry } from "./tar_names.ts";
import type { TarIndex } from "./tar_index.ts";

/** Manifests and index files over this are refused (registries cap manifests near 4 MiB). */
export const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;
/** Image configs with long histories can be large, but never this large. */
export const MAX_CONFIG_BYTES = 64 * 1024 * 1024;

/** Reads a whole (small) entry. */
export async function readEntry(
  index: TarIndex,
  entry: TarEntry,
  maxBytes: number,
): Promise<Uint8Array> {
  if (entry.size > maxBytes) {
    throw new ArchiveError(
      index.label,
      `${entry.name} is ${entry.size} bytes, more than the ${maxBytes} allowed for it`,
    );
  }
  return await readAll(index, entry, entry.size);
}

/** The first `length` bytes of an entry's data, in one buffer. */
async function readAll(index: TarIndex, entry: TarEntry, length: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  let at = 0;
  for await (const chunk of index.read(entry, 0, length)) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

/** Reads and parses a JSON entry; `check` turns it into a typed value or throws. */
export async function readJsonEntry<T>(
  index: TarIndex,
  name: string,
  maxBytes: number,
  check: (value: unknown) => T,
): Promise<{ value: T; bytes: Uint8Array }> {
  const bytes = await readEntry(index, index.resolve(name), maxBytes);
  return { value: parseJsonBytes(index, name, bytes, check), bytes };
}

/** Parses JSON bytes from the archive, naming the entry on failure. */
export function parseJsonBytes<T>(
  index: TarIndex,
  name: string,
  bytes: Uint8Array,
  check: (value: unknown) => T,
): T {
  try {
    return check(parseJson(bytes));
  } catch (error) {
    if (error instanceof JsonShapeError) {
      throw new ArchiveError(index.label, `${name}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

/** A blob backed by a tar entry's byte range. */
export function entryBlob(
  index: TarIndex,
  entry: TarEntry,
  digest: string,
  mediaType: string,
): ArchiveBlob {
  return {
    digest,
    size: entry.size,
    mediaType,
    describe: `${index.label}:${entry.name}`,
    read: (offset, length, signal) => index.read(entry, offset, length, signal),
  };
}

/** sha256 of a whole entry, streamed. */
export async function hashEntry(
  index: TarIndex,
  entry: TarEntry,
  signal?: AbortSignal,
): Promise<string> {
  const known = index.knownDigest?.(entry);
  if (known !== undefined) return known;
  const hash = new Sha256();
  for await (const chunk of index.read(entry, 0, entry.size, signal)) hash.update(chunk);
  return hash.digest();
}

export type LayerCompression = "none" | "gzip" | "zstd";

/** Tells a layer's compression from its first bytes (and checks an uncompressed one is a tar). */
export async function sniffCompression(
  index: TarIndex,
  entry: TarEntry,
): Promise<LayerCompression> {
  const compression = await detectCompression(index, entry);
  if (compression === undefined) {
    throw new ArchiveError(
      index.label,
      `layer ${entry.name} is neither a tar nor gzip- or zstd-compressed`,
    );
  }
  return compression;
}

/**
 * A layer's compression told from its first bytes; undefined when they are neither gzip, zstd
 * nor a tar header (an artifact's blob, or garbage).
 */
export async function detectCompression(
  index: TarIndex,
  entry: TarEntry,
): Promise<LayerCompression | undefined> {
  const head = await readAll(index, entry, Math.min(512, entry.size));
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  const magic = new TextDecoder().decode(head.subarray(257, 262));
  const empty = head.length === 512 && head.every((b) => b === 0);
  if (magic !== "ustar" && !empty && head.length > 0) return undefined;
  return "none";
}

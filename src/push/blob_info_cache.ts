/**
 * What we learnt about blobs on earlier pushes, the way skopeo's blob-info cache does: which
 * compressed blob each uncompressed layer became under each compression setting, and which
 * repositories of which registries hold a blob. With it, a re-push of a compressed image finds
 * every layer with a `HEAD` (or mounts it from a sibling repository) without compressing again.
 *
 * One JSON file (`$XDG_CACHE_HOME/docker-image-pusher/blob-info.json`, else the platform's
 * cache directory), read at the start of a push and merged back at its end. Entries are hints:
 * the registry is always asked, so a stale entry costs one request, never a wrong push.
 */
import type { Codec, Compression } from "../compress/codec.ts";
import { SHA256_HEX } from "../digest.ts";
import { userDir, writeFileAtomic } from "../state_files.ts";

export interface CompressedInfo {
  digest: string;
  size: number;
}

interface CompressedEntry extends CompressedInfo {
  level: number | "auto";
}

interface CacheData {
  /** `<uncompressed digest> <codec>` → what it became, per level setting. */
  compressed: Record<string, CompressedEntry[]>;
  /** `<digest>` → `registry/repository` names holding it, most recent last. */
  locations: Record<string, string[]>;
  /**
   * `<size> <archive entry name>` → the digest of its bytes, learnt as a stream went past, for
   * names that hold a content-derived id (docker save's `<id>/layer.tar`).
   */
  entries?: Record<string, string>;
}

/** Entries kept per table; the oldest go first. */
const MAX_ENTRIES = 20_000;
const MAX_LOCATIONS = 8;
/** A content-derived id anywhere in an entry's name (a layer's or config's sha256). */
const CONTENT_ID = new RegExp(SHA256_HEX);

/** Where the cache lives by default on this platform. */
export function defaultCacheDir(env: (name: string) => string | undefined): string | undefined {
  return userDir("cache", env);
}

export class BlobInfoCache {
  /** The file it is saved to; undefined for a cache that lives only as long as the run. */
  readonly path: string | undefined;
  #data: CacheData;
  /** What this run learnt, merged into the file on save. */
  #learnt: CacheData = { compressed: {}, locations: {}, entries: {} };

  private constructor(path: string | undefined, data: CacheData) {
    this.path = path;
    this.#data = data;
  }

  /** Opens the cache in `dir`; a missing or unreadable file is an empty cache. */
  static async open(dir: string): Promise<BlobInfoCache> {
    const path = `${dir}/blob-info.json`;
    return new BlobInfoCache(path, await readData(path));
  }

  /**
   * A cache with no file (no cache directory here): what the run learns still serves the run,
   * e.g. a layer one image uploaded is mounted into the next image's repository.
   */
  static inMemory(): BlobInfoCache {
    return new BlobInfoCache(undefined, { compressed: {}, locations: {} });
  }

  /**
   * What `uncompressed` became under `compression`. A fixed level wants exactly that level; `auto`
   * takes any level of the codec (the output differs, not its worth).
   */
  compressed(uncompressed: string, compression: Compression): CompressedInfo | undefined {
    if (compression.codec === "none") return undefined;
    const key = `${uncompressed} ${compression.codec}`;
    const entries = [
      ...(this.#learnt.compressed[key] ?? []),
      ...(this.#data.compressed[key] ?? []),
    ];
    const match = entries.find((e) => e.level === compression.level) ??
      (compression.level === "auto" ? entries[0] : undefined);
    return match === undefined ? undefined : { digest: match.digest, size: match.size };
  }

  recordCompressed(
    uncompressed: string,
    compression: { codec: Codec; level: number | "auto" },
    info: CompressedInfo,
  ): void {
    const key = `${uncompressed} ${compression.codec}`;
    const entry: CompressedEntry = { ...info, level: compression.level };
    for (const data of [this.#data, this.#learnt]) {
      const kept = (data.compressed[key] ?? []).filter((e) => e.level !== compression.level);
      delete data.compressed[key];
      data.compressed[key] = [entry, ...kept];
    }
  }

  /**
   * The digest the archive entry `name` of `size` bytes had when a stream last went past it:
   * a hint that lets a re-push of a compressed archive ask the registry before the bytes come.
   */
  entryDigest(name: string, size: number): string | undefined {
    const key = `${size} ${name}`;
    return this.#learnt.entries?.[key] ?? this.#data.entries?.[key];
  }

  /** Remembers an entry's digest, when its name holds a content-derived id (64 hex digits). */
  recordEntry(name: string, size: number, digest: string): void {
    if (!CONTENT_ID.test(name)) return;
    const key = `${size} ${name}`;
    for (const data of [this.#data, this.#learnt]) {
      data.entries ??= {};
      delete data.entries[key];
      data.entries[key] = digest;
    }
  }

  /** Repositories of `registry` known to hold `digest`, most recent first. */
  repositoriesWith(digest: string, registry: string): string[] {
    const prefix = `${registry}/`;
    const names = [...(this.#data.locations[digest] ?? [])].reverse();
    return names.filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length));
  }

  recordLocation(digest: string, registry: string, repository: string): void {
    const name = `${registry}/${repository}`;
    for (const data of [this.#data, this.#learnt]) {
      const kept = (data.locations[digest] ?? []).filter((n) => n !== name);
      delete data.locations[digest];
      data.locations[digest] = [...kept, name].slice(-MAX_LOCATIONS);
    }
  }

  /**
   * Merges what this run learnt into the file as it is now (another push may have written it
   * meanwhile), then writes it atomically.
   */
  async save(): Promise<void> {
    if (this.path === undefined) return;
    const current = await readData(this.path);
    for (const [key, entries] of Object.entries(this.#learnt.compressed)) {
      const levels = new Set(entries.map((e) => e.level));
      const kept = (current.compressed[key] ?? []).filter((e) => !levels.has(e.level));
      delete current.compressed[key];
      current.compressed[key] = [...entries, ...kept];
    }
    for (const [digest, names] of Object.entries(this.#learnt.locations)) {
      const kept = (current.locations[digest] ?? []).filter((n) => !names.includes(n));
      delete current.locations[digest];
      current.locations[digest] = [...kept, ...names].slice(-MAX_LOCATIONS);
    }
    for (const [key, digest] of Object.entries(this.#learnt.entries ?? {})) {
      current.entries ??= {};
      delete current.entries[key];
      current.entries[key] = digest;
    }
    const data: CacheData = {
      compressed: newest(current.compressed),
      locations: newest(current.locations),
      entries: newest(current.entries ?? {}),
    };
    const dir = this.path.slice(0, this.path.lastIndexOf("/"));
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.path, JSON.stringify(data));
    this.#learnt = { compressed: {}, locations: {}, entries: {} };
  }
}

/** The last {@linkcode MAX_ENTRIES} keys (insertion order is recency). */
function newest<T>(table: Record<string, T>): Record<string, T> {
  const keys = Object.keys(table);
  if (keys.length <= MAX_ENTRIES) return table;
  return Object.fromEntries(keys.slice(-MAX_ENTRIES).map((k) => [k, table[k]!]));
}

async function readData(path: string): Promise<CacheData> {
  try {
    const parsed: unknown = JSON.parse(await Deno.readTextFile(path));
    if (isCacheData(parsed)) return parsed;
  } catch {
    // Missing or damaged: start empty; the next save rewrites it.
  }
  return { compressed: {}, locations: {} };
}

function isCacheData(value: unknown): value is CacheData {
  if (typeof value !== "object" || value === null) return false;
  const { compressed, locations, entries } = value as Record<string, unknown>;
  const isTable = (t: unknown): t is Record<string, unknown> =>
    typeof t === "object" && t !== null && !Array.isArray(t);
  if (!isTable(compressed) || !isTable(locations)) return false;
  if (entries !== undefined && !isTable(entries)) return false;
  const goodEntry = (e: unknown) =>
    typeof e === "object" && e !== null &&
    typeof (e as CompressedEntry).digest === "string" &&
    typeof (e as CompressedEntry).size === "number" &&
    (typeof (e as CompressedEntry).level === "number" || (e as CompressedEntry).level === "auto");
  return Object.values(compressed).every((v) => Array.isArray(v) && v.every(goodEntry)) &&
    Object.values(locations).every((v) =>
      Array.isArray(v) && v.every((n) => typeof n === "string")
    ) && Object.values(entries ?? {}).every((v) => typeof v === "string");
}

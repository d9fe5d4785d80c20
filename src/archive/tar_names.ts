/**
 * The names of a tar archive's entries: normalization, the refusal of unsafe paths and
 * duplicates, and link resolution. Shared by the random-access indexer (`tar_index.ts`) and the
 * sequential reader (`tar_stream.ts`), so a file and a pipe holding the same bytes accept the
 * same archives and resolve names the same way.
 */
import { ArchiveError } from "../errors.ts";

/** One file, link or directory of the archive. */
export interface TarEntry {
  /** Normalized archive path: no leading "./", no "//" or "/./", no trailing "/". */
  name: string;
  type: "file" | "hardlink" | "symlink" | "directory" | "other";
  /** Bytes of data (from a PAX `size` record when there is one). Usually 0 for links. */
  size: number;
  /** Offset of the entry's own header block (after any PAX or GNU long-name headers). */
  headerOffset: number;
  /** Offset of the first data byte. */
  dataOffset: number;
  /** Link target as written in the archive (hard links: an archive path; symlinks: relative). */
  linkName?: string;
}

/** Like Linux's MAXSYMLINKS: more hops than this is a loop or an attack. */
const MAX_LINK_HOPS = 40;

/**
 * Every entry of an archive by normalized name, recorded in archive order as the headers go
 * past. Links may point to entries recorded before or after them: resolve once every header
 * has been read.
 *
 * @example
 * ```ts
 * const names = new TarNames("image.tar");
 * names.add("./blobs/sha256/abc", { type: "file", size: 3, headerOffset: 0, dataOffset: 512 });
 * names.add("abc/layer.tar", {
 *   type: "symlink",
 *   size: 0,
 *   headerOffset: 1024,
 *   dataOffset: 1536,
 *   linkName: "../blobs/sha256/abc",
 * });
 * names.endMarker = true;
 * names.resolve("abc/layer.tar").name; // "blobs/sha256/abc"
 * ```
 */
export class TarNames {
  readonly #archive: string;
  readonly #entries = new Map<string, TarEntry>();
  /**
   * Whether the archive ended with an end-of-archive marker (false hints at truncation), or
   * undefined while its end has not been read yet.
   */
  endMarker: boolean | undefined = undefined;

  /** `archive` names the archive in error messages. */
  constructor(archive: string) {
    this.#archive = archive;
  }

  /** Every entry except the root directory, in archive order. */
  get entries(): ReadonlyMap<string, TarEntry> {
    return this.#entries;
  }

  /**
   * Records an entry under its normalized name. Returns the recorded entry, or undefined when
   * nothing new was recorded: the root directory ("./"), or a directory seen before.
   *
   * @throws {ArchiveError} for an absolute path, a ".." segment, an empty name, or a name seen
   * before (except a directory repeated as a directory).
   */
  add(rawName: string, entry: Omit<TarEntry, "name">): TarEntry | undefined {
    const name = normalizeName(rawName);
    if (name === undefined) {
      const why = rawName.startsWith("/") ? "absolute" : 'contains ".."';
      throw new ArchiveError(
        this.#archive,
        `unsafe path "${rawName}" at offset ${entry.headerOffset} (${why})`,
      );
    }
    if (name === "") {
      if (entry.type === "directory") return undefined; // "./": the root directory
      throw new ArchiveError(
        this.#archive,
        `entry at offset ${entry.headerOffset} has an empty name`,
      );
    }
    const first = this.#entries.get(name);
    if (first === undefined) {
      const recorded = { name, ...entry };
      this.#entries.set(name, recorded);
      return recorded;
    }
    if (first.type !== "directory" || entry.type !== "directory") {
      throw new ArchiveError(
        this.#archive,
        `duplicate entry "${name}" at offset ${entry.headerOffset} (first at offset ${first.headerOffset})`,
      );
    }
    return undefined;
  }

  /** The entry with this name (normalized first, so "./a//b/" finds "a/b"), if any. */
  get(name: string): TarEntry | undefined {
    const normalized = normalizeName(name);
    return normalized === undefined ? undefined : this.#entries.get(normalized);
  }

  /**
   * The regular file this name refers to, following hard links and symlinks (in the name's
   * directories too). Symlink targets are relative to the link's directory; absolute targets
   * start at the archive root.
   *
   * @throws {ArchiveError} for a missing name, a directory, a broken link or a link loop.
   */
  resolve(name: string): TarEntry {
    const fail = (problem: string) => new ArchiveError(this.#archive, problem);
    // A missing entry in an archive without its end marker is most likely cut off.
    const missing = `"${name}" not found in archive` +
      (this.endMarker === false
        ? " (the archive has no end-of-archive marker: truncated?)"
        : this.endMarker === undefined
        ? " (not seen so far: the archive is still being read)"
        : "");
    let parts = joinPath([], name);
    if (parts === undefined) throw fail(missing);
    const chain: string[] = [];
    let symlinks = false;
    for (let hop = 0; hop <= MAX_LINK_HOPS; hop++) {
      // Resolution is deterministic, so reaching a path seen before is a loop. (One link may
      // be passed twice without a loop, when different paths go through it.)
      const path = parts.join("/");
      const looped = chain.includes(path);
      chain.push(path);
      if (looped) throw fail(`${symlinks ? "symlink" : "hard link"} loop: ${chain.join(" -> ")}`);
      const [current, entry, rest] = this.#lookup(parts);
      if (entry === undefined) {
        // Directories need no entries of their own: "a/b/c" alone implies "a" and "a/b".
        const prefix = `${current}/`;
        if ([...this.#entries.keys()].some((key) => key.startsWith(prefix))) {
          throw fail(`"${name}" is a directory, not a file`);
        }
        throw fail(
          hop === 0 ? missing : `"${name}" links to "${current}", which is not in the archive`,
        );
      }
      if (entry.type === "file") return entry;
      if (entry.type === "directory") throw fail(`"${name}" is a directory, not a file`);
      if (entry.type === "other") throw fail(`"${current}" is not a regular file`);
      symlinks ||= entry.type === "symlink";
      // Hard link targets are archive paths; symlinks are relative to their own directory.
      const base = entry.type === "symlink" ? current.split("/").slice(0, -1) : [];
      const target = joinPath(base, entry.linkName ?? "");
      if (target === undefined) {
        throw fail(`link "${current}" -> "${entry.linkName}" points outside the archive`);
      }
      parts = [...target, ...rest];
    }
    throw fail(
      `more than ${MAX_LINK_HOPS} links resolving "${name}" (a loop?): ` +
        `${chain.slice(0, 4).join(" -> ")} -> …`,
    );
  }

  /**
   * Finds the entry for a path, stopping early at a directory component that is a symlink:
   * returns that component's name and entry plus the components after it.
   */
  #lookup(parts: string[]): [string, TarEntry | undefined, string[]] {
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join("/");
      const entry = this.#entries.get(prefix);
      if (entry?.type === "symlink") return [prefix, entry, parts.slice(i)];
    }
    const name = parts.join("/");
    return [name, this.#entries.get(name), []];
  }
}

/** Normalizes an archive path; undefined when it is absolute or has a ".." segment. */
function normalizeName(raw: string): string | undefined {
  if (raw.startsWith("/")) return undefined;
  const segments = raw.split("/").filter((s) => s !== "" && s !== ".");
  return segments.includes("..") ? undefined : segments.join("/");
}

/** Joins a link target onto a base directory lexically; undefined when it climbs above root. */
function joinPath(base: readonly string[], target: string): string[] | undefined {
  const parts = target.startsWith("/") ? [] : [...base];
  for (const segment of target.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment !== "..") parts.push(segment);
    else if (parts.pop() === undefined) return undefined;
  }
  return parts;
}

/**
 * The naming half of a `TarIndex`, over names recorded from the whole archive: what the file
 * index (`tar_index.ts`) and a stream's (`streamed_index.ts`) share; each adds how it reads data.
 */
export abstract class IndexedNames {
  readonly #names: TarNames;

  constructor(names: TarNames) {
    this.#names = names;
  }

  /** Every entry except the root directory, in archive order. */
  get entries(): ReadonlyMap<string, TarEntry> {
    return this.#names.entries;
  }

  /** Whether the archive ended with an end-of-archive marker. */
  get endMarker(): boolean {
    return this.#names.endMarker === true;
  }

  /** The entry with this name, if any (see {@linkcode TarNames.get}). */
  get(name: string): TarEntry | undefined {
    return this.#names.get(name);
  }

  /** The regular file this name refers to (see {@linkcode TarNames.resolve}). */
  resolve(name: string): TarEntry {
    return this.#names.resolve(name);
  }
}

/**
 * An image directory read in place, as the loaders read a tar: an OCI image layout
 * (`podman save --format oci-dir`, `skopeo copy … oci:DIR`), a `dir:` layout
 * (`podman save --format docker-dir`, `skopeo copy … dir:DIR`) or an unpacked `docker save`.
 * Every file is an entry named by its path under the directory; blobs are streamed from their
 * files, never copied.
 *
 * Links are resolved as in a tar (`tar_names.ts`: relative to the link's directory, loops
 * refused), so an unpacked archive reads as the archive did. A symlink whose absolute target
 * lies outside the directory is followed on the file system instead: the user made it, and its
 * file is read where it is.
 */
import { ArchiveError } from "../errors.ts";
import { readRange } from "./byte_range.ts";
import type { TarIndex } from "./tar_index.ts";
import { IndexedNames, type TarEntry, TarNames } from "./tar_names.ts";

/** Files an image directory has at its top: one of them tells the layout. */
const LAYOUT_FILES = ["index.json", "manifest.json"];
/** Deeper than any layout goes (`blobs/sha256/<hex>` is 3): a directory tree is not walked further. */
const MAX_DEPTH = 4;
/** More files than any image directory holds: a wrong directory given by mistake stops here. */
const MAX_ENTRIES = 100_000;

/** Options for {@linkcode indexDirectory}. */
export interface IndexDirectoryOptions {
  /** Stops the walk between files. */
  signal?: AbortSignal;
}

/**
 * Lists the image directory at `path` (its files, directories and links, not their data).
 *
 * @example
 * ```ts
 * import { indexDirectory } from "./directory_index.ts";
 *
 * const index = await indexDirectory("oci-dir");
 * index.resolve("index.json").size;
 * ```
 * @throws {ArchiveError} when the directory cannot be read, or has neither `index.json` nor
 * `manifest.json` at its top.
 */
export async function indexDirectory(
  path: string,
  options: IndexDirectoryOptions = {},
): Promise<TarIndex> {
  const root = path.replace(/(.)\/+$/, "$1");
  const top = await listNames(root, root);
  if (!LAYOUT_FILES.some((name) => top.includes(name))) {
    throw new ArchiveError(
      path,
      "is a directory but not an image layout: it has neither index.json (an OCI layout, as " +
        "`podman save --format oci-dir` writes) nor manifest.json (`skopeo copy … dir:`, " +
        "`podman save --format docker-dir`, an unpacked `docker save`)",
    );
  }
  const realRoot = await Deno.realPath(root);
  const names = new TarNames(path);
  const files = new Map<string, string>();
  let size = 0;
  const walk = async (relative: string, depth: number): Promise<void> => {
    const dir = relative === "" ? root : `${root}/${relative}`;
    for (const name of relative === "" ? top : await listNames(root, dir)) {
      options.signal?.throwIfAborted();
      if (names.entries.size >= MAX_ENTRIES) {
        throw new ArchiveError(path, `holds more than ${MAX_ENTRIES} files: not an image layout`);
      }
      const entryName = relative === "" ? name : `${relative}/${name}`;
      const full = `${root}/${entryName}`;
      const info = await Deno.lstat(full).catch((error) => {
        throw fsError(path, entryName, error);
      });
      const base = { size: 0, headerOffset: 0, dataOffset: 0 };
      if (info.isDirectory) {
        names.add(entryName, { ...base, type: "directory" });
        if (depth < MAX_DEPTH) await walk(entryName, depth + 1);
      } else if (info.isFile) {
        names.add(entryName, { ...base, type: "file", size: info.size });
        files.set(entryName, full);
        size += info.size;
      } else if (info.isSymlink) {
        const target = await Deno.readLink(full);
        const outside = target.startsWith("/") && !isUnder(target, realRoot);
        if (!outside) {
          const linkName = target.startsWith("/") ? target.slice(realRoot.length) : target;
          names.add(entryName, { ...base, type: "symlink", linkName });
          continue;
        }
        // Outside the directory: what the link points to is read where it is.
        const found = await Deno.stat(full).catch((error) => {
          throw fsError(path, `${entryName} -> ${target}`, error);
        });
        names.add(entryName, { ...base, type: found.isFile ? "file" : "other", size: found.size });
        if (found.isFile) {
          files.set(entryName, full);
          size += found.size;
        }
      } else {
        names.add(entryName, { ...base, type: "other" });
      }
    }
  };
  await walk("", 1);
  names.endMarker = true;
  return new DirectoryIndex(path, size, names, files);
}

/** A directory's entry names, sorted so every listing of one directory is the same. */
async function listNames(archive: string, dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  } catch (error) {
    throw fsError(archive, dir === archive ? "" : dir.slice(archive.length + 1), error);
  }
  return names.sort();
}

function isUnder(target: string, dir: string): boolean {
  return target === dir || target.startsWith(`${dir}/`);
}

function fsError(archive: string, name: string, error: unknown): ArchiveError {
  const problem = error instanceof Deno.errors.NotFound
    ? "no such file or directory"
    : error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotCapable
    ? "permission denied"
    : error instanceof Deno.errors.FilesystemLoop
    ? "symlink loop"
    : error instanceof Error
    ? error.message
    : String(error);
  return new ArchiveError(archive, name === "" ? problem : `${name}: ${problem}`, {
    cause: error,
  });
}

class DirectoryIndex extends IndexedNames implements TarIndex {
  readonly #files: ReadonlyMap<string, string>;

  constructor(
    readonly label: string,
    readonly size: number,
    names: TarNames,
    files: ReadonlyMap<string, string>,
  ) {
    super(names);
    this.#files = files;
  }

  read(
    entry: TarEntry,
    offset: number,
    length: number,
    signal?: AbortSignal,
  ): AsyncIterable<Uint8Array> {
    const file = this.#files.get(entry.name);
    if (file === undefined) {
      throw new ArchiveError(this.label, `${entry.name} is not a regular file`);
    }
    return readFile(this.label, entry, file, offset, length, signal);
  }
}

/** A file's bytes; one that shrank since it was listed is named, not a bare end of file. */
async function* readFile(
  label: string,
  entry: TarEntry,
  file: string,
  offset: number,
  length: number,
  signal: AbortSignal | undefined,
): AsyncGenerator<Uint8Array> {
  try {
    yield* readRange(file, offset, length, signal ? { signal } : {});
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ArchiveError(
      label,
      `${entry.name}: cannot read ${length} bytes at ${offset} of its ${entry.size} ` +
        `(changed or removed since it was listed?): ${(error as Error).message}`,
      { cause: error },
    );
  }
}

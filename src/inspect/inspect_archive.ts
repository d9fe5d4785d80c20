/**
 * Reading an image archive from wherever `push` reads one, for a report and nothing else: a tar
 * file or an image directory is indexed in place; standard input (`-`) and gzip-, zstd- or xz-compressed files are
 * read front to back once, hashing large entries as they go past (`stream_archive.ts`).
 */
import { indexArchive, loadImages } from "../archive/image_archive.ts";
import { openArchiveStream, readArchiveStream } from "../archive/stream_archive.ts";
import { type ArchiveReport, reportArchive } from "./archive_report.ts";

/** Options for {@linkcode inspectArchive}. */
export interface InspectArchiveOptions {
  /** Standard input, read when the path is `-`. Default: `Deno.stdin.readable`. */
  stdin?: () => ReadableStream<Uint8Array>;
  /** Stops reading. Default: none. */
  signal?: AbortSignal;
}

/**
 * Describes the archive at `path` (a tar file, an image directory, or `-` for standard input).
 * No registry is contacted.
 *
 * @example
 * ```ts
 * import { inspectArchive } from "./inspect_archive.ts";
 *
 * const report = await inspectArchive("app.tar.gz");
 * report.images[0]?.platforms[0]?.architecture; // "amd64"
 * ```
 * @throws {ArchiveError} when the archive cannot be read or is not an image archive.
 */
export async function inspectArchive(
  path: string,
  options: InspectArchiveOptions = {},
): Promise<ArchiveReport> {
  const { signal } = options;
  const stream = path === "-"
    ? { label: "standard input", stream: (options.stdin ?? (() => Deno.stdin.readable))() }
    : await openArchiveStream(path);
  if (stream === undefined) {
    const directory = (await Deno.stat(path).catch(() => undefined))?.isDirectory === true;
    const index = await indexArchive(path, signal ? { signal } : {});
    const archive = await loadImages(index);
    return await reportArchive(archive, index, {
      path,
      compression: "none",
      streamed: false,
      directory,
    });
  }
  const { index, format } = await readArchiveStream(stream, signal ? { signal } : {});
  const archive = await loadImages(index);
  return await reportArchive(archive, index, {
    path,
    compression: format === "tar" ? "none" : format,
    streamed: true,
    directory: false,
  });
}

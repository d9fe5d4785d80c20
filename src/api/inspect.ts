/**
 * `inspect`: what an image archive holds, read without a registry.
 *
 * @module
 */
import type { ArchiveReport } from "../inspect/archive_report.ts";
import { inspectArchive } from "../inspect/inspect_archive.ts";
import type { ArchiveInput, InspectOptions } from "./options.ts";
import { abortable } from "./run_context.ts";

/**
 * Describes the archive: its format, each image's names, platforms, manifests, configs and
 * layers (digest, size, media type, compression from the bytes), and totals. A path is a tar
 * file (plain, gzip, zstd or xz) or an image directory; a stream is read once, and its report
 * names it `-`.
 *
 * Rejects with an `ArchiveError` when the archive cannot be read as an image archive, and the
 * signal's reason when `signal` aborts.
 *
 * @example Count the platforms of an archive
 * ```ts
 * import { inspect } from "@docker-image-pusher/cli";
 *
 * const info = await inspect("app.tar");
 * console.log(info.format, info.totals.platforms);
 * ```
 */
export async function inspect(
  archive: ArchiveInput,
  options: InspectOptions = {},
): Promise<ArchiveReport> {
  const { signal } = options;
  signal?.throwIfAborted();
  return await abortable(signal, async () => {
    if (typeof archive === "string") {
      // A file named "-" is a file: standard input is the command line's, not the library's.
      const path = archive === "-" ? "./-" : archive;
      return await inspectArchive(path, signal ? { signal } : {});
    }
    return await inspectArchive("-", { stdin: () => archive, ...(signal ? { signal } : {}) });
  });
}

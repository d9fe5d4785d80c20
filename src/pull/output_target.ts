/**
 * Where a pull's archive goes, decided before the first request, so a path that cannot work
 * fails at once instead of after the download.
 *
 * - A regular file, or a path that does not exist yet, is written beside itself as
 *   `PATH.partial` and renamed over PATH when complete (resumable).
 * - Anything else is written as a stream, as standard output is: a character device
 *   (`/dev/null`), a FIFO (its reader gets the archive), a socket, `/dev/stdout`, `/dev/fd/N`.
 *   Renaming over one of those would replace it, and as root that replaced `/dev/null` itself.
 * - A symbolic link is followed to its final target: the target is written (its `.partial`
 *   beside it) and the link kept.
 *
 * @example
 * ```ts
 * import { resolveOutputTarget } from "./output_target.ts";
 * const target = await resolveOutputTarget("app.tar");
 * console.log(target.kind); // "file": app.tar.partial, then renamed to app.tar
 * ```
 */
import { dirname, resolve } from "node:path";
import { osErrorWords, OutputWriteError } from "./pull_errors.ts";

/** Where the archive is written. */
export type OutputTarget =
  /** A regular file (or a new one): `path` is the file itself, symbolic links followed. */
  | { kind: "file"; path: string }
  /** Written in archive order, never renamed over: `path` is what to open for writing. */
  | { kind: "stream"; path: string };

/** Why an output path cannot take the archive. */
export type OutputProblem =
  | "directory"
  | "missing-parent"
  | "parent-not-directory"
  | "unwritable-parent"
  | "link-loop"
  | "unopenable";

/** The output path cannot take the archive; `problem` says why (the CLI words the hint). */
export class OutputPathError extends Error {
  override name = "OutputPathError";
  constructor(
    readonly path: string,
    readonly problem: OutputProblem,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * The process's own descriptors by name. They are links the kernel resolves itself (to
 * `pipe:[123]`, say), never files to read as links or rename over: they are always streamed.
 */
const DESCRIPTOR = /^\/(?:dev\/(?:stdout|stderr|fd\/\d+)|proc\/(?:self|\d+)\/fd\/\d+)$/;

/** As the kernel's own limit on links followed in one path (`ELOOP`). */
const MAX_LINKS = 40;

/**
 * Decides how to write the archive to `path`; throws {@linkcode OutputPathError} when it
 * cannot be written there (a directory, a missing or read-only parent directory). Nothing is
 * left behind: the only file created is the probe that shows the directory takes new files.
 */
export async function resolveOutputTarget(path: string): Promise<OutputTarget> {
  let current = path;
  for (let links = 0;; links++) {
    if (DESCRIPTOR.test(current)) return { kind: "stream", path: current };
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(current);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return await fileTarget(path, current);
      if (error instanceof Deno.errors.NotADirectory) {
        throw new OutputPathError(
          path,
          "parent-not-directory",
          `Cannot write the archive to ${path}: a part of the path is not a directory`,
          { cause: error },
        );
      }
      throw new Error(`Cannot write the archive to ${path}: ${osErrorWords(error)}`, {
        cause: error,
      });
    }
    if (info.isSymlink) {
      if (links >= MAX_LINKS) {
        throw new OutputPathError(
          path,
          "link-loop",
          `Cannot write the archive to ${path}: too many levels of symbolic links`,
        );
      }
      current = resolve(dirname(current), await Deno.readLink(current));
      continue;
    }
    if (info.isDirectory) {
      throw new OutputPathError(path, "directory", `Output ${path} is a directory`);
    }
    if (info.isFile) return await fileTarget(path, current);
    // A device, a FIFO or a socket.
    return { kind: "stream", path: current };
  }
}

/**
 * Opens a stream target for writing (a FIFO's open waits for its reader, as the shell's
 * `> fifo` does); an interruption stops the wait.
 */
export async function openOutputStream(
  target: { path: string },
  signal?: AbortSignal,
): Promise<Deno.FsFile> {
  signal?.throwIfAborted();
  const opening = Deno.open(target.path, { write: true });
  try {
    if (signal === undefined) return await opening;
    const aborted = Promise.withResolvers<never>();
    const onAbort = () => aborted.reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      return await Promise.race([opening, aborted.promise]);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  } catch (error) {
    if (signal?.aborted) {
      // Opened after all (a FIFO's reader came late): nobody will write to it.
      opening.then((file) => file.close(), () => {});
      throw error;
    }
    throw new OutputPathError(
      target.path,
      "unopenable",
      `Cannot open ${target.path} for writing: ${osErrorWords(error)}`,
      { cause: error },
    );
  }
}

/**
 * The archive's way into an opened stream target: each chunk written whole before its write
 * resolves, and a failed write rejected as an {@linkcode OutputWriteError} naming `path`.
 *
 * Not `file.writable`: in Deno 2.9.6 it gathers writes under 64 KiB and makes them later, and
 * the error of that later write is lost: five 512-byte writes into `/dev/full` each resolved,
 * and so did `close()`, while strace showed their one 2560-byte write fail with ENOSPC (three
 * into a FIFO whose reader had gone: the same). A pull whose last writes failed would report an
 * archive it never wrote.
 */
export function outputWritable(file: Deno.FsFile, path: string): WritableStream<Uint8Array> {
  return new WritableStream({
    async write(chunk) {
      try {
        for (let at = 0; at < chunk.length;) at += await file.write(chunk.subarray(at));
      } catch (error) {
        throw new OutputWriteError(path, error);
      }
    },
  });
}

/**
 * A regular file at `file` (existing or not): its directory must exist and take new files,
 * since `.partial` is created there and renamed into place.
 */
async function fileTarget(given: string, file: string): Promise<OutputTarget> {
  const dir = dirname(file);
  let isDirectory: boolean;
  try {
    isDirectory = (await Deno.stat(dir)).isDirectory;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new OutputPathError(
        given,
        "missing-parent",
        `Cannot write the archive to ${given}: directory ${dir} does not exist`,
        { cause: error },
      );
    }
    if (!(error instanceof Deno.errors.NotADirectory)) throw error;
    isDirectory = false;
  }
  if (!isDirectory) {
    throw new OutputPathError(
      given,
      "parent-not-directory",
      `Cannot write the archive to ${given}: ${dir} is not a directory`,
    );
  }
  // Only creating a file tells: permission bits say nothing of root, read-only mounts,
  // immutable directories or ACLs.
  try {
    await Deno.remove(await Deno.makeTempFile({ dir, prefix: ".dip-probe-" }));
  } catch (error) {
    throw new OutputPathError(
      given,
      "unwritable-parent",
      `Cannot write the archive to ${given}: cannot create files in ${dir} (${
        osErrorWords(error)
      })`,
      { cause: error },
    );
  }
  return { kind: "file", path: file };
}

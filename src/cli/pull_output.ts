/**
 * `pull -o OUTPUT` checked and opened before the first request: a path that cannot take the
 * archive is a usage error (with a hint) before anything is downloaded, and binary is never
 * written to a terminal. What an interruption says about a rerun depends on what was opened.
 */
import { UsageError } from "./usage_error.ts";
import { partialPaths } from "../pull/partial_state.ts";
import {
  openOutputStream,
  OutputPathError,
  outputWritable,
  resolveOutputTarget,
} from "../pull/output_target.ts";
import { OutputWriteError } from "../pull/pull_errors.ts";

/** Where a pull writes, once checked. */
export type PullOutput =
  /** A regular file (symbolic links followed), written through `PATH.partial`. */
  | { kind: "file"; path: string }
  /**
   * Written in order into `stream`: standard output, a device, a FIFO. `close` releases what
   * was opened for it (idempotent).
   */
  | {
    kind: "stream";
    /** "standard output", or the path. */
    label: string;
    stream: WritableStream<Uint8Array>;
    /** Whether it is this process's standard output (then stdout carries no result lines). */
    toStdout: boolean;
    close(): void;
  };

/** What opening the output needs from the process. */
export interface PullOutputContext {
  /** Standard output as bytes. Default: `Deno.stdout.writable`. */
  stdout?: () => WritableStream<Uint8Array>;
  /** Whether standard output is a terminal. Default false. */
  stdoutIsTerminal?: boolean;
  /**
   * What standard error is (where progress and errors go), to refuse it as the output.
   * Default: the file `/dev/stderr` names, or undefined where there is none.
   */
  stderrInfo?: () => Deno.FileInfo | undefined;
  signal: AbortSignal;
}

/** The paths that are this process's standard output, written as `-o -` is. */
const STDOUT_PATHS = new Set(["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"]);

const TERMINAL_HINT = "Redirect it (-o - > app.tar, or | docker-image-pusher push -f - -r …), " +
  "or write a file with -o app.tar";

/** Checks `-o output` and opens it if it is written as a stream; throws a `UsageError`. */
export async function openPullOutput(
  output: string,
  context: PullOutputContext,
): Promise<PullOutput> {
  if (output === "-") return standardOutput(context);
  try {
    const target = await resolveOutputTarget(output);
    if (target.kind === "file") return target;
    // Named, or reached through a link: the descriptor itself, as `-o -` (a socket included,
    // which cannot be opened by name).
    if (STDOUT_PATHS.has(target.path)) return standardOutput(context);
    const file = await openOutputStream(target, context.signal);
    if (file.isTerminal()) {
      file.close();
      refuseTerminal(output);
    }
    if (isStandardError(await file.stat(), context)) {
      file.close();
      // Progress lines and errors would be written into the archive.
      throw new UsageError(
        `Refusing to write the archive to standard error (${output}): progress and errors ` +
          "are written there",
        { hint: "Write it to standard output with -o -, or to a file with -o app.tar" },
      );
    }
    let closed = false;
    return {
      kind: "stream",
      label: output,
      stream: outputWritable(file, output),
      toStdout: false,
      close() {
        if (closed) return;
        closed = true;
        try {
          file.close();
        } catch {
          // Already closed with its stream.
        }
      },
    };
  } catch (error) {
    if (error instanceof OutputPathError) {
      throw new UsageError(error.message, { hint: hintFor(error), cause: error });
    }
    throw error;
  }
}

function standardOutput(context: PullOutputContext): PullOutput {
  if (context.stdoutIsTerminal) refuseTerminal("standard output");
  return {
    kind: "stream",
    label: "standard output",
    stream: named((context.stdout ?? (() => Deno.stdout.writable))(), "standard output"),
    toStdout: true,
    close: () => {},
  };
}

/**
 * `stream`, its write failures said as {@linkcode OutputWriteError}s naming `label`. Its writer
 * is taken at the first write, so a run that writes nothing leaves it unlocked.
 */
function named(stream: WritableStream<Uint8Array>, label: string): WritableStream<Uint8Array> {
  let writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  const named = (error: unknown) => {
    throw error instanceof OutputWriteError ? error : new OutputWriteError(label, error);
  };
  return new WritableStream({
    write: (chunk) => (writer ??= stream.getWriter()).write(chunk).catch(named),
    close: () => (writer ??= stream.getWriter()).close().catch(named),
    abort: (reason) => (writer ??= stream.getWriter()).abort(reason),
  });
}

/**
 * Whether `info` is the file standard error writes to. A character device is never refused:
 * the archive and the messages both vanish into `/dev/null`, and a terminal is refused anyway.
 */
function isStandardError(info: Deno.FileInfo, context: PullOutputContext): boolean {
  if (info.isCharDevice) return false;
  const stderr = (context.stderrInfo ?? defaultStderrInfo)();
  return stderr !== undefined && stderr.dev === info.dev && stderr.ino !== null &&
    stderr.ino === info.ino;
}

function defaultStderrInfo(): Deno.FileInfo | undefined {
  try {
    return Deno.statSync("/dev/stderr");
  } catch {
    return undefined;
  }
}

/** What an interruption says about a rerun of a pull into `output`. */
export function interruptedPull(output: PullOutput): string {
  if (output.kind === "stream") {
    return `Interrupted. A pull to ${output.label} cannot resume; run it again.`;
  }
  const { data } = partialPaths(output.path);
  let kept: boolean;
  try {
    kept = Deno.statSync(data).isFile;
  } catch {
    kept = false;
  }
  // Interrupted before the archive was laid out (at a password prompt, say): nothing to keep.
  return kept
    ? `Interrupted. Run the same command again to resume: what was downloaded is kept in ${data}.`
    : "Interrupted.";
}

function refuseTerminal(what: string): never {
  // As `docker save` does ("cowardly refusing to save to a terminal").
  throw new UsageError(
    `Refusing to write the archive to a terminal (${what}): it is binary`,
    { hint: TERMINAL_HINT },
  );
}

function hintFor(error: OutputPathError): string {
  switch (error.problem) {
    case "directory":
      return `Name a file in it, e.g. -o ${error.path.replace(/\/+$/, "")}/app.tar`;
    case "missing-parent":
      return "Create the directory first (mkdir -p), or write somewhere else with -o";
    case "parent-not-directory":
    case "link-loop":
      return "Name a file in an existing directory with -o, e.g. -o app.tar";
    case "unwritable-parent":
      return "Write to a directory you can create files in (the archive is written beside " +
        "itself as OUTPUT.partial, then renamed)";
    case "unopenable":
      return "Write to a file, a FIFO or a device you can open, or use -o - for standard output";
  }
}

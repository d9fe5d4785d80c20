/**
 * The program's top level: parse, run, and turn every outcome into an exit code and at most a
 * couple of lines on stderr. Exit codes: 0 pushed, 1 failed, 2 usage error, 130 interrupted.
 */
import { CommanderError } from "commander";
import { UsageError, usageErrorOf } from "./usage_error.ts";
import { NAME } from "../version.ts";
import { describeError } from "./core_advice.ts";
import { archiveStdin } from "./archive_stdin.ts";
import { runPush } from "./push_command.ts";
import { buildProgram, withDefaultCommand } from "./program.ts";
import { runInspect } from "./inspect_command.ts";
import { writeJsonFailure } from "./json_failure.ts";
import { type PullContext, runPull } from "./pull_command.ts";
import { interruptedPull } from "./pull_output.ts";

export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** Runs the program with `args` (without the executable); returns the exit code. */
export async function main(
  args: string[],
  context: Omit<PullContext, "onVerbose" | "onOutput">,
): Promise<number> {
  let verbose = false;
  /** What an interruption says: each command its own, as it learns what a rerun would do. */
  let interrupted = () => "Interrupted.";
  const stdin = archiveStdin(context);
  const program = buildProgram(
    { writeOut: context.writeOut, writeErr: context.writeErr },
    (flags) => {
      interrupted = () =>
        "Interrupted. Run the same command again to resume: blobs already in the registry " +
        "are skipped.";
      return runPush(flags, { ...context, stdin, onVerbose: (v) => verbose = v });
    },
    (flags) => runInspect(flags, { ...context, stdin }),
    (sources, flags) =>
      runPull(sources, flags, {
        ...context,
        onVerbose: (v) => verbose = v,
        onOutput: (output) => interrupted = () => interruptedPull(output),
      }),
  );
  try {
    await program.parseAsync(withDefaultCommand(args), { from: "user" });
    return EXIT.ok;
  } catch (caught) {
    // What reaches here from the core unconverted is said in terms of flags all the same.
    const error = usageErrorOf(caught);
    writeJsonFailure(args, error, context.writeOut);
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version") {
        return EXIT.ok;
      }
      if (error.code === "commander.help") return EXIT.ok;
      const message = error.message.replace(/^error: /, "");
      context.writeErr(
        `Error: ${capitalize(message)}\nHint: run "${NAME} --help" for usage\n`,
      );
      return EXIT.usage;
    }
    if (context.signal.aborted) {
      context.writeErr(`${interrupted()}\n`);
      return EXIT.interrupted;
    }
    if (error instanceof UsageError) {
      // Every usage error gets a hint, as the README promises: at least where to read more.
      const hint = error.hint ?? `run "${NAME} --help" for usage`;
      context.writeErr(`Error: ${error.message}\nHint: ${hint}\n`);
      return EXIT.usage;
    }
    context.writeErr(`Error: ${describeError(error)}\n`);
    if (verbose) {
      for (let cause = (error as Error).cause; cause !== undefined;) {
        context.writeErr(`  caused by: ${describeError(cause)}\n`);
        cause = cause instanceof Error ? cause.cause : undefined;
      }
    }
    return EXIT.failed;
  }
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

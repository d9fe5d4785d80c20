/**
 * Under `--output json` (`pull --json`), every failure still prints one JSON document on stdout, with the
 * error in `errors[]`, whatever stage it failed at. `push` and `inspect` write their own
 * documents for what they see; this covers the rest: a flag the parser refused (`--bogus`), a
 * usage error raised before a command ran. The exit code is not changed by it.
 */
import { CommanderError } from "commander";
import { jsonReport } from "./push_report.ts";
import { INSPECT_SCHEMA_VERSION } from "../inspect/archive_report.ts";
import { pullFailure } from "./pull_report.ts";
import { UsageError } from "./usage_error.ts";

/** Errors a command has already reported in its own JSON document. */
const reported = new WeakSet<object>();

/** Notes that `error` is in a document on stdout already (it is not reported twice). */
export function reportedAsJson(error: unknown): void {
  if (typeof error === "object" && error !== null) reported.add(error);
}

/**
 * The document of an `inspect` that failed: the schema version, `success: false`, the archive
 * as given (`null` when none was), and the error, as push's document carries its own.
 */
export function inspectFailure(path: string | null, error: unknown): Record<string, unknown> {
  return {
    schemaVersion: INSPECT_SCHEMA_VERSION,
    success: false,
    archive: { path },
    errors: [{ message: error instanceof Error ? error.message : String(error) }],
  };
}

/** Commander's way of ending a run that is no failure (help and version were printed). */
const NOT_FAILURES = new Set(["commander.helpDisplayed", "commander.help", "commander.version"]);

/**
 * Writes the failure document of the command `args` run (without the executable) when they ask
 * for `--output json` (`pull --json`) and no document said so yet.
 */
export function writeJsonFailure(
  args: readonly string[],
  error: unknown,
  writeOut: (text: string) => void,
): void {
  if (error instanceof CommanderError && NOT_FAILURES.has(error.code)) return;
  if (typeof error === "object" && error !== null && reported.has(error)) return;
  const command = jsonCommand(args);
  if (command === undefined) return;
  const document = command === "pull"
    ? pullFailure(pullArchive(args), pullErrorOf(error))
    : command === "inspect"
    ? inspectFailure(null, messageOf(error))
    : jsonReport({
      reports: [],
      skipped: [],
      dryRun: args.includes("--dry-run"),
      durationMs: 0,
      error: messageOf(error),
    });
  try {
    writeOut(`${JSON.stringify(document, null, 2)}\n`);
  } catch {
    // stdout is gone; stderr still carries the error.
  }
}

/**
 * The command whose JSON `args` ask for: `push` (the default command), `inspect` or `pull`, or
 * nothing. The flags are read as given, since parsing them is what may have failed.
 */
export function jsonCommand(args: readonly string[]): "push" | "inspect" | "pull" | undefined {
  const first = args[0];
  // pull's -o/--output is the archive; its document is asked for with --json.
  if (first === "pull") return flagsOf(args).includes("--json") ? "pull" : undefined;
  const command = first === "inspect"
    ? "inspect"
    : first === undefined || first === "push" || first.startsWith("-")
    ? "push"
    : undefined;
  if (command === undefined) return undefined;
  // push takes `json` exactly; inspect in any case (as each command parses it).
  const isJson = (value: string | undefined) =>
    command === "inspect" ? value?.toLowerCase() === "json" : value === "json";
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") break;
    if (arg.startsWith("--output=") && isJson(arg.slice("--output=".length))) return command;
    if (arg === "--output" && isJson(args[i + 1])) return command;
  }
  return undefined;
}

/** The arguments before `--`: flags after it are operands. */
function flagsOf(args: readonly string[]): readonly string[] {
  const end = args.indexOf("--");
  return end === -1 ? args : args.slice(0, end);
}

/** The archive `pull -o`/`--output` names, as given (null when none was). */
function pullArchive(args: readonly string[]): string | null {
  const flags = flagsOf(args);
  let archive: string | null = null;
  for (let i = 0; i < flags.length; i++) {
    const arg = flags[i]!;
    if ((arg === "-o" || arg === "--output") && flags[i + 1] !== undefined) archive = flags[++i]!;
    else if (arg.startsWith("--output=")) archive = arg.slice("--output=".length);
    else if (arg.startsWith("-o") && arg.length > 2 && !arg.startsWith("--")) {
      archive = arg.slice(2);
    }
  }
  return archive;
}

/** A refusal by commander is a usage error for the document's `kind`, in our words. */
function pullErrorOf(error: unknown): unknown {
  return error instanceof CommanderError ? new UsageError(messageOf(error).message) : error;
}

/** The error as the one line on stderr says it (commander's without its `error: ` prefix). */
function messageOf(error: unknown): Error {
  if (!(error instanceof CommanderError)) {
    return error instanceof Error ? error : new Error(String(error));
  }
  const text = error.message.replace(/^error: /, "");
  return new Error(text.charAt(0).toUpperCase() + text.slice(1));
}

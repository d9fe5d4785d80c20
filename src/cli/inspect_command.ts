/**
 * The `inspect` command: what an image archive holds, read without a registry. stdout carries
 * the report (text, or one JSON document with `--output json`); errors go to stderr.
 */
import { type Command, Option } from "commander";
import { UsageError } from "./usage_error.ts";
import type { ArchiveReport } from "../inspect/archive_report.ts";
import { inspectArchive } from "../inspect/inspect_archive.ts";
import { NAME } from "../version.ts";
import { renderInspectText } from "./inspect_text.ts";
import { inCliTerms } from "./core_advice.ts";
import { addHelpNotes } from "./help_text.ts";
import { inspectFailure, reportedAsJson } from "./json_failure.ts";

/** Flags as the command-line parser hands them over (absent when not given). */
export interface InspectFlags {
  file?: string;
  output?: string;
}

/** What the command needs from the process (a part of `push`'s `CommandContext`). */
export interface InspectContext {
  /** Standard input, for `-f -`. */
  stdin: () => ReadableStream<Uint8Array>;
  writeOut: (text: string) => void;
  signal: AbortSignal;
}

const OUTPUTS = ["text", "json"] as const;
type Output = typeof OUTPUTS[number];

/**
 * Adds `inspect` to `program`; `run` is called with the parsed flags. Output goes through
 * `io`, and commander's errors are thrown for `main` to report, as for `push`.
 */
export function addInspectCommand(
  program: Command,
  io: { writeOut(text: string): void; writeErr(text: string): void },
  run: (flags: InspectFlags) => Promise<void>,
): Command {
  const command = program.command("inspect")
    .description(
      "Show what an image archive holds: its format, each image's names, platforms, manifest, " +
        "config and layers (digest, size, media type, compression), and totals. No registry.",
    )
    .usage("[-f] ARCHIVE [options]")
    .argument("[archive]", "the image archive, as with -f")
    .helpOption("-h, --help", "show help")
    .addOption(
      new Option(
        "-f, --file <path>",
        "image archive (docker save, OCI layout tar, skopeo output; .tar.gz/.zst/.xz too), - for stdin",
      ),
    )
    .addOption(
      new Option(
        "--output <format>",
        "text (a summary for people) or json (one document; fields in the README) [default: text]",
      ),
    );
  return addHelpNotes(command, [
    "The report goes to stdout, errors to stderr.",
    "Exit codes: 0 read, 1 not a readable image archive, 2 usage error, 130 interrupted.",
  ])
    .exitOverride()
    .configureOutput({
      writeOut: io.writeOut,
      writeErr: io.writeErr,
      outputError: () => {}, // Reported by main as one line with a hint.
    })
    .action(async (archive: string | undefined, flags: InspectFlags) => {
      // `inspect app.tar` as other tools take it; -f too, as push takes it. Not both.
      if (archive !== undefined && flags.file !== undefined) {
        throw new UsageError(
          `The archive is given twice: as an argument (${archive}) and with -f (${flags.file})`,
          { hint: `Give it once: ${NAME} inspect ARCHIVE` },
        );
      }
      await run(archive === undefined ? flags : { ...flags, file: archive });
    });
}

/** Runs `inspect`; throws on any failure (the caller maps errors to exit codes). */
export async function runInspect(flags: InspectFlags, context: InspectContext): Promise<void> {
  let report: ArchiveReport;
  try {
    const output = parseOutput(flags.output);
    if (!flags.file) {
      throw new UsageError("No archive: ARCHIVE or -f/--file is required", {
        hint: `Example: ${NAME} inspect app.tar (or -f app.tar; - for standard input)`,
      });
    }
    report = inCliNotes(
      await inspectArchive(flags.file, { stdin: context.stdin, signal: context.signal }),
    );
    if (output === "text") {
      context.writeOut(renderInspectText(report));
      return;
    }
  } catch (error) {
    // Under --output json every failure prints a document too, a usage error's included.
    if (flags.output?.toLowerCase() === "json") {
      writeQuietly(context, inspectJson(inspectFailure(flags.file ?? null, error)));
      reportedAsJson(error);
    }
    throw error;
  }
  // `success` beside the schema version, as in push's document and a failure's.
  const { schemaVersion, ...rest } = report;
  context.writeOut(inspectJson({ schemaVersion, success: true, ...rest, errors: [] }));
}

/** `report` with the archive reader's notes in terms of flags. */
function inCliNotes(report: ArchiveReport): ArchiveReport {
  return {
    ...report,
    images: report.images.map((image) => ({ ...image, notes: image.notes.map(inCliTerms) })),
  };
}

function inspectJson(document: object): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}

/** A failure's document, unless stdout is what failed (a reader that went away). */
function writeQuietly(context: InspectContext, text: string): void {
  try {
    context.writeOut(text);
  } catch {
    // The error being reported says what went wrong; stderr carries it.
  }
}

function parseOutput(text: string | undefined): Output {
  if (text === undefined) return "text";
  const output = OUTPUTS.find((o) => o === text.toLowerCase());
  if (output === undefined) {
    throw new UsageError(`--output must be text or json, got "${text}"`, {
      hint: "Use --output json for one JSON document (its fields are in the README)",
    });
  }
  return output;
}

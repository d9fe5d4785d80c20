/**
 * Chooses how progress reaches the user: live bars on a terminal, plain lines in logs, only
 * warnings with `--quiet`; HTTP request lines with `--verbose`. All of it goes to stderr.
 */
import { type ProgressSink, silentSink } from "../progress/events.ts";
import { combineSinks } from "../progress/fan_out.ts";
import { createLineRenderer } from "./progress/line_renderer.ts";
import { createStderrTtyRenderer } from "./progress/stderr_tty.ts";
import type { Wording } from "./progress/tty_frame.ts";
import { createHttpLogSink } from "./progress/verbose_logger.ts";
import { warningsOnly } from "./progress/warnings_only.ts";

export interface ReporterOptions {
  quiet: boolean;
  verbose: boolean;
  /** stderr is a terminal. */
  tty: boolean;
  /** Colour allowed (a terminal, and `NO_COLOR` unset). */
  color: boolean;
  writeErr: (text: string) => void;
  /** Which way the bytes go, for the bars (default: a push's words). */
  words?: Wording;
  /** Progress as plain lines, when stderr is not a terminal (default: a push's lines). */
  lines?: (writeLine: (line: string) => void) => { sink: ProgressSink; stop(): void };
}

export interface Reporter {
  sink: ProgressSink;
  /** A line of information (suppressed by `--quiet`). */
  info(line: string): void;
  stop(): void;
}

/** Builds the reporter for the given output settings. */
export function createReporter(options: ReporterOptions): Reporter {
  if (options.quiet) {
    return {
      sink: warningsOnly((line) => options.writeErr(`${line}\n`)),
      info: () => {},
      stop: () => {},
    };
  }
  if (options.tty) {
    const tty = createStderrTtyRenderer({
      color: options.color,
      write: options.writeErr,
      ...(options.words ? { words: options.words } : {}),
    });
    const http = options.verbose ? createHttpLogSink((line) => tty.writeLine(line)) : silentSink;
    return {
      sink: combineSinks(tty.sink, http),
      info: (line) => tty.writeLine(line),
      stop: () => tty.stop(),
    };
  }
  const writeLine = (line: string) => options.writeErr(`${line}\n`);
  const lines = (options.lines ?? ((write) => createLineRenderer({ writeLine: write })))(
    writeLine,
  );
  const http = options.verbose ? createHttpLogSink(writeLine) : silentSink;
  return {
    sink: combineSinks(lines.sink, http),
    info: writeLine,
    stop: () => lines.stop(),
  };
}

/**
 * The reporter a command's settings and process ask for: bars when stderr is a terminal (in
 * colour unless `NO_COLOR`), lines otherwise, only warnings with `--quiet`.
 */
export function reporterFor(
  settings: { quiet: boolean; verbose: boolean },
  context: { stderrIsTerminal: boolean; noColor: boolean; writeErr: (text: string) => void },
  style: Pick<ReporterOptions, "words" | "lines"> = {},
): Reporter {
  return createReporter({
    quiet: settings.quiet,
    verbose: settings.verbose,
    tty: context.stderrIsTerminal,
    color: context.stderrIsTerminal && !context.noColor,
    writeErr: context.writeErr,
    ...style,
  });
}

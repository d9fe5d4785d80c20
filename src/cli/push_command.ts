/**
 * The `push` command: settings → archives → a plan of which image goes where → one run that
 * pushes them all → the report (a line per tag pushed on stdout, or one JSON document).
 */
import { readCaFile } from "./ca_file.ts";
import { type RunNote, type RunOutcome, runPushSettings, type RunSource } from "../api/push_run.ts";
import { openSource } from "./push_input.ts";
import { resolveCredentials } from "../credentials/resolve.ts";
import { realCredentialSystem } from "../credentials/system.ts";
import { usageErrorOf } from "./usage_error.ts";
import { describeError, inCliTerms } from "./core_advice.ts";
import { formatBytes } from "../byte_size.ts";
import type { JobReport } from "../push/push_run.ts";
import type { CredentialLookup, Credentials } from "../registry/credentials.ts";
import {
  describePasswordSource,
  type PushSettings,
  type RawFlags,
  resolveSettings,
  type TargetSettings,
} from "./options.ts";
import { type PasswordInput, readStdinPassword } from "./password_input.ts";
import { reportedAsJson } from "./json_failure.ts";
import { type Reporter, reporterFor } from "./reporter.ts";
import { jsonReport, pushedLines, targetText, textSummary } from "./push_report.ts";

/** What the command needs from the process, injectable for tests. */
export interface CommandContext extends PasswordInput {
  env: (name: string) => string | undefined;
  /** Standard input, for `-f -`. */
  stdin: () => ReadableStream<Uint8Array>;
  writeOut: (text: string) => void;
  writeErr: (text: string) => void;
  stderrIsTerminal: boolean;
  noColor: boolean;
  signal: AbortSignal;
  /** Told once settings are known, so errors can be reported at the right verbosity. */
  onVerbose: (verbose: boolean) => void;
}

/** Runs a push; throws on any failure (the caller maps errors to exit codes). */
export async function runPush(flags: RawFlags, context: CommandContext): Promise<void> {
  const started = performance.now();
  let settings: PushSettings | undefined;
  let reporter: Reporter | undefined;
  let outcome: RunOutcome = { reports: [], skipped: [] };
  /** Filled as archives are opened, so a failure after that still names them as given. */
  const archiveNames = new Map<string, string>();
  try {
    let stdinPassword: string | undefined;
    if (flags.passwordStdin) {
      // Every other setting is checked before the password is read (or asked for at a prompt).
      resolveSettings(flags, context.env, "-");
      stdinPassword = await readStdinPassword(context);
    }
    settings = resolveSettings(flags, context.env, stdinPassword);
    context.onVerbose(settings.verbose);
    reporter = reporterFor(settings, context);
    outcome = await pushAll(settings, context, reporter, archiveNames);
  } catch (caught) {
    // The core's refusals of an option are said in terms of flags, in the JSON document too.
    const error = usageErrorOf(caught);
    reporter?.stop();
    // Under --output json every failure prints its document, a usage error's too (the flags
    // that asked for JSON are read as given when the settings could not be).
    if ((settings?.output ?? flags.output) === "json") {
      writeJson(settings, flags, outcome, performance.now() - started, context, {
        error,
        archiveNames,
      });
      reportedAsJson(error);
    }
    throw error;
  } finally {
    reporter?.stop();
  }
  const { reports, skipped } = outcome;
  if (settings.output === "json") {
    writeJson(settings, flags, outcome, performance.now() - started, context, { archiveNames });
  } else {
    const text = textSummary(reports, skipped, {
      dryRun: settings.dryRun,
      quiet: settings.quiet,
      codec: settings.compression.codec,
    });
    for (const line of text) context.writeErr(`${line}\n`);
    if (!settings.dryRun) {
      for (const report of reports) {
        for (const line of pushedLines(report)) writeResult(line, context);
      }
    }
  }
  const failure = runFailure(reports);
  if (failure === undefined) return;
  // The document on stdout has said it already.
  if (settings.output === "json") reportedAsJson(failure);
  throw failure;
}

/** The error a run ends with when some of its pushes failed; nothing when none did. */
function runFailure(reports: readonly JobReport[]): unknown {
  const failed = reports.filter((r) => r.status === "failed");
  if (failed.length === 0) return undefined;
  if (failed.length === 1 && reports.length === 1) return usageErrorOf(failed[0]!.error);
  // One cause for all (a registry that is down): said once.
  const causes = new Set(failed.map((r) => describeError(r.error)));
  return new Error(
    `${failed.length} of ${reports.length} pushes failed: ` +
      (causes.size === 1 && failed.length > 1
        ? [...causes][0]
        : failed.map((r) => `${targetText(r.job)} (${describeError(r.error)})`).join("; ")),
  );
}

/** Opens the archives and runs the push; throws only for what stops the whole run. */
async function pushAll(
  settings: PushSettings,
  context: CommandContext,
  reporter: Reporter,
  archiveNames: Map<string, string>,
): Promise<RunOutcome> {
  const { targets } = settings;
  if (targets.some((t) => t.passwordSource === "flag") && !settings.quiet) {
    context.writeErr(
      "Warning: a password on the command line can be read by other users of this machine; " +
        "prefer --password-stdin\n",
    );
  }
  const insecure = settings.skipTls
    ? [
      ...new Set(
        targets.filter((t) => t.reference.scheme === "https").map((t) => t.reference.apiHost),
      ),
    ]
    : [];
  if (insecure.length > 0 && !settings.quiet) {
    context.writeErr(
      `Warning: TLS certificate verification is disabled for ${insecure.join(", ")} (--skip-tls)\n`,
    );
  }
  const caCerts = settings.caCert === undefined ? undefined : [await readCaFile(settings.caCert)];
  // A tar file is indexed in place; a pipe or a compressed file is read front to back, once.
  const sources: RunSource[] = [];
  for (const file of settings.files) {
    const source = await openSource(file, context, settings.timeoutSeconds);
    sources.push(source.kind === "file" ? { kind: "file", path: file } : source);
    if (source.kind === "stream") archiveNames.set(source.label, file);
  }
  return await runPushSettings({
    ...settings,
    sources,
    targets: targets.map((t) => t.reference),
    credentialsFor: (index) => credentialsFor(targets[index]!, settings, reporter, context),
    insecureHosts: insecure,
    caCerts,
    env: context.env,
    sink: reporter.sink,
    note: (note) => reporter.info(noteText(note)),
    signal: context.signal,
  });
}

/** A note of the run, as the log says it. */
function noteText(note: RunNote): string {
  switch (note.kind) {
    case "archive-note":
      return `Note: ${inCliTerms(note.text)}`;
    case "unused-stream-blobs":
      return `Note: ${note.count} blob(s), ${formatBytes(note.bytes)}, of other images in the ` +
        `stream went up too (an image's blobs are known only at the stream's end)`;
    case "cache-not-saved":
      return `Note: could not save the blob-info cache ${note.path}: ${note.error}`;
  }
}

/** The credentials for one target: given, or docker's config read if the registry asks. */
async function credentialsFor(
  target: TargetSettings,
  settings: PushSettings,
  reporter: Reporter,
  context: CommandContext,
): Promise<Credentials | CredentialLookup> {
  const registry = target.reference.registry;
  const choice = await resolveCredentials(target, registry, realCredentialSystem(context.env));
  if (choice.kind === "given") {
    if (settings.verbose) {
      const source = choice.source ?? describePasswordSource(target.passwordSource);
      reporter.info(`Credentials for ${registry}: ${source}`);
    }
    return choice.credentials;
  }
  if (settings.verbose) {
    reporter.info(`Credentials for ${registry}: docker's config, if the registry asks`);
  }
  // Read only if the registry asks; a store that cannot be read is the client's to report.
  return async () => {
    const found = await choice.lookup();
    if (settings.verbose) {
      reporter.info(
        `Credentials for ${registry}: ${found?.source ?? "none in docker's config (anonymous)"}`,
      );
    }
    return found?.credentials;
  };
}

/** The `--output json` document; `settings` is undefined when they could not be read. */
function writeJson(
  settings: PushSettings | undefined,
  flags: RawFlags,
  outcome: RunOutcome,
  durationMs: number,
  context: CommandContext,
  options: { error?: unknown; archiveNames: ReadonlyMap<string, string> },
): void {
  const document = jsonReport({
    reports: outcome.reports,
    skipped: outcome.skipped,
    dryRun: settings?.dryRun ?? flags.dryRun === true,
    ...(settings ? { compression: settings.compression } : {}),
    durationMs: Math.round(durationMs),
    archiveNames: options.archiveNames,
    ...("error" in options ? { error: options.error } : {}),
  });
  try {
    context.writeOut(`${JSON.stringify(document, null, 2)}\n`);
  } catch (writeError) {
    context.writeErr(`Could not write the JSON report to stdout: ${describeError(writeError)}\n`);
  }
}

/**
 * The result line on stdout. The image is in the registry by now, so a stdout that cannot take
 * the line (closed early: `… | head -0`, a reader that went away) does not fail the push: the
 * line goes to stderr instead, with why.
 */
function writeResult(line: string, context: CommandContext): void {
  try {
    context.writeOut(`${line}\n`);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    context.writeErr(
      `Pushed ${line}, but stdout was closed, so it could not be written there (${why})\n`,
    );
  }
}

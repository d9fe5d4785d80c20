/**
 * The `pull` command: settings → registries → one archive; one line per image on stdout, or
 * with `--json` one document (pull_report.ts).
 */
import { readCaFile } from "./ca_file.ts";
import { resolveCredentials } from "../credentials/resolve.ts";
import { realCredentialSystem } from "../credentials/system.ts";
import type { ProgressEvent, ProgressSink } from "../progress/events.ts";
import { formatBytes } from "../byte_size.ts";
import { formatMillis, formatPercent, shortDigest } from "./progress/format.ts";
import { retryText } from "./progress/retry_text.ts";
import { PULL_WORDS } from "./progress/tty_frame.ts";
import { partialPaths } from "../pull/partial_state.ts";
import {
  isNoSpace,
  OutputWriteError,
  PlatformNotFoundError,
  StateWriteError,
} from "../pull/pull_errors.ts";
import { registryBaseUrl } from "../image/reference.ts";
import { runPullSettings } from "../api/pull_run.ts";
import { readStdinPassword } from "./password_input.ts";
import { type PullFlags, type PullSettings, resolvePullSettings } from "./pull_options.ts";
import { openPullOutput, type PullOutput, type PullOutputContext } from "./pull_output.ts";
import { referrerCounts } from "./referrer_counts.ts";
import { reporterFor } from "./reporter.ts";
import { UsageError } from "./usage_error.ts";
import { pullJson } from "./pull_report.ts";
import type { CommandContext } from "./push_command.ts";

/** What `pull` needs from the process besides what `push` needs. */
export interface PullContext extends CommandContext, PullOutputContext {
  /** Told the output once checked, so an interruption can say what a rerun does. */
  onOutput?: (output: PullOutput) => void;
}

/** Runs a pull; throws on any failure (the caller maps errors to exit codes). */
export async function runPull(
  sources: string[],
  flags: PullFlags,
  context: PullContext,
): Promise<void> {
  // Every setting, the output included, is checked before a password is asked for or read.
  let settings = resolvePullSettings(
    sources,
    flags,
    context.env,
    flags.passwordStdin ? "-" : undefined,
  );
  const output = await openPullOutput(settings.output, context);
  try {
    if (settings.json && output.kind === "stream" && output.toStdout) {
      // Named another way (/dev/stdout): still the archive's stream, so no room for a document.
      throw new UsageError(
        `--json cannot be used with -o ${settings.output}: standard output carries the archive`,
        { hint: "Write the archive to a file (-o app.tar) to get the JSON document on stdout" },
      );
    }
    context.onOutput?.(output);
    if (flags.passwordStdin) {
      settings = resolvePullSettings(sources, flags, context.env, await readStdinPassword(context));
    }
    // The core's refusals of an option (a password it cannot find) reach main.ts, which says
    // them in terms of flags.
    await pullInto(output, settings, sources, context);
  } finally {
    if (output.kind === "stream") output.close();
  }
}

async function pullInto(
  output: PullOutput,
  settings: PullSettings,
  sources: readonly string[],
  context: PullContext,
): Promise<void> {
  context.onVerbose(settings.verbose);
  const reporter = reporterFor(settings, context, { words: PULL_WORDS, lines: pullLineSink });
  const { sink } = reporter;
  const writeLine = (line: string) => reporter.info(line);
  if (settings.passwordSource === "flag" && !settings.quiet) {
    writeLine(
      "Warning: a password on the command line can be read by other users of this machine; " +
        "prefer --password-stdin",
    );
  }
  const caCerts = settings.caCert === undefined ? undefined : [await readCaFile(settings.caCert)];
  const hosts = [...new Set(settings.sources.map((s) => registryBaseUrl(s).host))];
  if (settings.skipTls && !settings.quiet) {
    writeLine(
      `Warning: TLS certificate verification is disabled for ${hosts.join(", ")} (--skip-tls)`,
    );
  }
  const system = realCredentialSystem(context.env);
  const started = performance.now();
  try {
    const where = output.kind === "file" ? settings.output : output.label;
    let result;
    try {
      result = await runPullSettings({
        ...settings,
        credentialsFor: async (index) => {
          const reference = settings.sources[index]!;
          const explicit = settings.password === undefined && reference.credentials
            ? { ...reference.credentials, passwordSource: "url" }
            : {
              username: settings.username,
              password: settings.password,
              passwordSource: settings.passwordSource,
            };
          const choice = await resolveCredentials(explicit, reference.registry, system);
          return choice.kind === "given"
            ? choice.credentials
            : async () => (await choice.lookup())?.credentials;
        },
        output: output.kind === "file"
          ? { kind: "file", path: output.path, resume: settings.resume }
          : { kind: "stream", stream: output.stream, label: output.label },
        insecureHosts: settings.skipTls ? hosts : [],
        caCerts,
        env: context.env,
        sink,
        signal: context.signal,
      });
    } catch (error) {
      throw await reword(error, settings.platform === undefined, output);
    } finally {
      reporter.stop();
    }
    if (!settings.quiet) {
      const kept = result.reused > 0
        ? `, ${formatBytes(result.reused)} kept from the earlier run`
        : "";
      const along = referrerCounts(result.images.flatMap((image) => image.referrers));
      // After the bars have stopped: straight to stderr.
      context.writeErr(
        `Pulled ${result.images.length} image(s)${along ? ` with ${along}` : ""} into ${where} (${
          formatBytes(result.archiveSize)
        }): ${formatBytes(result.downloaded)} downloaded${kept}\n`,
      );
    }
    if (settings.json) {
      const document = pullJson({
        sources,
        archive: settings.output,
        result,
        durationMs: Math.round(performance.now() - started),
      });
      context.writeOut(`${JSON.stringify(document, null, 2)}\n`);
    } else if (output.kind === "file" || !output.toStdout) {
      for (const { name, digest } of result.images) {
        // A source named by digest already says it.
        context.writeOut(`${name.includes("@") ? name : `${name}@${digest}`}\n`);
      }
    }
  } finally {
    reporter.stop();
  }
}

/** Adds what only the CLI knows to a core error: which flag changes it, what a rerun does. */
async function reword(
  error: unknown,
  defaultPlatform: boolean,
  output: PullOutput,
): Promise<unknown> {
  if (error instanceof PlatformNotFoundError) {
    const which = defaultPlatform
      ? ` (this machine's platform); choose one with --platform, or --platform all`
      : "; choose one of those with --platform, or --platform all";
    return new Error(`${error.message}${which}`, { cause: error });
  }
  if (
    (error instanceof OutputWriteError || error instanceof StateWriteError) &&
    output.kind === "file"
  ) {
    // A rerun continues only once there is room, or the device is back; any other failure
    // (a directory in the way, a permission, a read-only file system) it would meet again.
    // (A DiskFullError is made only for such a cause.)
    const noRoom = isNoSpace(error.cause);
    if (!noRoom && error.code !== "EIO") return error;
    const { data, state } = partialPaths(output.path);
    // Only files that are there: a failure before the first state save keeps nothing.
    if (!(await isFile(data)) || !(await isFile(state))) return error;
    const room = noRoom ? "free some space and " : "";
    return new Error(
      `${error.message}. ${data} and ${state} are kept: ${room}run the same command again to ` +
        "continue",
      { cause: error },
    );
  }
  if (output.kind === "stream" && error instanceof OutputWriteError && error.code === "EPIPE") {
    return new Error(
      `${
        output.toStdout ? "Standard output" : output.label
      } was closed before the archive was written: the program reading it stopped (see its ` +
        "own error)",
      { cause: error },
    );
  }
  return error;
}

async function isFile(path: string): Promise<boolean> {
  return await Deno.stat(path).then((info) => info.isFile, () => false);
}

const KIND_WORDS = {
  signature: "signature",
  sbom: "SBOM",
  attestation: "attestation",
  artifact: "artifact",
} as const;

/**
 * Progress as plain lines on stderr (not a terminal): start and end of each blob, a total every
 * 10 s. (`--verbose` request lines are the reporter's.)
 */
function pullLineSink(writeLine: (line: string) => void): { sink: ProgressSink; stop(): void } {
  return { sink: pullLines(writeLine), stop: () => {} };
}

function pullLines(writeLine: (line: string) => void): ProgressSink {
  const started = new Map<string, number>();
  /** Bytes of a layer kept from an earlier run, by digest. */
  const kept = new Map<string, number>();
  const done = new Map<string, number>();
  let total = 0;
  let last = performance.now();
  const line = (event: ProgressEvent): string | undefined => {
    switch (event.type) {
      case "plan":
        total = event.bytes;
        return `Pulling ${event.blobs} blob(s), ${formatBytes(event.bytes)}, into ${event.image}`;
      case "blob-start": {
        started.set(event.digest, performance.now());
        const what = `${shortDigest(event.digest)} (${formatBytes(event.size)})`;
        if (!event.from) return `Downloading ${what}`;
        kept.set(event.digest, event.from);
        return `Downloading ${what} from ${formatBytes(event.from)}, kept from the earlier run`;
      }
      case "blob-progress": {
        done.set(event.digest, event.done);
        if (performance.now() - last < 10_000) return undefined;
        last = performance.now();
        const sum = [...done.values()].reduce((a, b) => a + b, 0);
        return `Progress: ${formatBytes(sum)} / ${formatBytes(total)} ` +
          `(${formatPercent(total === 0 ? 1 : sum / total)})`;
      }
      case "blob-done": {
        done.set(event.digest, event.size);
        const what = `${shortDigest(event.digest)} (${formatBytes(event.size)})`;
        if (event.outcome === "skipped") return `Kept ${what}: complete from the earlier run`;
        const at = started.get(event.digest);
        const took = at === undefined ? "" : ` in ${formatMillis(performance.now() - at)}`;
        const earlier = kept.get(event.digest) ?? 0;
        return earlier === 0
          ? `Downloaded ${what}${took}`
          : `Downloaded ${formatBytes(event.size - earlier)} of ${what}${took}, ${
            formatBytes(earlier)
          } kept from the earlier run`;
      }
      case "retry":
        return `Retrying ${retryText(event.subject)} in ${
          formatMillis(event.delayMs)
        } (attempt ${event.attempt}): ` +
          event.reason;
      case "notice":
        return `${event.level === "warning" ? "Warning" : "Notice"}: ${event.message}`;
      case "referrer-pulled": {
        // A cosign tag says more than the generic config type its manifests carry.
        const what = event.tag ?? event.artifactType;
        return `Found ${KIND_WORDS[event.kind]} ${shortDigest(event.digest)} (${what}) of ` +
          shortDigest(event.subject);
      }
      default:
        return undefined;
    }
  };
  return (event) => {
    const text = line(event);
    if (text !== undefined) writeLine(text);
  };
}

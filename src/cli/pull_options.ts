/**
 * The `pull` command's flags and settings: `docker-image-pusher pull SOURCE... -o OUTPUT`.
 * Shared flags (credentials, TLS, timeouts, retries, concurrency, output) take the same
 * `DOCKER_PUSHER_*` variables and defaults as `push`; flags win over the environment.
 */
import { type Command, Option } from "commander";
import { asUsage, UsageError } from "./usage_error.ts";
import { parsePlatform, type PlatformChoice } from "../image/platform.ts";
import { type ImageReference, parseReference } from "../image/reference.ts";
import {
  checkSharedFlags,
  explicitCredentials,
  type PasswordSource,
  requireUsername,
  type SharedFlags,
  type SharedSettings,
  sharedSettings,
} from "./options.ts";
import { addFlags, connectionFlags, outputFlags, transferFlags } from "./shared_flags.ts";
import { addHelpNotes } from "./help_text.ts";

/** Flags as commander hands them over. */
export interface PullFlags extends SharedFlags {
  output?: string;
  platform?: string;
  /** false with `--no-resume`. */
  resume?: boolean;
  /** false with `--no-referrers`. */
  referrers?: boolean;
  /** `--json`: a JSON document on stdout in place of the result lines. */
  json?: boolean;
}

export interface PullSettings extends SharedSettings {
  sources: ImageReference[];
  /** A path, or `-` for standard output. */
  output: string;
  /** Absent: the host's platform. */
  platform: PlatformChoice | undefined;
  username: string | undefined;
  password: string | undefined;
  passwordSource: PasswordSource;
  resume: boolean;
  /** Bring signatures, SBOMs and attestations along (off with `--no-referrers`). */
  referrers: boolean;
  /** Print the `pull --json` document (see pull_report.ts) in place of the result lines. */
  json: boolean;
}

const EXAMPLE = "Example: docker-image-pusher pull registry.example.com/team/app:1.0 -o app.tar";

/** Adds `pull` to the program; `run` gets the sources and flags. */
export function definePullCommand(
  program: Command,
  run: (sources: string[], flags: PullFlags) => Promise<void>,
): Command {
  const command = program.command("pull")
    .description(
      "Pull images from a registry into one docker-save archive (an OCI layout plus " +
        "manifest.json, as docker save writes since Docker 25), blobs byte for byte as served.",
    )
    .usage("SOURCE... -o OUTPUT [options]")
    .argument(
      "<source...>",
      "images: https://host/repo:tag, host[:port]/repo[:tag|@digest], alpine",
    )
    .helpOption("-h, --help", "show help")
    .addOption(
      new Option(
        "-o, --output <path>",
        "archive to write (it appears only when complete; a rerun resumes), - for stdout " +
          "(no resume)",
      ),
    )
    .addOption(
      new Option(
        "--platform <os/arch[/variant]>",
        "platform to take from a multi-platform image, or all to keep the whole index " +
          "[default: this machine's]",
      ),
    );
  addFlags(command, [
    ...connectionFlags(),
    ...transferFlags("downloaded"),
    new Option("--no-resume", "ignore a partial archive left by an earlier run; start again"),
    new Option(
      "--no-referrers",
      "leave out what refers to the images (signatures, SBOMs, attestations)",
    ),
    new Option(
      "--json",
      "print one JSON document on stdout when the pull ends, in place of the name@digest " +
        "lines (not with -o -)",
    ),
    ...outputFlags(),
  ]);
  return addHelpNotes(command, [
    "Several sources make one archive holding every image, each named as given.",
    "Signatures, SBOMs and attestations of each image (the referrers API or the fallback tag, " +
    "and cosign's .sig/.att/.sbom tags; referrers of referrers too) come along, stored byte " +
    "for byte and named in index.json by their tags; --no-referrers leaves them out.",
    "A file output is written as OUTPUT.partial with its progress in OUTPUT.partial.json; " +
    "a killed or failed pull continues from there when run again. -o - cannot resume.",
    "A FIFO or a device (/dev/null, /dev/fd/N) is written into as -o - is; a symbolic link's " +
    "target is written and the link kept.",
    "On success stdout has one line per image, <name>@<digest> (nothing with -o -).",
    "--json prints one JSON document on stdout instead: each image with its digest, platforms " +
    "and referrers, and the archive; a failure prints one too, with the error (exit code as " +
    "without it). Progress, warnings and errors still go to stderr.",
    "Exit codes: 0 pulled, 1 failed, 2 usage error, 130 interrupted.",
  ])
    .action(async (sources: string[], flags: PullFlags) => {
      await run(sources, flags);
    });
}

/** Merges flags, environment and defaults into validated settings. */
export function resolvePullSettings(
  sources: string[],
  flags: PullFlags,
  envOf: (name: string) => string | undefined,
  stdinPassword?: string,
): PullSettings {
  if (!flags.output) {
    throw new UsageError("No output: -o/--output is required", { hint: EXAMPLE });
  }
  if (flags.json && flags.output === "-") {
    // stdout carries the archive: a document there would corrupt it.
    throw new UsageError("--json cannot be used with -o -: standard output carries the archive", {
      hint: "Write the archive to a file (-o app.tar) to get the JSON document on stdout",
    });
  }
  checkSharedFlags(flags);
  let platform: PlatformChoice | undefined;
  if (flags.platform !== undefined) {
    try {
      platform = parsePlatform(flags.platform);
    } catch (cause) {
      throw new UsageError((cause as Error).message, {
        hint: "Use --platform linux/amd64, linux/arm64, linux/arm/v7, or all",
        cause,
      });
    }
  }
  const references = sources.map((source) => asUsage(() => parseReference(source)));
  const { username, password, passwordSource } = explicitCredentials(
    flags,
    envOf,
    stdinPassword,
  );
  requireUsername(username, password);
  return {
    sources: references,
    output: flags.output,
    platform,
    username,
    password,
    passwordSource,
    resume: flags.resume !== false,
    referrers: flags.referrers !== false,
    json: flags.json === true,
    ...sharedSettings(flags, envOf),
  };
}

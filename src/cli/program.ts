/**
 * The command tree: `docker-image-pusher [push] -r TARGET -f ARCHIVE [options]`. With no
 * subcommand the arguments go to `push`, so scripts written for the earlier tool keep working.
 */
import { Command, Option } from "commander";
import { UsageError } from "./usage_error.ts";
import { NAME, VERSION } from "../version.ts";
import { DEFAULTS, ENV, type RawFlags } from "./options.ts";
import { addFlags, connectionFlags, outputFlags, transferFlags } from "./shared_flags.ts";
import { addCommandList, addHelpNotes, type CommandItem, HELP_LAYOUT } from "./help_text.ts";
import { addInspectCommand, type InspectFlags } from "./inspect_command.ts";
import { definePullCommand, type PullFlags } from "./pull_options.ts";

export interface ProgramIo {
  writeOut(text: string): void;
  writeErr(text: string): void;
  /**
   * The width to wrap help at: the terminal's columns, or undefined (or 0) for 80. Default:
   * commander's reading of the process's stdout.
   */
  helpWidth?(): number | undefined;
}

const env = (name: string) => ` (env: ${name})`;

/** A repeatable flag: every value, in order. */
const collect = (value: string, previous: string[] | undefined): string[] => [
  ...(previous ?? []),
  value,
];

/** Subcommands; anything else on the command line is an argument to the default, `push`. */
const COMMANDS = new Set(["push", "pull", "inspect", "help"]);

/**
 * Puts the implied `push` in front of arguments that start with a flag. `push` takes no
 * positional arguments, so a first word that is not a flag must be a command: an unknown one
 * (`pull`, a command of a later version) is a usage error, not an argument to `push`.
 */
export function withDefaultCommand(args: string[]): string[] {
  const first = args[0];
  if (first === undefined || first.startsWith("-")) return ["push", ...args];
  if (COMMANDS.has(first)) return args;
  throw new UsageError(`Unknown command "${first}"`, {
    hint: `${NAME} has the commands push (the default): ${NAME} -r TARGET -f ARCHIVE, and ` +
      `inspect ARCHIVE, and pull SOURCE... -o OUTPUT; run "${NAME} --help" for usage`,
  });
}

/**
 * Refuses a flag given together with its `--no-` form (`--chunked --no-chunked`): commander
 * would let the last one win silently, and the user meant one of them.
 */
function refuseOpposites(command: Command): () => void {
  const seen = new Set<string>();
  const pairs = command.options.filter((o) => o.negate)
    .map((no) => [no.long!.replace(/^--no-/, "--"), no.long!] as const)
    .filter(([yes]) => command.options.some((o) => o.long === yes && !o.negate));
  for (const pair of pairs) {
    for (const flag of pair) command.on(`option:${flag.slice(2)}`, () => seen.add(flag));
  }
  return () => {
    for (const [yes, no] of pairs) {
      if (seen.has(yes) && seen.has(no)) {
        throw new UsageError(`${yes} and ${no} cannot be used together`, {
          hint: `Give one of them, or neither for the automatic choice`,
        });
      }
    }
  };
}

/** The commands as the top-level help lists them. */
function commandItems(program: Command): CommandItem[] {
  return program.commands.map((command) => ({
    term: command.name(),
    description: command.summary() || command.description(),
  }));
}

/** Builds the parser; `push` (or `inspect`) is called with the parsed flags. */
export function buildProgram(
  io: ProgramIo,
  push: (flags: RawFlags) => Promise<void>,
  inspect: (flags: InspectFlags) => Promise<void> = () => {
    throw new Error("Running inspect: no handler was given to buildProgram");
  },
  pull: (sources: string[], flags: PullFlags) => Promise<void> = () => {
    throw new Error("Running pull: no handler was given to buildProgram");
  },
): Command {
  const program = new Command(NAME)
    .description("Push a container image from a tar archive straight into an OCI/Docker registry.")
    .version(VERSION, "-V, --version", "print the version and exit")
    .helpOption("-h, --help", "show help")
    .showSuggestionAfterError(true)
    // Before any subcommand is added: each takes the layout over when it is made.
    .configureHelp(HELP_LAYOUT);

  const pushCommand = program.command("push", { isDefault: true })
    .description(
      "Push a container image from a tar archive straight into an OCI/Docker registry. " +
        `This is the default command: \`${NAME} -r … -f …\` means \`push\`.`,
    )
    .summary("push image archives into a registry; the default command")
    .usage("-r TARGET -f ARCHIVE [options]")
    .version(VERSION, "-V, --version", "print the version and exit")
    .helpOption("-h, --help", "show help")
    .addOption(
      new Option(
        "-f, --file <path>",
        "image archive (docker save, OCI layout tar, skopeo output; .tar.gz/.zst/.xz too), - " +
          "for stdin; repeat for several archives (with --all or --multi-arch)",
      ).argParser(collect),
    )
    .addOption(
      new Option(
        "-r, --repository-url <target>",
        "where to push: https://host[:port]/repo[:tag|@digest] or host[:port]/repo[:tag]; " +
          "with --all, host[:port][/prefix]; repeat to push to several registries",
      ).argParser(collect),
    )
    .addOption(
      new Option(
        "--all",
        "push every image of the archives, each to <prefix>/<its repository>:<each tag>",
      ),
    )
    .addOption(
      new Option(
        "--multi-arch",
        "join the archives' images (one per platform) into one multi-platform tag",
      ),
    )
    .addOption(
      new Option("--tag <tag>", "also push the manifest under this tag; repeatable")
        .argParser(collect),
    )
    .addOption(
      new Option(
        "--output <format>",
        "the final report on stdout: text (one line per tag pushed) or json [default: text]",
      ),
    );
  addFlags(pushCommand, [
    ...connectionFlags(),
    new Option(
      "--large-layer-threshold <bytes>",
      "blobs this size or larger (before compression) upload in resumable chunks; smaller ones " +
        "go in one request, sent again from zero after an interruption [default: 1GiB]" +
        env(ENV.largeLayerThreshold),
    ),
    new Option(
      "--chunk-size <bytes>",
      `size of each chunk [default: 64MiB]${env(ENV.chunkSize)}`,
    ),
    ...transferFlags("uploaded"),
  ]);
  pushCommand
    .addOption(
      new Option(
        "--chunked",
        "always upload blobs at or above the threshold in chunks, with no fallback",
      ),
    )
    .addOption(new Option("--no-chunked", "always upload each blob in one request"))
    .addOption(
      new Option(
        "--compression <codec>",
        `compress uncompressed layers on the way up: none, gzip or zstd (OCI, newer ` +
          `clients only) [default: ${DEFAULTS.compression}]${env(ENV.compression)}`,
      ),
    )
    .addOption(
      new Option(
        "--compression-level <n>",
        "a fixed level (gzip 1-9, zstd 1-19; same input, same digest), or auto: follow " +
          `the link, faster when it is fast, smaller when it is slow [default: auto]` +
          env(ENV.compressionLevel),
      ),
    )
    .addOption(
      new Option(
        "--mount-from <repository>",
        "mount blobs from this repository on the same registry instead of uploading them",
      ),
    )
    .addOption(
      new Option(
        "--no-resume",
        "ignore saved progress of interrupted chunked uploads, and save none",
      ),
    )
    .addOption(new Option("--verify", "hash every blob locally before uploading any"))
    .addOption(
      new Option(
        "--no-referrers",
        "push the images without the signatures, SBOMs and attestations the archive carries",
      ),
    )
    .addOption(
      new Option(
        "--skip-existing",
        `skip blobs the registry already has [default]` +
          env(ENV.skipExisting),
      ),
    )
    .addOption(new Option("--force-upload", "upload blobs even if the registry has them"))
    .addOption(
      new Option(
        "--image <name>",
        "which image to push from a multi-image archive (a name, or a manifest digest); " +
          "repeatable with --all and --multi-arch",
      ).argParser(collect),
    )
    .addOption(
      new Option(
        "--dry-run",
        "check archive, registry and credentials; say what a push would upload, mount or " +
          "skip (HEAD requests only)",
      ),
    );
  addFlags(pushCommand, outputFlags());
  addCommandList(pushCommand, () => commandItems(program));
  addHelpNotes(pushCommand, [
    "Sizes accept units: 1073741824, 512MiB, 64M, 1GB.",
    "Flags win over the environment.",
    "On success stdout has one line per tag pushed, <registry>/<repository>:<tag>@<manifest " +
    "digest> (one push of one tag: exactly one line; nothing with --dry-run), or with " +
    "--output json one JSON document; progress, warnings and errors go to stderr.",
    "Exit codes: 0 everything pushed, 1 anything failed (with a summary per image and " +
    "target), 2 usage error, 130 interrupted.",
    "",
    "Many images: --all -r REGISTRY[/PREFIX] pushes every image of the archives under its " +
    "own names; --multi-arch -r REG/REPO:TAG -f a.tar -f b.tar joins per-platform images " +
    "into one tag.",
    "",
    `Run ${NAME} COMMAND --help for another command's options.`,
  ]);
  pushCommand
    .action(async (flags: RawFlags) => {
      checkOpposites();
      await push(flags);
    });
  const checkOpposites = refuseOpposites(pushCommand);
  const inspectCommand = addInspectCommand(program, io, inspect)
    .summary("show what an image archive holds, without a registry");
  const pullCommand = definePullCommand(program, pull)
    .summary("pull images from a registry into one archive");
  addHelpNotes(program, [
    `With no command, the arguments go to push: ${NAME} -r TARGET -f ARCHIVE [options].`,
    `Run ${NAME} COMMAND --help (or ${NAME} help COMMAND) for a command's options.`,
  ]);

  // Help read through a pager or `head` that quits early is not an error (as with git, ls).
  const helpOut = (text: string) => {
    try {
      io.writeOut(text);
    } catch (error) {
      if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
    }
  };
  for (const command of [program, pushCommand, pullCommand]) {
    command.exitOverride().configureOutput({
      writeOut: helpOut,
      writeErr: io.writeErr,
      outputError: () => {}, // Reported by main as one line with a hint.
    });
  }
  if (io.helpWidth !== undefined) {
    // A terminal that reports no size (0 columns) gets what a pipe gets.
    const width = () => io.helpWidth?.() || 80;
    for (const command of [program, pushCommand, pullCommand, inspectCommand]) {
      command.configureOutput({ getOutHelpWidth: width, getErrHelpWidth: width });
    }
  }
  return program;
}

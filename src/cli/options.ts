/**
 * The push command's settings: flags first, then `DOCKER_PUSHER_*` environment variables, then
 * defaults. Everything is validated here, so the core receives only sound values.
 */
import { DEFAULTS } from "../api/options.ts";
import { LIMITS, MIN_CHUNK, mountFromOption, pushTargets } from "../api/checks.ts";
import { asUsage, UsageError } from "./usage_error.ts";
import { type ImageReference, TAG_HINT, TAG_PATTERN } from "../image/reference.ts";
import { parseBoolean, parseBytes, parseDuration, parseInteger } from "./units.ts";
import type { ChunkedMode } from "../push/upload_policy.ts";
import { type Compression, LEVELS } from "../compress/codec.ts";

/** Flags as the command-line parser hands them over (absent when not given). */
export interface RawFlags extends SharedFlags {
  /** `-f`, repeatable. */
  file?: string | string[];
  /** `-r`, repeatable. */
  repositoryUrl?: string | string[];
  largeLayerThreshold?: string;
  chunkSize?: string;
  dryRun?: boolean;
  skipExisting?: boolean;
  forceUpload?: boolean;
  /** `--image`, repeatable. */
  image?: string | string[];
  /** `--tag`, repeatable. */
  tag?: string | string[];
  all?: boolean;
  multiArch?: boolean;
  output?: string;
  mountFrom?: string;
  /** false with `--no-resume`. */
  resume?: boolean;
  verify?: boolean;
  /** `--chunked` (true) or `--no-chunked` (false); absent: automatic. */
  chunked?: boolean;
  compression?: string;
  compressionLevel?: string;
  /** false with `--no-referrers`. */
  referrers?: boolean;
}

/** Where the password came from, to warn about `-p`. */
export type PasswordSource = "flag" | "stdin" | "env" | "url" | undefined;

/** Where a password came from, as `--verbose` says it. */
export function describePasswordSource(source: string | undefined): string {
  switch (source) {
    case "flag":
      return "-p/--password";
    case "stdin":
      return "--password-stdin";
    case "env":
      return ENV.password;
    case "url":
      return "the repository URL";
    default:
      return "the command line";
  }
}

/** One `-r`: where to push, and the credentials for it. */
export interface TargetSettings {
  /**
   * The image reference; with `--all`, the registry and prefix (`repository`, "" for none),
   * without tag or digest.
   */
  reference: ImageReference;
  username: string | undefined;
  password: string | undefined;
  passwordSource: PasswordSource;
}

export interface PushSettings extends SharedSettings {
  /** `-f`, in the order given (at least one). */
  files: string[];
  /** `-r`, in the order given (at least one). */
  targets: TargetSettings[];
  /** More tags for the same manifest (`--tag`). */
  tags: string[];
  /** Every image of the archives, each under its own name (`--all`). */
  all: boolean;
  /** Join the images into one multi-platform index under the tag (`--multi-arch`). */
  multiArch: boolean;
  /** The final report on stdout: `text` lines, or one `json` document. */
  output: "text" | "json";
  largeLayerThreshold: number;
  chunkSize: number;
  dryRun: boolean;
  forceUpload: boolean;
  /** `--image`: which images of the archives to push (none: all, or the only one). */
  images: string[];
  /** Repository on the same registry to mount blobs from (`--mount-from`). */
  mountFrom: string | undefined;
  chunked: ChunkedMode;
  /** Use and save resume state for chunked uploads (off with `--no-resume`). */
  resume: boolean;
  /** Hash every blob before uploading (`--verify`). */
  verify: boolean;
  /** How uncompressed layers go up (`--compression`, `--compression-level`). */
  compression: Compression;
  /** `--compression` or `--compression-level` was on the command line. */
  compressionExplicit: boolean;
  /** Push signatures, SBOMs and attestations with their images (off with `--no-referrers`). */
  referrers: boolean;
}

/** The flags' defaults are the library's (see `src/api/options.ts`). */
export { DEFAULTS };

/** Environment variables, by the setting they default. */
export const ENV = {
  username: "DOCKER_PUSHER_USERNAME",
  password: "DOCKER_PUSHER_PASSWORD",
  maxConcurrent: "DOCKER_PUSHER_MAX_CONCURRENT",
  timeout: "DOCKER_PUSHER_TIMEOUT",
  largeLayerThreshold: "DOCKER_PUSHER_LARGE_LAYER_THRESHOLD",
  chunkSize: "DOCKER_PUSHER_CHUNK_SIZE",
  retryAttempts: "DOCKER_PUSHER_RETRY_ATTEMPTS",
  skipTls: "DOCKER_PUSHER_SKIP_TLS",
  verbose: "DOCKER_PUSHER_VERBOSE",
  skipExisting: "DOCKER_PUSHER_SKIP_EXISTING",
  caCert: "DOCKER_PUSHER_CA_CERT",
  compression: "DOCKER_PUSHER_COMPRESSION",
  compressionLevel: "DOCKER_PUSHER_COMPRESSION_LEVEL",
} as const;

/** Merges flags, environment and defaults into validated settings. */
export function resolveSettings(
  flags: RawFlags,
  env: (name: string) => string | undefined,
  stdinPassword?: string,
): PushSettings {
  const { setting, pickBool } = settingsFrom(env);

  const files = list(flags.file);
  const urls = list(flags.repositoryUrl);
  if (urls.length === 0) {
    throw new UsageError("No target: -r/--repository-url is required", {
      hint: "Example: docker-image-pusher -r registry.example.com/team/app:1.0 -f app.tar",
    });
  }
  if (files.length === 0) {
    throw new UsageError("No archive: -f/--file is required", {
      hint: "Example: docker-image-pusher -r registry.example.com/team/app:1.0 -f app.tar",
    });
  }
  if (files.includes("-") && flags.passwordStdin) {
    throw new UsageError("-f - and --password-stdin both want standard input", {
      hint: "Give the password another way (DOCKER_PUSHER_PASSWORD, docker login), or the " +
        "archive as a file",
    });
  }
  if (files.filter((f) => f === "-").length > 1) {
    throw new UsageError("-f - is given more than once: standard input can be read only once", {
      hint: "Name the other archives as files",
    });
  }
  checkSharedFlags(flags);
  const all = flags.all ?? false;
  const multiArch = flags.multiArch ?? false;
  const references = asUsage(() => pushTargets(urls, { archives: files.length, all, multiArch }));
  // Not list(): an empty --tag is a mistake to say (`--tag "$TAG"` with TAG unset), as an empty
  // tag in -r is, not a flag to drop.
  const tags = [...new Set(flags.tag === undefined ? [] : [flags.tag].flat())];
  for (const tag of tags) {
    if (!TAG_PATTERN.test(tag)) {
      throw new UsageError(
        tag === "" ? "--tag is empty: it needs a tag" : `Invalid tag "${tag}" for --tag`,
        { hint: TAG_HINT },
      );
    }
  }
  const output = flags.output ?? "text";
  if (output !== "text" && output !== "json") {
    throw new UsageError(`--output must be text or json, got "${output}"`, {
      hint: "Use --output json for one JSON document on stdout",
    });
  }

  const skipExisting = pickBool(flags.skipExisting, ENV.skipExisting);
  if (flags.forceUpload && flags.skipExisting) {
    throw new UsageError("--skip-existing and --force-upload cannot be used together", {
      hint: "Drop one: --skip-existing is the default",
    });
  }
  const forceUpload = flags.forceUpload === true || skipExisting === false;

  const explicit = explicitCredentials(flags, env, stdinPassword);
  const targets = references.map((reference): TargetSettings => {
    let { username, password, passwordSource } = explicit;
    if (
      password === undefined && reference.credentials &&
      (username === undefined || username === reference.credentials.username)
    ) {
      // Credentials in the URL count only as a pair: never one user's password for another.
      // The same user named again (-u, DOCKER_PUSHER_USERNAME) takes the URL's password.
      [username, password, passwordSource] = [
        reference.credentials.username,
        reference.credentials.password,
        "url",
      ];
    }
    requireUsername(username, password);
    return { reference, username, password, passwordSource };
  });

  const chunkBytes = (text: string, name: string) => {
    const value = parseBytes(text, name);
    if (value < MIN_CHUNK) {
      throw new UsageError(`${name} must be at least ${MIN_CHUNK} bytes (64KiB), got "${text}"`, {
        hint: "Use 64KiB or more, e.g. 64MiB (the default)",
      });
    }
    return value;
  };
  return {
    ...sharedSettings(flags, env),
    files,
    targets,
    tags,
    all,
    multiArch,
    output,
    largeLayerThreshold: setting(
      flags.largeLayerThreshold,
      "--large-layer-threshold",
      ENV.largeLayerThreshold,
      parseBytes,
      DEFAULTS.largeLayerThreshold,
    ),
    chunkSize: setting(
      flags.chunkSize,
      "--chunk-size",
      ENV.chunkSize,
      chunkBytes,
      DEFAULTS.chunkSize,
    ),
    dryRun: flags.dryRun ?? false,
    forceUpload,
    images: list(flags.image),
    mountFrom: asUsage(() => mountFromOption(flags.mountFrom, references)),
    chunked: flags.chunked === undefined ? "auto" : flags.chunked ? "always" : "never",
    resume: flags.resume !== false,
    verify: flags.verify ?? false,
    compression: compressionSetting(flags, env),
    compressionExplicit: flags.compression !== undefined || flags.compressionLevel !== undefined,
    referrers: flags.referrers !== false,
  };
}

const CODECS = ["none", "gzip", "zstd"] as const;

/** `--compression` and `--compression-level` (or their variables), checked against each other. */
function compressionSetting(
  flags: RawFlags,
  env: (name: string) => string | undefined,
): Compression {
  const [codecText, codecName] = flags.compression !== undefined
    ? [flags.compression, "--compression"]
    : [nonEmpty(env(ENV.compression)) ?? DEFAULTS.compression, ENV.compression];
  const codec = CODECS.find((c) => c === codecText.toLowerCase());
  if (codec === undefined) {
    throw envHint(
      codecName,
      new UsageError(`${codecName} must be none, gzip or zstd, got "${codecText}"`, {
        hint: "Use gzip (every client), zstd (newer clients) or none (layers as stored)",
      }),
    );
  }
  const [levelText, levelName] = flags.compressionLevel !== undefined
    ? [flags.compressionLevel, "--compression-level"]
    : [nonEmpty(env(ENV.compressionLevel)), ENV.compressionLevel];
  if (codec === "none") {
    if (levelText !== undefined) {
      throw new UsageError(`${levelName} has no effect with compression none`, {
        hint: "Choose --compression gzip or zstd, or drop the level",
      });
    }
    return { codec };
  }
  if (levelText === undefined || levelText.toLowerCase() === "auto") {
    return { codec, level: "auto" };
  }
  const { min, max } = LEVELS[codec];
  const level = Number(levelText.trim());
  if (!/^\d+$/.test(levelText.trim()) || level < min || level > max) {
    throw envHint(
      levelName,
      new UsageError(
        `${levelName} expects auto or a level from ${min} to ${max} for ${codec}, ` +
          `got "${levelText}"`,
        { hint: `Use auto (follow the link) or a fixed level: gzip 1-9, zstd 1-19` },
      ),
    );
  }
  return { codec, level };
}

/** The flags push and pull share (defined once in `shared_flags.ts`). */
export interface SharedFlags {
  username?: string;
  password?: string;
  passwordStdin?: boolean;
  timeout?: string;
  maxConcurrent?: string;
  retryAttempts?: string;
  skipTls?: boolean;
  caCert?: string;
  verbose?: boolean;
  quiet?: boolean;
}

/** What the shared flags (or their variables, or the defaults) set. */
export interface SharedSettings {
  timeoutSeconds: number;
  maxConcurrent: number;
  retryAttempts: number;
  skipTls: boolean;
  /** PEM file of extra CAs to trust (`--ca-cert`). */
  caCert: string | undefined;
  verbose: boolean;
  quiet: boolean;
}

/** Shared flags that contradict each other: a usage error. */
export function checkSharedFlags(flags: SharedFlags): void {
  if (flags.quiet && flags.verbose) {
    throw new UsageError("--quiet and --verbose cannot be used together", {
      hint: "Drop one: --quiet prints only errors and the result, --verbose every request",
    });
  }
  if (flags.password !== undefined && flags.passwordStdin) {
    throw new UsageError("--password and --password-stdin cannot be used together", {
      hint: "Drop -p/--password: --password-stdin keeps the password off the command line",
    });
  }
}

/** The shared settings: each flag, else its variable, else the default. */
export function sharedSettings(
  flags: SharedFlags,
  env: (name: string) => string | undefined,
): SharedSettings {
  const { setting, pickBool, envValue } = settingsFrom(env);
  const verbose = pickBool(flags.verbose, ENV.verbose) ?? false;
  return {
    timeoutSeconds: setting(
      flags.timeout,
      "--timeout",
      ENV.timeout,
      (t, n) => parseDuration(t, n, LIMITS.timeoutSeconds.min, LIMITS.timeoutSeconds.max),
      DEFAULTS.timeoutSeconds,
    ),
    maxConcurrent: setting(
      flags.maxConcurrent,
      "--max-concurrent",
      ENV.maxConcurrent,
      (t, n) => parseInteger(t, n, LIMITS.maxConcurrent.min, LIMITS.maxConcurrent.max),
      DEFAULTS.maxConcurrent,
    ),
    retryAttempts: setting(
      flags.retryAttempts,
      "--retry-attempts",
      ENV.retryAttempts,
      (t, n) => parseInteger(t, n, LIMITS.retryAttempts.min, LIMITS.retryAttempts.max),
      DEFAULTS.retryAttempts,
    ),
    skipTls: pickBool(flags.skipTls, ENV.skipTls) ?? false,
    caCert: flags.caCert ?? envValue(ENV.caCert),
    verbose: flags.quiet ? false : verbose,
    quiet: flags.quiet ?? false,
  };
}

/**
 * The credentials given explicitly, for every registry: `-u` (or its variable), and the password
 * from `-p`, standard input or `DOCKER_PUSHER_PASSWORD`, in that order.
 */
export function explicitCredentials(
  flags: SharedFlags,
  env: (name: string) => string | undefined,
  stdinPassword: string | undefined,
): { username: string | undefined; password: string | undefined; passwordSource: PasswordSource } {
  const username = flags.username ?? nonEmpty(env(ENV.username));
  if (flags.password !== undefined) {
    return { username, password: flags.password, passwordSource: "flag" };
  }
  if (flags.passwordStdin) {
    return { username, password: stdinPassword ?? "", passwordSource: "stdin" };
  }
  const fromEnv = nonEmpty(env(ENV.password));
  if (fromEnv !== undefined) return { username, password: fromEnv, passwordSource: "env" };
  return { username, password: undefined, passwordSource: undefined };
}

/** A password needs a username to go with it. */
export function requireUsername(username: string | undefined, password: string | undefined): void {
  if (password !== undefined && username === undefined) {
    throw new UsageError("A password was given without a username", {
      hint: "Pass -u USER (or set DOCKER_PUSHER_USERNAME)",
    });
  }
}

/**
 * How a command's settings are read, shared by push and pull: a flag's value, else its
 * variable's (empty counts as unset), else the default; errors name where the value came from,
 * and a variable's also say it can be unset.
 */
export function settingsFrom(env: (name: string) => string | undefined): {
  setting: <T>(
    flag: string | undefined,
    flagName: string,
    envName: string,
    parse: (text: string, name: string) => T,
    fallback: T,
  ) => T;
  pickBool: (flag: boolean | undefined, envName: string) => boolean | undefined;
  envValue: (name: string) => string | undefined;
} {
  return {
    setting: (flag, flagName, envName, parse, fallback) => {
      if (flag !== undefined) return parse(flag, flagName);
      const value = nonEmpty(env(envName));
      return value === undefined ? fallback : fromEnv(envName, () => parse(value, envName));
    },
    pickBool: (flag, envName) => {
      if (flag !== undefined) return flag;
      const value = nonEmpty(env(envName));
      return value === undefined ? undefined : fromEnv(envName, () => parseBoolean(value, envName));
    },
    envValue: (name) => nonEmpty(env(name)),
  };
}

/** Runs `parse` on a variable's value; a refusal's hint also says the variable can be unset. */
function fromEnv<T>(name: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof UsageError) throw envHint(name, error);
    throw error;
  }
}

/**
 * An error about `name`'s value, with a hint that says the variable can be unset when `name`
 * is a variable (a value from the environment is easy to forget).
 */
function envHint(name: string, error: UsageError): UsageError {
  if (!(Object.values(ENV) as string[]).includes(name)) return error;
  const unset = `unset ${name}`;
  return new UsageError(error.message, {
    hint: error.hint === undefined ? `Fix or ${unset}` : `${error.hint} (or ${unset})`,
    cause: error,
  });
}

/** A repeatable flag's values (commander gives an array; a caller may give one string). */
function list(value: string | string[] | undefined): string[] {
  // An empty value (`-r ""`, an unset variable in a script) counts as not given.
  return (value === undefined ? [] : typeof value === "string" ? [value] : value)
    .filter((v) => v !== "");
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

/**
 * The push command's settings: flags first, then `DOCKER_PUSHER_*` environment variables, then
 * defaults. Everything is validated here, so the core receives only sound values.
 */
import { UsageError } from "../errors.ts";
import { type ImageReference, parseReference } from "../registry/reference.ts";
import { parseBoolean, parseBytes, parseInteger } from "./units.ts";

/** Flags as the command-line parser hands them over (absent when not given). */
export interface RawFlags {
  file?: string;
  repositoryUrl?: string;
  username?: string;
  password?: string;
  passwordStdin?: boolean;
  timeout?: string;
  largeLayerThreshold?: string;
  chunkSize?: string;
  maxConcurrent?: string;
  retryAttempts?: string;
  skipTls?: boolean;
  verbose?: boolean;
  quiet?: boolean;
  dryRun?: boolean;
  skipExisting?: boolean;
  forceUpload?: boolean;
  image?: string;
}

export interface PushSettings {
  file: string;
  reference: ImageReference;
  username: string | undefined;
  password: string | undefined;
  /** Where the password came from, to warn about `-p`. */
  passwordSource: "flag" | "stdin" | "env" | "url" | undefined;
  timeoutSeconds: number;
  largeLayerThreshold: number;
  chunkSize: number;
  maxConcurrent: number;
  retryAttempts: number;
  skipTls: boolean;
  verbose: boolean;
  quiet: boolean;
  dryRun: boolean;
  forceUpload: boolean;
  image: string | undefined;
}

export const DEFAULTS = {
  timeoutSeconds: 7200,
  largeLayerThreshold: 1024 ** 3,
  chunkSize: 64 * 1024 ** 2,
  maxConcurrent: 3,
  retryAttempts: 3,
} as const;

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
} as const;

const MIN_CHUNK = 64 * 1024;

/** Merges flags, environment and defaults into validated settings. */
export function resolveSettings(
  flags: RawFlags,
  env: (name: string) => string | undefined,
  stdinPassword?: string,
): PushSettings {
  const pick = (flag: string | undefined, name: string) => flag ?? nonEmpty(env(name));
  const pickBool = (flag: boolean | undefined, name: string) => {
    if (flag !== undefined) return flag;
    const value = nonEmpty(env(name));
    return value === undefined ? undefined : parseBoolean(value, name);
  };

  if (!flags.repositoryUrl) {
    throw new UsageError("No target: -r/--repository-url is required", {
      hint: "Example: docker-image-pusher -r registry.example.com/team/app:1.0 -f app.tar",
    });
  }
  if (!flags.file) {
    throw new UsageError("No archive: -f/--file is required", {
      hint: "Example: docker-image-pusher -r registry.example.com/team/app:1.0 -f app.tar",
    });
  }
  if (flags.quiet && flags.verbose) {
    throw new UsageError("--quiet and --verbose cannot be used together");
  }
  if (flags.password !== undefined && flags.passwordStdin) {
    throw new UsageError("--password and --password-stdin cannot be used together");
  }
  const reference = parseReference(flags.repositoryUrl);

  const skipExisting = pickBool(flags.skipExisting, ENV.skipExisting);
  if (flags.forceUpload && flags.skipExisting) {
    throw new UsageError("--skip-existing and --force-upload cannot be used together");
  }
  const forceUpload = flags.forceUpload === true || skipExisting === false;

  let password: string | undefined;
  let passwordSource: PushSettings["passwordSource"];
  let username = flags.username ?? nonEmpty(env(ENV.username));
  if (flags.password !== undefined) [password, passwordSource] = [flags.password, "flag"];
  else if (flags.passwordStdin) [password, passwordSource] = [stdinPassword ?? "", "stdin"];
  else if (nonEmpty(env(ENV.password)) !== undefined) {
    [password, passwordSource] = [env(ENV.password), "env"];
  } else if (reference.credentials && username === undefined) {
    // Credentials in the URL count only as a pair: never one user's password for another.
    [username, password, passwordSource] = [
      reference.credentials.username,
      reference.credentials.password,
      "url",
    ];
  }
  if (password !== undefined && username === undefined) {
    throw new UsageError("A password was given without a username", {
      hint: "Pass -u USER (or set DOCKER_PUSHER_USERNAME)",
    });
  }

  const timeout = pick(flags.timeout, ENV.timeout);
  const threshold = pick(flags.largeLayerThreshold, ENV.largeLayerThreshold);
  const chunk = pick(flags.chunkSize, ENV.chunkSize);
  const concurrent = pick(flags.maxConcurrent, ENV.maxConcurrent);
  const retries = pick(flags.retryAttempts, ENV.retryAttempts);
  const chunkSize = chunk === undefined ? DEFAULTS.chunkSize : parseBytes(chunk, "--chunk-size");
  if (chunkSize < MIN_CHUNK) {
    throw new UsageError(`--chunk-size must be at least ${MIN_CHUNK} bytes (64KiB)`);
  }
  const verbose = pickBool(flags.verbose, ENV.verbose) ?? false;
  return {
    file: flags.file,
    reference,
    username,
    password,
    passwordSource,
    timeoutSeconds: timeout === undefined
      ? DEFAULTS.timeoutSeconds
      : parseInteger(timeout, "--timeout", 1, 7 * 24 * 3600),
    largeLayerThreshold: threshold === undefined
      ? DEFAULTS.largeLayerThreshold
      : parseBytes(threshold, "--large-layer-threshold"),
    chunkSize,
    maxConcurrent: concurrent === undefined
      ? DEFAULTS.maxConcurrent
      : parseInteger(concurrent, "--max-concurrent", 1, 64),
    retryAttempts: retries === undefined
      ? DEFAULTS.retryAttempts
      : parseInteger(retries, "--retry-attempts", 0, 100),
    skipTls: pickBool(flags.skipTls, ENV.skipTls) ?? false,
    verbose: flags.quiet ? false : verbose,
    quiet: flags.quiet ?? false,
    dryRun: flags.dryRun ?? false,
    forceUpload,
    image: flags.image,
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

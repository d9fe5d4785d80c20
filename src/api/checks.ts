/**
 * Checks of the API's options that the types cannot express (ranges, combinations), each a
 * {@linkcode InvalidOptionError} naming the option, before anything is opened or sent.
 */
import { type Compression, LEVELS } from "../compress/codec.ts";
import { InvalidOptionError } from "../errors.ts";
import {
  type ImageReference,
  isRepositoryName,
  parseReference,
  parseRegistryPrefix,
  TAG_PATTERN,
} from "../image/reference.ts";
import { type CompressionOption, DEFAULTS, type RegistryOptions } from "./options.ts";

/** The smallest chunk a chunked upload sends (`chunkSize`, `--chunk-size`): 64 KiB. */
export const MIN_CHUNK = 64 * 1024;

/** `value` if it is an integer from `min` to `max`, else an error naming `option`. */
export function integerOption(
  option: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(
      `${option} must be an integer from ${min} to ${max}, got ${value}`,
      {
        option,
        reason: "out-of-range",
        value: String(value),
      },
    );
  }
  return value;
}

/**
 * The range of each limit a run that talks to a registry takes, inclusive: the API's options
 * ({@linkcode registryLimits}) and the CLI's flags and variables (`--max-concurrent`,
 * `--retry-attempts`, `--timeout`) check against this one table.
 */
export const LIMITS = {
  maxConcurrent: { min: 1, max: 64 },
  retryAttempts: { min: 0, max: 100 },
  /** One second to a week. */
  timeoutSeconds: { min: 1, max: 7 * 24 * 3600 },
} as const satisfies Record<string, { min: number; max: number }>;

/** The limits every run that talks to a registry takes, each in its range or its default. */
export function registryLimits(
  options: Pick<RegistryOptions, keyof typeof LIMITS>,
): Record<keyof typeof LIMITS, number> {
  const limit = (option: keyof typeof LIMITS) =>
    integerOption(
      option,
      options[option],
      DEFAULTS[option],
      LIMITS[option].min,
      LIMITS[option].max,
    );
  return {
    maxConcurrent: limit("maxConcurrent"),
    retryAttempts: limit("retryAttempts"),
    timeoutSeconds: limit("timeoutSeconds"),
  };
}

/** A list option that must name at least one thing. */
export function nonEmptyList<T>(option: string, value: T | readonly T[] | undefined): T[] {
  const list = value === undefined ? [] : Array.isArray(value) ? [...value] : [value as T];
  if (list.length === 0) {
    throw new InvalidOptionError(`${option} names nothing: give at least one`, {
      option,
      reason: "empty",
    });
  }
  return list;
}

/** Extra tags, each a valid tag, without repeats. */
export function tagsOption(tags: readonly string[] | undefined): string[] {
  const unique = [...new Set(tags ?? [])];
  for (const tag of unique) {
    if (!TAG_PATTERN.test(tag)) {
      throw new InvalidOptionError(`Invalid tag "${tag}" in tags`, {
        option: "tags",
        reason: "invalid-tag",
        value: tag,
      });
    }
  }
  return unique;
}

/** The compression option as the core takes it. */
export function compressionOption(option: CompressionOption | undefined): Compression {
  const given = option ?? DEFAULTS.compression;
  const { codec, level } = typeof given === "string" ? { codec: given, level: undefined } : given;
  if (codec !== "none" && codec !== "gzip" && codec !== "zstd") {
    throw new InvalidOptionError(`compression must be none, gzip or zstd, got "${codec}"`, {
      option: "compression",
      reason: "unknown-codec",
      value: String(codec),
    });
  }
  if (codec === "none") return { codec };
  if (level === undefined || level === "auto") return { codec, level: "auto" };
  const { min, max } = LEVELS[codec];
  return { codec, level: integerOption("compression.level", level, min, min, max) };
}

/** Options that cannot go together. */
function exclusive(options: Record<string, boolean | undefined>): void {
  const given = Object.entries(options).filter(([, on]) => on === true).map(([name]) => name);
  if (given.length > 1) {
    throw new InvalidOptionError(`${given.join(" and ")} cannot be used together`, {
      option: given[1]!,
      reason: "exclusive",
      value: given.join(","),
    });
  }
}

/**
 * A push's targets, parsed (with `all`, registries and prefixes), once the run's shape is
 * sound: `all` and `multiArch` apart, a multi-arch index to a tag, and several archives only
 * with `all` or `multiArch`.
 */
export function pushTargets(
  targets: readonly string[],
  run: { archives: number; all: boolean; multiArch: boolean },
): ImageReference[] {
  const { archives, all, multiArch } = run;
  exclusive({ all, multiArch });
  const references = targets.map((t) => all ? parseRegistryPrefix(t) : parseReference(t));
  if (multiArch && references.some((t) => t.digest !== undefined)) {
    throw new InvalidOptionError("multiArch pushes an index under a tag, not to a digest", {
      option: "targets",
      reason: "multi-arch-digest",
    });
  }
  if (archives > 1 && !all && !multiArch) {
    throw new InvalidOptionError(
      `${archives} archives and one image to push: several archives need all or multiArch`,
      { option: "archive", reason: "several-archives", value: String(archives) },
    );
  }
  return references;
}

/** `mountFrom`: a repository name, not one of the targets' (it is mounted from, on their registry). */
export function mountFromOption(
  mountFrom: string | undefined,
  targets: readonly ImageReference[],
): string | undefined {
  if (mountFrom === undefined) return undefined;
  if (!isRepositoryName(mountFrom)) {
    throw new InvalidOptionError(
      `mountFrom expects a repository name (no registry, tag or digest), got "${mountFrom}"`,
      { option: "mountFrom", reason: "invalid-repository", value: mountFrom },
    );
  }
  if (targets.some((t) => t.repository === mountFrom)) {
    throw new InvalidOptionError("mountFrom names the repository being pushed to", {
      option: "mountFrom",
      reason: "mount-from-target",
      value: mountFrom,
    });
  }
  return mountFrom;
}

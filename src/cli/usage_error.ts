/**
 * The command line's usage error (exit 2, printed with a hint), and how the core's
 * {@linkcode InvalidOptionError}s become one: the core names options as the library spells
 * them, the CLI says which flag to change.
 */
import { InvalidOptionError } from "../errors.ts";

/** A mistake in how the program was called: exit code 2, printed with a hint. */
export class UsageError extends Error {
  override name = "UsageError";
  readonly hint: string | undefined;
  constructor(message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.hint = options?.hint;
  }
}

/** How the CLI words a refusal whose library words name options: message and hint. */
type Wording = (
  error: InvalidOptionError,
) => { message?: string | undefined; hint?: string | undefined };

/** Library phrases for options, as the flags that set them. */
const COMPRESSION_NONE = ['compression: "none"', "--compression none"] as const;

/** A library option as its flag: `multiArch` is `--multi-arch`. */
function flagOf(option: string): string {
  return `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

const WORDINGS: Record<string, Wording> = {
  exclusive: (e) => ({
    message: `${e.value?.split(",").map(flagOf).join(" and ")} cannot be used together`,
    hint: e.value === "all,multiArch"
      ? "--all pushes each image under its own name; --multi-arch joins images into one tag"
      : undefined,
  }),
  "multi-arch-digest": () => ({
    message: "--multi-arch pushes an index under a tag, not to a digest",
    hint: "Name a tag in -r: registry.example.com/team/app:1.0",
  }),
  "several-archives": (e) => ({
    message: `${e.value} archives and one image to push: -f is given more than once without ` +
      `--all or --multi-arch`,
    hint: "Add --multi-arch to join per-platform archives into one tag, or --all with " +
      "-r REGISTRY[/PREFIX] to push every image under its own name",
  }),
  "invalid-repository": (e) => ({
    message: `${flagOf(e.option)} expects a repository name, got "${e.value}"`,
    hint: `Name a repository on the same registry, e.g. ${flagOf(e.option)} team/base`,
  }),
  "mount-from-target": () => ({
    message: "--mount-from names the repository being pushed to",
    hint: "Name another repository of the same registry, one that holds the blobs",
  }),
  "stream-not-alone": (e) => ({
    message: `${e.value} is read as a stream (a pipe or a compressed archive), once: it can be ` +
      `the only -f, to one -r`,
    hint: "Give tar files for a run of several archives or registries",
  }),
  "stream-all-no-prefix": (e) => ({
    message: `--all from a stream needs a prefix in -r: the layers go into it as they pass, and ` +
      `each image's repository mounts them from there`,
    hint: `Add a prefix: -r ${e.value}/mirror`,
  }),
  "nothing-to-push": () => ({
    hint: "Name images with --image to push them by digest into the prefix repository",
  }),
  "prefix-names-image": (e) => ({
    message: `--all pushes every image under its own tags; ${e.value} names one`,
    hint: "With --all, -r names a registry and an optional prefix, without a tag: " +
      "registry.example.com:5000/mirror",
  }),
  "untagged-no-prefix": () => ({
    hint: "Add a prefix to -r (registry/prefix), or push it alone: -r REG/REPO:TAG",
  }),
  "name-claimed-twice": () => ({
    hint: "Choose one with --image, or push them in separate runs",
  }),
  "several-images-one-target": (e) => ({
    message: `--image is given ${e.value} times for one target image`,
    hint: "Add --all to push each image under its own name, or --multi-arch to join them",
  }),
  "image-ambiguous": (e) => ({ message: `${e.message} with --image` }),
  "no-platform": () => ({
    hint: "Rebuild the image for a platform (docker build --platform linux/amd64 …), or " +
      "push it on its own, without --multi-arch",
  }),
  "digest-in-index": (e) => ({ hint: e.hint?.replace(...COMPRESSION_NONE) }),
  "digest-mismatch": (e) => ({ hint: e.hint?.replace(...COMPRESSION_NONE) }),
  "digest-compressed": () => ({ hint: "Add --compression none to push the layers as stored" }),
  "stream-compressed-referrers": () => ({
    hint: "Push the stream again with --compression none to keep its layers as stored, or " +
      "with --no-referrers to push the image without them",
  }),
  "referrers-pin-layers": () => ({
    hint: "Add --no-referrers to push the image without them, or --compression none to push " +
      "its layers as stored (its digests stay the ones they name)",
  }),
  "no-password": () => ({
    hint: "Pass --password-stdin, set DOCKER_PUSHER_PASSWORD, or run docker login for it",
  }),
};

/**
 * `error` as the CLI reports it: an {@linkcode InvalidOptionError} becomes a
 * {@linkcode UsageError} in terms of flags (its own words where they name none); anything else
 * is returned as it is.
 */
export function usageErrorOf(error: unknown): unknown {
  if (!(error instanceof InvalidOptionError)) return error;
  const words = WORDINGS[error.reason]?.(error) ?? {};
  const hint = words.hint ?? error.hint;
  return new UsageError(words.message ?? error.message, {
    ...(hint !== undefined ? { hint } : {}),
    cause: error,
  });
}

/** Runs `parse`, turning the core's refusal of an option into a usage error. */
export function asUsage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw usageErrorOf(error);
  }
}

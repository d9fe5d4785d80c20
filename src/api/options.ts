/**
 * The options of the public API: {@linkcode PushOptions}, {@linkcode PullOptions} and
 * {@linkcode InspectOptions}. Each option mirrors a flag of the command line, in camelCase, and
 * takes the same default. They live apart from the functions so that a reshape of the core
 * behind `push`, `pull` and `inspect` leaves them as they are.
 *
 * @module
 */
import type { ProgressEvent } from "../progress/events.ts";

/** A username and password, or docker's OAuth2 refresh token (`identitytoken`). */
export type RegistryCredentials =
  | { username: string; password: string }
  | { identityToken: string; username?: string };

/**
 * Finds the credentials for a registry (as users name it: `docker.io`, `localhost:5000`) when
 * it first asks for some. Resolves `undefined` for anonymous access.
 */
export type CredentialsProvider = (
  registry: string,
) => Promise<RegistryCredentials | undefined> | RegistryCredentials | undefined;

/** Receives every progress event. Must not throw, and must return quickly. */
export type ProgressListener = (event: ProgressEvent) => void;

/** What every operation that talks to a registry takes. */
export interface RegistryOptions {
  /**
   * Credentials for every registry named, or a function that finds them per registry.
   *
   * Default: credentials in the reference itself (`https://user:pass@host/repo`), else the
   * `DOCKER_PUSHER_USERNAME` and `DOCKER_PUSHER_PASSWORD` variables of {@linkcode env}, else
   * docker's own configuration (`$DOCKER_CONFIG/config.json`: `auths`, `credHelpers`,
   * `credsStore`), read only when a registry asks for credentials. A username without a
   * password is completed from docker's configuration for that same user.
   */
  credentials?: RegistryCredentials | CredentialsProvider;
  /**
   * Do not verify the TLS certificate of the registries named (never their token services or
   * redirects). Default: `false`.
   */
  skipTls?: boolean;
  /** PEM text of extra CA certificates to trust, besides the built-in roots. Default: none. */
  caCerts?: readonly string[];
  /**
   * Fail a request when no bytes move for this many seconds (inactivity, not total time).
   * Default: `7200`.
   */
  timeoutSeconds?: number;
  /** Blobs moved in parallel, 1 to 64. Default: `3`. */
  maxConcurrent?: number;
  /** Retries per request and per blob, 0 to 100. Default: `3`. */
  retryAttempts?: number;
  /** Receives typed progress events (see `ProgressEvent`). Default: none. */
  onProgress?: ProgressListener;
  /**
   * Stops the work: in-flight requests are cancelled, files closed, and the promise rejects
   * with the signal's reason. Default: none.
   */
  signal?: AbortSignal;
  /**
   * Where environment variables are read from: credentials (see {@linkcode credentials}),
   * `DOCKER_CONFIG`, `HTTPS_PROXY`/`NO_PROXY`, and the cache and state directories
   * (`XDG_CACHE_HOME`, `XDG_STATE_HOME`, `HOME`). Default: `Deno.env.get`.
   */
  env?: (name: string) => string | undefined;
}

/** An image archive: a path (tar, compressed tar or image directory), or the bytes of one. */
export type ArchiveInput = string | ReadableStream<Uint8Array>;

/** How layers the archive holds uncompressed go up. */
export type CompressionOption =
  /** Layers go up as stored. */
  | "none"
  /** gzip, which every client reads; the level follows the link (`auto`) unless given. */
  | "gzip"
  /** zstd, which newer clients read. */
  | "zstd"
  | { codec: "gzip" | "zstd"; level?: number | "auto" };

/** Options of `push`. */
export interface PushOptions extends RegistryOptions {
  /**
   * The image archive, or several (with {@linkcode all} or {@linkcode multiArch}). A stream,
   * or a path to a compressed file, is read once, front to back: it can then be the only
   * archive, pushed to one target.
   */
  archive: ArchiveInput | readonly ArchiveInput[];
  /**
   * Where to push: `registry/repository[:tag|@digest]`, or `https://host/repository:tag`.
   * With {@linkcode all}: `registry[/prefix]`. At least one.
   */
  targets: readonly string[];
  /** More tags for the same manifest. Default: none. */
  tags?: readonly string[];
  /**
   * Which images of the archives to push, by name or digest. Default: the only image (or, with
   * {@linkcode all} or {@linkcode multiArch}, every tagged image).
   */
  images?: readonly string[];
  /**
   * Push every image of the archives under its own name, below each target's prefix.
   * Default: `false`.
   */
  all?: boolean;
  /** Join the images into one multi-platform index under each target's tag. Default: `false`. */
  multiArch?: boolean;
  /** Check everything and send nothing but lookups. Default: `false`. */
  dryRun?: boolean;
  /** Upload blobs even when the registry has them. Default: `false`. */
  forceUpload?: boolean;
  /**
   * Compression of layers stored uncompressed. Default: `"gzip"` at level `auto`, except for
   * an image that something refers to (a signature, SBOM or attestation names its manifest's
   * digest, which compressing would change): its layers then go as stored, with a notice. Given
   * explicitly, such a push is refused (`InvalidOptionError`) before anything is sent.
   */
  compression?: CompressionOption;
  /** Layers at least this large (bytes) go up in chunks. Default: 1 GiB. */
  largeLayerThreshold?: number;
  /** Bytes per chunk, at least 64 KiB. Default: 64 MiB. */
  chunkSize?: number;
  /**
   * `true` always sends large layers in chunks, `false` never does; by default chunks are used
   * at the threshold and given up for one request when the registry refuses them.
   */
  chunked?: boolean;
  /** A repository on the same registry to mount blobs from. Default: none. */
  mountFrom?: string;
  /** Save chunked uploads' progress, and resume from what an earlier run saved. Default: `true`. */
  resume?: boolean;
  /** Hash every blob against its digest before uploading anything. Default: `false`. */
  verify?: boolean;
  /**
   * Push what refers to each image the archive carries (signatures, SBOMs, attestations, and
   * what refers to those) after it, byte for byte: listed for its subject by the registry's
   * referrers API, else through the fallback tag (merged, never dropping other tools'
   * entries); cosign-style ones under their tags. `false` pushes the images alone. Default:
   * `true`.
   */
  referrers?: boolean;
}

/** Options of `pull`. */
export interface PullOptions extends RegistryOptions {
  /**
   * Images to pull: `registry/repository[:tag|@digest]`, `https://host/repository:tag`, or a
   * Docker Hub name such as `alpine`. At least one; they all go into one archive.
   */
  sources: readonly string[];
  /**
   * Where the archive goes. A path to a regular file is written as `<path>.partial` and renamed
   * into place when complete (a FIFO or a device is written into); a stream gets the archive's
   * bytes in order, and is closed at the end (aborted on failure).
   */
  output: string | WritableStream<Uint8Array>;
  /**
   * The platform to take from a multi-platform image, `os/arch[/variant]`, or `"all"` to keep
   * the whole index. Default: this machine's.
   */
  platform?: string;
  /** Continue from a partial archive an earlier run left at the output path. Default: `true`. */
  resume?: boolean;
  /**
   * Bring what refers to each image (signatures, SBOMs, attestations, and what refers to
   * those) into the archive, found through the referrers API, the fallback tag and cosign's
   * tags. Default: `true`.
   */
  referrers?: boolean;
}

/** Options of `inspect`. */
export interface InspectOptions {
  /** Stops reading; the promise rejects with the signal's reason. Default: none. */
  signal?: AbortSignal;
}

/** The defaults of the options above, as the command line's flags have them too. */
export const DEFAULTS = {
  timeoutSeconds: 7200,
  largeLayerThreshold: 1024 ** 3,
  chunkSize: 64 * 1024 ** 2,
  maxConcurrent: 3,
  retryAttempts: 3,
  compression: "gzip",
} as const;

/**
 * docker-image-pusher as a library: push image archives into OCI/Docker registries, pull images
 * into archives, and inspect archives, without a Docker daemon. The command line (`./cli`) is a
 * client of this module.
 *
 * - {@linkcode push}: an archive (a path, or a `ReadableStream`) to one or more targets.
 * - {@linkcode pull}: images into one archive (a path, or a `WritableStream`).
 * - {@linkcode inspect}: what an archive holds, without a registry.
 *
 * Every option mirrors a flag of the command line in camelCase, with the same default.
 * Progress arrives as typed {@linkcode ProgressEvent}s through `onProgress`; `signal` stops
 * the work and rejects with the signal's reason. Failures are typed: an
 * {@linkcode InvalidOptionError} before anything is sent, an {@linkcode ArchiveError} for an
 * unreadable archive, an {@linkcode AuthError} or a {@linkcode RegistryError} (status and the
 * registry's error codes) for a registry's refusal, a {@linkcode TokenServiceError} when the
 * registry's token service keeps failing, an {@linkcode OutputWriteError} when a pull's output
 * can't be written. The library never writes to stdout or
 * stderr and never exits the process.
 *
 * @example Push an archive, pull it back, and inspect what came back
 * ```ts
 * import { inspect, pull, push } from "@docker-image-pusher/cli";
 *
 * const pushed = await push({ archive: "app.tar", targets: ["registry.example.com/team/app:1"] });
 * const pulled = await pull({ sources: ["registry.example.com/team/app:1"], output: "app.tar" });
 * const info = await inspect("app.tar");
 * console.log(pushed.images[0]?.manifest.digest, pulled.images[0]?.digest, info.format);
 * ```
 *
 * @module
 */
export { push, PushError } from "./src/api/push.ts";
export { pull } from "./src/api/pull.ts";
export { inspect } from "./src/api/inspect.ts";
export {
  type ArchiveInput,
  type CompressionOption,
  type CredentialsProvider,
  DEFAULTS,
  type InspectOptions,
  type ProgressListener,
  type PullOptions,
  type PushOptions,
  type RegistryCredentials,
  type RegistryOptions,
} from "./src/api/options.ts";
export type {
  BlobCount,
  PulledImage,
  PulledReferrer,
  PullResult,
  PushedImage,
  PushedReferrer,
  PushResult,
  SkippedImage,
} from "./src/api/results.ts";
export type {
  BlobOutcome,
  CompressedForm,
  NoticeKind,
  ProgressEvent,
  RetrySubject,
} from "./src/progress/events.ts";
export {
  type ArchiveCompression,
  type ArchiveReport,
  type BlobCompression,
  type ImageReport,
  INSPECT_SCHEMA_VERSION,
  type LayerReport,
  type PlatformReport,
  type ReferrerReport,
} from "./src/inspect/archive_report.ts";
export type { Platform } from "./src/image/platform.ts";
export type { ReferrerKind } from "./src/image/referrer.ts";
export type { ArchiveKind } from "./src/inspect/archive_kind.ts";
export { ArchiveError, InvalidOptionError } from "./src/errors.ts";
export type { DistributionErrorCode } from "./src/registry/error_codes.ts";
export { NetworkError, RegistryError } from "./src/registry/registry_error.ts";
export { AuthError, TokenServiceError } from "./src/registry/auth_error.ts";
export { CredentialStoreError } from "./src/credentials/docker_config.ts";
export {
  BlobDigestError,
  DiskFullError,
  ImageNotFoundError,
  OutputWriteError,
  PlatformNotFoundError,
  PullError,
  StateWriteError,
} from "./src/pull/pull_errors.ts";

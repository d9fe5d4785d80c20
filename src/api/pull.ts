/**
 * `pull`: images from registries into one archive (a docker-save archive with an OCI layout, as
 * `docker save` writes since Docker 25), to a path or a stream.
 *
 * @module
 */
import { InvalidOptionError } from "../errors.ts";
import { parsePlatform, type PlatformChoice } from "../image/platform.ts";
import { parseReference, registryBaseUrl } from "../image/reference.ts";
import { nonEmptyList, registryLimits } from "./checks.ts";
import { credentialsFor } from "./credentials.ts";
import type { PullOptions } from "./options.ts";
import { runPullSettings } from "./pull_run.ts";
import type { PullResult } from "./results.ts";
import { abortable, defaultEnv, progressSink } from "./run_context.ts";

/**
 * Pulls `sources` into one archive at `output`. Layers are verified against their digests as
 * they arrive; a pull to a path that fails once its progress is saved keeps `<path>.partial`
 * and `<path>.partial.json`, and resumes from them when run again. What refers to each image
 * (signatures, SBOMs, attestations) comes along unless `referrers` is false: stored byte for
 * byte, and named in `index.json` by the fallback tag or the cosign tag they were found under,
 * as a registry without the referrers API holds them.
 *
 * Rejects with an `InvalidOptionError` for options it cannot act on, an `AuthError` or a
 * `RegistryError` for a registry's refusal, a `TokenServiceError` when the registry's token
 * service still fails after the retries, an `ImageNotFoundError` or `PlatformNotFoundError`
 * when the image (or its platform) is not there, an `OutputWriteError` (a `DiskFullError`
 * when there is no room) when the archive cannot be written, a `StateWriteError` when the
 * resume state beside a path cannot be, and the signal's reason when `signal` aborts.
 *
 * @example Pull an image into a file
 * ```ts
 * import { pull } from "@docker-image-pusher/cli";
 *
 * const result = await pull({ sources: ["alpine:3.20"], output: "alpine.tar" });
 * console.log(result.images[0]?.digest);
 * ```
 */
export async function pull(options: PullOptions): Promise<PullResult> {
  const { signal, output } = options;
  try {
    signal?.throwIfAborted();
    const env = options.env ?? defaultEnv;
    const references = nonEmptyList("sources", options.sources).map((s) => parseReference(s));
    const limits = registryLimits(options);
    const hosts = [...new Set(references.map((r) => registryBaseUrl(r).host))];
    const platform = platformOption(options.platform);
    return await abortable(signal, async () => {
      const result = await runPullSettings({
        sources: references,
        credentialsFor: (index) => credentialsFor(options.credentials, references[index]!, env),
        output: typeof output === "string"
          ? { kind: "file", path: output, resume: options.resume ?? true }
          : { kind: "stream", stream: output },
        platform,
        referrers: options.referrers ?? true,
        ...limits,
        insecureHosts: options.skipTls ? hosts : [],
        caCerts: options.caCerts === undefined ? undefined : [...options.caCerts],
        env,
        sink: progressSink(options.onProgress),
        signal,
      });
      return {
        images: result.images.map((image) => ({
          ...image,
          platforms: [...image.platforms],
          referrers: image.referrers.map((referrer) => ({ ...referrer })),
        })),
        downloaded: result.downloaded,
        reused: result.reused,
        archiveSize: result.archiveSize,
      };
    });
  } catch (error) {
    // A stream the pull never started writing is aborted, as one it started is on failure.
    if (typeof output !== "string" && !output.locked) await output.abort(error).catch(() => {});
    throw error;
  }
}

/** `os/arch[/variant]` or `all`; undefined for the host's. */
function platformOption(text: string | undefined): PlatformChoice | undefined {
  if (text === undefined) return undefined;
  try {
    return parsePlatform(text);
  } catch (cause) {
    throw new InvalidOptionError((cause as Error).message, {
      option: "platform",
      reason: "invalid-platform",
      value: text,
      cause,
    });
  }
}

/** The `push` command: settings → archive → registry → one result line on stdout. */
import { openImageArchive, selectImage } from "../archive/image_archive.ts";
import { resolveCredentials } from "../credentials/resolve.ts";
import { realCredentialSystem } from "../credentials/system.ts";
import { UsageError } from "../errors.ts";
import { formatBytes } from "../progress/format.ts";
import { pushImage } from "../push/push_image.ts";
import { defaultStateDir, ResumeStore } from "../push/resume_store.ts";
import { BlobInfoCache, defaultCacheDir } from "../push/blob_info_cache.ts";
import { RegistryClient } from "../registry/client.ts";
import { proxyConfigFromEnv } from "../registry/proxy_env.ts";
import { formatPushed, formatReference, registryBaseUrl } from "../registry/reference.ts";
import { createTransport } from "../registry/transport.ts";
import { NAME, VERSION } from "../version.ts";
import { type RawFlags, resolveSettings } from "./options.ts";
import { createReporter } from "./reporter.ts";

/** What the command needs from the process, injectable for tests. */
export interface CommandContext {
  env: (name: string) => string | undefined;
  readStdin: () => Promise<string>;
  writeOut: (text: string) => void;
  writeErr: (text: string) => void;
  stderrIsTerminal: boolean;
  noColor: boolean;
  signal: AbortSignal;
  /** Told once settings are known, so errors can be reported at the right verbosity. */
  onVerbose: (verbose: boolean) => void;
}

/** Runs a push; throws on any failure (the caller maps errors to exit codes). */
export async function runPush(flags: RawFlags, context: CommandContext): Promise<void> {
  const stdinPassword = flags.passwordStdin
    ? (await context.readStdin()).replace(/\r?\n$/, "")
    : undefined;
  const settings = resolveSettings(flags, context.env, stdinPassword);
  context.onVerbose(settings.verbose);
  const reporter = createReporter({
    quiet: settings.quiet,
    verbose: settings.verbose,
    tty: context.stderrIsTerminal,
    color: context.stderrIsTerminal && !context.noColor,
    writeErr: context.writeErr,
  });
  const { reference } = settings;
  try {
    if (settings.passwordSource === "flag" && !settings.quiet) {
      context.writeErr(
        "Warning: a password on the command line can be read by other users of this machine; " +
          "prefer --password-stdin\n",
      );
    }
    if (settings.skipTls && reference.scheme === "https" && !settings.quiet) {
      context.writeErr(
        `Warning: TLS certificate verification is disabled for ${reference.apiHost} (--skip-tls)\n`,
      );
    }
    const caCerts = settings.caCert === undefined ? undefined : [await readCaFile(settings.caCert)];
    const archive = await openImageArchive(settings.file, { signal: context.signal });
    const image = selectImage(archive, settings.image);
    for (const note of image.notes) reporter.info(`Note: ${note}`);
    const { credentials, source } = await resolveCredentials(
      settings,
      reference.registry,
      realCredentialSystem(context.env),
    );
    if (settings.verbose) reporter.info(`Credentials: ${source}`);

    const baseUrl = registryBaseUrl(reference);
    const stateDir = settings.resume && !settings.dryRun ? defaultStateDir(context.env) : undefined;
    const resume = stateDir === undefined ? undefined : new ResumeStore(stateDir);
    const cacheDir = defaultCacheDir(context.env);
    const cache = cacheDir === undefined ? undefined : await BlobInfoCache.open(cacheDir);
    const transport = createTransport({
      inactivityTimeoutMs: settings.timeoutSeconds * 1000,
      // --skip-tls is for the registry the user named, not its token realm or redirects.
      insecureHosts: settings.skipTls ? [baseUrl.host] : [],
      ...(caCerts ? { caCerts } : {}),
      proxy: proxyConfigFromEnv(context.env),
      maxSockets: settings.maxConcurrent + 2,
      userAgent: `${NAME}/${VERSION}`,
    });
    try {
      const client = new RegistryClient({
        baseUrl,
        registryName: reference.registry,
        repository: reference.repository,
        transport,
        retries: settings.retryAttempts,
        sink: reporter.sink,
        signal: context.signal,
        ...(credentials ? { credentials } : {}),
        ...(settings.mountFrom !== undefined ? { pullFrom: [settings.mountFrom] } : {}),
      });
      const result = await pushImage(
        client,
        image,
        {
          ...(reference.tag !== undefined ? { tag: reference.tag } : {}),
          ...(reference.digest !== undefined ? { digest: reference.digest } : {}),
        },
        {
          forceUpload: settings.forceUpload,
          largeLayerThreshold: settings.largeLayerThreshold,
          chunkSize: settings.chunkSize,
          chunked: settings.chunked,
          ...(settings.mountFrom !== undefined ? { mountFrom: settings.mountFrom } : {}),
          ...(resume ? { resume } : {}),
          verify: settings.verify,
          maxConcurrent: settings.maxConcurrent,
          dryRun: settings.dryRun,
          compression: settings.compression,
          ...(cache ? { cache } : {}),
          sink: reporter.sink,
        },
      ).finally(async () => {
        // What this run learnt holds even if it failed part-way.
        if (cache === undefined || settings.dryRun) return;
        await cache.save().catch((error) =>
          reporter.info(`Note: could not save the blob-info cache ${cache.path}: ${error}`)
        );
      });
      reporter.stop();
      if (result.dryRun) {
        context.writeErr(
          `Dry run: ${result.uploaded.count} blob(s), ${formatBytes(result.uploaded.bytes)}, ` +
            `would be uploaded; ${result.skipped.count} blob(s), ` +
            `${formatBytes(result.skipped.bytes)}, already in the registry; ` +
            (result.manifestFinal
              ? `manifest ${result.digest}`
              : "the manifest (its digest depends on the compressed layers)") +
            ` would be pushed as ${formatReference(reference)}\n`,
        );
      } else {
        context.writeOut(`${formatPushed(reference, result.digest)}\n`);
      }
    } finally {
      transport.close();
    }
  } finally {
    reporter.stop();
  }
}

/** Reads a PEM bundle for `--ca-cert`; a missing or non-PEM file is the user's mistake. */
async function readCaFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (cause) {
    throw new UsageError(`Cannot read the CA certificate file ${path}`, {
      hint: "--ca-cert (or DOCKER_PUSHER_CA_CERT) takes a PEM file of CA certificates",
      cause,
    });
  }
  if (!text.includes("-----BEGIN CERTIFICATE-----")) {
    throw new UsageError(`${path} holds no PEM certificate`, {
      hint: "--ca-cert takes a PEM file (-----BEGIN CERTIFICATE----- …)",
    });
  }
  return text;
}

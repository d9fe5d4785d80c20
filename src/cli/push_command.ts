/** The `push` command: settings → archive → registry → one result line on stdout. */
import { readCaFile } from "./ca_file.ts";
import { type ArchiveImage, uniqueBlobs } from "../archive/image.ts";
import { openImageArchive, selectImage } from "../archive/image_archive.ts";
import { openArchiveStream } from "../archive/stream_archive.ts";
import { LayerCompressor } from "../push/layer_compressor.ts";
import {
  readStreamedArchive,
  type StreamedArchive,
  type StreamSource,
} from "../push/push_stream.ts";
import { resolveCredentials } from "../credentials/resolve.ts";
import { realCredentialSystem } from "../credentials/system.ts";
import { ArchiveError } from "../errors.ts";
import { formatBytes } from "../progress/format.ts";
import { pushImage } from "../push/push_image.ts";
import { defaultStateDir, ResumeStore } from "../push/resume_store.ts";
import { BlobInfoCache, defaultCacheDir } from "../push/blob_info_cache.ts";
import type { CredentialLookup, Credentials } from "../registry/auth.ts";
import { RegistryClient } from "../registry/client.ts";
import { proxyConfigFromEnv } from "../registry/proxy_env.ts";
import { formatPushed, formatReference, registryBaseUrl } from "../registry/reference.ts";
import { createTransport } from "../registry/transport.ts";
import { NAME, VERSION } from "../version.ts";
import { type RawFlags, resolveSettings } from "./options.ts";
import { type PasswordInput, readStdinPassword } from "./password_input.ts";
import { createReporter } from "./reporter.ts";

/** What the command needs from the process, injectable for tests. */
export interface CommandContext extends PasswordInput {
  env: (name: string) => string | undefined;
  /** Standard input, for `-f -`. */
  stdin: () => ReadableStream<Uint8Array>;
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
  let stdinPassword: string | undefined;
  if (flags.passwordStdin) {
    // Every other setting is checked before the password is read (or asked for at a prompt).
    resolveSettings(flags, context.env, "-");
    stdinPassword = await readStdinPassword(context);
  }
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
    // A tar file is indexed in place; a pipe or a compressed file is read front to back, once.
    const source = await openSource(settings.file, context, settings.timeoutSeconds);
    const fileArchive = source.kind === "file"
      ? await openImageArchive(settings.file, { signal: context.signal })
      : undefined;
    if (fileArchive !== undefined) {
      for (const note of selectImage(fileArchive, settings.image).notes) {
        reporter.info(`Note: ${note}`);
      }
    }
    const choice = await resolveCredentials(
      settings,
      reference.registry,
      realCredentialSystem(context.env),
    );
    let credentials: Credentials | CredentialLookup;
    if (choice.kind === "given") {
      credentials = choice.credentials;
      if (settings.verbose) reporter.info(`Credentials: ${choice.source}`);
    } else {
      // Read only if the registry asks; a store that cannot be read is the client's to report.
      credentials = async () => {
        const found = await choice.lookup();
        if (settings.verbose) {
          reporter.info(`Credentials: ${found?.source ?? "none in docker's config (anonymous)"}`);
        }
        return found?.credentials;
      };
      if (settings.verbose) reporter.info("Credentials: docker's config, if the registry asks");
    }

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
    /** What this run learnt holds even if it failed part-way. */
    const saveCache = async () => {
      if (cache === undefined || settings.dryRun) return;
      await cache.save().catch((error) =>
        reporter.info(`Note: could not save the blob-info cache ${cache.path}: ${error}`)
      );
    };
    try {
      const client = new RegistryClient({
        baseUrl,
        registryName: reference.registry,
        repository: reference.repository,
        transport,
        retries: settings.retryAttempts,
        sink: reporter.sink,
        signal: context.signal,
        credentials,
        ...(settings.mountFrom !== undefined ? { pullFrom: [settings.mountFrom] } : {}),
      });
      const compressor = source.kind === "stream" && settings.compression.codec !== "none"
        ? new LayerCompressor(client, {
          ...settings.compression,
          ...(cache ? { cache } : {}),
          ...(settings.mountFrom !== undefined ? { mountFrom: settings.mountFrom } : {}),
        })
        : undefined;
      let streamed: StreamedArchive | undefined;
      if (source.kind === "stream") {
        await client.ping();
        streamed = await readStreamedArchive(client, source, {
          ...(compressor ? { compressor } : {}),
          ...(cache ? { cache } : {}),
          forceUpload: settings.forceUpload,
          dryRun: settings.dryRun,
          // What the registry has not confirmed is held in memory: at most this much.
          segmentSize: Math.min(settings.chunkSize, STREAM_SEGMENT_BYTES),
          sink: reporter.sink,
        }).catch(async (error) => {
          compressor?.close();
          await saveCache();
          throw error;
        });
      }
      const archive = fileArchive ?? streamed!.archive;
      const image = selectImage(archive, settings.image);
      if (streamed !== undefined) {
        for (const note of image.notes) reporter.info(`Note: ${note}`);
        const unused = unusedBlobs(streamed, image);
        if (unused.count > 0) {
          reporter.info(
            `Note: ${unused.count} blob(s), ${formatBytes(unused.bytes)}, of other images in the ` +
              `stream went up too (an image's blobs are known only at the stream's end)`,
          );
        }
      }
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
          ...(streamed ? { streamed: streamed.passed } : {}),
          ...(compressor ? { compressor } : {}),
          sink: reporter.sink,
        },
      ).finally(async () => {
        compressor?.close();
        await saveCache();
      });
      const summary = compressionSummary(result.compressed, settings.compression.codec);
      if (summary !== undefined) reporter.info(summary);
      reporter.stop();
      if (result.dryRun) {
        const { uploaded, mounted, skipped } = result;
        context.writeErr(
          `Dry run: ${uploaded.count} blob(s), ${formatBytes(uploaded.bytes)}, ` +
            `would be uploaded; ` +
            (mounted.count > 0
              ? `${mounted.count} blob(s), ${formatBytes(mounted.bytes)}, would be mounted ` +
                `from another repository; `
              : "") +
            `${skipped.count} blob(s), ${formatBytes(skipped.bytes)}, already in the registry; ` +
            (result.manifestFinal
              ? `manifest ${result.digest}`
              : "the manifest (its digest depends on the compressed layers)") +
            ` would be pushed as ${formatReference(reference)}\n`,
        );
      } else {
        writeResult(formatPushed(reference, result.digest), context);
      }
    } finally {
      transport.close();
    }
  } finally {
    reporter.stop();
  }
}

/** Largest request a layer read from a stream goes up in (it is held until confirmed). */
const STREAM_SEGMENT_BYTES = 16 * 1024 * 1024;

/** Where the archive comes from: a tar file read in place, or a stream read once. */
type Source = { kind: "file" } | ({ kind: "stream" } & StreamSource);

/**
 * `-` is standard input; a file that starts like gzip, zstd or xz is read as a stream (it can't
 * be indexed in place); anything else is indexed as a tar, which says what is wrong with it.
 * A stream that gives no bytes for `timeoutSeconds` fails (see {@linkcode watchInput}).
 */
async function openSource(
  file: string,
  context: CommandContext,
  timeoutSeconds: number,
): Promise<Source> {
  if (file === "-") {
    const label = "standard input";
    return { kind: "stream", label, stream: watchInput(context.stdin(), label, timeoutSeconds) };
  }
  // A pipe given by name (`-f <(docker save app)`) or a compressed file is read as a stream.
  const stream = await openArchiveStream(file);
  if (stream === undefined) return { kind: "file" };
  return { kind: "stream", label: file, stream: watchInput(stream.stream, file, timeoutSeconds) };
}

/**
 * `--timeout` for the input: a read that waits `seconds` for bytes fails the stream, so a pipe
 * whose writer stalls ends the push with an error instead of hanging it. Only waits count: while
 * the push is busy elsewhere nothing is asked of the input, and no clock runs.
 */
function watchInput(
  stream: ReadableStream<Uint8Array>,
  label: string,
  seconds: number,
): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stalled = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new ArchiveError(label, `timed out: no data came in for ${seconds} s`)),
          seconds * 1000,
        );
      });
      try {
        const { done, value } = await Promise.race([reader.read(), stalled]);
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (error) {
        // Settles the read still pending on the stalled input.
        await reader.cancel(error).catch(() => {});
        throw error;
      } finally {
        clearTimeout(timer);
      }
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

/** Blobs of the stream that the pushed image does not name (they went up all the same). */
function unusedBlobs(
  streamed: StreamedArchive,
  image: ArchiveImage,
): { count: number; bytes: number } {
  const used = new Set(uniqueBlobs(image.root).map((blob) => blob.digest));
  let count = 0;
  let bytes = 0;
  for (const blob of streamed.passed.values()) {
    if (blob.outcome === "uploaded" && !used.has(blob.digest)) {
      count++;
      bytes += blob.size;
    }
  }
  return { count, bytes };
}

/**
 * The result line on stdout. The image is in the registry by now, so a stdout that cannot take
 * the line (closed early: `… | head -0`, a reader that went away) does not fail the push: the
 * line goes to stderr instead, with why.
 */
function writeResult(line: string, context: CommandContext): void {
  try {
    context.writeOut(`${line}\n`);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    context.writeErr(
      `Pushed ${line}, but stdout was closed, so it could not be written there (${why})\n`,
    );
  }
}

/**
 * One line on what compression did, or nothing when no layer was compressed. Layers that did
 * not shrink (by 1 % at least: tar padding always shrinks a little) went up as stored blocks:
 * not a warning, just the fact.
 */
function compressionSummary(
  compressed: { count: number; bytes: number; size: number },
  codec: string,
): string | undefined {
  if (compressed.count === 0) return undefined;
  if (compressed.size >= compressed.bytes * 0.99) {
    return `${compressed.count} layer(s) did not compress with ${codec}; sent as stored ` +
      `(${formatBytes(compressed.bytes)})`;
  }
  return `Compressed ${compressed.count} layer(s) with ${codec}: ` +
    `${formatBytes(compressed.bytes)} → ${formatBytes(compressed.size)}`;
}

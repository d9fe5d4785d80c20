/**
 * The `push` command: settings → archives → a plan of which image goes where → one run that
 * pushes them all → the report (a line per tag pushed on stdout, or one JSON document).
 */
import { readCaFile } from "./ca_file.ts";
import type { ArchiveImage, ImageArchive } from "../archive/image.ts";
import { openImageArchive } from "../archive/image_archive.ts";
import { LayerCompressor } from "../push/layer_compressor.ts";
import { readStreamedArchive, type StreamedArchive } from "../push/push_stream.ts";
import { openSource, type Source, unusedBlobs } from "./push_input.ts";
import { resolveCredentials } from "../credentials/resolve.ts";
import { realCredentialSystem } from "../credentials/system.ts";
import { UsageError } from "../errors.ts";
import { forTarget } from "../progress/events.ts";
import { formatBytes } from "../progress/format.ts";
import { type JobReport, prepareRun, runJobs } from "../push/push_run.ts";
import { planRun, type SkippedImage } from "../push/run_plan.ts";
import { defaultStateDir, ResumeStore } from "../push/resume_store.ts";
import { BlobInfoCache, defaultCacheDir } from "../push/blob_info_cache.ts";
import type { CredentialLookup, Credentials } from "../registry/auth.ts";
import { RegistryClient } from "../registry/client.ts";
import { proxyConfigFromEnv } from "../registry/proxy_env.ts";
import { registryBaseUrl, registryEndpoint } from "../registry/reference.ts";
import { createTransport } from "../registry/transport.ts";
import { NAME, VERSION } from "../version.ts";
import {
  type PushSettings,
  type RawFlags,
  resolveSettings,
  type TargetSettings,
} from "./options.ts";
import { type PasswordInput, readStdinPassword } from "./password_input.ts";
import { reportedAsJson } from "./json_failure.ts";
import { type Reporter, reporterFor } from "./reporter.ts";
import { describeError, jsonReport, pushedLines, targetText, textSummary } from "./push_report.ts";

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
  const started = performance.now();
  let settings: PushSettings | undefined;
  let reporter: Reporter | undefined;
  let outcome: RunOutcome = { reports: [], skipped: [] };
  /** Filled as archives are opened, so a failure after that still names them as given. */
  const archiveNames = new Map<string, string>();
  try {
    let stdinPassword: string | undefined;
    if (flags.passwordStdin) {
      // Every other setting is checked before the password is read (or asked for at a prompt).
      resolveSettings(flags, context.env, "-");
      stdinPassword = await readStdinPassword(context);
    }
    settings = resolveSettings(flags, context.env, stdinPassword);
    context.onVerbose(settings.verbose);
    reporter = reporterFor(settings, context);
    outcome = await pushAll(settings, context, reporter, archiveNames);
  } catch (error) {
    reporter?.stop();
    // Under --output json every failure prints its document, a usage error's too (the flags
    // that asked for JSON are read as given when the settings could not be).
    if ((settings?.output ?? flags.output) === "json") {
      writeJson(settings, flags, outcome, performance.now() - started, context, {
        error,
        archiveNames,
      });
      reportedAsJson(error);
    }
    throw error;
  } finally {
    reporter?.stop();
  }
  const { reports, skipped } = outcome;
  if (settings.output === "json") {
    writeJson(settings, flags, outcome, performance.now() - started, context, { archiveNames });
  } else {
    const text = textSummary(reports, skipped, {
      dryRun: settings.dryRun,
      quiet: settings.quiet,
      codec: settings.compression.codec,
    });
    for (const line of text) context.writeErr(`${line}\n`);
    if (!settings.dryRun) {
      for (const report of reports) {
        for (const line of pushedLines(report)) writeResult(line, context);
      }
    }
  }
  const failure = runFailure(reports);
  if (failure === undefined) return;
  // The document on stdout has said it already.
  if (settings.output === "json") reportedAsJson(failure);
  throw failure;
}

/** The error a run ends with when some of its pushes failed; nothing when none did. */
function runFailure(reports: readonly JobReport[]): unknown {
  const failed = reports.filter((r) => r.status === "failed");
  if (failed.length === 0) return undefined;
  if (failed.length === 1 && reports.length === 1) return failed[0]!.error;
  // One cause for all (a registry that is down): said once.
  const causes = new Set(failed.map((r) => describeError(r.error)));
  return new Error(
    `${failed.length} of ${reports.length} pushes failed: ` +
      (causes.size === 1 && failed.length > 1
        ? [...causes][0]
        : failed.map((r) => `${targetText(r.job)} (${describeError(r.error)})`).join("; ")),
  );
}

/** What a run did: a report per job, and the images `--all` left out. */
interface RunOutcome {
  reports: JobReport[];
  skipped: SkippedImage[];
}

/** Opens the archives, plans, and runs every job; throws only for what stops the whole run. */
async function pushAll(
  settings: PushSettings,
  context: CommandContext,
  reporter: Reporter,
  archiveNames: Map<string, string>,
): Promise<RunOutcome> {
  const { targets } = settings;
  if (targets.some((t) => t.passwordSource === "flag") && !settings.quiet) {
    context.writeErr(
      "Warning: a password on the command line can be read by other users of this machine; " +
        "prefer --password-stdin\n",
    );
  }
  const insecure = settings.skipTls
    ? [
      ...new Set(
        targets.filter((t) => t.reference.scheme === "https").map((t) => t.reference.apiHost),
      ),
    ]
    : [];
  if (insecure.length > 0 && !settings.quiet) {
    context.writeErr(
      `Warning: TLS certificate verification is disabled for ${insecure.join(", ")} (--skip-tls)\n`,
    );
  }
  const caCerts = settings.caCert === undefined ? undefined : [await readCaFile(settings.caCert)];
  // A tar file is indexed in place; a pipe or a compressed file is read front to back, once.
  const sources: { file: string; source: Source }[] = [];
  for (const file of settings.files) {
    const source = await openSource(file, context, settings.timeoutSeconds);
    sources.push({ file, source });
    if (source.kind === "stream") archiveNames.set(source.label, file);
  }
  const stream = sources.find((s) => s.source.kind === "stream");
  if (stream !== undefined && (sources.length > 1 || targets.length > 1)) {
    const label = stream.source.kind === "stream" ? stream.source.label : stream.file;
    throw new UsageError(
      `${label} is read as a stream (a pipe or a compressed archive), once: it can be the ` +
        `only -f, to one -r`,
      { hint: "Give tar files for a run of several archives or registries" },
    );
  }
  if (stream !== undefined && settings.all && targets[0]!.reference.repository === "") {
    throw new UsageError(
      `--all from a stream needs a prefix in -r: the layers go into it as they pass, and ` +
        `each image's repository mounts them from there`,
      { hint: `Add a prefix: -r ${targets[0]!.reference.registry}/mirror` },
    );
  }
  const fileArchives: ImageArchive[] = [];
  for (const { file, source } of sources) {
    if (source.kind === "file") {
      fileArchives.push(await openImageArchive(file, { signal: context.signal }));
    }
  }

  const clients = new Map<number, RegistryClient>();
  const views = new Map<string, RegistryClient>();
  const stateDir = settings.resume && !settings.dryRun ? defaultStateDir(context.env) : undefined;
  const resume = stateDir === undefined ? undefined : new ResumeStore(stateDir);
  const cacheDir = defaultCacheDir(context.env);
  const cache = cacheDir === undefined
    ? BlobInfoCache.inMemory()
    : await BlobInfoCache.open(cacheDir);
  const transport = createTransport({
    inactivityTimeoutMs: settings.timeoutSeconds * 1000,
    // --skip-tls is for the registries the user named, not their token realms or redirects.
    insecureHosts: insecure,
    ...(caCerts ? { caCerts } : {}),
    proxy: proxyConfigFromEnv(context.env),
    maxSockets: settings.maxConcurrent + 2,
    userAgent: `${NAME}/${VERSION}`,
  });
  /** What this run learnt holds even if it failed part-way. */
  const saveCache = async () => {
    if (settings.dryRun) return;
    await cache.save().catch((error) =>
      reporter.info(`Note: could not save the blob-info cache ${cache.path}: ${error}`)
    );
  };
  const compressor = settings.compression.codec === "none" ? undefined : new LayerCompressor({
    ...settings.compression,
    cache,
    ...(settings.mountFrom !== undefined ? { mountFrom: settings.mountFrom } : {}),
    ...(resume ? { resume } : {}),
  });
  try {
    const registries = new Set(targets.map((t) => registryBaseUrl(t.reference).href));
    /** The client of `-r` number `index`: its registry, credentials, and auth session. */
    const baseClient = async (index: number): Promise<RegistryClient> => {
      const known = clients.get(index);
      if (known !== undefined) return known;
      const target = targets[index]!;
      const client = new RegistryClient({
        ...registryEndpoint(target.reference),
        registryName: target.reference.registry,
        // With --all and no prefix there is no repository here: only views of it send requests.
        repository: target.reference.repository === "" ? "_" : target.reference.repository,
        transport,
        retries: settings.retryAttempts,
        // Pushing to several registries, each transfer of a blob says where it goes.
        sink: registries.size > 1
          ? forTarget(reporter.sink, target.reference.registry)
          : reporter.sink,
        signal: context.signal,
        credentials: await credentialsFor(target, settings, reporter, context),
        ...(settings.mountFrom !== undefined ? { pullFrom: [settings.mountFrom] } : {}),
      });
      clients.set(index, client);
      return client;
    };
    for (let index = 0; index < targets.length; index++) await baseClient(index);

    let streamed: StreamedArchive | undefined;
    if (stream !== undefined && stream.source.kind === "stream") {
      const client = clients.get(0)!;
      await client.ping();
      streamed = await readStreamedArchive(client, stream.source, {
        ...(compressor ? { compressor } : {}),
        cache,
        forceUpload: settings.forceUpload,
        dryRun: settings.dryRun,
        // What the registry has not confirmed is held in memory: at most this much.
        segmentSize: Math.min(settings.chunkSize, STREAM_SEGMENT_BYTES),
        sink: reporter.sink,
      });
    }
    const archives = streamed === undefined ? fileArchives : [streamed.archive];
    const plan = planRun(archives, {
      targets: targets.map((t) => t.reference),
      tags: settings.tags,
      all: settings.all,
      multiArch: settings.multiArch,
      images: settings.images,
    });
    const noted = new Set<ArchiveImage>();
    for (const job of plan.jobs) {
      for (const { image } of job.sources) {
        if (noted.has(image)) continue;
        noted.add(image);
        for (const note of image.notes) reporter.info(`Note: ${note}`);
      }
    }
    if (streamed !== undefined && plan.jobs.length === 1 && plan.jobs[0]!.kind === "image") {
      const unused = unusedBlobs(streamed, plan.jobs[0]!.sources[0]!.image);
      if (unused.count > 0) {
        reporter.info(
          `Note: ${unused.count} blob(s), ${formatBytes(unused.bytes)}, of other images in the ` +
            `stream went up too (an image's blobs are known only at the stream's end)`,
        );
      }
    }
    if (plan.jobs.length === 0) {
      throw new UsageError(
        `Nothing to push: every image of ${archives.map((a) => a.path).join(", ")} is untagged`,
        { hint: "Name images with --image to push them by digest into the prefix repository" },
      );
    }
    const prepared = await prepareRun(plan.jobs, settings.compression, context.signal);
    const reports = await runJobs(plan.jobs, prepared, {
      clientFor: (job) => {
        const base = clients.get(job.targetIndex)!;
        if (base.repository === job.target.repository) return base;
        const key = `${job.targetIndex} ${job.target.repository}`;
        let view = views.get(key);
        if (view === undefined) {
          view = base.forRepository(job.target.repository);
          views.set(key, view);
        }
        return view;
      },
      push: {
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
        cache,
        ...(streamed
          ? { streamed: streamed.passed, streamedInto: clients.get(0)!.repository }
          : {}),
        ...(compressor ? { compressor } : {}),
      },
      sink: reporter.sink,
      signal: context.signal,
    });
    return { reports, skipped: plan.skipped };
  } finally {
    compressor?.close();
    await saveCache();
    transport.close();
  }
}

/** The credentials for one target: given, or docker's config read if the registry asks. */
async function credentialsFor(
  target: TargetSettings,
  settings: PushSettings,
  reporter: Reporter,
  context: CommandContext,
): Promise<Credentials | CredentialLookup> {
  const registry = target.reference.registry;
  const choice = await resolveCredentials(target, registry, realCredentialSystem(context.env));
  if (choice.kind === "given") {
    if (settings.verbose) reporter.info(`Credentials for ${registry}: ${choice.source}`);
    return choice.credentials;
  }
  if (settings.verbose) {
    reporter.info(`Credentials for ${registry}: docker's config, if the registry asks`);
  }
  // Read only if the registry asks; a store that cannot be read is the client's to report.
  return async () => {
    const found = await choice.lookup();
    if (settings.verbose) {
      reporter.info(
        `Credentials for ${registry}: ${found?.source ?? "none in docker's config (anonymous)"}`,
      );
    }
    return found?.credentials;
  };
}

/** The `--output json` document; `settings` is undefined when they could not be read. */
function writeJson(
  settings: PushSettings | undefined,
  flags: RawFlags,
  outcome: RunOutcome,
  durationMs: number,
  context: CommandContext,
  options: { error?: unknown; archiveNames: ReadonlyMap<string, string> },
): void {
  const document = jsonReport({
    reports: outcome.reports,
    skipped: outcome.skipped,
    dryRun: settings?.dryRun ?? flags.dryRun === true,
    ...(settings ? { compression: settings.compression } : {}),
    durationMs: Math.round(durationMs),
    archiveNames: options.archiveNames,
    ...("error" in options ? { error: options.error } : {}),
  });
  try {
    context.writeOut(`${JSON.stringify(document, null, 2)}\n`);
  } catch (writeError) {
    context.writeErr(`Could not write the JSON report to stdout: ${describeError(writeError)}\n`);
  }
}

/** Largest request a layer read from a stream goes up in (it is held until confirmed). */
const STREAM_SEGMENT_BYTES = 16 * 1024 * 1024;

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

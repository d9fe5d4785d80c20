/**
 * What every API call sets up the same way: the environment it reads, the progress sink, and
 * the promise's rejection with the signal's own reason when the caller aborts.
 */
import { type ProgressSink, silentSink } from "../progress/events.ts";
import type { ProgressListener } from "./options.ts";
import { proxyConfigFromEnv } from "../registry/proxy_env.ts";
import type { TransportOptions } from "../registry/transport.ts";
import { NAME, VERSION } from "../version.ts";

/** What a push run and a pull run both take, validated by the caller. */
export interface RunSettings {
  maxConcurrent: number;
  retryAttempts: number;
  timeoutSeconds: number;
  /** Hosts (`URL.host`) whose TLS certificates are not verified. */
  insecureHosts: readonly string[];
  caCerts: string[] | undefined;
  env: (name: string) => string | undefined;
  sink: ProgressSink;
  signal: AbortSignal | undefined;
}

/**
 * The transport a run's settings ask for: inactivity timeout, TLS trust, the environment's
 * proxies, a socket per concurrent transfer and two for manifests and tokens.
 */
export function transportOptions(settings: RunSettings): TransportOptions {
  return {
    inactivityTimeoutMs: settings.timeoutSeconds * 1000,
    // Skipping verification is for the registries named, not their token realms or redirects.
    insecureHosts: settings.insecureHosts,
    ...(settings.caCerts ? { caCerts: settings.caCerts } : {}),
    proxy: proxyConfigFromEnv(settings.env),
    maxSockets: settings.maxConcurrent + 2,
    userAgent: `${NAME}/${VERSION}`,
  };
}

/** The process environment, read only for the names a call needs. */
export const defaultEnv = (name: string): string | undefined => Deno.env.get(name);

/** The caller's listener as the core's sink (nothing when there is none). */
export function progressSink(listener: ProgressListener | undefined): ProgressSink {
  return listener ?? silentSink;
}

/**
 * Runs `work`; once `signal` has aborted, whatever the work failed with (a cancelled request,
 * a closed file) gives way to the signal's reason, as `fetch` rejects.
 */
export async function abortable<T>(
  signal: AbortSignal | undefined,
  work: () => Promise<T>,
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw error;
  }
}

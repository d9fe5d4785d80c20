/**
 * One pull assembled from settings: a transport, a client per source with its credentials, and
 * the pull into one archive. The public `pull` and the CLI's `pull` command both run through
 * here.
 */
import { hostPlatform, type PlatformChoice } from "../image/platform.ts";
import {
  pullImages,
  type PullOptions,
  type PullResult,
  type PullSource,
} from "../pull/pull_images.ts";
import type { CredentialLookup, Credentials } from "../registry/credentials.ts";
import { RegistryClient } from "../registry/client.ts";
import { createFetchTransport } from "../registry/fetch_transport.ts";
import { registryReferrerLookup } from "../pull/registry_referrers.ts";
import { type ImageReference, registryEndpoint } from "../image/reference.ts";
import { type RunSettings, transportOptions } from "./run_context.ts";

/** Everything one pull needs, validated by the caller. */
export interface PullRunSettings extends RunSettings {
  sources: readonly ImageReference[];
  /** Credentials for source number `index`, asked once per source. */
  credentialsFor: (index: number) => Promise<Credentials | CredentialLookup | undefined>;
  output: PullOptions["output"];
  /** Absent: this machine's platform. */
  platform: PlatformChoice | undefined;
  /** Store what refers to each image with it (signatures, SBOMs, attestations). */
  referrers: boolean;
}

/** Pulls every source into the output; the transport is closed before it returns. */
export async function runPullSettings(settings: PullRunSettings): Promise<PullResult> {
  const { signal } = settings;
  // fetch reads a download faster and in less memory than node:http (see fetch_transport.ts);
  // a pull sends no streamed bodies, which are what fetch cannot send as the protocol wants.
  const transport = createFetchTransport(transportOptions(settings));
  try {
    const sources: PullSource[] = [];
    for (const [index, reference] of settings.sources.entries()) {
      const credentials = await settings.credentialsFor(index);
      sources.push({
        reference,
        client: new RegistryClient({
          ...registryEndpoint(reference),
          registryName: reference.registry,
          repository: reference.repository,
          access: "pull",
          transport,
          retries: settings.retryAttempts,
          sink: settings.sink,
          ...(signal ? { signal } : {}),
          ...(credentials !== undefined ? { credentials } : {}),
        }),
      });
    }
    const host = hostPlatform();
    return await pullImages(sources, {
      output: settings.output,
      platform: settings.platform ?? { kind: "one", platform: host },
      defaultPlatform: host,
      maxConcurrent: settings.maxConcurrent,
      ...(settings.referrers ? { referrers: registryReferrerLookup() } : {}),
      sink: settings.sink,
      ...(signal ? { signal } : {}),
    });
  } finally {
    transport.close();
  }
}

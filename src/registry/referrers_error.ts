/**
 * The error for referrers that cannot be listed or recorded for a reason other than an HTTP
 * status (those are {@linkcode RegistryError}s, chained as `cause` where one led here): a
 * referrers answer or fallback tag that is not an index, an entry without a digest, a
 * fallback tag that kept changing under us.
 */
import type { RegistryClient } from "./client.ts";

/** What was being done, and to which subject, when the referrers went wrong. */
export interface ReferrersErrorContext {
  /** The registry's name for messages. */
  registry: string;
  repository: string;
  /** The manifest whose referrers these are. */
  subject: string;
  /** What we were doing: "list referrers", "update fallback tag sha256-…". */
  action: string;
}

/** Referrers of a manifest could not be listed or recorded. */
export class ReferrersError extends Error {
  /** Always "ReferrersError". */
  override name = "ReferrersError";
  /** The registry's name. */
  readonly registry: string;
  /** The repository. */
  readonly repository: string;
  /** The subject's digest. */
  readonly subject: string;

  /** `Failed to <action> of <registry>/<repository>@<subject>: <reason>`. */
  constructor(context: ReferrersErrorContext, reason: string, options?: { cause?: unknown }) {
    super(
      `Failed to ${context.action} of ${context.registry}/${context.repository}@${context.subject}: ` +
        reason,
      options,
    );
    this.registry = context.registry;
    this.repository = context.repository;
    this.subject = context.subject;
  }
}

/** The context of an error about `subject` in `client`'s repository. */
export function referrersContext(
  client: RegistryClient,
  subject: string,
  action: string,
): ReferrersErrorContext {
  return { registry: client.registryName, repository: client.repository, subject, action };
}

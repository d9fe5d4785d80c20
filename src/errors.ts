/**
 * Error classes callers catch. Everything else is a built-in error with `cause` chained.
 *
 * - {@linkcode UsageError}: the user asked for something impossible (exit 2, with a hint).
 * - {@linkcode ArchiveError}: the image archive is unreadable or malformed (exit 1).
 * - `RegistryError` (in `registry/registry_error.ts`): the registry refused or failed a request.
 */

/** A mistake in how the program was called: exit code 2, printed with a hint. */
export class UsageError extends Error {
  override name = "UsageError";
  readonly hint: string | undefined;
  constructor(message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.hint = options?.hint;
  }
}

/** The archive file cannot be read as an image archive. The message names the archive. */
export class ArchiveError extends Error {
  override name = "ArchiveError";
  readonly archive: string;
  constructor(archive: string, problem: string, options?: ErrorOptions) {
    super(`${archive}: ${problem}`, options);
    this.archive = archive;
  }
}

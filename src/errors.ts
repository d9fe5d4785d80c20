/**
 * Error classes callers catch. Everything else is a built-in error with `cause` chained.
 *
 * - {@linkcode InvalidOptionError}: the caller asked for something impossible (the CLI turns it
 *   into its usage error, exit 2, in terms of its flags).
 * - {@linkcode ArchiveError}: the image archive is unreadable or malformed (exit 1).
 * - `RegistryError` (in `registry/registry_error.ts`): the registry refused or failed a request.
 */

/** The archive file cannot be read as an image archive. The message names the archive. */
export class ArchiveError extends Error {
  /** Always "ArchiveError". */
  override name = "ArchiveError";
  /** The archive, as given (a path, or the label of a stream). */
  readonly archive: string;
  /** An error about `archive`: the message is `<archive>: <problem>`. */
  constructor(archive: string, problem: string, options?: ErrorOptions) {
    super(`${archive}: ${problem}`, options);
    this.archive = archive;
  }
}

/**
 * An option (or a combination of options) the library cannot act on, found before anything is
 * sent. A `TypeError`, as the platform's own for a bad argument; `option` names the option as
 * the library spells it, and `reason` is a stable code a caller (the CLI) can branch on to say
 * it in its own terms.
 */
export class InvalidOptionError extends TypeError {
  /** Always "InvalidOptionError". */
  override name = "InvalidOptionError";
  /** The option at fault, as the library names it (`targets`, `archive`, `tags`, …). */
  readonly option: string;
  /** A stable code for what is wrong, e.g. `stream-not-alone`. */
  readonly reason: string;
  /** The value at fault, when there is one to show (a path, a name). */
  readonly value: string | undefined;
  /** What would work instead, naming options as the library spells them. */
  readonly hint: string | undefined;
  /** An error with `message` about `init.option`; `init.reason` is a stable code. */
  constructor(
    message: string,
    init: { option: string; reason: string; value?: string; hint?: string; cause?: unknown },
  ) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.option = init.option;
    this.reason = init.reason;
    this.value = init.value;
    this.hint = init.hint;
  }
}

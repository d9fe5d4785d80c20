/**
 * Errors a pull raises that callers tell apart. Messages say what failed, never which flag to
 * use: the CLI words hints (`--platform`, a rerun) from the fields.
 */
import type { RegistryError } from "../registry/registry_error.ts";
import { formatPlatform, type Platform } from "../image/platform.ts";

/** A pull failed for a reason of its own (a malformed manifest, a digest mismatch). */
export class PullError extends Error {
  /** Always "PullError" (or a subclass's name). */
  override name = "PullError";
}

/** The registry has no such repository, tag or digest. */
export class ImageNotFoundError extends PullError {
  /** Always "ImageNotFoundError". */
  override name = "ImageNotFoundError";
  /** `image` as the source named it; `reference` is the tag or digest that was not found. */
  constructor(readonly image: string, readonly reference: string, cause: RegistryError) {
    const code = cause.codes[0]?.code;
    const what = code === "NAME_UNKNOWN"
      ? "the repository does not exist"
      : reference.startsWith("sha256:")
      ? `no manifest ${reference}`
      : `no tag ${reference}`;
    super(`Image ${image} not found: ${what}${code ? ` (${code})` : ""}`, { cause });
  }
}

/** An index (or a single image) has no manifest for the platform asked for. */
export class PlatformNotFoundError extends PullError {
  /** Always "PlatformNotFoundError". */
  override name = "PlatformNotFoundError";
  /** `image` as named, the platform `wanted`, and those it has (`available`). */
  constructor(readonly image: string, readonly wanted: Platform, readonly available: Platform[]) {
    super(
      `Image ${image} has no ${formatPlatform(wanted)} variant; it has ` +
        (available.length === 0
          ? "no platform-specific images"
          : available.map(formatPlatform).join(", ")),
    );
  }
}

/** A blob's bytes do not hash to its digest: corrupt in the registry or on the way. */
export class BlobDigestError extends PullError {
  /** Always "BlobDigestError". */
  override name = "BlobDigestError";
  /** `digest` is the expected one, `actual` what the bytes hash to; `where` names the source. */
  constructor(readonly digest: string, readonly actual: string, where: string) {
    super(`Blob ${digest} from ${where} does not match its digest: its bytes hash to ${actual}`);
  }
}

/**
 * Writing the archive to its output failed: no space (ENOSPC), an I/O error (EIO), a reader
 * that stopped reading (EPIPE), a permission taken away (EACCES)… The message names the output
 * and the system's reason: `Cannot write the archive to /dev/full: no space left on device
 * (ENOSPC)`.
 */
export class OutputWriteError extends PullError {
  /** Always "OutputWriteError" (or a subclass's name). */
  override name = "OutputWriteError";
  /** The system's error code (`ENOSPC`, `EPIPE`…), when it has one. */
  readonly code: string | undefined;
  /**
   * `path` names what was being written (a file, a device, "standard output"); `cause` is the
   * system's error; `more` is said after the reason.
   */
  constructor(readonly path: string, cause: unknown, more?: string) {
    super(cannotWrite("the archive", path, cause, more), { cause });
    this.code = osErrorCode(cause);
  }
}

/**
 * Writing a pull's resume state (`OUTPUT.partial.json`, beside `OUTPUT.partial`) failed. The
 * message names the state file and the system's reason: `Cannot write the pull's resume state
 * to out.tar.partial.json: read-only file system (EROFS)`.
 */
export class StateWriteError extends PullError {
  /** Always "StateWriteError". */
  override name = "StateWriteError";
  /** The system's error code (`ENOSPC`, `EACCES`…), when it has one. */
  readonly code: string | undefined;
  /** `path` is the state file; `cause` the system's error. */
  constructor(readonly path: string, cause: unknown) {
    super(cannotWrite("the pull's resume state", path, cause), { cause });
    this.code = osErrorCode(cause);
  }
}

/** `Cannot write WHAT to PATH: why (CODE); more`, the one line of a failed write. */
function cannotWrite(what: string, path: string, cause: unknown, more?: string): string {
  const code = osErrorCode(cause);
  return `Cannot write ${what} to ${path}: ${osErrorWords(cause)}${code ? ` (${code})` : ""}${
    more ? `; ${more}` : ""
  }`;
}

/**
 * The disk is full (or the file size limit reached) while writing the archive. Once the
 * pull's first state is saved, the partial file and its state are kept, so a rerun once there
 * is room continues; before that, the partial file the run made is removed.
 */
export class DiskFullError extends OutputWriteError {
  /** Always "DiskFullError". */
  override name = "DiskFullError";
  /** `path` being written, the bytes `needed` for the archive, and the file system's error. */
  constructor(path: string, readonly needed: number, cause: unknown) {
    super(path, cause, `the archive needs ${needed} bytes`);
  }
}

/** Whether a file system error means "no room": ENOSPC, EFBIG, EDQUOT. */
export function isNoSpace(error: unknown): boolean {
  const code = osErrorCode(error);
  const text = error instanceof Error ? error.message : String(error);
  return code === "ENOSPC" || code === "EFBIG" || code === "EDQUOT" ||
    /no space left|file too large|quota exceeded/i.test(text);
}

/** The system's code of an OS error (`ENOSPC`), as Deno gives it; undefined for other errors. */
function osErrorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** An OS error in a few words, without Deno's `(os error N): open '…'` tail. */
export function osErrorWords(error: unknown): string {
  switch (osErrorCode(error)) {
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EROFS":
      return "read-only file system";
    case "ENXIO":
      return "no such device or address (a socket cannot be opened as a file)";
    case "EPIPE":
      return "the program reading it stopped";
  }
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/ \(os error \d+\).*$/, "").toLowerCase();
}

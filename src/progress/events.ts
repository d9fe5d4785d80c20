/**
 * Progress events emitted by the core (push and pull). The core never touches the terminal: the
 * CLI's renderers (`src/cli/progress/`) turn these events into bars, log lines or nothing at all.
 */

/** Which way a blob went. */
export type BlobOutcome = "uploaded" | "skipped" | "mounted";

/** A layer as the registry holds it when it went compressed on the way: its size there, and how. */
export interface CompressedForm {
  /** Its size in the registry, in bytes. */
  size: number;
  /** How it was compressed. */
  codec: "gzip" | "zstd";
}

/**
 * What a `notice` says, as a kind to branch on; its `message` is the default wording.
 *
 * - `verifying`: every blob is hashed before the first upload (`verify`).
 * - `upload-resumed`: a saved upload session is continued (`digest`).
 * - `upload-restarted`: a saved session is gone; the blob starts over (`digest`).
 * - `session-lost-fallback`: the registry lost a session; blobs go in one request from now on.
 * - `chunks-refused-fallback`: the registry refused chunks; blobs go in one request instead.
 * - `too-large-chunked`: one request was too large (413); the blob goes in chunks (`digest`).
 * - `chunk-size-reduced`: a chunk was too large (413); smaller chunks follow (`digest`).
 * - `compressed-refused`: a layer compressed on the way was refused; it goes as stored.
 * - `credentials-unreadable`: stored credentials cannot be read; trying without (a warning).
 * - `archive-note`: a remark of the archive reader about an image.
 * - `unused-stream-blobs`: blobs of other images in a stream went up too.
 * - `cache-not-saved`: the blob-info cache could not be saved.
 * - `partial-replaced`: a partial archive of another pull is started again.
 * - `resume-mismatch`: a kept prefix of a layer did not match; it is downloaded again.
 * - `download-restarted`: a layer is downloaded again from its start (`digest`).
 * - `zstd-layers`: the archive holds zstd layers that older Docker cannot load (a warning).
 * - `kept-as-stored-for-referrers`: an image's layers go as stored, not compressed, because a
 *   signature or attestation names a manifest that compressing would change (`digest`).
 * - `referrers-left-behind`: a pull leaves out something that refers to an image (`digest`):
 *   gone from the registry, an index, too deep, or an attestation the archive cannot carry.
 */
export type NoticeKind =
  | "verifying"
  | "upload-resumed"
  | "upload-restarted"
  | "session-lost-fallback"
  | "chunks-refused-fallback"
  | "too-large-chunked"
  | "chunk-size-reduced"
  | "compressed-refused"
  | "credentials-unreadable"
  | "archive-note"
  | "unused-stream-blobs"
  | "cache-not-saved"
  | "partial-replaced"
  | "resume-mismatch"
  | "download-restarted"
  | "zstd-layers"
  | "referrers-left-behind"
  | "kept-as-stored-for-referrers";

/** What a `retry` event tries again: a kind, and what it concerns. Renderers word it. */
export type RetrySubject =
  /** One request, by what it does: `action` is the request's own description. */
  | { kind: "request"; action: string }
  /**
   * A whole blob upload, started again. The failed attempt had its own `blob-start` only if it
   * got as far as its bytes: one of a blob sent as stored that failed at a mount or at opening
   * its session had none (see `blob-start` in {@linkcode ProgressEvent}).
   */
  | { kind: "blob"; digest: string }
  /** A blob download, continued from what it received. */
  | { kind: "download"; digest: string }
  /** A chunk of a chunked upload, from byte `offset` of the blob. */
  | { kind: "chunk"; digest: string; offset: number }
  /**
   * A segment of a layer read from a stream, from byte `offset`: its digest is known only at
   * its end, so `blob` names it as the archive does.
   */
  | { kind: "segment"; blob: string; offset: number };

/**
 * What the core reports as it works: every event has a string `type`; blob events name their blob
 * by digest, and `target` when a run pushes to several registries.
 */
export type ProgressEvent =
  /**
   * The plan is known: what will be pushed (`image`, the archive's name for it), where to
   * (`target`, `registry/repository:tag`), in bytes and blobs.
   */
  | { type: "plan"; image: string; target?: string; blobs: number; bytes: number }
  /**
   * A blob's bytes are about to move: at most once per upload attempt (`attempt` > 1 after a
   * retry), or once per download (its retries continue it). A blob sent as stored is announced
   * once its session is open or continued, after a cross-repository mount tried first has
   * declined: a blob a mount took, or that the registry already had (`blob-done` with `mounted`
   * or `skipped`), has none, nor has an attempt that failed before its session was open. `from`
   * bytes are in place already (confirmed to the upload session the attempt continues, sent by
   * an earlier attempt or run, or kept on disk by an earlier pull): done, but not moved by this
   * attempt, so a rate counts only what moves from here.
   */
  | {
    type: "blob-start";
    digest: string;
    size: number;
    attempt: number;
    target?: string;
    from?: number;
  }
  /** `done` bytes of `size` have been sent for this blob (monotonic within an attempt). */
  | { type: "blob-progress"; digest: string; done: number; size: number; target?: string }
  /**
   * The blob is in the registry. `size` is the archive's; `compressed`, when the registry holds
   * the layer compressed on the way (sent so, or found so), says in what form.
   */
  | {
    type: "blob-done";
    digest: string;
    size: number;
    outcome: BlobOutcome;
    target?: string;
    compressed?: CompressedForm;
  }
  /**
   * A request or blob attempt failed and will be retried after `delayMs`: `subject` says what,
   * `digest` names its blob when it is one (by digest), `status` the registry's answer when
   * there was one, and `reason` is the failure's message.
   */
  | {
    type: "retry";
    subject: RetrySubject;
    digest?: string;
    attempt: number;
    delayMs: number;
    reason: string;
    status?: number;
    target?: string;
  }
  /** A manifest was pushed. */
  | { type: "manifest-done"; reference: string; digest: string }
  /**
   * A pull found a referrer of `subject` (a signature, SBOM or attestation) and fetched its
   * manifest; it goes into the archive, its blobs downloaded as the layers are.
   */
  | {
    type: "referrer-pulled";
    digest: string;
    subject: string;
    kind: "signature" | "sbom" | "attestation" | "artifact";
    artifactType: string;
    /** The cosign-style tag it was found under (`sha256-<hex>.sig`); absent for OCI 1.1. */
    tag?: string;
  }
  /**
   * A push restored a referrer of `subject` (a signature, SBOM or attestation), byte for byte:
   * its blobs, then its manifest, in `target` (`registry/repository`; by its cosign tag when it
   * has one, `tag`). `dryRun`: a dry run says it would.
   */
  | {
    type: "referrer-done";
    digest: string;
    subject: string;
    kind: "signature" | "sbom" | "attestation" | "artifact";
    artifactType: string;
    target: string;
    tag?: string;
    dryRun?: boolean;
  }
  /** An HTTP exchange finished (reported for --verbose; URL already redacted). */
  | { type: "http"; method: string; url: string; status: number | "error"; ms: number }
  /**
   * A registry on this machine, named without a scheme, does not speak TLS: it is reached over
   * plain HTTP from now on (once per registry client; for --verbose).
   */
  | { type: "plain-http"; registry: string }
  /**
   * Something the user may want to know (a fallback taken, a resume): `kind` says what, and
   * `digest` names the blob it concerns; `message` words it; `warning` when something is wrong.
   */
  | {
    type: "notice";
    kind: NoticeKind;
    message: string;
    level?: "warning";
    digest?: string;
    target?: string;
  };

/**
 * Blob events carry `target` (the registry, as users name it) when a run pushes to several
 * registries: one blob then goes up once to each, and each is its own transfer.
 */
/** Receives progress events. Must not throw and must return quickly. */
export type ProgressSink = (event: ProgressEvent) => void;

/** A sink that drops everything. */
export const silentSink: ProgressSink = (): void => {};

/** `sink`, with `target` added to every blob event (see {@linkcode ProgressEvent}). */
export function forTarget(sink: ProgressSink, target: string): ProgressSink {
  return (event) => {
    if (
      event.type === "blob-start" || event.type === "blob-progress" ||
      event.type === "blob-done" || event.type === "retry"
    ) {
      sink({ ...event, target });
    } else {
      sink(event);
    }
  };
}

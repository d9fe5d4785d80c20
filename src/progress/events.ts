/**
 * Progress events emitted by the push core. The core never touches the terminal: renderers in
 * `progress/` turn these events into bars, log lines or nothing at all.
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
   * A blob starts uploading (or starts again after a retry, with `attempt` > 1); `from` bytes
   * are in place already (kept by an earlier run): done, but not moved by this one.
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
  /** A request or blob attempt failed and will be retried after `delayMs`. */
  | { type: "retry"; what: string; attempt: number; delayMs: number; reason: string }
  /** A manifest was pushed. */
  | { type: "manifest-done"; reference: string; digest: string }
  /** An HTTP exchange finished (reported for --verbose; URL already redacted). */
  | { type: "http"; method: string; url: string; status: number | "error"; ms: number }
  /**
   * A registry on this machine, named without a scheme, does not speak TLS: it is reached over
   * plain HTTP from now on (once per registry client; for --verbose).
   */
  | { type: "plain-http"; registry: string }
  /** A free-form notice for the user (a fallback taken); `warning` when something is wrong. */
  | { type: "notice"; message: string; level?: "warning" };

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
      event.type === "blob-start" || event.type === "blob-progress" || event.type === "blob-done"
    ) {
      sink({ ...event, target });
    } else {
      sink(event);
    }
  };
}

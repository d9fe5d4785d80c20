/**
 * The progress model: folds {@linkcode ProgressEvent}s into per-blob and total state. It does
 * no I/O; renderers read it to draw bars or write log lines.
 *
 * How totals count: the total measures upload *work*. `plan` announces every blob of the image;
 * a blob that turns out to be in the registry already (skipped) or is mounted from another
 * repository leaves the total rather than counting as done, so the bar, the percentage and the
 * ETA describe only bytes that really cross the network. Blob *counts* include them, though:
 * "5/7 blobs" means five are in the registry, however they got there.
 */
import type { BlobOutcome, ProgressEvent } from "../../progress/events.ts";
import { RateEstimator, type RateEstimatorOptions } from "./rate.ts";

/**
 * Where a blob is: being sent; `finishing` (every byte handed to the connection, the registry's
 * answer still to come); waiting for a retry; or finished one of three ways.
 *
 * `finishing` exists because bytes are counted when the socket takes them, not when they reach
 * the registry: on a slow link the kernel's and any proxy's buffers hold seconds of data, so a
 * blob's counter reaches its size well before the registry has it all.
 */
export type BlobStatus = "uploading" | "finishing" | "retrying" | BlobOutcome;

/** What the model knows about one blob. */
export interface BlobState {
  readonly digest: string;
  /** The registry it goes to, when a run pushes to several (see `ProgressEvent`). */
  readonly target?: string;
  /** Size in bytes, from the latest event that carried it. */
  readonly size: number;
  /** Bytes sent in the current attempt (a failed attempt's bytes are lost). */
  readonly done: number;
  readonly status: BlobStatus;
  /** The current attempt, or the next one while `retrying`; 1-based. */
  readonly attempt: number;
  /** Clock time of the first `blob-start`, if there was one (skipped blobs often have none). */
  readonly startedAt: number | undefined;
  /** Bytes in place from an earlier run when this run started the blob (a resumed pull). */
  readonly kept: number;
  /** Clock time of `blob-done`. */
  readonly finishedAt: number | undefined;
}

/** Totals across all blobs, as of the moment {@linkcode ProgressState.totals} is called. */
export interface ProgressTotals {
  /** The image named by `plan`. */
  readonly image: string | undefined;
  /** Whether a `plan` event arrived. Before it, totals only cover blobs seen so far. */
  readonly planned: boolean;
  /** Blobs in the image (the plan's count, or more if more were seen). */
  readonly blobsTotal: number;
  /** Blobs in the registry: uploaded, skipped or mounted. */
  readonly blobsFinished: number;
  /** Bytes that must be uploaded: planned bytes minus skipped and mounted blobs. */
  readonly bytesTotal: number;
  /** Bytes uploaded so far, including the current attempt of blobs in flight. */
  readonly bytesDone: number;
  /** Bytes that needed no upload (skipped or mounted). */
  readonly bytesSkipped: number;
  /**
   * `bytesDone / bytesTotal` in 0..1; exactly 1 once every planned blob is finished, and below
   * 1 until then, even when every byte has been sent (the registry has not answered yet).
   */
  readonly fraction: number;
  /** Bytes per second over the last few seconds, or `undefined` until there is history. */
  readonly rate: number | undefined;
  /** Estimated time to send the remaining bytes, or `undefined` when unknown. */
  readonly etaMs: number | undefined;
}

/** Options for {@linkcode ProgressState}. */
export interface ProgressStateOptions {
  /** Clock in milliseconds. Default `performance.now`, which is monotonic. */
  now?: () => number;
  /** Passed to the rate estimator. */
  rate?: RateEstimatorOptions;
}

type MutableBlob = { -readonly [K in keyof BlobState]: BlobState[K] };

/**
 * Folds progress events into state.
 *
 * @example
 * ```ts
 * const state = new ProgressState({ now: () => 0 });
 * state.apply({ type: "plan", image: "app:1", blobs: 1, bytes: 100 });
 * state.apply({ type: "blob-start", digest: "sha256:ab", size: 100, attempt: 1 });
 * state.apply({ type: "blob-progress", digest: "sha256:ab", done: 40, size: 100 });
 * state.totals().fraction; // 0.4
 * ```
 */
export class ProgressState {
  readonly #now: () => number;
  readonly #rate: RateEstimator;
  readonly #blobs = new Map<string, MutableBlob>();
  #plan: { image: string; blobs: number; bytes: number } | undefined;
  /** Bytes that crossed the network, failed attempts included: what the rate measures. */
  #sent = 0;

  constructor(options: ProgressStateOptions = {}) {
    this.#now = options.now ?? (() => performance.now());
    this.#rate = new RateEstimator(options.rate);
  }

  /** The current time on the model's clock. */
  now(): number {
    return this.#now();
  }

  /** Updates the model with one event. Events that carry no progress are ignored. */
  apply(event: ProgressEvent): void {
    const t = this.#now();
    switch (event.type) {
      case "plan":
        this.#plan = { image: event.image, blobs: event.blobs, bytes: event.bytes };
        return;
      case "blob-start": {
        const blob = this.#blob(event.digest, event.size, event.target);
        blob.size = event.size;
        blob.status = "uploading";
        blob.attempt = event.attempt;
        // Bytes kept from an earlier run are done, but the rate counts only what moves from here.
        blob.done = event.from ?? 0;
        if (blob.startedAt === undefined) blob.kept = event.from ?? 0;
        blob.startedAt ??= t;
        blob.finishedAt = undefined;
        // Anchor the rate at the start of the transfer, not at the previous progress event.
        this.#rate.record(t, this.#sent);
        return;
      }
      case "blob-progress": {
        const blob = this.#blob(event.digest, event.size, event.target);
        blob.size = event.size;
        this.#send(t, blob, event.done);
        if (isInFlight(blob)) blob.status = blob.done >= blob.size ? "finishing" : "uploading";
        return;
      }
      case "blob-done": {
        const blob = this.#blob(event.digest, event.size, event.target);
        // A run may place one blob in several repositories: the one that uploaded it counts.
        if (blob.status === "uploaded" && event.outcome !== "uploaded") return;
        blob.size = event.size;
        if (event.outcome === "uploaded") this.#send(t, blob, event.size);
        blob.status = event.outcome;
        blob.finishedAt = t;
        return;
      }
      case "retry":
        // A blob's retry names it by digest; a request's (a blob's PUT) and a stream segment's
        // name it in their descriptions, when they know it.
        for (const blob of this.#blobs.values()) {
          // A retry towards one registry leaves the same blob's transfer to another alone.
          if (event.target !== undefined && blob.target !== event.target) continue;
          const { subject } = event;
          const about = event.digest === blob.digest ||
            (subject.kind === "request" && subject.action.includes(blob.digest)) ||
            (subject.kind === "segment" && subject.blob.includes(blob.digest));
          if (isInFlight(blob) && about) {
            blob.status = "retrying";
            blob.attempt = event.attempt;
            blob.done = 0;
          }
        }
        return;
      case "manifest-done":
      case "http":
      case "notice":
        return;
    }
  }

  /** The state of one blob (going to `target`, in a run to several registries). */
  blob(digest: string, target?: string): BlobState | undefined {
    return this.#blobs.get(blobKey(digest, target));
  }

  /** All blobs in the order they were first seen. */
  blobs(): BlobState[] {
    return [...this.#blobs.values()];
  }

  /** Blobs uploading, finishing or waiting for a retry, in the order they were first seen. */
  inFlight(): BlobState[] {
    return this.blobs().filter(isInFlight);
  }

  /** Totals, rate and ETA as of now. */
  totals(): ProgressTotals {
    let knownBytes = 0;
    let bytesDone = 0;
    let bytesSkipped = 0;
    let blobsFinished = 0;
    for (const blob of this.#blobs.values()) {
      knownBytes += blob.size;
      if (blob.status === "skipped" || blob.status === "mounted") bytesSkipped += blob.size;
      else bytesDone += Math.min(blob.done, blob.size);
      if (!isInFlight(blob)) blobsFinished++;
    }
    const planned = this.#plan !== undefined;
    const blobsTotal = Math.max(this.#plan?.blobs ?? 0, this.#blobs.size);
    // A plan smaller than what was seen is a core bug; trust what was seen over a negative total.
    const bytesTotal = Math.max(
      bytesDone,
      Math.max(this.#plan?.bytes ?? 0, knownBytes) - bytesSkipped,
    );
    const remaining = bytesTotal - bytesDone;
    const complete = planned && blobsFinished >= blobsTotal;
    // A finished plan is 100% even if its byte count disagreed with the blobs' sizes; an
    // unfinished one is not, even with every byte sent: "100%" must mean the push is done.
    const fraction = complete
      ? 1
      : bytesTotal > 0
      ? Math.min(ALMOST_DONE, bytesDone / bytesTotal)
      : 0;
    const rate = this.#rate.rate(this.#now());
    let etaMs: number | undefined;
    if (complete || (planned && remaining <= 0)) etaMs = 0;
    else if (rate !== undefined && rate > 0) etaMs = remaining / rate * 1000;
    return {
      image: this.#plan?.image,
      planned,
      blobsTotal,
      blobsFinished,
      bytesTotal,
      bytesDone,
      bytesSkipped,
      fraction,
      rate,
      etaMs,
    };
  }

  /** Finds or creates a blob; events may arrive for a blob whose start was not reported. */
  #blob(digest: string, size: number, target: string | undefined): MutableBlob {
    const key = blobKey(digest, target);
    let blob = this.#blobs.get(key);
    if (blob === undefined) {
      blob = {
        digest,
        ...(target !== undefined ? { target } : {}),
        size,
        done: 0,
        status: "uploading",
        attempt: 1,
        startedAt: undefined,
        kept: 0,
        finishedAt: undefined,
      };
      this.#blobs.set(key, blob);
    }
    return blob;
  }

  /** Moves a blob's counter to `done`, crediting only forward movement to the rate. */
  #send(t: number, blob: MutableBlob, done: number): void {
    this.#sent += Math.max(0, done - blob.done);
    blob.done = done;
    this.#rate.record(t, this.#sent);
  }
}

/**
 * The largest fraction shown for work not yet done: it floors to "99%" and to a bar one cell
 * short of full, so "100%" and a full bar only ever mean finished.
 */
export const ALMOST_DONE = 0.999;

function isInFlight(blob: BlobState): boolean {
  return blob.status === "uploading" || blob.status === "finishing" ||
    blob.status === "retrying";
}

/** One transfer: a blob, to one registry when a run pushes to several. */
function blobKey(digest: string, target: string | undefined): string {
  return target === undefined ? digest : `${digest} ${target}`;
}

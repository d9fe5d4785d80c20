/**
 * Transfer rate over a sliding window. Timestamps are passed in rather than read from a clock,
 * so the estimator is pure and tests are deterministic.
 */

/** Options for {@linkcode RateEstimator}. */
export interface RateEstimatorOptions {
  /** How much recent history the rate averages over. Default 5000 ms. */
  windowMs?: number;
  /** History needed before a rate is reported at all. Default 1000 ms. */
  minElapsedMs?: number;
  /** Samples closer together than this are merged, bounding memory. Default 100 ms. */
  resolutionMs?: number;
}

interface Sample {
  readonly t: number;
  readonly bytes: number;
}

/**
 * Estimates bytes per second from a cumulative byte counter.
 *
 * The rate is (bytes now − bytes at the window's start) / time since then, where the window's
 * start is the newest sample at least `windowMs` old. A plain average over the window reacts
 * within a few seconds to a change of speed yet does not jump with every chunk, which is what
 * an ETA needs; a stall shows as a falling rate because the rate is computed at query time.
 *
 * @example
 * ```ts
 * const rate = new RateEstimator();
 * rate.record(0, 0);
 * rate.record(2000, 4 * 1024 ** 2);
 * rate.rate(2000); // 2 MiB/s in bytes: 2097152
 * ```
 */
export class RateEstimator {
  readonly #windowMs: number;
  readonly #minElapsedMs: number;
  readonly #resolutionMs: number;
  #samples: Sample[] = [];
  #current = 0;

  constructor(options: RateEstimatorOptions = {}) {
    this.#windowMs = options.windowMs ?? 5000;
    this.#minElapsedMs = options.minElapsedMs ?? 1000;
    this.#resolutionMs = options.resolutionMs ?? 100;
  }

  /** Records that `totalBytes` bytes (a monotonic counter) had been transferred at time `t`. */
  record(t: number, totalBytes: number): void {
    this.#current = totalBytes;
    const last = this.#samples.at(-1);
    if (last === undefined || t - last.t >= this.#resolutionMs) {
      this.#samples.push({ t, bytes: totalBytes });
    }
    this.#prune(t);
  }

  /** Bytes per second at time `t`, or `undefined` until `minElapsedMs` of history exists. */
  rate(t: number): number | undefined {
    this.#prune(t);
    const anchor = this.#samples[0];
    if (anchor === undefined) return undefined;
    const elapsed = t - anchor.t;
    if (elapsed < this.#minElapsedMs || elapsed <= 0) return undefined;
    return Math.max(0, this.#current - anchor.bytes) * 1000 / elapsed;
  }

  /** Drops samples older than the window, keeping the newest old one as the anchor. */
  #prune(t: number): void {
    let drop = 0;
    while (
      drop + 1 < this.#samples.length &&
      (this.#samples[drop + 1]?.t ?? Infinity) <= t - this.#windowMs
    ) {
      drop++;
    }
    if (drop > 0) this.#samples = this.#samples.slice(drop);
  }
}

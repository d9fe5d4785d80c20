/**
 * How a retry is done: exponential backoff with jitter, or as long as `Retry-After` asks, up to
 * `--retry-attempts`. Which answers are retried is the answer table's `retry` row
 * (`answer_class.ts`): 408, 425, 429 and 5xx but 501, the TOOMANYREQUESTS and UNAVAILABLE
 * codes (but not on a 401, nor on a token service's refusal), and network errors other than TLS
 * verification failures. A 401 is not retried here: the client refreshes credentials once (the
 * table's `refresh-auth` row), and a refused password is never sent again.
 *
 * Callers supply an attempt function that re-creates its request body each time.
 */
import { answerOf } from "./answer_class.ts";
import { RegistryError } from "./registry_error.ts";

export interface RetryOptions {
  /** Retries after the first attempt (`--retry-attempts`). */
  retries: number;
  /** First backoff delay; doubles each retry. Default 500 ms. */
  baseDelayMs?: number;
  /** Cap on a computed backoff delay. Default 30 s. */
  maxDelayMs?: number;
  /** Cap on a delay asked for by `Retry-After`. Default 5 min. */
  maxRetryAfterMs?: number;
  signal?: AbortSignal;
  /** Which failures are worth another attempt. Default: {@linkcode isRetryable}. */
  retryable?: (error: unknown) => boolean;
  /** Called before each wait: what failed, which attempt comes next, how long we wait. */
  onRetry?: (info: { attempt: number; delayMs: number; error: Error }) => void;
  /** For tests. */
  random?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Whether an error is worth another attempt: the answer table says `retry`. */
export function isRetryable(error: unknown): boolean {
  return answerOf(error).kind === "retry";
}

/**
 * Delay before retry number `retry` (1-based): exponential with full jitter between half and
 * all of the step, or what the server asked for.
 */
export function backoffDelay(
  retry: number,
  error: unknown,
  options: Pick<RetryOptions, "baseDelayMs" | "maxDelayMs" | "maxRetryAfterMs" | "random"> = {},
): number {
  const retryAfter = error instanceof RegistryError ? error.retryAfterMs : undefined;
  if (retryAfter !== undefined) return Math.min(retryAfter, options.maxRetryAfterMs ?? 300_000);
  const base = options.baseDelayMs ?? 500;
  const step = Math.min(base * 2 ** (retry - 1), options.maxDelayMs ?? 30_000);
  const random = options.random ?? Math.random;
  return Math.round(step / 2 + random() * step / 2);
}

/** Runs `attempt` until it succeeds, fails with a non-retryable error, or retries run out. */
export async function withRetries<T>(
  attempt: (attemptNumber: number) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  const sleep = options.sleep ?? abortableSleep;
  for (let n = 1;; n++) {
    options.signal?.throwIfAborted();
    try {
      return await attempt(n);
    } catch (error) {
      if (options.signal?.aborted) throw error;
      if (n > options.retries || !(options.retryable ?? isRetryable)(error)) throw error;
      const delayMs = backoffDelay(n, error, options);
      options.onRetry?.({
        attempt: n + 1,
        delayMs,
        error: error instanceof Error ? error : new Error(String(error)),
      });
      await sleep(delayMs, options.signal);
    }
  }
}

/** Sleeps, waking early (with the abort reason) when the signal fires. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

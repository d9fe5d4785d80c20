/**
 * Bounded concurrency. After the first failure no new work starts; work already in flight
 * finishes (so a re-run has less to send), then the first error is thrown.
 */

/** Runs `work` over `items` with at most `limit` running at once. */
export async function runBounded<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker);
  await Promise.all(workers);
  if (failure !== undefined) throw failure.error;
}

/**
 * A concurrency budget shared by everything a run does: at most `limit` tasks run at once,
 * started in the order they asked.
 */
export class Limiter {
  #running = 0;
  #waiting: (() => void)[] = [];

  constructor(readonly limit: number) {}

  /** Runs `task` once a slot is free. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running >= this.limit) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running++;
    }
    try {
      return await task();
    } finally {
      // The slot passes straight to the next waiter, if any.
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else this.#running--;
    }
  }
}

/**
 * Work on one key at a time: a task for a key waits until the earlier tasks for it have
 * settled (whatever their outcome). A run uses it so two images that share a blob do not both
 * upload it: the second finds it in the registry, or mounts it, once the first is done.
 */
export class KeyedLocks {
  #tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(key) ?? Promise.resolve();
    const result = before.then(task, task);
    const tail = result.catch(() => {});
    this.#tails.set(key, tail);
    try {
      return await result;
    } finally {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

/**
 * Runs `work` over `items` within a shared `limiter`, each item under its lock (`keyOf`).
 * As {@linkcode runBounded}: after the first failure no new item starts, work in flight
 * finishes, then the first error is thrown.
 */
export async function runShared<T>(
  items: readonly T[],
  limiter: Limiter,
  work: (item: T) => Promise<void>,
  lock?: { locks: KeyedLocks; keyOf: (item: T) => string },
): Promise<void> {
  let failure: { error: unknown } | undefined;
  const guarded = (item: T) => () =>
    limiter.run(async () => {
      if (failure !== undefined) return;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    });
  await Promise.all(
    items.map((item) =>
      lock === undefined ? guarded(item)() : lock.locks.run(lock.keyOf(item), guarded(item))
    ),
  );
  if (failure !== undefined) throw failure.error;
}

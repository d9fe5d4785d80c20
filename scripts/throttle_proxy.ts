/**
 * A rate-limiting TCP proxy on 127.0.0.1 that emulates a slow link (say 100 Mbit/s) in front of
 * a local registry, for benchmarks:
 *
 *   deno run -A scripts/throttle_proxy.ts --target 127.0.0.1:5000 --mbit 100 \
 *     [--listen-port N] [--latency-ms N]    # prints the port, runs until Ctrl-C
 *
 * Each direction has one token bucket shared by all connections, as a link is shared: two
 * parallel uploads get half the rate each. The burst is small (64 KiB or 10 ms worth), so the
 * average holds over any second. Memory stays flat: each direction of a connection reads at most
 * 64 KiB, then reads nothing more until the bucket lets that through, so TCP pushes back on the
 * sender. The optional one-way latency is pipelined (up to 4 MiB in flight per direction of a
 * connection), so it delays bytes without lowering the rate. EOF on one side is passed on as a
 * half-close; an error on either side closes both.
 *
 * @example
 * ```ts
 * await using proxy = await startThrottleProxy({
 *   target: { hostname: "127.0.0.1", port: 5000 },
 *   bitsPerSecond: 100e6,
 * });
 * // push to 127.0.0.1:${proxy.port} …; proxy.bytesUp counts what reached the registry
 * ```
 *
 * @module
 */

/** Options for {@linkcode startThrottleProxy}. */
export interface ThrottleProxyOptions {
  /** Where connections are forwarded to. */
  target: { hostname: string; port: number };
  /** The link's rate in each direction, shared by all connections. */
  bitsPerSecond: number;
  /** One-way delay added to every chunk, in milliseconds. Default: 0. */
  latencyMs?: number;
  /** Port to listen on (127.0.0.1). Default: 0, a free one. */
  port?: number;
}

/** A running proxy; see {@linkcode startThrottleProxy}. */
export interface ThrottleProxy extends AsyncDisposable {
  /** The port it listens on, at 127.0.0.1. */
  readonly port: number;
  /** Bytes written to the target so far (client → target). */
  readonly bytesUp: number;
  /** Bytes written to clients so far (target → client). */
  readonly bytesDown: number;
  /** Stops listening, closes every connection and waits for them. Idempotent. */
  close(): Promise<void>;
}

const CHUNK_BYTES = 64 * 1024;
const MAX_IN_FLIGHT_BYTES = 4 * 1024 * 1024;

/**
 * Starts the proxy; rejects with a `RangeError` for a rate or latency out of range. Stop it with
 * `close()` or `await using`.
 */
export function startThrottleProxy(options: ThrottleProxyOptions): Promise<ThrottleProxy> {
  return Promise.try(listen, options);
}

function listen(options: ThrottleProxyOptions): ThrottleProxy {
  const { target, bitsPerSecond, latencyMs = 0 } = options;
  if (!(Number.isFinite(bitsPerSecond) && bitsPerSecond > 0)) {
    throw new RangeError("Cannot start the throttle proxy: bitsPerSecond must be positive");
  }
  if (!(Number.isFinite(latencyMs) && latencyMs >= 0)) {
    throw new RangeError("Cannot start the throttle proxy: latencyMs must be 0 or more");
  }
  const bytesPerMs = bitsPerSecond / 8 / 1000;
  const burstMs = Math.max(CHUNK_BYTES / bytesPerMs, 10);
  const up = new LinkClock(bytesPerMs, burstMs);
  const down = new LinkClock(bytesPerMs, burstMs);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: options.port ?? 0 });
  const stop = new AbortController();
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  const bytes = { up: 0, down: 0 };

  /**
   * Copies `from` to `to` through `link`; on EOF, flushes and half-closes `to`; on any failure,
   * closes both connections. Never rejects.
   */
  async function pump(
    from: Deno.Conn,
    to: Deno.Conn,
    link: LinkClock,
    direction: keyof typeof bytes,
    closeBoth: () => void,
  ): Promise<void> {
    const buffer = new Uint8Array(CHUNK_BYTES);
    // Writes are chained so that, with a latency, chunks are in flight while the next is read.
    let tail = Promise.resolve();
    let inFlight = 0;
    try {
      for (;;) {
        const n = await from.read(buffer);
        if (n === null) break;
        await link.admit(n, stop.signal);
        // Without latency each write ends before the next read, so the buffer can be reused.
        const chunk = latencyMs === 0 ? buffer.subarray(0, n) : buffer.slice(0, n);
        const due = performance.now() + latencyMs;
        inFlight += n;
        tail = tail.then(async () => {
          await sleep(due - performance.now(), stop.signal);
          for (let at = 0; at < n;) at += await to.write(chunk.subarray(at));
          bytes[direction] += n;
          inFlight -= n;
        });
        tail.catch(closeBoth); // A failed write unblocks the read above.
        if (latencyMs === 0 || inFlight >= MAX_IN_FLIGHT_BYTES) await tail;
      }
      await tail;
      await to.closeWrite();
    } catch {
      // Either side closed or failed, or the proxy is closing.
      closeBoth();
      await tail.catch(() => {});
    }
  }

  async function serve(client: Deno.TcpConn): Promise<void> {
    let upstream: Deno.TcpConn | undefined;
    const closeBoth = () => {
      for (const conn of [client, upstream]) {
        if (conn === undefined || !conns.delete(conn)) continue;
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
    };
    try {
      upstream = await Deno.connect({ hostname: target.hostname, port: target.port });
      conns.add(upstream);
      if (stop.signal.aborted) return;
      for (const conn of [client, upstream]) conn.setNoDelay(true);
      await Promise.all([
        pump(client, upstream, up, "up", closeBoth),
        pump(upstream, client, down, "down", closeBoth),
      ]);
    } catch {
      // The target refused the connection: the client sees it closed.
    } finally {
      closeBoth();
    }
  }

  const accepting = (async () => {
    for await (const conn of listener) { // Ends when the listener closes.
      conns.add(conn);
      const task = serve(conn).finally(() => tasks.delete(task));
      tasks.add(task);
    }
  })();

  let closing: Promise<void> | undefined;
  const proxy: ThrottleProxy = {
    port: listener.addr.port,
    get bytesUp() {
      return bytes.up;
    },
    get bytesDown() {
      return bytes.down;
    },
    close() {
      closing ??= (async () => {
        listener.close();
        await accepting;
        stop.abort();
        for (const conn of conns) conn.close();
        conns.clear();
        await Promise.allSettled([...tasks]);
      })();
      return closing;
    },
    [Symbol.asyncDispose]: () => proxy.close(),
  };
  return proxy;
}

/**
 * A token bucket kept as a clock (GCRA): `#busyUntil` is when the link will have sent all it
 * admitted. A chunk waits until that time, less the burst allowance, is now. Sharing one clock
 * serializes all connections onto one link, in the order they ask.
 */
class LinkClock {
  #busyUntil = 0;
  constructor(readonly bytesPerMs: number, readonly burstMs: number) {}

  admit(bytes: number, signal: AbortSignal): Promise<void> {
    const now = performance.now();
    this.#busyUntil = Math.max(this.#busyUntil, now) + bytes / this.bytesPerMs;
    return sleep(this.#busyUntil - this.burstMs - now, signal);
  }
}

/** Waits `ms` (at once when ≤ 0); rejects, clearing its timer, when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

if (import.meta.main) {
  const option = (name: string) => {
    const i = Deno.args.indexOf(name);
    return i === -1 ? undefined : Deno.args[i + 1];
  };
  const [, hostname, port] = /^(.+):(\d+)$/.exec(option("--target") ?? "") ?? [];
  const mbit = Number(option("--mbit"));
  if (hostname === undefined || port === undefined || !(mbit > 0)) {
    // deno-lint-ignore no-console -- a usage error
    console.error(
      "Usage: throttle_proxy.ts --target HOST:PORT --mbit N [--listen-port N] [--latency-ms N]",
    );
    Deno.exit(2);
  }
  const proxy = await startThrottleProxy({
    target: { hostname, port: Number(port) },
    bitsPerSecond: mbit * 1e6,
    latencyMs: Number(option("--latency-ms") ?? 0),
    port: Number(option("--listen-port") ?? 0),
  });
  // deno-lint-ignore no-console -- the port is this script's output
  console.log(proxy.port);
  const stopped = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGINT", stopped.resolve);
  await stopped.promise;
  Deno.removeSignalListener("SIGINT", stopped.resolve);
  await proxy.close();
  // deno-lint-ignore no-console -- a summary for the terminal
  console.error(`up ${proxy.bytesUp} bytes, down ${proxy.bytesDown} bytes`);
}

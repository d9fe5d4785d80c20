/**
 * The benchmark's throttle proxy against a local TCP sink: the rate holds, parallel connections
 * share it, latency is pipelined rather than added per chunk, bytes arrive intact, and closing
 * mid-transfer leaks nothing. Timing bounds are wide: CI is a loaded 2-core box.
 */
import { createHash } from "node:crypto";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { seededBytes, sha256Digest } from "../helpers/random.ts";
import { startThrottleProxy, type ThrottleProxy } from "../../scripts/throttle_proxy.ts";

const RATE = 20e6; // 2.5 MB/s
const encoder = new TextEncoder();

/** A server that reads each connection to EOF, then answers the sha256 digest of what came. */
function startSink(): { port: number } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const tasks: Promise<void>[] = [];
  const serve = async (conn: Deno.Conn) => {
    const hash = createHash("sha256");
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (let n; (n = await conn.read(buffer)) !== null;) hash.update(buffer.subarray(0, n));
      await conn.write(encoder.encode(`sha256:${hash.digest("hex")}`));
    } catch {
      // The proxy closed the connection (the close test).
    } finally {
      conn.close();
    }
  };
  const accepting = (async () => {
    for await (const conn of listener) tasks.push(serve(conn));
  })();
  return {
    port: listener.addr.port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      await Promise.all(tasks);
    },
  };
}

/** Sends `data` through the proxy, half-closes, returns the sink's answer and the seconds taken. */
async function send(proxy: ThrottleProxy, data: Uint8Array): Promise<[string, number]> {
  const started = performance.now();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  try {
    for (let at = 0; at < data.length;) at += await conn.write(data.subarray(at));
    await conn.closeWrite();
    const answer: Uint8Array[] = [];
    const buffer = new Uint8Array(256);
    for (let n; (n = await conn.read(buffer)) !== null;) answer.push(buffer.slice(0, n));
    const text = new TextDecoder().decode(new Uint8Array(answer.flatMap((a) => [...a])));
    return [text, (performance.now() - started) / 1000];
  } finally {
    conn.close();
  }
}

async function throttled(sink: { port: number }, latencyMs = 0): Promise<ThrottleProxy> {
  const target = { hostname: "127.0.0.1", port: sink.port };
  return await startThrottleProxy({ target, bitsPerSecond: RATE, latencyMs });
}

Deno.test("throttle proxy holds 2.5 MB to ~1 s at 20 Mbit/s, bytes intact", async () => {
  await using sink = startSink();
  await using proxy = await throttled(sink);
  const data = seededBytes("throttle-one", 2_500_000);
  const [digest, seconds] = await send(proxy, data);
  assertEquals(digest, sha256Digest(data));
  assert(seconds > 0.85 && seconds < 2, `2.5 MB at 20 Mbit/s took ${seconds.toFixed(3)} s`);
  assertEquals(proxy.bytesUp, data.length);
  assertEquals(proxy.bytesDown, digest.length);
});

Deno.test("throttle proxy shares the rate between parallel connections", async () => {
  await using sink = startSink();
  await using proxy = await throttled(sink);
  const a = seededBytes("throttle-a", 1_250_000);
  const b = seededBytes("throttle-b", 1_250_000);
  const started = performance.now();
  const results = await Promise.all([send(proxy, a), send(proxy, b)]);
  const seconds = (performance.now() - started) / 1000;
  assertEquals(results.map(([digest]) => digest), [sha256Digest(a), sha256Digest(b)]);
  assert(seconds > 0.85 && seconds < 2, `2 × 1.25 MB took ${seconds.toFixed(3)} s, not ~1 s`);
  // Interleaved, not one after the other: neither finishes in the first half.
  const each = results.map(([, s]) => s.toFixed(3)).join(" s and ");
  assert(results.every(([, s]) => s > 0.6), `the connections took ${each} s`);
  assertEquals(proxy.bytesUp, a.length + b.length);
});

Deno.test("throttle proxy latency delays each way without lowering the rate", async () => {
  await using sink = startSink();
  await using proxy = await throttled(sink, 100);
  const data = seededBytes("throttle-latency", 500_000);
  // 0.2 s at the rate plus 100 ms each way; added per 64 KiB chunk it would take over 1 s.
  const [digest, seconds] = await send(proxy, data);
  assertEquals(digest, sha256Digest(data));
  assert(seconds > 0.3 && seconds < 0.8, `500 kB with 100 ms latency took ${seconds} s`);
});

Deno.test("throttle proxy closes mid-transfer without leaks, and drops refused clients", async () => {
  const sink = startSink();
  const proxy = await throttled(sink, 50); // Chunks in flight when it closes, timers pending.
  const transfer = send(proxy, seededBytes("throttle-close", 2_500_000));
  await new Promise((resolve) => setTimeout(resolve, 200));
  await proxy.close();
  await proxy.close(); // Idempotent.
  const [digest] = await transfer.catch(() => [""]);
  assertEquals(digest, "", "no answer after the proxy closed");
  assert(proxy.bytesUp > 0 && proxy.bytesUp < 2_500_000, `bytesUp ${proxy.bytesUp}`);

  // Nothing listens on the sink's port once it is closed: the client sees its connection end.
  const port = sink.port;
  await sink[Symbol.asyncDispose]();
  await using refusing = await startThrottleProxy({
    target: { hostname: "127.0.0.1", port },
    bitsPerSecond: RATE,
  });
  const [answer] = await send(refusing, new Uint8Array(10)).catch(() => [""]);
  assertEquals(answer, "");
  await assertRejects(
    () => startThrottleProxy({ target: { hostname: "127.0.0.1", port }, bitsPerSecond: 0 }),
    RangeError,
  );
});

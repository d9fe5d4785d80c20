/**
 * Blob downloads against a scripted registry and storage host: a 307 to storage is followed
 * without `Authorization`; a resumed download asks for the rest with `Range`; a storage host
 * that ignores the range makes the blob start over; a digest mismatch fails; a blob complete in
 * place costs no request; bytes that arrived before a cut are kept.
 */
import { createHash } from "node:crypto";
import { BlobTally, type BlobWriter, downloadBlob } from "../../src/pull/blob_download.ts";
import { BlobDigestError } from "../../src/pull/pull_errors.ts";
import { silentSink } from "../../src/progress/events.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { createFetchTransport } from "../../src/registry/fetch_transport.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";

const BLOB = new Uint8Array(200_000).map((_, i) => (i * 31) % 251);
const DIGEST = `sha256:${createHash("sha256").update(BLOB).digest("hex")}`;

async function withServers(
  storageMode: "range" | "ignore-range" | "corrupt",
  fn: (
    client: RegistryClient,
    seen: { auth: (string | null)[]; ranges: (string | null)[] },
  ) => Promise<void>,
) {
  const seen = { auth: [] as (string | null)[], ranges: [] as (string | null)[] };
  const storage = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    seen.auth.push(req.headers.get("authorization"));
    const range = req.headers.get("range");
    seen.ranges.push(range);
    const body = storageMode === "corrupt" ? BLOB.map((b) => b ^ 1) : BLOB;
    const from = range && storageMode !== "ignore-range"
      ? Number(/bytes=(\d+)-/.exec(range)![1])
      : 0;
    if (from > 0) {
      return new Response(body.slice(from), {
        status: 206,
        headers: { "content-range": `bytes ${from}-${body.length - 1}/${body.length}` },
      });
    }
    return new Response(body);
  });
  const registry = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    if (req.headers.get("authorization") === null) {
      return new Response("", { status: 401, headers: { "www-authenticate": 'Basic realm="r"' } });
    }
    return new Response(null, {
      status: 307,
      headers: { location: `http://127.0.0.1:${storage.addr.port}/signed?x=1` },
    });
  });
  const transport = createFetchTransport({
    inactivityTimeoutMs: 10_000,
    processEnv: () => undefined,
  });
  try {
    const client = new RegistryClient({
      baseUrl: new URL(`http://127.0.0.1:${registry.addr.port}/`),
      registryName: "test",
      repository: "app",
      access: "pull",
      transport,
      retries: 0,
      sink: silentSink,
      credentials: { username: "u", password: "p" },
    });
    await fn(client, seen);
  } finally {
    transport.close();
    await registry.shutdown();
    await storage.shutdown();
  }
}

/** A writer into memory that records where each write landed. */
function memory(): BlobWriter & { bytes: Uint8Array; starts: number[] } {
  const bytes = new Uint8Array(BLOB.length);
  const starts: number[] = [];
  return {
    bytes,
    starts,
    rewritable: true,
    write(chunk, at) {
      if (starts.at(-1) === undefined || at === 0) starts.push(at);
      bytes.set(chunk, at);
      return Promise.resolve();
    },
  };
}

Deno.test("a 307 to storage gets no Authorization; a resume asks for the rest", async () => {
  await withServers("range", async (client, seen) => {
    const tally = new BlobTally(DIGEST, BLOB.length);
    const writer = memory();
    tally.add(BLOB.subarray(0, 50_000));
    writer.bytes.set(BLOB.subarray(0, 50_000));
    await downloadBlob(client, tally, writer, { resumed: true });
    assertEquals(seen.auth, [null]);
    assertEquals(seen.ranges, ["bytes=50000-"]);
    assertEquals(writer.bytes, BLOB);
  });
});

Deno.test("a 200 to a Range request starts the blob over", async () => {
  await withServers("ignore-range", async (client, seen) => {
    const tally = new BlobTally(DIGEST, BLOB.length);
    const writer = memory();
    tally.add(BLOB.subarray(0, 50_000));
    const restarts: string[] = [];
    await downloadBlob(client, tally, writer, {
      resumed: true,
      onRestart: (why) => restarts.push(why),
    });
    assertEquals(seen.ranges, ["bytes=50000-"]);
    assertEquals(writer.starts, [0]);
    assertEquals(writer.bytes, BLOB);
    assert(restarts[0]?.includes("ignored the Range"));
  });
});

Deno.test("bytes that do not match the digest fail the download", async () => {
  await withServers("corrupt", async (client) => {
    await assertRejects(
      () => downloadBlob(client, new BlobTally(DIGEST, BLOB.length), memory()),
      BlobDigestError,
    );
  });
});

// distribution answers `Range: bytes=<size>-` with a broken 416 (see tests/helpers/fault_proxy.ts).
Deno.test("a blob complete in place is never asked for with Range: bytes=<size>-", async () => {
  await withServers("range", async (client, seen) => {
    const whole = new BlobTally(DIGEST, BLOB.length);
    whole.add(BLOB);
    await downloadBlob(client, whole, memory(), { resumed: true });
    assertEquals(seen.ranges, [], "a complete blob needs no request");

    // Complete, but the bytes kept do not make the digest: start over from byte 0.
    const wrong = new BlobTally(DIGEST, BLOB.length);
    wrong.add(BLOB.map((b) => b ^ 1));
    const writer = memory();
    await downloadBlob(client, wrong, writer, { resumed: true });
    assertEquals(seen.ranges, [null]);
    assertEquals(writer.bytes, BLOB);
  });
});

Deno.test("bytes received before a cut are kept: the resume asks from the cut", async () => {
  const cutAt = 123_457;
  const ranges: (string | null)[] = [];
  // A raw server: the first answer promises the whole blob, sends part of it and hangs up.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of listener) {
      const head = new Uint8Array(8192);
      const n = await conn.read(head) ?? 0;
      const range = /\r\nrange: bytes=(\d+)-/i.exec(new TextDecoder().decode(head.subarray(0, n)));
      ranges.push(range ? `bytes=${range[1]}-` : null);
      const from = range ? Number(range[1]) : 0;
      const status = range ? "206 Partial Content" : "200 OK";
      const extra = range
        ? `Content-Range: bytes ${from}-${BLOB.length - 1}/${BLOB.length}\r\n`
        : "";
      const text = `HTTP/1.1 ${status}\r\nContent-Length: ${BLOB.length - from}\r\n${extra}` +
        "Connection: close\r\n\r\n";
      const body = BLOB.subarray(from, range ? BLOB.length : cutAt);
      for (const part of [new TextEncoder().encode(text), body]) {
        for (let at = 0; at < part.length;) at += await conn.write(part.subarray(at));
      }
      conn.close();
    }
  })();
  const transport = createFetchTransport({
    inactivityTimeoutMs: 10_000,
    processEnv: () => undefined,
  });
  const client = new RegistryClient({
    baseUrl: new URL(`http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/`),
    registryName: "test",
    repository: "app",
    access: "pull",
    transport,
    retries: 2,
    sink: silentSink,
    retryTuning: { baseDelayMs: 1 },
  });
  const writer = memory();
  try {
    await downloadBlob(client, new BlobTally(DIGEST, BLOB.length), writer);
  } finally {
    transport.close();
    listener.close();
    await serving.catch(() => {});
  }
  assertEquals(ranges, [null, `bytes=${cutAt}-`]);
  assertEquals(writer.bytes, BLOB);
});

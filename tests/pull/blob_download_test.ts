/**
 * Blob downloads against a scripted registry and storage host: a 307 to storage is followed
 * without `Authorization`; a resumed download asks for the rest with `Range`; a storage host
 * that ignores the range makes the blob start over; a digest mismatch fails.
 */
import { createHash } from "node:crypto";
import { BlobTally, type BlobWriter, downloadBlob } from "../../src/pull/blob_download.ts";
import { BlobDigestError } from "../../src/pull/pull_errors.ts";
import { silentSink } from "../../src/progress/events.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { createTransport } from "../../src/registry/transport.ts";
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
  const transport = createTransport({ inactivityTimeoutMs: 10_000 });
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

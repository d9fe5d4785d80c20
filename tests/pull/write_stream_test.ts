/**
 * The stream writer (`-o -`) against a scripted registry: the layers download in parallel up to
 * `maxConcurrent` while the archive comes out in order, byte for byte what one at a time gives;
 * a layer waiting for its turn holds a bounded amount (its download pauses, the rest stays on
 * the server); a failing layer fails the stream without a hang.
 */
import { createHash } from "node:crypto";
import { silentSink } from "../../src/progress/events.ts";
import { blobPath } from "../../src/pull/archive_files.ts";
import { layOut } from "../../src/pull/tar_layout.ts";
import { writeArchiveStream } from "../../src/pull/write_stream.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { createFetchTransport } from "../../src/registry/fetch_transport.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";

const MiB = 1024 * 1024;

function blob(size: number, seed: number): { bytes: Uint8Array; digest: string } {
  const bytes = new Uint8Array(size);
  const first = Math.min(size, 65_521);
  for (let i = 0; i < first; i++) bytes[i] = (i * seed) % 251;
  for (let at = first; at < size; at *= 2) bytes.copyWithin(at, 0, Math.min(at, size - at));
  return { bytes, digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}` };
}

interface Served {
  /** Body bytes the server handed to each answer so far, by digest. */
  sent: Map<string, number>;
  /** Most answers in flight at once. */
  maxInFlight: number;
}

/**
 * A registry serving `blobs` (each answer 50 ms late, then paced in 64 KiB pieces, so what the
 * client has not read stays here), a 404 for any other digest; runs `fn` with a client for it.
 */
async function withRegistry(
  blobs: { bytes: Uint8Array; digest: string }[],
  fn: (client: RegistryClient, served: Served) => Promise<void>,
): Promise<void> {
  const served: Served = { sent: new Map(), maxInFlight: 0 };
  let inFlight = 0;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const digest = new URL(req.url).pathname.split("/").at(-1)!;
    const found = blobs.find((b) => b.digest === digest);
    if (found === undefined) return new Response("unknown", { status: 404 });
    inFlight++;
    served.maxInFlight = Math.max(served.maxInFlight, inFlight);
    // Answers take a moment to start, so the downloads allowed at once do overlap.
    await new Promise((resolve) => setTimeout(resolve, 50));
    let at = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const piece = found.bytes.subarray(at, at + 64 * 1024);
        at += piece.length;
        served.sent.set(digest, at);
        if (piece.length > 0) controller.enqueue(piece.slice());
        if (at >= found.bytes.length) {
          inFlight--;
          controller.close();
        }
      },
      cancel() {
        inFlight--;
      },
    }, { highWaterMark: 0 });
    return new Response(body, { headers: { "content-length": String(found.bytes.length) } });
  });
  const transport = createFetchTransport({
    inactivityTimeoutMs: 10_000,
    processEnv: () => undefined,
  });
  try {
    await fn(
      new RegistryClient({
        baseUrl: new URL(`http://127.0.0.1:${server.addr.port}/`),
        registryName: "test",
        repository: "app",
        access: "pull",
        transport,
        retries: 0,
        sink: silentSink,
      }),
      served,
    );
  } finally {
    transport.close();
    await server.shutdown();
  }
}

function layoutOf(blobs: { bytes: Uint8Array; digest: string }[]) {
  return layOut([
    ...blobs.map((b) => ({
      kind: "blob" as const,
      name: blobPath(b.digest),
      digest: b.digest,
      size: b.bytes.length,
    })),
    { kind: "bytes" as const, name: "index.json", data: new TextEncoder().encode("{}") },
  ]);
}

/** A stream that keeps what it is given; `gate` (when set) holds each write until opened. */
function sink(): { stream: WritableStream<Uint8Array>; bytes(): Uint8Array; open(): void } {
  const chunks: Uint8Array[] = [];
  let gate: PromiseWithResolvers<void> | undefined = Promise.withResolvers<void>();
  let writes = 0;
  return {
    stream: new WritableStream({
      async write(chunk) {
        chunks.push(chunk.slice());
        // The first write (the first header) goes through; the rest wait for the gate.
        if (writes++ > 0 && gate !== undefined) await gate.promise;
      },
    }),
    bytes() {
      const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) {
        out.set(c, at);
        at += c.length;
      }
      return out;
    },
    open() {
      gate?.resolve();
      gate = undefined;
    },
  };
}

Deno.test("-o -: layers download in parallel; the archive is the one sequential writing gives", async () => {
  const blobs = [blob(3 * MiB + 5, 7), blob(700_001, 11), blob(2 * MiB, 13), blob(10, 17)];
  const layout = layoutOf(blobs);
  await withRegistry(blobs, async (client, served) => {
    const one = sink();
    one.open();
    await writeArchiveStream(one.stream, layout, {
      clientFor: () => client,
      sink: silentSink,
      maxConcurrent: 1,
    });
    assertEquals(served.maxInFlight, 1);
    served.maxInFlight = 0;
    const three = sink();
    three.open();
    const { downloaded } = await writeArchiveStream(three.stream, layout, {
      clientFor: () => client,
      sink: silentSink,
      maxConcurrent: 3,
    });
    assertEquals(served.maxInFlight, 3);
    assertEquals(downloaded, blobs.reduce((n, b) => n + b.bytes.length, 0));
    assertEquals(three.bytes(), one.bytes());
    assertEquals(three.bytes().length, layout.totalSize);
  });
});

Deno.test("-o -: a layer waiting for its turn holds a bounded amount", async () => {
  const blobs = [blob(40 * MiB, 3), blob(40 * MiB, 5), blob(40 * MiB, 7)];
  await withRegistry(blobs, async (client, served) => {
    const out = sink();
    const writing = writeArchiveStream(out.stream, layoutOf(blobs), {
      clientFor: () => client,
      sink: silentSink,
      maxConcurrent: 3,
      aheadBytes: 2 * MiB,
    });
    // The stream takes nothing while the three downloads run as far as they may.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const waiting = blobs.slice(1).map((b) => served.sent.get(b.digest) ?? 0);
    out.open();
    await writing;
    // Its 1 MiB share, a batch being gathered, and what the sockets and fetch buffer (6–9 MB
    // measured): far from the whole layer.
    for (const sent of waiting) {
      assert(sent > 0 && sent < 20 * MiB, `a waiting layer was sent ${sent} bytes`);
    }
    assertEquals(out.bytes().length, layoutOf(blobs).totalSize);
  });
});

Deno.test("-o -: a layer that fails fails the stream, whichever its place", async () => {
  const blobs = [blob(2 * MiB, 3), blob(100_000, 5)];
  const missing = { bytes: new Uint8Array(10), digest: `sha256:${"0".repeat(64)}` };
  await withRegistry(blobs, async (client) => {
    for (const order of [[missing, ...blobs], [...blobs, missing], [blobs[0]!, missing]]) {
      const out = sink();
      out.open();
      await assertRejects(
        () =>
          writeArchiveStream(out.stream, layoutOf(order), {
            clientFor: () => client,
            sink: silentSink,
            maxConcurrent: 2,
          }),
        Error,
        "404",
      );
    }
  });
});

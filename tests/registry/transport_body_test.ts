/**
 * Request bodies through the node:http transport: a stream of unknown length goes with chunked
 * transfer encoding, and chunks a body source owns are freed once the socket has them, without
 * a byte of the request changing.
 */
import { createHash } from "node:crypto";
import { type BodySource, createTransport } from "../../src/registry/transport.ts";
import { assert, assertEquals } from "../helpers/assert.ts";

/** A server that answers with what it received: length, sha256, transfer encoding. */
function echoServer(): Deno.HttpServer<Deno.NetAddr> & { url: URL } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const hash = createHash("sha256");
    let length = 0;
    for await (const chunk of request.body ?? []) {
      hash.update(chunk);
      length += chunk.length;
    }
    return Response.json({
      length,
      sha256: hash.digest("hex"),
      contentLength: request.headers.get("content-length"),
      chunked: request.headers.get("transfer-encoding") === "chunked",
    });
  });
  return Object.assign(server, { url: new URL(`http://127.0.0.1:${server.addr.port}/`) });
}

/** 40 chunks of 256 KiB, each a buffer of its own, with distinct contents. */
function chunks(): Uint8Array<ArrayBuffer>[] {
  return Array.from({ length: 40 }, (_, i) => new Uint8Array(256 * 1024).fill(i * 7 + 1));
}

function digest(parts: Uint8Array[]): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest("hex");
}

async function send(body: BodySource): Promise<Record<string, unknown>> {
  await using server = echoServer();
  const transport = createTransport({ inactivityTimeoutMs: 10_000 });
  try {
    const response = await transport.send({ method: "PATCH", url: server.url, body });
    return JSON.parse(await response.text()) as Record<string, unknown>;
  } finally {
    transport.close();
  }
}

Deno.test("a body of unknown length goes chunked, every byte intact", async () => {
  const parts = chunks();
  const expected = digest(parts);
  const got = await send({
    async *open() {
      yield* parts;
    },
  });
  assertEquals(got, {
    length: 40 * 256 * 1024,
    sha256: expected,
    contentLength: null,
    chunked: true,
  });
  assert(parts.every((p) => !p.buffer.detached), "chunks the source keeps are left alone");
});

Deno.test("chunks a body owns are freed once sent; the request is unchanged", async () => {
  const parts = chunks();
  const expected = digest(parts);
  const got = await send({
    length: 40 * 256 * 1024,
    ownsChunks: true,
    async *open() {
      yield* parts;
    },
  });
  assertEquals(got.sha256, expected);
  assertEquals(got.contentLength, String(40 * 256 * 1024));
  assert(parts.every((p) => p.buffer.detached), "every chunk freed");
});

/**
 * `loopback_scheme.ts`: which hosts are this machine's, and the transport that finds once,
 * by the first request, that a loopback registry speaks plain HTTP, then sends everything for
 * that origin (other paths too, such as a token realm there) over http, and nothing else.
 * Against the real registry (plain HTTP) through the real node:http and fetch transports; a
 * scripted transport only for a first request that fails for another reason.
 */
import type { ProgressEvent } from "../../src/progress/events.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { createFetchTransport } from "../../src/registry/fetch_transport.ts";
import {
  isLoopbackHost,
  LoopbackSchemeTransport,
  mayUsePlainHttp,
} from "../../src/registry/loopback_scheme.ts";
import { NetworkError } from "../../src/registry/registry_error.ts";
import {
  createTransport,
  NotTlsError,
  type Transport,
  type TransportRequest,
} from "../../src/registry/transport.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";

Deno.test("isLoopbackHost: localhost, 127.0.0.0/8 and [::1], nothing else", () => {
  const yes = ["localhost", "LOCALHOST", "localhost.", "127.0.0.1", "127.1.2.3", "127.255.255.255"];
  const no = [
    "registry.test",
    "localhost.example.com",
    "mylocalhost",
    "128.0.0.1",
    "10.0.0.1",
    "127.0.0.256",
    "127.0.0.1.example.com",
    "[::2]",
    "[::ffff:7f00:1]",
    "0.0.0.0",
  ];
  for (const host of yes) assert(isLoopbackHost(host), host);
  for (const host of no) assert(!isLoopbackHost(host), host);
  // As URL.hostname has them.
  assert(isLoopbackHost(new URL("https://[::1]:5000/").hostname));
  assert(isLoopbackHost(new URL("https://127.1:5000/").hostname));
});

Deno.test("mayUsePlainHttp: an implied https scheme on a loopback host only", () => {
  const cases: [string, boolean, boolean][] = [
    ["https://localhost:5000/", true, true],
    ["https://127.0.0.1:5000/", true, true],
    ["https://[::1]:5000/", true, true],
    ["https://localhost:5000/", false, false],
    ["https://registry.test:5000/", true, false],
    ["http://localhost:5000/", true, false],
  ];
  for (const [url, implied, expected] of cases) {
    assertEquals(mayUsePlainHttp(new URL(url), implied), expected, `${url} ${implied}`);
  }
});

/** `inner`, recording the URL of every request it was given. */
function recording(inner: Transport): Transport & { sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    send: (request: TransportRequest) => {
      sent.push(request.url.href);
      return inner.send(request);
    },
    close: () => inner.close(),
  };
}

for (
  const [name, make] of [
    ["node:http", () => createTransport({ inactivityTimeoutMs: 5_000 })],
    ["fetch", () => createFetchTransport({ inactivityTimeoutMs: 5_000 })],
  ] as const
) {
  integrationTest(
    `LoopbackSchemeTransport (${name}): one handshake decides; the origin then goes over http`,
    async () => {
      await using registry = await startRegistry();
      const port = registry.host.split(":")[1]!;
      const inner = recording(make());
      let told = 0;
      const transport = new LoopbackSchemeTransport(inner, {
        baseUrl: new URL(`https://localhost:${port}/`),
        onPlainHttp: () => told++,
      });
      try {
        assertEquals(transport.scheme, undefined);
        // Requests racing at the start wait for the first instead of each failing a handshake.
        const answers = await Promise.all(
          [1, 2, 3, 4].map(() =>
            transport.send({ method: "GET", url: new URL(`https://localhost:${port}/v2/`) })
          ),
        );
        for (const answer of answers) {
          assertEquals(answer.status, 200);
          await answer.discard();
        }
        assertEquals(transport.scheme, "http");
        assertEquals(told, 1);
        // Another path of the origin (a token realm there, an upload) goes over http too.
        const other = await transport.send({
          method: "GET",
          url: new URL(`https://localhost:${port}/v2/app/tags/list`),
        });
        assertEquals(other.status, 404);
        await other.discard();
        assertEquals(inner.sent, [
          `https://localhost:${port}/v2/`,
          ...[1, 2, 3, 4].map(() => `http://localhost:${port}/v2/`),
          `http://localhost:${port}/v2/app/tags/list`,
        ]);
        assertEquals(
          transport.effectiveUrl(new URL(`https://localhost:${port}/v2/x`)).href,
          `http://localhost:${port}/v2/x`,
        );
        // Another origin, even the same server under another name, is not this registry's.
        await assertRejects(
          () => transport.send({ method: "GET", url: new URL(`https://127.0.0.1:${port}/v2/`) }),
          NotTlsError,
        );
        assertEquals(told, 1);
      } finally {
        transport.close();
      }
    },
    { tools: ["docker-registry"] },
  );
}

Deno.test("LoopbackSchemeTransport: a first request failing otherwise decides nothing", async () => {
  const url = new URL("https://localhost:5000/v2/");
  const script: (() => never | Promise<never>)[] = [
    () => {
      throw new NetworkError("GET", url.href, "connection refused (ECONNREFUSED)", {
        temporary: true,
      });
    },
    () => {
      throw new NotTlsError("GET", url.href, new Error("wrong version number"));
    },
  ];
  const sent: string[] = [];
  const inner: Transport = {
    send(request) {
      sent.push(request.url.href);
      const step = script.shift();
      if (step) return step();
      return Promise.resolve({
        status: 200,
        statusText: "OK",
        headers: new Headers(),
        bytes: () => Promise.resolve(new Uint8Array()),
        text: () => Promise.resolve(""),
        discard: () => Promise.resolve(),
        stream: async function* () {},
      });
    },
    close() {},
  };
  let told = 0;
  const transport = new LoopbackSchemeTransport(inner, {
    baseUrl: new URL("https://localhost:5000/"),
    onPlainHttp: () => told++,
  });
  // The registry not up yet: the error is the caller's (to retry), and https stays undecided.
  await assertRejects(() => transport.send({ method: "GET", url }), NetworkError, "refused");
  assertEquals([transport.scheme, told], [undefined, 0]);
  assertEquals((await transport.send({ method: "GET", url })).status, 200);
  assertEquals([transport.scheme, told], ["http", 1]);
  assertEquals(sent, [url.href, url.href, "http://localhost:5000/v2/"]);
});

integrationTest(
  "RegistryClient: schemeImplied on loopback finds plain HTTP once for it and its views",
  async () => {
    await using registry = await startRegistry();
    const port = registry.host.split(":")[1]!;
    const events: ProgressEvent[] = [];
    const transport = createTransport({ inactivityTimeoutMs: 5_000 });
    try {
      const client = new RegistryClient({
        baseUrl: new URL(`https://localhost:${port}/`),
        schemeImplied: true,
        registryName: `localhost:${port}`,
        repository: "app",
        transport,
        retries: 0,
        sink: (event) => events.push(event),
      });
      await client.ping();
      const view = client.forRepository("other");
      const answer = await view.request({
        method: "GET",
        url: view.url("tags/list"),
        expect: [404],
        action: "list tags",
      });
      await answer.discard();
      assertEquals(events.filter((e) => e.type === "plain-http"), [
        { type: "plain-http", registry: `localhost:${port}` },
      ]);
      // The log names where requests went.
      assertEquals(
        events.flatMap((e) => e.type === "http" ? [`${e.method} ${e.url} ${e.status}`] : []),
        [
          `GET http://localhost:${port}/v2/ 200`,
          `GET http://localhost:${port}/v2/other/tags/list 404`,
        ],
      );

      // The scheme written by the user (schemeImplied absent) is obeyed: no fallback.
      const explicit = new RegistryClient({
        baseUrl: new URL(`https://localhost:${port}/`),
        registryName: `localhost:${port}`,
        repository: "app",
        transport,
        retries: 0,
        sink: (event) => events.push(event),
      });
      await assertRejects(() => explicit.ping(), NotTlsError);
      assertEquals(events.filter((e) => e.type === "plain-http").length, 1);
    } finally {
      transport.close();
    }
  },
  { tools: ["docker-registry"] },
);

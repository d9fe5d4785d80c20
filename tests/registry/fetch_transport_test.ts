/**
 * The fetch transport: every byte of a body cut short reaches the reader before the error; the
 * inactivity timeout (waiting for the network only, not for a slow reader); no redirect
 * followed, no content decoded; errors worded as the node:http transport words them, without
 * the URL's secrets; extra CAs; proxies from our reading of the environment (credentials, and
 * NO_PROXY); and the requests that go through node:http instead: `--skip-tls` hosts (only
 * those), streamed bodies, direct requests while the process environment names a proxy, and
 * ports fetch refuses.
 */
import { gzipSync } from "node:zlib";
import {
  createFetchTransport,
  fetchGoesDirect,
  type FetchTransportOptions,
} from "../../src/registry/fetch_transport.ts";
import type { ProxyConfig } from "../../src/registry/proxy_env.ts";
import { NetworkError } from "../../src/registry/registry_error.ts";
import type { Transport } from "../../src/registry/transport.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../helpers/assert.ts";
import { startForwardProxy } from "../helpers/forward_proxy.ts";
import { makeTestCa, selfSignedCert } from "../helpers/tls.ts";
import { integrationTest } from "../helpers/tools.ts";

const TIMEOUT_MS = 300;
const NO_ENV = () => undefined;

function transport(options: Partial<FetchTransportOptions> = {}): Transport & Disposable {
  const t = createFetchTransport({
    inactivityTimeoutMs: TIMEOUT_MS,
    processEnv: NO_ENV,
    ...options,
  });
  return Object.assign(t, { [Symbol.dispose]: () => t.close() });
}

/**
 * A raw HTTP/1.1 server on 127.0.0.1: reads a request head, then hands the connection to
 * `answer`, which writes what it likes; the connection closes when `answer` returns.
 */
function rawServer(
  answer: (conn: Deno.Conn, head: string) => Promise<void>,
  port = 0,
): AsyncDisposable & { url: string; heads: string[] } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  const heads: string[] = [];
  const conns = new Set<Deno.Conn>();
  const serve = async (conn: Deno.Conn) => {
    conns.add(conn);
    try {
      const buffer = new Uint8Array(16 * 1024);
      let text = "";
      while (!text.includes("\r\n\r\n")) {
        const n = await conn.read(buffer);
        if (n === null) return;
        text += new TextDecoder().decode(buffer.subarray(0, n));
      }
      heads.push(text);
      await answer(conn, text);
    } catch {
      // The client went away.
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* closed on dispose */ }
    }
  };
  const serving: Promise<void>[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) serving.push(serve(conn));
    } catch { /* closed */ }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    heads,
    [Symbol.asyncDispose]: async () => {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* already closed */ }
      }
      await accepting;
      await Promise.all(serving);
    },
  };
}

const encoder = new TextEncoder();

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Reads a stream to its end or first error: what arrived, and the error. */
async function drain(stream: AsyncIterable<Uint8Array>, pauseMs = 0) {
  let bytes = 0;
  try {
    for await (const chunk of stream) {
      bytes += chunk.length;
      if (pauseMs > 0) await sleep(pauseMs);
    }
    return { bytes, error: undefined };
  } catch (error) {
    return { bytes, error };
  }
}

Deno.test("fetch transport: a body cut short hands over every byte that arrived", async () => {
  const sent = 300_001;
  await using server = rawServer(async (conn) => {
    await writeAll(conn, encoder.encode("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"));
    await writeAll(conn, new Uint8Array(sent).fill(7));
    await sleep(50);
  });
  using t = transport();
  const response = await t.send({ method: "GET", url: new URL("/blob", server.url) });
  const { bytes, error } = await drain(response.stream());
  assertEquals(bytes, sent);
  assert(error instanceof NetworkError, `expected a NetworkError, got ${error}`);
  assert(error.temporary);
  assertStringIncludes(error.message, "response truncated");
});

Deno.test("fetch transport: no answer, or a body that stops, times out", async () => {
  await using silent = rawServer(() => sleep(5 * TIMEOUT_MS));
  await using stalling = rawServer(async (conn) => {
    await writeAll(conn, encoder.encode("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc"));
    await sleep(5 * TIMEOUT_MS);
  });
  using t = transport();
  const started = performance.now();
  const error = await assertRejects(
    () => t.send({ method: "GET", url: new URL("/v2/", silent.url) }),
    NetworkError,
  );
  const ms = performance.now() - started;
  assertStringIncludes(error.message, "no data moved for 0.3 s");
  assert(error.temporary);
  assert(ms >= TIMEOUT_MS - 50 && ms < TIMEOUT_MS + 1000, `timed out after ${ms} ms`);

  const response = await t.send({ method: "GET", url: new URL("/v2/", stalling.url) });
  const { bytes, error: bodyError } = await drain(response.stream());
  assertEquals(bytes, 3);
  assert(bodyError instanceof NetworkError, `expected a NetworkError, got ${bodyError}`);
  assertStringIncludes(bodyError.message, "no data moved");
});

Deno.test("fetch transport: a slow body that keeps moving, or a slow reader, does not time out", async () => {
  const chunks = 6;
  await using trickling = rawServer(async (conn) => {
    await writeAll(conn, encoder.encode(`HTTP/1.1 200 OK\r\nContent-Length: ${chunks}\r\n\r\n`));
    for (let i = 0; i < chunks; i++) {
      await sleep(TIMEOUT_MS / 2);
      await writeAll(conn, encoder.encode("x"));
    }
  });
  await using quick = rawServer(async (conn) => {
    await writeAll(conn, encoder.encode("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"));
    for (const part of ["a", "b", "c"]) {
      await writeAll(conn, encoder.encode(part));
      await sleep(20);
    }
  });
  using t = transport();
  const slow = await t.send({ method: "GET", url: new URL("/", trickling.url) });
  assertEquals(await drain(slow.stream()), { bytes: chunks, error: undefined });
  // The reader holds each chunk longer than the timeout: the network is not to blame.
  const held = await t.send({ method: "GET", url: new URL("/", quick.url) });
  assertEquals(await drain(held.stream(), 2 * TIMEOUT_MS), { bytes: 3, error: undefined });
});

Deno.test("fetch transport: redirects come back as answers; bodies arrive as stored", async () => {
  const gzipped = new Uint8Array(gzipSync(encoder.encode("layer bytes, layer bytes, layer bytes")));
  const seen: Headers[] = [];
  await using server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    seen.push(req.headers);
    if (new URL(req.url).pathname === "/redirect") {
      return new Response("see elsewhere", { status: 307, headers: { location: "/stored" } });
    }
    return new Response(gzipped, { headers: { "content-encoding": "gzip" } });
  });
  using t = transport({ userAgent: "dip-test/1" });
  const base = `http://127.0.0.1:${server.addr.port}`;
  const redirect = await t.send({ method: "GET", url: new URL("/redirect", base) });
  assertEquals([redirect.status, redirect.headers.get("location")], [307, "/stored"]);
  await redirect.discard();
  const stored = await t.send({ method: "GET", url: new URL("/stored", base) });
  assertEquals(await stored.bytes(), gzipped);
  assertEquals(seen.length, 2);
  assertEquals(seen[1]!.get("accept-encoding"), "identity");
  assertEquals(seen[1]!.get("user-agent"), "dip-test/1");
});

Deno.test("fetch transport: a refused connection is temporary, and its message keeps secrets", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  using t = transport();
  const url = new URL(`http://127.0.0.1:${port}/blob?X-Amz-Signature=s3cr3t`);
  const error = await assertRejects(() => t.send({ method: "GET", url }), NetworkError);
  assert(error.temporary);
  assertStringIncludes(error.message, "connection refused");
  assert(!error.message.includes("s3cr3t"), error.message);
});

Deno.test("fetch transport: a cancelled request fails with the caller's reason", async () => {
  await using server = rawServer(async (conn) => {
    await writeAll(conn, encoder.encode("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc"));
    await sleep(2 * TIMEOUT_MS);
  });
  using t = transport({ inactivityTimeoutMs: 10_000 });
  const controller = new AbortController();
  const response = await t.send({
    method: "GET",
    url: new URL("/", server.url),
    signal: controller.signal,
  });
  const reason = new Error("Interrupted");
  setTimeout(() => controller.abort(reason), 50);
  const { error } = await drain(response.stream());
  assertEquals(error, reason);
});

Deno.test("fetch transport: a streamed body goes through node:http with its exact length", async () => {
  const seen: (string | null)[] = [];
  await using server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    seen.push(req.headers.get("content-length"), req.headers.get("transfer-encoding"));
    return new Response(null, { status: 201 });
  });
  using t = transport();
  const response = await t.send({
    method: "PUT",
    url: new URL(`http://127.0.0.1:${server.addr.port}/upload`),
    body: {
      length: 10,
      async *open() {
        yield new Uint8Array(4);
        yield new Uint8Array(6);
      },
    },
  });
  await response.discard();
  assertEquals(response.status, 201);
  assertEquals(seen, ["10", null]);
});

Deno.test("fetch transport: a port fetch refuses is tried over node:http", async () => {
  // 6665–6669 are on the fetch standard's list of bad ports.
  let server: ReturnType<typeof rawServer> | undefined;
  for (const port of [6665, 6666, 6667, 6668, 6669]) {
    try {
      server = rawServer(async (conn) => {
        await writeAll(conn, encoder.encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
      }, port);
      break;
    } catch {
      // In use: try the next.
    }
  }
  if (server === undefined) return;
  await using _server = server;
  using t = transport();
  const response = await t.send({ method: "GET", url: new URL("/", server.url) });
  assertEquals(new TextDecoder().decode(await response.bytes()), "ok");
});

integrationTest(
  "fetch transport: --ca-cert trusts a CA or a self-signed server; --skip-tls skips one host only",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "dip-fetch-tls-" });
    try {
      const ca = await makeTestCa(dir);
      await using server = Deno.serve({
        port: 0,
        hostname: "127.0.0.1",
        cert: await Deno.readTextFile(ca.serverCert),
        key: await Deno.readTextFile(ca.serverKey),
        onListen() {},
      }, () => new Response("secure"));
      const byIp = new URL(`https://127.0.0.1:${server.addr.port}/`);
      const byName = new URL(`https://localhost:${server.addr.port}/`);
      const get = async (t: Transport, url: URL) =>
        new TextDecoder().decode(await (await t.send({ method: "GET", url })).bytes());
      {
        using t = transport();
        const error = await assertRejects(() => get(t, byIp), NetworkError);
        assert(!error.temporary);
        // The core's advice names the options; the CLI words it with --ca-cert (core_advice.ts).
        assertStringIncludes(error.message, "caCerts");
      }
      {
        using t = transport({ caCerts: [await Deno.readTextFile(ca.caCert)] });
        assertEquals(await get(t, byIp), "secure");
      }
      {
        using t = transport({ insecureHosts: [byIp.host] });
        assertEquals(await get(t, byIp), "secure");
        const error = await assertRejects(() => get(t, byName), NetworkError);
        assertStringIncludes(error.message, "certificate");
      }
      // A registry's own self-signed certificate given as its CA: fetch refuses it
      // (CaUsedAsEndEntity), node:tls takes it, so that host goes through node:http.
      const own = await selfSignedCert();
      await using selfSigned = Deno.serve(
        { port: 0, hostname: "127.0.0.1", cert: own.cert, key: own.key, onListen() {} },
        () => new Response("self-signed"),
      );
      {
        using t = transport({ caCerts: [await Deno.readTextFile(ca.caCert), own.cert] });
        const url = new URL(`https://127.0.0.1:${selfSigned.addr.port}/`);
        assertEquals(await get(t, url), "self-signed");
        assertEquals(await get(t, byName), "secure");
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { tools: ["openssl"] },
);

integrationTest(
  "fetch transport: proxies as proxy_env.ts reads them, credentials and NO_PROXY",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "dip-fetch-proxy-" });
    try {
      const ca = await makeTestCa(dir);
      await using plain = Deno.serve(
        { port: 0, hostname: "127.0.0.1", onListen() {} },
        () => new Response("plain"),
      );
      await using secure = Deno.serve({
        port: 0,
        hostname: "127.0.0.1",
        cert: await Deno.readTextFile(ca.serverCert),
        key: await Deno.readTextFile(ca.serverKey),
        onListen() {},
      }, () => new Response("secure"));
      await using proxy = await startForwardProxy();
      const withCredentials = new URL(proxy.url);
      withCredentials.username = "user";
      withCredentials.password = "p%40ss";
      const config: ProxyConfig = { http: withCredentials, https: new URL(proxy.url), noProxy: [] };
      const caCerts = [await Deno.readTextFile(ca.caCert)];
      const plainUrl = new URL(`http://127.0.0.1:${plain.addr.port}/v2/`);
      const secureUrl = new URL(`https://127.0.0.1:${secure.addr.port}/v2/`);
      const get = async (t: Transport, url: URL) =>
        new TextDecoder().decode(await (await t.send({ method: "GET", url })).bytes());
      {
        using t = transport({ proxy: config, caCerts });
        assertEquals(await get(t, plainUrl), "plain");
        assertEquals(await get(t, secureUrl), "secure");
      }
      assertEquals(proxy.forwarded, [`GET ${plainUrl.href}`]);
      assertEquals(proxy.connects, [secureUrl.host]);
      assertEquals(proxy.authorizations, [`Basic ${btoa("user:p@ss")}`, ""]);
      {
        using t = transport({ proxy: { ...config, noProxy: ["127.0.0.1"] }, caCerts });
        assertEquals(await get(t, plainUrl), "plain");
        assertEquals(await get(t, secureUrl), "secure");
      }
      assertEquals([proxy.forwarded.length, proxy.connects.length], [1, 1]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { tools: ["openssl"] },
);

Deno.test("fetchGoesDirect: only where Deno's reading of the environment and ours agree", () => {
  const cases: [string, Record<string, string>, boolean][] = [
    ["http://reg.example.com/", {}, true],
    ["http://reg.example.com/", { HTTPS_PROXY: "http://p:3128" }, true],
    ["https://reg.example.com/", { HTTPS_PROXY: "http://p:3128" }, false],
    ["https://reg.example.com/", { https_proxy: "http://p:3128" }, false],
    ["https://reg.example.com/", { ALL_PROXY: "http://p:3128" }, false],
    ["http://reg.example.com/", { HTTP_PROXY: "p:3128", NO_PROXY: "reg.example.com" }, true],
    ["http://reg.example.com/", { HTTP_PROXY: "p:3128", NO_PROXY: "x, example.com" }, true],
    ["http://reg.example.com/", { HTTP_PROXY: "p:3128", no_proxy: ".example.com" }, true],
    ["http://example.com/", { HTTP_PROXY: "p:3128", NO_PROXY: ".example.com" }, true],
    ["http://badexample.com/", { HTTP_PROXY: "p:3128", NO_PROXY: "example.com" }, false],
    // Deno reads these otherwise than we do (or not at all): node:http takes the request.
    ["http://reg.example.com/", { HTTP_PROXY: "p:3128", NO_PROXY: "*" }, false],
    ["http://reg.example.com/", { HTTP_PROXY: "p:3128", NO_PROXY: "*.example.com" }, false],
    ["http://reg.example.com/", { HTTP_PROXY: "p:3128", NO_PROXY: "REG.example.com" }, false],
    [
      "http://reg.example.com:5000/",
      { HTTP_PROXY: "p:3128", NO_PROXY: "reg.example.com:5000" },
      false,
    ],
    ["http://127.0.0.1:5000/", { HTTP_PROXY: "p:3128", NO_PROXY: "127.0.0.1" }, true],
    ["http://127.0.0.1:5000/", { HTTP_PROXY: "p:3128", NO_PROXY: "0.0.1" }, false],
    ["http://[::1]:5000/", { HTTP_PROXY: "p:3128", NO_PROXY: "::1" }, true],
  ];
  for (const [url, env, direct] of cases) {
    assertEquals(
      fetchGoesDirect(new URL(url), (name) => env[name]),
      direct,
      `${url} ${JSON.stringify(env)}`,
    );
  }
});

Deno.test("fetch transport: direct where fetch would take the environment's proxy: node:http", async () => {
  const encodings: (string | null)[] = [];
  await using server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    // fetch asks for identity; node:http asks for nothing.
    encodings.push(req.headers.get("accept-encoding"));
    return new Response("direct");
  });
  const url = new URL(`http://127.0.0.1:${server.addr.port}/`);
  const dead = "http://127.0.0.1:9";
  const saved = ["HTTP_PROXY", "NO_PROXY"].map((name) => [name, Deno.env.get(name)] as const);
  Deno.env.set("HTTP_PROXY", dead);
  Deno.env.delete("NO_PROXY");
  try {
    // The premise: fetch takes the variable from the process, whatever a client is given.
    const plainClient = Deno.createHttpClient({});
    await assertRejects(() => fetch(url, { client: plainClient }));
    plainClient.close();
    const config = { http: new URL(dead), https: undefined, noProxy: ["127.0.0.1"] };
    const get = async () => {
      // A new transport each time: clients read the environment when they are made.
      using t = transport({ processEnv: (name) => Deno.env.get(name), proxy: config });
      return new TextDecoder().decode(await (await t.send({ method: "GET", url })).bytes());
    };
    // Our NO_PROXY says direct, the process's names no exception: node:http goes direct.
    assertEquals(await get(), "direct");
    // The process's NO_PROXY names the host too: fetch goes direct.
    Deno.env.set("NO_PROXY", "127.0.0.1");
    assertEquals(await get(), "direct");
    assertEquals(encodings, [null, "identity"]);
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
  }
});

/**
 * Connection pools: TLS options per target host, extra CAs added to (not replacing) the
 * built-in roots, one agent per way of connecting, proxies as the environment says, and
 * `destroy()` closing pooled sockets. The HTTPS test makes real handshakes against a server
 * whose certificate a private CA signed.
 */
import http from "node:http";
import https from "node:https";
import tls from "node:tls";
import { HttpProxyAgent } from "http-proxy-agent";
import { HttpsProxyAgent } from "https-proxy-agent";
import { AgentPool } from "../../src/registry/agents.ts";
import { proxyConfigFromEnv } from "../../src/registry/proxy_env.ts";
import { assert, assertEquals, assertNotEquals, assertRejects } from "../helpers/assert.ts";
import { makeTestCa } from "../helpers/tls.ts";
import { integrationTest } from "../helpers/tools.ts";

const CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

Deno.test("connectionFor skips verification only for insecure hosts, only over https", async () => {
  const pool = new AgentPool({ insecureHosts: ["127.0.0.1:5000", "registry.lan"] });
  try {
    const tlsOf = async (url: string) => (await pool.connectionFor(new URL(url), false)).tls;
    assertEquals(await tlsOf("https://127.0.0.1:5000/v2/"), { rejectUnauthorized: false });
    assertEquals(await tlsOf("https://registry.lan/v2/"), { rejectUnauthorized: false });
    assertEquals(await tlsOf("https://registry.lan:443/v2/"), { rejectUnauthorized: false });
    assertEquals(await tlsOf("https://127.0.0.1:5001/v2/"), { rejectUnauthorized: true });
    assertEquals(await tlsOf("https://auth.example.com/token"), { rejectUnauthorized: true });
    assertEquals(await tlsOf("http://127.0.0.1:5000/v2/"), {});
  } finally {
    pool.destroy();
  }
});

Deno.test("caCerts are added to the built-in roots, for requests and for the agent", async () => {
  const pool = new AgentPool({ caCerts: [CA_PEM], insecureHosts: ["insecure:443"] });
  const plain = new AgentPool({});
  try {
    const { agent, tls: options } = await pool.connectionFor(new URL("https://r.lan/"), false);
    assertEquals(options.ca, [...tls.rootCertificates, CA_PEM]);
    assert(tls.rootCertificates.length > 10, "node's root store looks empty");
    assertEquals((agent as https.Agent).options.ca, [...tls.rootCertificates, CA_PEM]);
    assertEquals((await pool.connectionFor(new URL("http://r.lan/"), false)).tls, {});
    const withoutCa = await plain.connectionFor(new URL("https://r.lan/"), false);
    assertEquals(withoutCa.tls, { rejectUnauthorized: true });
    assertEquals((withoutCa.agent as https.Agent).options.ca, undefined);
  } finally {
    pool.destroy();
    plain.destroy();
  }
});

Deno.test("one agent per (protocol, verification, fresh, proxy) combination", async () => {
  const pool = new AgentPool({ insecureHosts: ["insecure.lan"], maxSockets: 7 });
  try {
    const agentFor = async (url: string, fresh = false) =>
      (await pool.connectionFor(new URL(url), fresh)).agent;
    const httpsPooled = await agentFor("https://a.lan/v2/");
    assertEquals(await agentFor("https://b.lan:5000/other"), httpsPooled);
    assert(httpsPooled instanceof https.Agent);
    assertEquals(httpsPooled.maxSockets, 7);
    assert((httpsPooled as unknown as { keepAlive: boolean }).keepAlive, "pooled keep-alive");

    const httpPooled = await agentFor("http://a.lan/v2/");
    assert(!(httpPooled instanceof https.Agent) && httpPooled instanceof http.Agent);
    assertEquals(await agentFor("http://c.lan:8080/"), httpPooled);

    const insecure = await agentFor("https://insecure.lan/v2/");
    assertNotEquals(insecure, httpsPooled);
    assertEquals((insecure as https.Agent).options.rejectUnauthorized, false);
    assertEquals((httpsPooled as https.Agent).options.rejectUnauthorized, true);

    const fresh = await agentFor("https://a.lan/v2/", true);
    assertNotEquals(fresh, httpsPooled);
    assertEquals(await agentFor("https://b.lan/v2/", true), fresh);
    assert(!(fresh as unknown as { keepAlive: boolean }).keepAlive, "fresh means no keep-alive");
    const distinct = new Set([
      httpsPooled,
      httpPooled,
      insecure,
      fresh,
      await agentFor("http://a/", true),
    ]);
    assertEquals(distinct.size, 5);
  } finally {
    pool.destroy();
  }
});

Deno.test("proxies follow HTTPS_PROXY, HTTP_PROXY and NO_PROXY", async () => {
  const env: Record<string, string> = {
    HTTPS_PROXY: "http://tls-proxy:3128",
    HTTP_PROXY: "http://plain-proxy:3128",
    NO_PROXY: "127.0.0.1,.internal.lan",
  };
  const pool = new AgentPool({ proxy: proxyConfigFromEnv((name) => env[name]) });
  try {
    const agentFor = async (url: string, fresh = false) =>
      (await pool.connectionFor(new URL(url), fresh)).agent;
    const viaTls = await agentFor("https://registry.example.com/v2/");
    assert(viaTls instanceof HttpsProxyAgent, viaTls.constructor.name);
    assertEquals(viaTls.proxy.href, "http://tls-proxy:3128/");
    assertEquals(await agentFor("https://other.example.com/v2/"), viaTls);
    const viaPlain = await agentFor("http://registry.example.com/v2/");
    assert(viaPlain instanceof HttpProxyAgent, viaPlain.constructor.name);
    assertEquals(viaPlain.proxy.href, "http://plain-proxy:3128/");
    const freshViaTls = await agentFor("https://registry.example.com/v2/blobs", true);
    assert(freshViaTls instanceof HttpsProxyAgent && freshViaTls !== viaTls);

    for (const url of ["https://127.0.0.1:5000/v2/", "https://r.internal.lan/v2/"]) {
      const direct = await agentFor(url);
      assert(!(direct instanceof HttpsProxyAgent) && direct instanceof https.Agent, url);
    }
    const directHttp = await agentFor("http://127.0.0.1:5000/v2/");
    assert(!(directHttp instanceof HttpProxyAgent), directHttp.constructor.name);
  } finally {
    pool.destroy();
  }
});

/** GET `url` with the pool's connection; resolves the body and the socket it used. */
async function get(pool: AgentPool, url: URL): Promise<{ body: string; socket: unknown }> {
  const connection = await pool.connectionFor(url, false);
  const client = url.protocol === "https:" ? https : http;
  return await new Promise((resolve, reject) => {
    let socket: unknown;
    const req = client.request(url, { agent: connection.agent, ...connection.tls }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => body += chunk);
      res.on("end", () => resolve({ body, socket }));
      res.on("error", reject);
    });
    req.on("socket", (s) => socket = s);
    req.on("error", reject);
    req.end();
  });
}

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port));
  });
}

function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

Deno.test("destroy() closes pooled keep-alive sockets", async () => {
  const server = http.createServer((req, res) => res.end(`hello ${req.url}`));
  const port = await listen(server);
  const pool = new AgentPool({});
  try {
    const url = new URL(`http://127.0.0.1:${port}/v2/`);
    const first = await get(pool, url);
    assertEquals(first.body, "hello /v2/");
    const second = await get(pool, url);
    assert(second.socket === first.socket, "the keep-alive socket should be reused");
    const socket = first.socket as { destroyed: boolean };
    assert(!socket.destroyed, "the pooled socket should still be open");
    pool.destroy();
    // destroy() reaches the agents once their creation promises settle.
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert(socket.destroyed, "destroy() left a pooled socket open");
  } finally {
    pool.destroy();
    await close(server);
  }
});

integrationTest(
  "https: extra CAs verify a private CA's server; insecure hosts skip it",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "dip-agents-" });
    const ca = await makeTestCa(dir);
    const server = https.createServer({
      cert: await Deno.readTextFile(ca.serverCert),
      key: await Deno.readTextFile(ca.serverKey),
    }, (_req, res) => res.end("secure"));
    const port = await listen(server);
    const url = new URL(`https://127.0.0.1:${port}/v2/`);
    const trusting = new AgentPool({ caCerts: [await Deno.readTextFile(ca.caCert)] });
    const skipping = new AgentPool({ insecureHosts: [url.host] });
    const strict = new AgentPool({ insecureHosts: ["127.0.0.1:1"] });
    try {
      assertEquals((await get(trusting, url)).body, "secure");
      assertEquals((await get(skipping, url)).body, "secure");
      await assertRejects(() => get(strict, url), Error);
    } finally {
      for (const pool of [trusting, skipping, strict]) pool.destroy();
      await new Promise((resolve) => setTimeout(resolve, 0));
      await close(server);
      await Deno.remove(dir, { recursive: true });
    }
  },
  { tools: ["openssl"] },
);

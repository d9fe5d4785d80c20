/**
 * The CLI behind a real forwarding proxy, against a real registry: plain-HTTP pushes go through
 * `HTTP_PROXY` as absolute-form requests, HTTPS pushes through `HTTPS_PROXY` as a CONNECT
 * tunnel (verified end to end with `--ca-cert`), and `NO_PROXY` sends them direct. The proxy is
 * written here with node:http and node:net, and forwards only to 127.0.0.1.
 */
import http from "node:http";
import net from "node:net";
import { NAME } from "../../src/version.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { type CliResult, lines, runCli } from "../helpers/cli.ts";
import { writeOciArchive } from "../helpers/image_fixtures.ts";
import { startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { makeTestCa, type TestCa } from "../helpers/tls.ts";
import { integrationTest } from "../helpers/tools.ts";

/** A forwarding proxy on 127.0.0.1 that counts what it carried. */
interface ForwardProxy extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`, for HTTP_PROXY / HTTPS_PROXY. */
  url: string;
  /** CONNECT targets, e.g. "127.0.0.1:5000". */
  connects: string[];
  /** Forwarded absolute-form requests, e.g. "PUT http://127.0.0.1:5000/v2/app/manifests/1". */
  forwarded: string[];
  /** TCP connections accepted from clients. */
  connections(): number;
}

const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "proxy-authorization", "te"];

async function startForwardProxy(): Promise<ForwardProxy> {
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };
  const connects: string[] = [];
  const forwarded: string[] = [];
  let accepted = 0;
  const server = http.createServer((req, res) => {
    const target = new URL(req.url ?? "/", "http://invalid");
    if (target.protocol !== "http:" || target.hostname !== "127.0.0.1") {
      res.writeHead(502).end("this test proxy forwards only to http://127.0.0.1");
      return;
    }
    forwarded.push(`${req.method} ${target.href}`);
    const headers = { ...req.headers };
    for (const name of HOP_BY_HOP) delete headers[name];
    const upstream = http.request({
      host: "127.0.0.1",
      port: Number(target.port || 80),
      path: `${target.pathname}${target.search}`,
      method: req.method,
      headers,
      agent: false,
    }, (upstreamRes) => {
      const answer = { ...upstreamRes.headers };
      for (const name of HOP_BY_HOP) delete answer[name];
      res.writeHead(upstreamRes.statusCode ?? 502, answer);
      upstreamRes.pipe(res);
    });
    upstream.on("error", () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
    req.pipe(upstream);
  });
  server.on("connection", (socket: net.Socket) => {
    accepted++;
    track(socket);
  });
  server.on("connect", (req: http.IncomingMessage, client: net.Socket, head: Uint8Array) => {
    track(client);
    const [host, port] = (req.url ?? "").split(":");
    connects.push(req.url ?? "");
    if (host !== "127.0.0.1" || !port) {
      client.end("HTTP/1.1 403 Forbidden\r\n\r\n");
      return;
    }
    const upstream = net.connect(Number(port), host, () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    track(upstream);
    upstream.on("close", () => client.destroy());
    client.on("close", () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connects,
    forwarded,
    connections: () => accepted,
    [Symbol.asyncDispose]: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/** A temporary directory with a one-image OCI archive (and, with `tls`, a test CA). */
async function withArchive(
  fn: (archive: string, manifestDigest: string, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dip-proxy-" });
  try {
    const archive = await writeOciArchive(`${dir}/app.tar`, [{ name: "app:1" }]);
    await fn(archive.path, archive.images[0]!.manifestDigest!, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Exit 0, stdout names the pushed manifest, and the registry serves it. */
async function assertPushed(
  result: CliResult,
  registry: TestRegistry,
  manifestDigest: string,
): Promise<void> {
  assertEquals(result.code, 0, `the push failed; stderr:\n${result.stderr}`);
  assertEquals(lines(result.stdout), [`${registry.host}/app:1@${manifestDigest}`]);
  assertEquals((await registry.fetchManifest("app", "1")).digest, manifestDigest);
}

integrationTest("HTTP_PROXY carries a plain-HTTP push as forwarded requests", async () => {
  await withArchive(async (archive, manifestDigest) => {
    await using registry = await startRegistry();
    await using proxy = await startForwardProxy();
    const result = await runCli(["-r", `http://${registry.host}/app:1`, "-f", archive], {
      env: { HTTP_PROXY: proxy.url },
    });
    await assertPushed(result, registry, manifestDigest);
    assertEquals(proxy.connects, []);
    const manifestPut = `PUT http://${registry.host}/v2/app/manifests/1`;
    assert(proxy.forwarded.includes(manifestPut), proxy.forwarded.join("\n"));
    assert(
      proxy.forwarded.some((r) => r.startsWith(`PUT http://${registry.host}/v2/app/blobs/`)),
      `no blob upload went through the proxy:\n${proxy.forwarded.join("\n")}`,
    );
    // Every request the registry saw from the CLI came through the proxy.
    const fromCli = (await registry.requests())
      .filter((r) => r.userAgent.startsWith(`${NAME}/`))
      .map((r) => `${r.method} http://${registry.host}${r.uri}`);
    assertEquals(fromCli.toSorted(), proxy.forwarded.toSorted());
  });
}, { tools: ["docker-registry"] });

integrationTest("NO_PROXY=127.0.0.1 sends the push direct", async () => {
  await withArchive(async (archive, manifestDigest) => {
    await using registry = await startRegistry();
    await using proxy = await startForwardProxy();
    const result = await runCli(["-r", `http://${registry.host}/app:1`, "-f", archive], {
      env: { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, NO_PROXY: "127.0.0.1" },
    });
    await assertPushed(result, registry, manifestDigest);
    assertEquals(proxy.forwarded, []);
    assertEquals(proxy.connects, []);
    assertEquals(proxy.connections(), 0);
  });
}, { tools: ["docker-registry"] });

integrationTest(
  "HTTPS_PROXY tunnels an HTTPS push with CONNECT, verified by --ca-cert",
  async () => {
    await withArchive(async (archive, manifestDigest, dir) => {
      const ca: TestCa = await makeTestCa(dir);
      await using registry = await startRegistry({
        tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert },
      });
      await using proxy = await startForwardProxy();
      const result = await runCli(
        ["-r", `https://${registry.host}/app:1`, "-f", archive, "--ca-cert", ca.caCert],
        { env: { HTTPS_PROXY: proxy.url, HTTP_PROXY: "http://127.0.0.1:9/" } },
      );
      await assertPushed(result, registry, manifestDigest);
      assert(proxy.connects.length >= 1, "no CONNECT reached the proxy");
      assertEquals([...new Set(proxy.connects)], [registry.host]);
      assertEquals(proxy.forwarded, [], "https requests must be tunnelled, not forwarded");
    });
  },
  { tools: ["docker-registry", "openssl"] },
);

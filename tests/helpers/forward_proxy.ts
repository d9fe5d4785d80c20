/**
 * A forwarding HTTP proxy on 127.0.0.1, as corporate proxies are: absolute-form requests
 * (`GET http://host/path`) for plain-HTTP targets, `CONNECT host:port` tunnels for HTTPS ones.
 * It forwards only to 127.0.0.1 and counts what it carried. Written with node:http and node:net.
 *
 * @example
 * ```ts ignore
 * await using proxy = await startForwardProxy();
 * // run with HTTP_PROXY=proxy.url; proxy.forwarded lists "GET http://127.0.0.1:5000/v2/…"
 * ```
 *
 * @module
 */
import http from "node:http";
import net from "node:net";

/** A forwarding proxy on 127.0.0.1 that counts what it carried. */
export interface ForwardProxy extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`, for HTTP_PROXY / HTTPS_PROXY. */
  url: string;
  /** CONNECT targets, e.g. "127.0.0.1:5000". */
  connects: string[];
  /** Forwarded absolute-form requests, e.g. "PUT http://127.0.0.1:5000/v2/app/manifests/1". */
  forwarded: string[];
  /** TCP connections accepted from clients. */
  connections(): number;
  /** The `Proxy-Authorization` each forwarded request and CONNECT carried ("" for none). */
  authorizations: string[];
}

const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "proxy-authorization", "te"];

/** Options for {@linkcode startForwardProxy}. */
export interface ForwardProxyOptions {
  /**
   * Host names the proxy resolves to 127.0.0.1 itself (e.g. `registry.test`): a test can then
   * name a registry by a host that is not loopback to the client, with no DNS or /etc/hosts.
   */
  aliases?: readonly string[];
}

/** Starts the proxy; stop it with `await using`. */
export async function startForwardProxy(options: ForwardProxyOptions = {}): Promise<ForwardProxy> {
  const loopback = (host: string) => host === "127.0.0.1" || !!options.aliases?.includes(host);
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };
  const connects: string[] = [];
  const forwarded: string[] = [];
  const authorizations: string[] = [];
  let accepted = 0;
  const server = http.createServer((req, res) => {
    const target = new URL(req.url ?? "/", "http://invalid");
    if (target.protocol !== "http:" || !loopback(target.hostname)) {
      res.writeHead(502).end("this test proxy forwards only to http://127.0.0.1");
      return;
    }
    forwarded.push(`${req.method} ${target.href}`);
    authorizations.push(req.headers["proxy-authorization"] ?? "");
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
    authorizations.push(req.headers["proxy-authorization"] ?? "");
    if (host === undefined || !loopback(host) || !port) {
      client.end("HTTP/1.1 403 Forbidden\r\n\r\n");
      return;
    }
    const upstream = net.connect(Number(port), "127.0.0.1", () => {
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
    authorizations,
    [Symbol.asyncDispose]: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/**
 * Connection pools for the transport, one per way of connecting: http or https, verified or
 * not (`--skip-tls` covers the target registry's host only, never a token realm or a redirect
 * target), direct or through the environment's proxy, and pooled or fresh.
 *
 * Streamed uploads get a fresh connection: Deno's node:http (2.9) transparently re-sends a
 * request whose reused keep-alive socket fails, and for a streamed body it re-sends nothing
 * (denoland/deno#32148, #36786), so the upload would hang instead of failing into our retries.
 */
import http from "node:http";
import https from "node:https";
import tls from "node:tls";
import { type ProxyConfig, proxyFor } from "./proxy_env.ts";

export interface AgentOptions {
  /** host[:port] values (as `URL.host` has them) whose certificates are not verified. */
  insecureHosts?: readonly string[];
  /** Extra PEM CA certificates to trust, besides the built-in roots. */
  caCerts?: string[];
  proxy?: ProxyConfig;
  maxSockets?: number;
}

/** What a request needs to connect: its agent, and TLS options for https targets. */
export interface Connection {
  agent: http.Agent;
  tls: { rejectUnauthorized?: boolean; ca?: string[] };
}

export class AgentPool {
  #options: AgentOptions;
  #agents = new Map<string, Promise<http.Agent>>();
  #insecure: Set<string>;
  #ca: string[] | undefined;

  constructor(options: AgentOptions) {
    this.#options = options;
    this.#insecure = new Set(options.insecureHosts ?? []);
    // node's `ca` replaces the default roots: keep them, so public token realms still verify.
    this.#ca = options.caCerts ? [...tls.rootCertificates, ...options.caCerts] : undefined;
  }

  /** The agent and TLS options for a request to `url`. */
  async connectionFor(url: URL, fresh: boolean): Promise<Connection> {
    const secure = url.protocol === "https:";
    const skipVerify = secure && this.#insecure.has(url.host);
    const proxy = this.#options.proxy ? proxyFor(url, this.#options.proxy) : undefined;
    const key = [url.protocol, skipVerify, fresh, proxy?.href ?? ""].join("|");
    let agent = this.#agents.get(key);
    if (!agent) {
      agent = this.#create(secure, skipVerify, fresh, proxy);
      this.#agents.set(key, agent);
    }
    const tlsOptions = secure
      ? { rejectUnauthorized: !skipVerify, ...(this.#ca ? { ca: this.#ca } : {}) }
      : {};
    return { agent: await agent, tls: tlsOptions };
  }

  async #create(
    secure: boolean,
    skipVerify: boolean,
    fresh: boolean,
    proxy: URL | undefined,
  ): Promise<http.Agent> {
    const common = {
      keepAlive: !fresh,
      ...(fresh ? {} : { maxSockets: this.#options.maxSockets ?? 16 }),
    };
    if (proxy) {
      // Loaded only when a proxy is configured, so plain runs don't pay for it.
      if (secure) {
        const { HttpsProxyAgent } = await import("https-proxy-agent");
        return new HttpsProxyAgent(proxy, common);
      }
      const { HttpProxyAgent } = await import("http-proxy-agent");
      return new HttpProxyAgent(proxy, common);
    }
    if (!secure) return new http.Agent(common);
    return new https.Agent({
      ...common,
      rejectUnauthorized: !skipVerify,
      ...(this.#ca ? { ca: this.#ca } : {}),
    });
  }

  destroy(): void {
    for (const agent of this.#agents.values()) agent.then((a) => a.destroy(), () => {});
    this.#agents.clear();
  }
}

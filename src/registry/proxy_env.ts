/**
 * Proxy settings from the environment, as curl and docker read them: `HTTPS_PROXY` for https
 * targets, `HTTP_PROXY` for http ones (lowercase names too), and `NO_PROXY`, a comma list of
 * hosts, `.domain` or `domain` suffixes, `host:port` entries, or `*` for everything.
 */

import { InvalidOptionError } from "../errors.ts";

export interface ProxyConfig {
  http: URL | undefined;
  https: URL | undefined;
  noProxy: string[];
}

/** Reads proxy settings; an unparsable proxy URL is an error naming the variable. */
export function proxyConfigFromEnv(env: (name: string) => string | undefined): ProxyConfig {
  const read = (upper: string): URL | undefined => {
    const name = env(upper) ? upper : upper.toLowerCase();
    const raw = env(name);
    if (!raw) return undefined;
    try {
      // `proxy:3128` means http://proxy:3128, as curl reads it.
      return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
    } catch {
      // No cause chained: the parser's message quotes the value, proxy password and all.
      throw new InvalidOptionError(`${name} is not a valid proxy URL`, {
        option: "env",
        reason: "invalid-proxy",
        value: name,
        hint: "Use a URL like http://proxy.example.com:3128 (credentials as user:password@)",
      });
    }
  };
  const noProxy = (env("NO_PROXY") || env("no_proxy") || "")
    .split(",")
    .map((entry) => entry.trim().toLowerCase())
    .filter((entry) => entry !== "");
  return { http: read("HTTP_PROXY"), https: read("HTTPS_PROXY"), noProxy };
}

/** The proxy to use for `url`, or undefined to connect directly. */
export function proxyFor(url: URL, config: ProxyConfig): URL | undefined {
  const proxy = url.protocol === "https:" ? config.https : config.http;
  if (proxy === undefined) return undefined;
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, "");
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  for (const entry of config.noProxy) {
    if (entry === "*") return undefined;
    const [entryHost = "", entryPort] = splitHostPort(entry);
    if (entryPort !== undefined && entryPort !== port) continue;
    const bare = entryHost.replace(/^\*?\./, "");
    if (host === bare || host.endsWith(`.${bare}`)) return undefined;
  }
  return proxy;
}

function splitHostPort(entry: string): [string, string | undefined] {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) return [bracketed[1]!, bracketed[2]];
  const match = /^([^:]+):(\d+)$/.exec(entry);
  return match ? [match[1]!, match[2]] : [entry, undefined];
}

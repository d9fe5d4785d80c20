/**
 * Proxy settings from the environment: which variables are read, how a scheme-less proxy is
 * understood, and which targets `NO_PROXY` sends direct.
 */
import { type ProxyConfig, proxyConfigFromEnv, proxyFor } from "../../src/registry/proxy_env.ts";
import { assertEquals, assertStringIncludes, assertThrows } from "../helpers/assert.ts";

function envOf(vars: Record<string, string>): (name: string) => string | undefined {
  return (name) => vars[name];
}

/** Proxies for both schemes, and `noProxy` as `NO_PROXY` would give it. */
function config(noProxy: string): ProxyConfig {
  return proxyConfigFromEnv(envOf({
    HTTP_PROXY: "http://plain-proxy:3128",
    HTTPS_PROXY: "http://tls-proxy:3128",
    NO_PROXY: noProxy,
  }));
}

/** The proxy host `url` goes through, or "direct". */
function route(url: string, noProxy: string): string {
  return proxyFor(new URL(url), config(noProxy))?.host ?? "direct";
}

Deno.test("proxyConfigFromEnv reads upper- and lowercase variables", () => {
  const upper = proxyConfigFromEnv(envOf({
    HTTP_PROXY: "http://a:1",
    HTTPS_PROXY: "http://b:2",
    NO_PROXY: "x",
  }));
  assertEquals(upper.http?.href, "http://a:1/");
  assertEquals(upper.https?.href, "http://b:2/");
  assertEquals(upper.noProxy, ["x"]);
  const lower = proxyConfigFromEnv(envOf({
    http_proxy: "http://c:3",
    https_proxy: "https://d:4",
    no_proxy: "y",
  }));
  assertEquals(lower.http?.href, "http://c:3/");
  assertEquals(lower.https?.href, "https://d:4/");
  assertEquals(lower.noProxy, ["y"]);
});

Deno.test("proxyConfigFromEnv: uppercase wins, an empty one falls back to lowercase", () => {
  const both = proxyConfigFromEnv(
    envOf({ HTTPS_PROXY: "http://upper:1", https_proxy: "http://l:2" }),
  );
  assertEquals(both.https?.host, "upper:1");
  const empty = proxyConfigFromEnv(envOf({ HTTPS_PROXY: "", https_proxy: "http://l:2" }));
  assertEquals(empty.https?.host, "l:2");
  assertEquals(proxyConfigFromEnv(envOf({})), { http: undefined, https: undefined, noProxy: [] });
});

Deno.test("proxyConfigFromEnv: a proxy without a scheme is http://", () => {
  const config = proxyConfigFromEnv(envOf({
    HTTPS_PROXY: "proxy:3128",
    HTTP_PROXY: "user:pw@10.0.0.1:8080",
  }));
  assertEquals(config.https?.href, "http://proxy:3128/");
  assertEquals(config.http?.protocol, "http:");
  assertEquals(config.http?.host, "10.0.0.1:8080");
  assertEquals(config.http?.username, "user");
});

Deno.test("proxyConfigFromEnv: an invalid proxy URL is an error naming the variable", () => {
  for (const name of ["HTTP_PROXY", "HTTPS_PROXY"]) {
    const error = assertThrows(
      () => proxyConfigFromEnv(envOf({ [name]: "http://proxy:notaport" })),
      Error,
      name,
    );
    assertStringIncludes(error.message, "not a valid proxy URL");
  }
});

Deno.test("proxyConfigFromEnv: an invalid lowercase variable is named as the user wrote it", () => {
  // The user set only `https_proxy`; telling them to fix HTTPS_PROXY sends them looking for a
  // variable they never set.
  for (const name of ["http_proxy", "https_proxy"]) {
    assertThrows(() => proxyConfigFromEnv(envOf({ [name]: "http://[bad" })), Error, name);
  }
});

Deno.test("proxyConfigFromEnv: an invalid proxy URL's password is not in the error chain", () => {
  // `--verbose` prints the whole cause chain; URL's TypeError quotes the raw value.
  const error = assertThrows(() =>
    proxyConfigFromEnv(envOf({ HTTPS_PROXY: "http://user:s3cret@proxy:notaport" }))
  );
  const chain: string[] = [];
  for (let e: unknown = error; e instanceof Error; e = e.cause) chain.push(e.message);
  assertEquals(chain.filter((message) => message.includes("s3cret")), [], chain.join(" <- "));
});

Deno.test("proxyFor picks HTTPS_PROXY for https targets and HTTP_PROXY for http", () => {
  assertEquals(route("https://registry.example.com/v2/", ""), "tls-proxy:3128");
  assertEquals(route("http://registry.example.com/v2/", ""), "plain-proxy:3128");
  const onlyHttps = proxyConfigFromEnv(envOf({ HTTPS_PROXY: "http://p:1" }));
  assertEquals(proxyFor(new URL("http://registry.example.com/"), onlyHttps), undefined);
  assertEquals(proxyFor(new URL("https://registry.example.com/"), onlyHttps)?.host, "p:1");
  const onlyHttp = proxyConfigFromEnv(envOf({ HTTP_PROXY: "http://p:1" }));
  assertEquals(proxyFor(new URL("https://registry.example.com/"), onlyHttp), undefined);
});

Deno.test("NO_PROXY '*' sends everything direct", () => {
  assertEquals(route("https://registry.example.com/", "*"), "direct");
  assertEquals(route("http://127.0.0.1:5000/", "other.example, *"), "direct");
});

Deno.test("NO_PROXY hosts and domain suffixes match subdomains, not look-alikes", () => {
  for (const entry of ["example.com", ".example.com", "*.example.com", "EXAMPLE.COM"]) {
    assertEquals(route("https://registry.example.com/", entry), "direct", entry);
    assertEquals(route("https://a.b.example.com:5000/", entry), "direct", entry);
    assertEquals(route("https://badexample.com/", entry), "tls-proxy:3128", entry);
    assertEquals(route("https://example.com.evil.net/", entry), "tls-proxy:3128", entry);
  }
  assertEquals(route("https://example.com/", "example.com"), "direct");
  assertEquals(route("https://registry.example.com/", "registry.example.com"), "direct");
  assertEquals(route("https://example.com/", "registry.example.com"), "tls-proxy:3128");
  assertEquals(route("http://127.0.0.1:5000/", "127.0.0.1"), "direct");
  assertEquals(route("http://127.0.0.10:5000/", "127.0.0.1"), "plain-proxy:3128");
});

Deno.test("NO_PROXY host:port entries match only that port, default ports included", () => {
  assertEquals(route("http://127.0.0.1:5000/", "127.0.0.1:5000"), "direct");
  assertEquals(route("http://127.0.0.1:5001/", "127.0.0.1:5000"), "plain-proxy:3128");
  assertEquals(route("https://registry.example.com/", "registry.example.com:443"), "direct");
  assertEquals(route("https://registry.example.com/", "registry.example.com:80"), "tls-proxy:3128");
  assertEquals(route("http://registry.example.com/", "registry.example.com:80"), "direct");
  assertEquals(
    route("http://registry.example.com/", "registry.example.com:443"),
    "plain-proxy:3128",
  );
  assertEquals(route("https://a.example.com:8443/", ".example.com:8443"), "direct");
  assertEquals(route("https://a.example.com/", ".example.com:8443"), "tls-proxy:3128");
});

Deno.test("NO_PROXY IPv6 entries, bracketed with a port or bare", () => {
  assertEquals(route("http://[::1]:5000/", "[::1]:5000"), "direct");
  assertEquals(route("http://[::1]:5001/", "[::1]:5000"), "plain-proxy:3128");
  assertEquals(route("http://[::1]:5001/", "[::1]"), "direct");
  assertEquals(route("http://[::1]:5001/", "::1"), "direct");
  assertEquals(route("https://[::1]/", "[::1]:443"), "direct");
  assertEquals(route("https://[::2]/", "::1"), "tls-proxy:3128");
});

Deno.test("NO_PROXY whitespace and empty entries are ignored", () => {
  const parsed = config(" registry.example.com ,, ,\t127.0.0.1:5000 , ");
  assertEquals(parsed.noProxy, ["registry.example.com", "127.0.0.1:5000"]);
  assertEquals(route("https://registry.example.com/", " registry.example.com ,,"), "direct");
  assertEquals(route("http://127.0.0.1:5000/", ", ,\t127.0.0.1:5000 "), "direct");
  // An empty entry must not match every host (as an empty suffix would).
  assertEquals(route("https://registry.example.com/", ",, ,"), "tls-proxy:3128");
  assertEquals(route("https://registry.example.com/", "."), "tls-proxy:3128");
});

/**
 * A real CNCF distribution registry (`docker-registry serve`) for tests, on a
 * free port of 127.0.0.1, storing into a temporary directory.
 *
 * @example
 * ```ts
 * integrationTest("pushes", async () => {
 *   await using registry = await startRegistry();
 *   // push to registry.host …
 *   assert(await registry.manifestExists("app", "1"));
 *   const methods = (await registry.requests()).map((r) => r.method);
 * });
 * ```
 *
 * Token auth (`token`) and HTTPS (`tls`) are options; the helper's own queries
 * (`manifestExists`, `fetchManifest`, `listTags`…) keep working in both modes:
 *
 * ```ts
 * await using tokens = await startTokenServer({ users: { alice: "pw", helper: "hpw" } });
 * const ca = await makeTestCa(dir);
 * await using registry = await startRegistry({
 *   token: {
 *     realm: tokens.realm,
 *     service: tokens.service,
 *     issuer: tokens.issuer,
 *     rootCertBundle: tokens.certPath,
 *     credentials: { username: "helper", password: "hpw" }, // for the helper's queries
 *   },
 *   tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert },
 * });
 * ```
 *
 * @module
 */

import { run } from "./command.ts";
import { sha256Digest } from "./random.ts";
import { requireTool, toolOnPath } from "./tools.ts";

export {
  DEFAULT_TOOLS,
  inCi,
  integrationTest,
  type IntegrationTestOptions,
  missingTools,
  requireTool,
  toolOnPath,
} from "./tools.ts";

/** The executable started by {@linkcode startRegistry}. */
export const REGISTRY_BINARY = "docker-registry";

/** Accept header listing every manifest type the registry may serve. */
export const MANIFEST_ACCEPT = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
].join(", ");

/** Username and password for HTTP basic auth. */
export interface Credentials {
  username: string;
  password: string;
}

/**
 * The registry's `auth: token:` section: it accepts only JWTs from this token server (see
 * `startTokenServer` in `token_server.ts`, whose fields these are).
 */
export interface RegistryTokenAuth {
  /** Where clients get tokens, e.g. `http://127.0.0.1:PORT/token` (sent in challenges). */
  realm: string;
  /** The token's `aud`, sent to the realm as `service=`. */
  service: string;
  /** The token's `iss`. */
  issuer: string;
  /** PEM file with the certificate(s) whose keys sign the tokens (`rootcertbundle`). */
  rootCertBundle: string;
  /**
   * An account of the token server the helper's own queries use (Basic auth to `realm`);
   * also the registry's `credentials`, which `pullBack` gives skopeo. Without it (and without
   * `authorize`), the queries get 401 and throw. Requests the helper sends show up in the
   * token server's records: use an account of its own, or count requests before and after.
   */
  credentials?: Credentials;
}

/** Paths of PEM files for an HTTPS registry, e.g. from `makeTestCa` in `tls.ts`. */
export interface RegistryTls {
  /** Server certificate (chain), valid for 127.0.0.1. */
  cert: string;
  /** Its private key. */
  key: string;
  /** The CA certificate that signed `cert`; the helper's own requests trust it. */
  ca: string;
}

/** Options for {@linkcode startRegistry}. */
export interface StartRegistryOptions {
  /** Require HTTP basic auth with these credentials (bcrypt htpasswd file). Default: anonymous access. */
  htpasswd?: Credentials;
  /** Require bearer tokens from a token server instead. Default: anonymous access. */
  token?: RegistryTokenAuth;
  /**
   * In token mode, how the helper's own queries get a token for a challenge's scope (e.g.
   * `repository:app:pull`): resolves to the bare token. Default: `GET realm?service=…&scope=…`
   * with Basic `token.credentials`, reading `token` or `access_token`.
   */
  authorize?: (scope: string) => Promise<string>;
  /** Serve HTTPS with this certificate; `url` becomes `https://…`. Default: plain HTTP. */
  tls?: RegistryTls;
  /** How long to wait for `GET /v2/` to answer, in ms. Default: 10000. */
  startTimeoutMs?: number;
}

/** One request from the registry's access log. */
export interface LoggedRequest {
  /** "GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"… */
  method: string;
  /** Path with query string, e.g. "/v2/app/blobs/uploads/abc?_state=…". */
  uri: string;
  /** Path without the query string. */
  path: string;
  /** HTTP status the registry answered. */
  status: number;
  /** User-Agent the client sent. */
  userAgent: string;
}

/** A manifest as the registry serves it. */
export interface FetchedManifest {
  /** sha256 of the bytes served; checked against `Docker-Content-Digest`. */
  digest: string;
  /** The `Content-Type` served. */
  mediaType: string;
  /** The raw bytes. */
  bytes: Uint8Array;
  /** The parsed JSON. */
  json: Record<string, unknown>;
}

/** A running registry; see {@linkcode startRegistry}. */
export interface TestRegistry extends AsyncDisposable {
  /** "127.0.0.1:PORT". */
  readonly host: string;
  /** "http://127.0.0.1:PORT", or "https://127.0.0.1:PORT" with `tls`. */
  readonly url: string;
  /** The filesystem storage root (`docker/registry/v2/…` lives below it). */
  readonly storageDir: string;
  /** The credentials the registry requires, if any (in token mode, `token.credentials`). */
  readonly credentials: Credentials | undefined;
  /**
   * `fetch` with the test CA trusted (with `tls`), for requests of a test's own; plain
   * `fetch` otherwise. No authorization is added.
   */
  fetch(input: string | URL, init?: RequestInit): Promise<Response>;
  /** Kills the registry, waits for it to exit and removes its directory. Idempotent. */
  stop(): Promise<void>;
  /** Whether `HEAD /v2/<repo>/manifests/<ref>` answers 200 (any manifest type). */
  manifestExists(repo: string, ref: string): Promise<boolean>;
  /** The repository's tags, sorted; [] when the repository does not exist. */
  listTags(repo: string): Promise<string[]>;
  /** Whether `HEAD /v2/<repo>/blobs/<digest>` answers 200. */
  blobExists(repo: string, digest: string): Promise<boolean>;
  /** `GET /v2/<repo>/manifests/<ref>` accepting every manifest type. */
  fetchManifest(repo: string, ref: string): Promise<FetchedManifest>;
  /** `GET /v2/<repo>/blobs/<digest>`, whole blob in memory (small blobs only). */
  fetchBlob(repo: string, digest: string): Promise<Uint8Array>;
  /**
   * The access log so far, one line per request in Apache combined format:
   * `127.0.0.1 - - [date] "PUT /v2/app/manifests/1 HTTP/1.1" 201 0 "" "agent"`.
   * Every request is there, 401s included. Waits until requests finished
   * before the call are logged; the marker request it uses is left out.
   */
  requestLog(): Promise<string>;
  /** {@linkcode requestLog}, parsed. */
  requests(): Promise<LoggedRequest[]>;
  /** The registry's own (logrus) output so far: startup, errors, "response completed" lines. */
  serverLog(): string;
}

/**
 * Whether tests that need the registry should run: true when
 * `docker-registry` is on `PATH`, and also when it is missing but `CI` is set
 * (so those tests fail instead of being skipped). Use as
 * `Deno.test({ ignore: !registryAvailable(), … })`, or use
 * {@linkcode integrationTest}.
 */
export function registryAvailable(): boolean {
  return requireTool(REGISTRY_BINARY);
}

/**
 * Starts a registry on a free port of 127.0.0.1 and waits until `GET /v2/`
 * answers. Stop it with `stop()` or `await using`.
 *
 * @throws {Error} when the binary is missing, exits early (its stderr is in
 * the message) or does not answer in time.
 */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<TestRegistry> {
  if (!toolOnPath(REGISTRY_BINARY)) {
    throw new Error(`Cannot start the test registry: ${REGISTRY_BINARY} is not on PATH`);
  }
  if (options.htpasswd !== undefined && options.token !== undefined) {
    throw new TypeError("Cannot start the test registry with both htpasswd and token auth");
  }
  const dir = await Deno.makeTempDir({ prefix: "dip-registry-" });
  try {
    let htpasswdPath: string | undefined;
    if (options.htpasswd !== undefined) {
      const { username, password } = options.htpasswd;
      const { stdout } = await run("htpasswd", ["-Bbn", username, password]);
      htpasswdPath = `${dir}/htpasswd`;
      await Deno.writeTextFile(htpasswdPath, stdout);
    }
    const storageDir = `${dir}/storage`;
    await Deno.mkdir(storageDir);
    // The port is free when we look but could be taken before the registry binds it;
    // retry with another port when that happens.
    for (let attempt = 1;; attempt++) {
      const port = freePort();
      const configPath = `${dir}/config.yml`;
      await Deno.writeTextFile(
        configPath,
        registryConfig(port, storageDir, { htpasswdPath, token: options.token, tls: options.tls }),
      );
      try {
        return await launch(dir, configPath, port, storageDir, options);
      } catch (error) {
        if (attempt < 3 && error instanceof PortInUseError) continue;
        throw error;
      }
    }
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
}

class PortInUseError extends Error {}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

interface AuthAndTls {
  htpasswdPath: string | undefined;
  token: RegistryTokenAuth | undefined;
  tls: RegistryTls | undefined;
}

function registryConfig(port: number, storageDir: string, extra: AuthAndTls): string {
  // JSON strings are valid YAML scalars, which keeps odd temp paths safe.
  const q = JSON.stringify;
  const lines = [
    "version: 0.1",
    "log:",
    "  level: info",
    "  formatter: text",
    "  accesslog:",
    // The access log (Apache combined format on stdout) has one line per request,
    // including 401s, which the "response completed" lines on stderr leave out.
    "    disabled: false",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${q(storageDir)}`,
    "  delete:",
    "    enabled: true",
    "  maintenance:",
    "    uploadpurging:",
    "      enabled: false",
    "http:",
    `  addr: ${q(`127.0.0.1:${port}`)}`,
    // A fixed secret silences the "No HTTP secret provided" warning.
    `  secret: ${q(`test-secret-${port}`)}`,
  ];
  if (extra.tls !== undefined) {
    lines.push(
      "  tls:",
      `    certificate: ${q(extra.tls.cert)}`,
      `    key: ${q(extra.tls.key)}`,
    );
  }
  lines.push("health:", "  storagedriver:", "    enabled: false");
  if (extra.htpasswdPath !== undefined) {
    lines.push(
      "auth:",
      "  htpasswd:",
      "    realm: basic-realm",
      `    path: ${q(extra.htpasswdPath)}`,
    );
  }
  if (extra.token !== undefined) {
    const { realm, service, issuer, rootCertBundle } = extra.token;
    lines.push(
      "auth:",
      "  token:",
      `    realm: ${q(realm)}`,
      `    service: ${q(service)}`,
      `    issuer: ${q(issuer)}`,
      `    rootcertbundle: ${q(rootCertBundle)}`,
    );
  }
  return lines.join("\n") + "\n";
}

async function launch(
  dir: string,
  configPath: string,
  port: number,
  storageDir: string,
  options: StartRegistryOptions,
): Promise<TestRegistry> {
  const child = new Deno.Command(REGISTRY_BINARY, {
    args: ["serve", configPath],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stdout = "";
  let stderr = "";
  const stdoutDecoder = new TextDecoder();
  const stderrDecoder = new TextDecoder();
  const pumps = Promise.all([
    child.stdout.pipeTo(
      new WritableStream({
        write(chunk) {
          stdout += stdoutDecoder.decode(chunk, { stream: true });
        },
      }),
    ),
    child.stderr.pipeTo(
      new WritableStream({
        write(chunk) {
          stderr += stderrDecoder.decode(chunk, { stream: true });
        },
      }),
    ),
  ]).catch(() => {});
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });

  const host = `127.0.0.1:${port}`;
  const url = `${options.tls === undefined ? "http" : "https"}://${host}`;
  const credentials = options.htpasswd ?? options.token?.credentials;
  const authHeaders: Record<string, string> = options.htpasswd === undefined
    ? {}
    : { Authorization: `Basic ${basic(options.htpasswd)}` };
  // Deno's fetch trusts only the system roots; the test CA goes into a client of our own.
  const client = options.tls === undefined
    ? undefined
    : Deno.createHttpClient({ caCerts: [await Deno.readTextFile(options.tls.ca)] });
  const fetchHere = (input: string | URL, init: RequestInit = {}) =>
    fetch(input, client === undefined ? init : { ...init, client });
  const authorize = options.authorize ??
    (options.token === undefined ? undefined : tokenFetcher(options.token, fetchHere));

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      // The registry exits at once on SIGTERM; SIGKILL it if it ever hangs.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const killed = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          if (!exited) child.kill("SIGKILL");
          resolve();
        }, 5000);
      });
      await Promise.race([status, killed]);
      clearTimeout(timer);
    }
    await status;
    await pumps;
    client?.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };

  // Wait for GET /v2/ to answer (200 or 401), or for the process to die.
  const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
  try {
    while (true) {
      if (exited) {
        await pumps;
        const message = `${stderr}\n${stdout}`.trim();
        if (/address already in use/i.test(message)) throw new PortInUseError(message);
        const { code } = await status;
        throw new Error(
          `Failed to start the test registry: ${REGISTRY_BINARY} serve ${configPath} ` +
            `exited with code ${code}\n--- output ---\n${message}`,
        );
      }
      try {
        const response = await fetchHere(`${url}/v2/`);
        await response.body?.cancel();
        if (response.status === 200 || response.status === 401) break;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) {
        throw new Error(
          `Failed to start the test registry: GET ${url}/v2/ did not answer within ` +
            `${options.startTimeoutMs ?? 10_000} ms\n--- output ---\n${stderr}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    // Keep the directory for a port retry; startRegistry removes it otherwise.
    stopped = true;
    if (!exited) child.kill("SIGKILL");
    await status;
    await pumps;
    client?.close();
    throw error;
  }

  async function request(method: string, path: string, accept?: string): Promise<Response> {
    const headers: Record<string, string> = {
      ...authHeaders,
      ...(accept === undefined ? {} : { Accept: accept }),
    };
    const response = await fetchHere(`${url}${path}`, { method, headers });
    // Token mode: answer the challenge with a token for the scope it names, once.
    const challenge = response.headers.get("WWW-Authenticate") ?? "";
    if (response.status !== 401 || authorize === undefined || !/^bearer /i.test(challenge)) {
      return response;
    }
    await response.body?.cancel();
    const scope = /\bscope="([^"]*)"/.exec(challenge)?.[1];
    if (scope === undefined) {
      throw new Error(`${method} ${url}${path}: a bearer challenge without a scope: ${challenge}`);
    }
    const token = await authorize(scope);
    return await fetchHere(`${url}${path}`, {
      method,
      headers: { ...headers, Authorization: `Bearer ${token}` },
    });
  }

  async function exists(path: string, accept?: string): Promise<boolean> {
    const response = await request("HEAD", path, accept);
    await response.body?.cancel();
    if (response.status === 200) return true;
    if (response.status === 404) return false;
    throw new Error(`Unexpected status ${response.status} for HEAD ${url}${path}`);
  }

  async function get(path: string, accept?: string): Promise<Response> {
    const response = await request("GET", path, accept);
    if (!response.ok) {
      const body = await response.text();
      throw new Error(`Failed to GET ${url}${path}: ${response.status} ${body}`);
    }
    return response;
  }

  let markerCount = 0;
  async function requestLog(): Promise<string> {
    // The registry logs a request after answering it. A marker request sent now is
    // logged after everything answered before it, so wait until the marker shows up.
    const marker = `__request_log_marker_${++markerCount}_${crypto.randomUUID()}`;
    const response = await fetchHere(`${url}/v2/?${marker}`);
    await response.body?.cancel();
    const deadline = Date.now() + 5000;
    while (!stdout.includes(marker)) {
      if (Date.now() > deadline || exited) {
        throw new Error(`Failed to read the registry access log: marker ${marker} not logged`);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return stdout.split("\n").filter((line) =>
      line !== "" && !line.includes("__request_log_marker_")
    )
      .map((line) => `${line}\n`).join("");
  }

  const registry: TestRegistry = {
    host,
    url,
    storageDir,
    credentials,
    fetch: fetchHere,
    stop,
    [Symbol.asyncDispose]: stop,
    manifestExists: (repo, ref) => exists(`/v2/${repo}/manifests/${ref}`, MANIFEST_ACCEPT),
    blobExists: (repo, digest) => exists(`/v2/${repo}/blobs/${digest}`),
    async listTags(repo) {
      const response = await request("GET", `/v2/${repo}/tags/list`);
      if (response.status === 404) {
        await response.body?.cancel();
        return [];
      }
      if (!response.ok) {
        throw new Error(
          `Failed to list tags of ${repo}: ${response.status} ${await response.text()}`,
        );
      }
      const body = await response.json() as { tags?: string[] | null };
      return [...(body.tags ?? [])].sort();
    },
    async fetchManifest(repo, ref) {
      const response = await get(`/v2/${repo}/manifests/${ref}`, MANIFEST_ACCEPT);
      const bytes = new Uint8Array(await response.arrayBuffer());
      const digest = sha256Digest(bytes);
      const served = response.headers.get("Docker-Content-Digest");
      if (served !== null && served !== digest) {
        throw new Error(
          `Manifest ${repo}:${ref} hashes to ${digest} but the registry says ${served}`,
        );
      }
      const json = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
      return { digest, mediaType: response.headers.get("Content-Type") ?? "", bytes, json };
    },
    async fetchBlob(repo, digest) {
      const response = await get(`/v2/${repo}/blobs/${digest}`);
      return new Uint8Array(await response.arrayBuffer());
    },
    requestLog,
    async requests() {
      return parseAccessLog(await requestLog());
    },
    serverLog: () => stderr,
  };
  return registry;
}

function basic(credentials: Credentials): string {
  return btoa(`${credentials.username}:${credentials.password}`);
}

/** The default `authorize` of token mode: asks the realm with Basic `token.credentials`. */
function tokenFetcher(
  token: RegistryTokenAuth,
  fetchWith: (input: URL, init: RequestInit) => Promise<Response>,
): (scope: string) => Promise<string> {
  return async (scope) => {
    const realm = new URL(token.realm);
    realm.searchParams.set("service", token.service);
    realm.searchParams.set("scope", scope);
    const headers: Record<string, string> = token.credentials === undefined
      ? {}
      : { Authorization: `Basic ${basic(token.credentials)}` };
    const response = await fetchWith(realm, { headers });
    if (!response.ok) {
      throw new Error(
        `Failed to get a token for ${scope} from ${token.realm}: ${response.status} ` +
          (await response.text()),
      );
    }
    const body = await response.json() as { token?: unknown; access_token?: unknown };
    const value = typeof body.token === "string" && body.token !== ""
      ? body.token
      : body.access_token;
    if (typeof value !== "string" || value === "") {
      throw new Error(`Failed to get a token for ${scope} from ${token.realm}: no token`);
    }
    return value;
  };
}

const ACCESS_LINE = /^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) \S+ "[^"]*" "([^"]*)"/;

/** Parses access-log lines (Apache combined format); other lines are skipped. */
export function parseAccessLog(log: string): LoggedRequest[] {
  const requests: LoggedRequest[] = [];
  for (const line of log.split("\n")) {
    const match = ACCESS_LINE.exec(line);
    if (match === null) continue;
    const [, method = "", uri = "", status = "0", userAgent = ""] = match;
    requests.push({
      method,
      uri,
      path: uri.split("?")[0] ?? uri,
      status: Number(status),
      userAgent,
    });
  }
  return requests;
}

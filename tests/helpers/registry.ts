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

/** Options for {@linkcode startRegistry}. */
export interface StartRegistryOptions {
  /** Require HTTP basic auth with these credentials (bcrypt htpasswd file). Default: anonymous access. */
  htpasswd?: Credentials;
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
  /** "http://127.0.0.1:PORT". */
  readonly url: string;
  /** The filesystem storage root (`docker/registry/v2/…` lives below it). */
  readonly storageDir: string;
  /** The credentials the registry requires, if any. */
  readonly credentials: Credentials | undefined;
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
      await Deno.writeTextFile(configPath, registryConfig(port, storageDir, htpasswdPath));
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

function registryConfig(port: number, storageDir: string, htpasswdPath?: string): string {
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
    "health:",
    "  storagedriver:",
    "    enabled: false",
  ];
  if (htpasswdPath !== undefined) {
    lines.push("auth:", "  htpasswd:", "    realm: basic-realm", `    path: ${q(htpasswdPath)}`);
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
  const url = `http://${host}`;
  const credentials = options.htpasswd;
  const authHeaders: Record<string, string> = credentials === undefined
    ? {}
    : { Authorization: `Basic ${btoa(`${credentials.username}:${credentials.password}`)}` };

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
        const response = await fetch(`${url}/v2/`);
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
    throw error;
  }

  async function request(method: string, path: string, accept?: string): Promise<Response> {
    return await fetch(`${url}${path}`, {
      method,
      headers: { ...authHeaders, ...(accept === undefined ? {} : { Accept: accept }) },
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
    const response = await fetch(`${url}/v2/?${marker}`);
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

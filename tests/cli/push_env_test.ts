/**
 * Every `DOCKER_PUSHER_*` environment variable, run as a user would (a subprocess with a clean
 * environment) against a real registry: each is honoured (the test fails if it is ignored),
 * a flag beats it, and it beats the default. The table is keyed by `ENV`, so adding a variable
 * without a test here fails type checking. Flags on their own are in `push_flags_test.ts`.
 */
import { ENV } from "../../src/cli/options.ts";
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { type CliResult, lines, runCli } from "../helpers/cli.ts";
import { selfSignedCert } from "../helpers/tls.ts";
import { writeDockerSaveLegacy } from "../helpers/image_fixtures.ts";
import { startProxy } from "../helpers/proxy.ts";
import { integrationTest, startRegistry, type TestRegistry } from "../helpers/registry.ts";

/** Four layers of 120–560 KB plus a config: five blobs, two of them over 256 KiB. */
const LAYERS = [120_000, 250_000, 400_000, 560_000];
const BLOBS = LAYERS.length + 1;
const KiB = 1024;
const PASSWORD = "pw-Zq8#env";
const USER = { username: "alice", password: PASSWORD };

type Env = Partial<Record<keyof typeof ENV, string>>;

interface Archive extends AsyncDisposable {
  path: string;
}

async function makeArchive(): Promise<Archive> {
  const dir = await Deno.makeTempDir({ prefix: "dip-env-" });
  await writeDockerSaveLegacy(`${dir}/app.tar`, [{ name: "app:1", layerSizes: LAYERS }]);
  return {
    path: `${dir}/app.tar`,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** `-r <origin>/<repo>:1 -f <archive> …args` with `DOCKER_PUSHER_*` variables set from `env`. */
function push(
  origin: string,
  repo: string,
  archive: Archive,
  env: Env,
  args: string[] = [],
  stdin?: string,
): Promise<CliResult> {
  const vars = Object.fromEntries(
    Object.entries(env).map(([key, value]) => [ENV[key as keyof typeof ENV], value]),
  );
  return runCli(["-r", `${origin}/${repo}:1`, "-f", archive.path, ...args], {
    env: vars,
    ...(stdin === undefined ? {} : { stdin }),
  });
}

function expectExit(result: CliResult, code: number, what: string): void {
  assertEquals(result.code, code, `${what}\n--- stderr ---\n${result.stderr}`);
}

const count = (log: { method: string }[], method: string) =>
  log.filter((r) => r.method === method).length;

/** PATCH requests per blob uploaded to `repo`, with the blob's size. */
async function uploads(registry: TestRegistry, repo: string) {
  const log = (await registry.requests()).filter((r) => r.path.startsWith(`/v2/${repo}/`));
  const patches = new Map<string, number>();
  for (const r of log) {
    if (r.method === "PATCH") patches.set(r.path, (patches.get(r.path) ?? 0) + 1);
  }
  const result: { size: number; patches: number }[] = [];
  for (const r of log.filter((r) => r.method === "PUT" && r.path.includes("/blobs/uploads/"))) {
    const digest = new URL(r.uri, "http://x").searchParams.get("digest")!;
    result.push({
      size: (await registry.fetchBlob(repo, digest)).length,
      patches: patches.get(r.path) ?? 0,
    });
  }
  assertEquals(result.length, BLOBS);
  return result;
}

const pwWarnings = (stderr: string) =>
  lines(stderr).filter((l) => l.startsWith("Warning:") && l.includes("--password-stdin")).length;

async function withAuthRegistry(
  cases: [Env, string[], string | undefined, number][],
): Promise<void> {
  await using registry = await startRegistry({ htpasswd: USER });
  await using archive = await makeArchive();
  for (const [i, [env, args, stdin, exit]] of cases.entries()) {
    const what = `${JSON.stringify(env)} ${args.join(" ")}`;
    const result = await push(registry.url, `a${i}`, archive, env, ["--verbose", ...args], stdin);
    expectExit(result, exit, what);
    assertEquals(pwWarnings(result.stderr), args.includes("-p") ? 1 : 0, what);
    assert(!result.stderr.includes(PASSWORD), `${what}: the password leaked`);
    assertEquals(await registry.manifestExists(`a${i}`, "1"), exit === 0, what);
  }
}

async function concurrency(cases: [Env, string[], number, number][]): Promise<void> {
  await using registry = await startRegistry();
  await using archive = await makeArchive();
  for (const [i, [env, args, min, max]] of cases.entries()) {
    await using proxy = startProxy({
      upstream: registry.url,
      delay: { method: "PUT", path: /\/blobs\/uploads\//, ms: 300 },
    });
    expectExit(await push(proxy.url, `c${i}`, archive, env, args), 0, JSON.stringify(env));
    const n = proxy.maxInFlight;
    assert(n >= min && n <= max, `${JSON.stringify(env)} ${args}: ${n} not in [${min}, ${max}]`);
  }
}

async function chunking(cases: [Env, string[], number | "none"][]): Promise<void> {
  await using registry = await startRegistry();
  await using archive = await makeArchive();
  for (const [i, [env, args, chunk]] of cases.entries()) {
    const what = `${JSON.stringify(env)} ${args.join(" ")}`;
    expectExit(await push(registry.url, `k${i}`, archive, env, args), 0, what);
    const sizes = await uploads(registry, `k${i}`);
    for (const { size, patches } of sizes) {
      const expected = chunk === "none" || size < 256 * KiB ? 0 : Math.ceil(size / chunk);
      assertEquals(patches, expected, `${what}: blob of ${size} bytes`);
    }
  }
}

const THRESHOLD = ["--large-layer-threshold", "256KiB"];

/** Media types of the pushed image's layers, and each layer's first bytes. */
async function pushedLayers(registry: TestRegistry, repo: string) {
  const { json } = await registry.fetchManifest(repo, "1");
  const layers = json.layers as { mediaType: string; digest: string }[];
  return await Promise.all(layers.map(async (l) => ({
    mediaType: l.mediaType,
    head: (await registry.fetchBlob(repo, l.digest)).subarray(0, 10),
  })));
}

/**
 * zlib's gzip header says how hard it worked (RFC 1952 XFL, byte 8): 2 for level 9, 4 for
 * level 1, 0 in between.
 */
const gzipXfl = (head: Uint8Array) => head[0] === 0x1f && head[1] === 0x8b ? head[8] : -1;

/** One test per variable: it is read, a flag overrides it, and it overrides the default. */
const TESTS: Record<keyof typeof ENV, [string, () => Promise<void>, string[]?]> = {
  username: ["logs in with it; -u overrides it", () =>
    withAuthRegistry([
      [{ username: "alice", password: PASSWORD }, [], undefined, 0],
      [{ username: "mallory", password: PASSWORD }, ["-u", "alice"], undefined, 0],
      [{ username: "alice", password: PASSWORD }, ["-u", "mallory"], undefined, 1],
      [{ username: "alice" }, ["--password-stdin"], PASSWORD, 0],
    ]), ["htpasswd"]],
  password: [
    "logs in with it, no warning; -p and --password-stdin override it",
    () =>
      withAuthRegistry([
        [{ password: PASSWORD }, ["-u", "alice"], undefined, 0],
        [{ username: "alice", password: "wrong" }, ["-p", PASSWORD], undefined, 0],
        [{ username: "alice", password: PASSWORD }, ["-p", "wrong"], undefined, 1],
        [{ username: "alice", password: "wrong" }, ["--password-stdin"], `${PASSWORD}\n`, 0],
        [{ username: "alice", password: "wrong" }, [], undefined, 1],
      ]),
    ["htpasswd"],
  ],
  maxConcurrent: ["bounds uploads in flight; --max-concurrent overrides it", () =>
    concurrency([
      [{ maxConcurrent: "1" }, [], 1, 1],
      [{ maxConcurrent: "1" }, ["--max-concurrent", "3"], 2, 3],
      [{ maxConcurrent: "3" }, ["--max-concurrent", "1"], 1, 1],
    ])],
  timeout: ["fails a silent request; -t overrides it", async () => {
    await using registry = await startRegistry();
    await using archive = await makeArchive();
    // GET /v2/ answers after 2 s: too slow for 1 s, fine for 10 s (and for the 2 h default).
    await using proxy = startProxy({
      upstream: registry.url,
      delay: { method: "GET", path: /^\/v2\/$/, ms: 2000 },
    });
    const slow = await push(proxy.url, "t1", archive, { timeout: "1", retryAttempts: "0" });
    expectExit(slow, 1, "DOCKER_PUSHER_TIMEOUT=1");
    assertStringIncludes(slow.stderr, "no data moved for 1 s");
    const env = { timeout: "1", retryAttempts: "0" };
    expectExit(await push(proxy.url, "t2", archive, env, ["-t", "10"]), 0, "-t 10");
  }],
  largeLayerThreshold: ["chunks layers from that size; the flag overrides it", () =>
    chunking([
      [{ largeLayerThreshold: "256KiB" }, [], 64 * 1024 ** 2],
      [{ largeLayerThreshold: "1" }, ["--large-layer-threshold", "1GiB"], "none"],
    ])],
  chunkSize: ["sets the chunk size; --chunk-size overrides it", () =>
    chunking([
      [{ chunkSize: "64KiB" }, THRESHOLD, 64 * KiB],
      [{ chunkSize: "64KiB", largeLayerThreshold: "256KiB" }, [], 64 * KiB],
      [{ chunkSize: "64KiB" }, [...THRESHOLD, "--chunk-size", "128KiB"], 128 * KiB],
    ])],
  retryAttempts: ["sets retries; --retry-attempts overrides it", async () => {
    await using registry = await startRegistry();
    await using archive = await makeArchive();
    const cases: [Env, string[], number][] = [
      [{ retryAttempts: "0" }, [], 1],
      [{ retryAttempts: "1" }, [], 1],
      [{ retryAttempts: "0" }, ["--retry-attempts", "3"], 0],
      [{}, [], 0], // the default, 3
    ];
    for (const [i, [env, args, exit]] of cases.entries()) {
      // 503 (Retry-After: 0, to keep it quick) for the first two manifest PUTs.
      await using proxy = startProxy({
        upstream: registry.url,
        faults: [{
          method: "PUT",
          path: /\/manifests\//,
          occurrences: [1, 2],
          status: 503,
          headers: { "Retry-After": "0" },
        }],
      });
      const result = await push(proxy.url, `r${i}`, archive, env, args);
      expectExit(result, exit, `${JSON.stringify(env)} ${args.join(" ")}`);
      if (exit === 1) assertStringIncludes(result.stderr, "503");
    }
  }],
  skipTls: ["true accepts a self-signed certificate; false does not; --skip-tls wins", async () => {
    await using registry = await startRegistry();
    await using archive = await makeArchive();
    await using proxy = startProxy({ upstream: registry.url, tls: await selfSignedCert() });
    const cases: [Env, string[], number][] = [
      [{ skipTls: "false" }, [], 1],
      [{ skipTls: "true" }, [], 0],
      [{ skipTls: "false" }, ["--skip-tls"], 0],
    ];
    for (const [i, [env, args, exit]] of cases.entries()) {
      const result = await push(proxy.url, `s${i}`, archive, env, args);
      expectExit(result, exit, `${JSON.stringify(env)} ${args.join(" ")}`);
      const warnings = lines(result.stderr).filter((l) => l.includes("verification is disabled"));
      assertEquals(warnings.length, 1 - exit, result.stderr);
      if (exit === 1) assertStringIncludes(result.stderr, "--skip-tls");
      assertEquals(await registry.manifestExists(`s${i}`, "1"), exit === 0);
    }
  }, ["openssl"]],
  caCert: ["trusts the registry's certificate; --ca-cert overrides it", async () => {
    await using registry = await startRegistry();
    await using archive = await makeArchive();
    const tls = await selfSignedCert();
    await using proxy = startProxy({ upstream: registry.url, tls });
    const dir = await Deno.makeTempDir({ prefix: "dip-ca-" });
    try {
      const caPath = `${dir}/ca.pem`;
      await Deno.writeTextFile(caPath, tls.cert);
      await Deno.writeTextFile(`${dir}/other.pem`, (await selfSignedCert()).cert);
      const trusted = await push(proxy.url, "c0", archive, { caCert: caPath });
      expectExit(trusted, 0, "DOCKER_PUSHER_CA_CERT=ca.pem");
      assert(!trusted.stderr.includes("verification is disabled"), trusted.stderr);
      const wrong = await push(proxy.url, "c1", archive, { caCert: `${dir}/other.pem` });
      expectExit(wrong, 1, "DOCKER_PUSHER_CA_CERT=other.pem");
      assertStringIncludes(wrong.stderr, "--ca-cert");
      const env = { caCert: `${dir}/other.pem` };
      expectExit(await push(proxy.url, "c2", archive, env, ["--ca-cert", caPath]), 0, "flag");
      assertEquals(await registry.listTags("c1"), []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }, ["openssl"]],
  verbose: ["true logs HTTP requests; --verbose and --quiet override it", async () => {
    await using registry = await startRegistry();
    await using archive = await makeArchive();
    const cases: [Env, string[], boolean][] = [
      [{ verbose: "true" }, [], true],
      [{ verbose: "false" }, [], false],
      [{ verbose: "false" }, ["--verbose"], true],
      [{ verbose: "true" }, ["--quiet"], false],
    ];
    for (const [i, [env, args, logged]] of cases.entries()) {
      const what = `${JSON.stringify(env)} ${args.join(" ")}`;
      const result = await push(registry.url, `v${i}`, archive, env, args);
      expectExit(result, 0, what);
      const put = new RegExp(`^HTTP PUT \\S+/v2/v${i}/manifests/1 -> 201 `, "m");
      assertEquals(put.test(result.stderr), logged, `${what}\n${result.stderr}`);
      if (args.includes("--quiet")) assertEquals(result.stderr, "", what);
    }
  }],
  compression: ["picks the layer codec; --compression overrides it; gzip by default", async () => {
    await using registry = await startRegistry();
    await using archive = await makeArchive();
    const cases: [Env, string[], string][] = [
      [{ compression: "zstd" }, [], "application/vnd.oci.image.layer.v1.tar+zstd"],
      [
        { compression: "zstd" },
        ["--compression", "none"],
        "application/vnd.docker.image.rootfs.diff.tar",
      ],
      [
        { compression: "none" },
        ["--compression", "gzip"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
      ],
      [{ compression: "" }, [], "application/vnd.docker.image.rootfs.diff.tar.gzip"],
    ];
    for (const [i, [env, args, mediaType]] of cases.entries()) {
      const what = `${JSON.stringify(env)} ${args.join(" ")}`;
      expectExit(await push(registry.url, `c${i}`, archive, env, args), 0, what);
      const layers = await pushedLayers(registry, `c${i}`);
      assertEquals(layers.map((l) => l.mediaType), LAYERS.map(() => mediaType), what);
    }
  }],
  compressionLevel: ["sets a fixed level; --compression-level overrides it", async () => {
    await using registry = await startRegistry();
    await using archive = await makeArchive();
    const cases: [Env, string[], number][] = [
      [{ compression: "gzip", compressionLevel: "1" }, [], 4],
      [{ compression: "gzip", compressionLevel: "9" }, [], 2],
      [{ compression: "gzip", compressionLevel: "1" }, ["--compression-level", "9"], 2],
      [{ compression: "gzip", compressionLevel: "9" }, ["--compression-level", "1"], 4],
    ];
    for (const [i, [env, args, xfl]] of cases.entries()) {
      const what = `${JSON.stringify(env)} ${args.join(" ")}`;
      expectExit(await push(registry.url, `l${i}`, archive, env, args), 0, what);
      const layers = await pushedLayers(registry, `l${i}`);
      assertEquals(layers.map((l) => gzipXfl(l.head)), LAYERS.map(() => xfl), what);
    }
    const clash = await push(registry.url, "l9", archive, { compressionLevel: "3" });
    expectExit(clash, 2, "a level with compression none");
    assertStringIncludes(clash.stderr, ENV.compressionLevel);
  }],
  skipExisting: [
    "false re-uploads every blob; --skip-existing and --force-upload win",
    async () => {
      await using registry = await startRegistry();
      await using archive = await makeArchive();
      expectExit(await push(registry.url, "app", archive, {}), 0, "first push");
      const cases: [Env, string[], number][] = [
        [{ skipExisting: "false" }, [], BLOBS],
        [{ skipExisting: "false" }, ["--skip-existing"], 0],
        [{ skipExisting: "true" }, [], 0],
        [{ skipExisting: "true" }, ["--force-upload"], BLOBS],
      ];
      for (const [env, args, posts] of cases) {
        const what = `${JSON.stringify(env)} ${args.join(" ")}`;
        const before = (await registry.requests()).length;
        expectExit(await push(registry.url, "app", archive, env, args), 0, what);
        const log = (await registry.requests()).slice(before);
        assertEquals(count(log, "POST"), posts, what);
        assertEquals(count(log, "HEAD"), BLOBS - posts, what);
      }
    },
  ],
};

for (const [key, [name, fn, tools = []]] of Object.entries(TESTS)) {
  integrationTest(`${ENV[key as keyof typeof ENV]}: ${name}`, fn, {
    tools: ["docker-registry", ...tools],
  });
}

// --- Values that are not usable: usage errors before anything is sent. ------------------------

const BASE = ["-r", "127.0.0.1:1/app:1", "-f", "/nonexistent/app.tar"];

Deno.test("invalid environment values are usage errors (exit 2)", async () => {
  const cases: [Env, string][] = [
    [{ maxConcurrent: "x" }, '"x"'],
    [{ maxConcurrent: "0" }, '"0"'],
    [{ timeout: "abc" }, '"abc"'],
    [{ retryAttempts: "lots" }, '"lots"'],
    [{ largeLayerThreshold: "big" }, '"big"'],
    [{ chunkSize: "1" }, "at least 65536"],
    [{ skipTls: "maybe" }, ENV.skipTls],
    [{ verbose: "loud" }, ENV.verbose],
    [{ skipExisting: "perhaps" }, ENV.skipExisting],
    [{ password: "secret" }, ENV.username],
    [{ compression: "lz4" }, '"lz4"'],
    [{ compressionLevel: "x", compression: "" }, "auto"],
    [{ timeout: "5 minutes" }, "30s, 5m, 2h"],
  ];
  for (const [env, needle] of cases) {
    const vars = Object.fromEntries(
      Object.entries(env).map(([k, v]) => [ENV[k as keyof typeof ENV], v]),
    );
    const result = await runCli(BASE, { env: vars });
    expectExit(result, 2, JSON.stringify(vars));
    assertStringIncludes(result.stderr, needle, JSON.stringify(vars));
    assert(!result.stderr.includes("secret"), "a password is never echoed");
    // The README promises a hint with every usage error; a bad value can also just be unset.
    const [name] = Object.keys(vars);
    const hint = lines(result.stderr).find((l) => l.startsWith("Hint: "));
    assert(hint !== undefined, `${JSON.stringify(vars)}: no hint in ${result.stderr}`);
    if (!("password" in env)) assertStringIncludes(hint, `unset ${name}`);
  }
});

Deno.test("a flag wins without reading a bad variable; empty variables count as unset", async () => {
  // The archive does not exist, so reaching it (exit 1) proves the settings were accepted.
  const cases: [Record<string, string>, string[]][] = [
    [{ [ENV.maxConcurrent]: "x" }, ["--max-concurrent", "2"]],
    [{ [ENV.timeout]: "abc" }, ["-t", "5"]],
    [{ [ENV.chunkSize]: "1" }, ["--chunk-size", "1MiB"]],
    [{ [ENV.skipTls]: "maybe" }, ["--skip-tls"]],
    [{ [ENV.verbose]: "loud" }, ["--verbose"]],
    [{ [ENV.skipExisting]: "perhaps" }, ["--skip-existing"]],
    [Object.fromEntries(Object.values(ENV).map((name) => [name, ""])), []],
  ];
  for (const [env, args] of cases) {
    const result = await runCli([...BASE, ...args], { env });
    expectExit(result, 1, `${JSON.stringify(env)} ${args.join(" ")}`);
    assertStringIncludes(result.stderr, "/nonexistent/app.tar");
  }
});

Deno.test({
  name: "an invalid number in a variable is reported under the variable's name",
  async fn() {
    const cases: [keyof typeof ENV, string][] = [
      ["maxConcurrent", "x"],
      ["timeout", "abc"],
      ["retryAttempts", "lots"],
      ["largeLayerThreshold", "big"],
      ["chunkSize", "1"],
    ];
    for (const [key, value] of cases) {
      const result = await runCli(BASE, { env: { [ENV[key]]: value } });
      expectExit(result, 2, `${ENV[key]}=${value}`);
      assertStringIncludes(result.stderr, ENV[key]);
    }
  },
});

/**
 * Every flag of `docker-image-pusher push`, run as a user would (a subprocess) against a real
 * registry, sometimes behind a recording, fault-injecting proxy. Each test fails if its flag is
 * ignored; the last test checks that every flag in `--help` has one. Environment variables and
 * their precedence are in `push_env_test.ts`; `--image` is in `push_roundtrip_test.ts`.
 */
import { ENV } from "../../src/cli/options.ts";
import { buildProgram } from "../../src/cli/program.ts";
import { VERSION } from "../../src/version.ts";
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { type CliOptions, lines, runCli } from "../helpers/cli.ts";
import { selfSignedCert } from "../helpers/tls.ts";
import { writeDockerSaveLegacy, writeOciArchive } from "../helpers/image_fixtures.ts";
import { startProxy, type TestProxy } from "../helpers/proxy.ts";
import { integrationTest, startRegistry, type TestRegistry } from "../helpers/registry.ts";

/** Four layers of 120–560 KB plus a config: five blobs, two of them over 256 KiB. */
const LAYERS = [120_000, 250_000, 400_000, 560_000];
const BLOBS = LAYERS.length + 1;
const KiB = 1024;
const PASSWORD = "pw-Zq8#flags";
const USER = { username: "alice", password: PASSWORD };

interface Archive extends AsyncDisposable {
  path: string;
}

async function makeArchive(): Promise<Archive> {
  const dir = await Deno.makeTempDir({ prefix: "dip-flags-" });
  await writeDockerSaveLegacy(`${dir}/app.tar`, [{ name: "app:1", layerSizes: LAYERS }]);
  return {
    path: `${dir}/app.tar`,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** `-r <origin>/<repo>:1 -f <archive> …args`. */
function push(origin: string, repo: string, archive: Archive, args: string[] = [], o?: CliOptions) {
  return runCli(["-r", `${origin}/${repo}:1`, "-f", archive.path, ...args], o);
}

const count = (log: { method: string }[], method: string) =>
  log.filter((r) => r.method === method).length;
const ofRepo = <T extends { path: string }>(log: T[], repo: string) =>
  log.filter((r) => r.path.startsWith(`/v2/${repo}/`));
const RESULT_LINE = (host: string, repo: string) =>
  new RegExp(`^${host.replaceAll(".", "\\.")}/${repo}:1@sha256:[0-9a-f]{64}\\n$`);

/** For each blob uploaded to `repo`: its size and how many PATCHes carried it. */
async function uploads(registry: TestRegistry, repo: string) {
  const log = ofRepo(await registry.requests(), repo);
  const patches = new Map<string, number>();
  for (const r of log) {
    if (r.method === "PATCH") patches.set(r.path, (patches.get(r.path) ?? 0) + 1);
  }
  const result: { size: number; patches: number }[] = [];
  for (const r of log.filter((r) => r.method === "PUT" && r.path.includes("/blobs/uploads/"))) {
    const digest = new URL(r.uri, "http://x").searchParams.get("digest")!;
    const size = (await registry.fetchBlob(repo, digest)).length;
    result.push({ size, patches: patches.get(r.path) ?? 0 });
  }
  assertEquals(result.length, BLOBS);
  return result;
}

// --image: push_roundtrip_test.ts. Help (-h) and version: the first tests below.
// --all, --multi-arch, --tag and --output: push_many_test.ts.
// --no-referrers: push_referrers_test.ts (it needs an archive that carries referrers).
const covered = new Set<string>([
  "--no-referrers",
  "--image",
  "-h",
  "--help",
  "-V",
  "--version",
  "--all",
  "--multi-arch",
  "--tag",
  "--output",
]);
const TOOLS = ["docker-registry"];

/** An integration test that proves `flags` are honoured. */
function flagTest(flags: string[], name: string, fn: () => Promise<void>, tools = TOOLS): void {
  for (const flag of flags) covered.add(flag);
  integrationTest(`${flags.join(", ")}: ${name}`, fn, { tools });
}

function pushOptions() {
  const program = buildProgram({ writeOut() {}, writeErr() {} }, async () => {});
  const command = program.commands.find((c) => c.name() === "push")!;
  return command.options;
}

// --- Help, version and usage errors: no registry needed. ---------------------------------------

Deno.test("--help, -h, push --help, help push: every flag and env var on stdout, exit 0", async () => {
  for (const args of [["--help"], ["-h"], ["push", "--help"], ["help", "push"]]) {
    const { code, stdout, stderr } = await runCli(args);
    assertEquals([code, stderr], [0, ""], args.join(" "));
    for (const option of pushOptions()) {
      for (const flag of [option.long, option.short]) {
        if (flag) assert(new RegExp(`(^|[ ,])${flag}\\b`, "m").test(stdout), `${args}: ${flag}`);
      }
    }
    for (const name of Object.values(ENV)) assertStringIncludes(stdout, name, args.join(" "));
  }
});

Deno.test("--version, -V, push --version: the version from src/version.ts, exit 0", async () => {
  for (const args of [["--version"], ["-V"], ["push", "--version"]]) {
    assertEquals(await runCli(args), {
      code: 0,
      signal: null,
      stdout: `${VERSION}\n`,
      stderr: "",
      hung: false,
    });
  }
});

Deno.test("invalid values and conflicting flags are usage errors (exit 2) naming the flag", async () => {
  const base = ["-r", "127.0.0.1:1/app:1", "-f", "/nonexistent/app.tar"];
  const cases: [string[], string][] = [
    [["--max-concurrent", "0"], "--max-concurrent"],
    [["--max-concurrent", "65"], "--max-concurrent"],
    [["--chunk-size", "1"], "--chunk-size"],
    [["--chunk-size", "lots"], "--chunk-size"],
    [["--timeout", "abc"], "--timeout"],
    [["-t", "0"], "--timeout"],
    [["--large-layer-threshold", "1XB"], "--large-layer-threshold"],
    [["--retry-attempts", "many"], "--retry-attempts"],
    [["--quiet", "--verbose"], "--quiet and --verbose"],
    [["--skip-existing", "--force-upload"], "--skip-existing and --force-upload"],
    [["-u", "a", "-p", "b", "--password-stdin"], "--password-stdin"],
    [["-p", "secret"], "without a username"],
    [["--no-such-flag"], "--no-such-flag"],
    // A flag and its --no- form undo each other: the user meant one of them.
    [["--chunked", "--no-chunked"], "--chunked and --no-chunked cannot be used together"],
    [["--no-chunked", "--chunked"], "--chunked and --no-chunked cannot be used together"],
    [["-t", "5x"], "--timeout"],
    // An empty tag is refused as -r …: is, not dropped (`--tag "$TAG"` with TAG unset).
    [["--tag", ""], "--tag is empty"],
    [["--tag", "-rc1"], "cannot start with . or -"],
  ];
  for (const [args, needle] of cases) {
    const { code, stdout, stderr } = await runCli([...base, ...args]);
    assertEquals([code, stdout], [2, ""], args.join(" "));
    assertStringIncludes(stderr, needle, args.join(" "));
    // The README promises a hint with every usage error.
    assert(/^Error: .+\nHint: .+\n$/.test(stderr), `${args.join(" ")}: ${stderr}`);
    assert(!stderr.includes("secret"), "usage errors never echo a password");
  }
  for (const args of [["-f", "x.tar"], ["-r", "127.0.0.1:1/app:1"]]) {
    const { code, stderr } = await runCli(args);
    assertEquals(code, 2);
    assertStringIncludes(stderr, args[0] === "-f" ? "--repository-url" : "--file");
  }
});

Deno.test("an unknown command word is refused as one, not as an argument to push", async () => {
  for (const word of ["fetch", "app.tar"]) {
    const { code, stdout, stderr } = await runCli([word, "-r", "127.0.0.1:1/app:1"]);
    assertEquals([code, stdout], [2, ""], word);
    assertEquals(lines(stderr)[0], `Error: Unknown command "${word}"`, stderr);
    assert(/^Hint: .*push/m.test(stderr), stderr);
  }
});

Deno.test("--multi-arch with an image whose config names no platform: which one, and a hint", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dip-flags-" });
  try {
    await writeDockerSaveLegacy(`${dir}/arm64.tar`, [{ name: "app:arm64", architecture: "arm64" }]);
    await writeDockerSaveLegacy(`${dir}/bare.tar`, [{
      name: "app:bare",
      os: "",
      architecture: "",
    }]);
    // Refused before the registry (none listens on port 1) is asked anything.
    const result = await runCli([
      "--multi-arch",
      ...["-r", "127.0.0.1:1/app:1", "-f", `${dir}/arm64.tar`, "-f", `${dir}/bare.tar`],
    ]);
    assertEquals([result.code, result.stdout], [2, ""], result.stderr);
    const [error, hint, ...rest] = lines(result.stderr);
    assertEquals(rest, [], result.stderr);
    assertStringIncludes(error!, `Error: Cannot join ${dir}/bare.tar (app:bare) into a `);
    assertStringIncludes(error!, "names no os and no architecture");
    assert(/^Hint: Rebuild the image for a platform \(docker build --platform /.test(hint!), hint);
    assertStringIncludes(hint!, "without --multi-arch");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("-t/--timeout and DOCKER_PUSHER_TIMEOUT take 30s, 5m, 2h and 1h30m", async () => {
  // The archive does not exist: reaching it (exit 1) proves the setting was accepted.
  const base = ["-r", "127.0.0.1:1/app:1", "-f", "/nonexistent/app.tar"];
  const cases: [string[], Record<string, string>][] = [
    [["-t", "5m"], {}],
    [["--timeout", "30s"], {}],
    [["-t", "1h30m"], {}],
    [[], { [ENV.timeout]: "2h" }],
  ];
  for (const [args, env] of cases) {
    const result = await runCli([...base, ...args], { env });
    assertEquals(result.code, 1, `${args.join(" ")} ${JSON.stringify(env)}: ${result.stderr}`);
    assertStringIncludes(result.stderr, "/nonexistent/app.tar");
  }
});

Deno.test("-r with a registry and no repository is a usage error, not a Docker Hub push", async () => {
  for (const target of ["127.0.0.1:5000", "localhost:5000", "registry.example.com:5000/"]) {
    const { code, stdout, stderr } = await runCli(["-r", target, "-f", "/nonexistent/app.tar"]);
    assertEquals([code, stdout], [2, ""], target);
    assertStringIncludes(stderr, "names a registry but no repository", target);
    assertStringIncludes(stderr, `Hint: Add the repository and tag: ${target.replace(/\/$/, "")}/`);
  }
});

Deno.test("--help and the README say the same about stdout: a line per tag pushed", async () => {
  const { stdout } = await runCli(["--help"]);
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  // Both are wrapped (help at the terminal's width): read them as running text.
  for (const text of [stdout, readme].map((t) => t.replace(/\s+/g, " "))) {
    assert(/stdout (has|carries) one line per tag pushed/.test(text), text.slice(0, 200));
    assert(/one push of one tag: exactly one line/.test(text), "a single push's one line");
    assert(/nothing with `?--dry-run`?\)/.test(text), "the dry run's empty stdout");
    assert(/`?--output json`? one\s+JSON document/.test(text), "the JSON report");
  }
  assertStringIncludes(stdout, "-t, --timeout <duration>");
  assertStringIncludes(stdout, "30s, 5m, 2h");
});

// --- Pushes. -----------------------------------------------------------------------------------

const TARGET = ["-r", "-f", "--repository-url", "--file"];
flagTest(TARGET, "stdout: only the result line; stderr: progress", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive();
  const implicit = await push(registry.url, "app", archive);
  assertEquals(implicit.code, 0, implicit.stderr);
  const { digest } = await registry.fetchManifest("app", "1");
  assertEquals(implicit.stdout, `${registry.host}/app:1@${digest}\n`);
  const err = lines(implicit.stderr);
  // The archive's name for the image, and where it goes: never just the archive's name.
  assertStringIncludes(err[0] ?? "", `Pushing app:1 → ${registry.host}/app:1: ${BLOBS} blobs, `);
  assertEquals(err.filter((l) => l.startsWith("Uploading ")).length, BLOBS, implicit.stderr);
  assertEquals(err.filter((l) => l.startsWith("Uploaded ")).length, BLOBS, implicit.stderr);
  assert(!implicit.stderr.includes(implicit.stdout.trim()), "the result line is on stdout only");
  assert(!err.some((l) => l.startsWith("HTTP ")), "no HTTP lines without --verbose");
  // The explicit subcommand behaves the same.
  const sub = ["--repository-url", `${registry.url}/sub:1`, "--file", archive.path];
  const explicit = await runCli(["push", ...sub]);
  assertEquals([explicit.code, explicit.stdout], [0, `${registry.host}/sub:1@${digest}\n`]);
});

flagTest(["--large-layer-threshold", "--chunk-size"], "pick chunked uploads", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive();
  const threshold = 256 * KiB;
  assertEquals((await push(registry.url, "mono", archive, ["--chunk-size", "64KiB"])).code, 0);
  for (const u of await uploads(registry, "mono")) assertEquals(u.patches, 0, "no PATCH below");

  const chunked = ["--large-layer-threshold", "256KiB"];
  assertEquals((await push(registry.url, "big", archive, chunked)).code, 0);
  for (const u of await uploads(registry, "big")) {
    assertEquals(u.patches, u.size >= threshold ? 1 : 0, `default 64 MiB chunks: ${u.size}`);
  }
  const small = [...chunked, "--chunk-size", "64KiB"];
  assertEquals((await push(registry.url, "small", archive, small)).code, 0);
  const sizes = await uploads(registry, "small");
  for (const u of sizes) {
    assertEquals(u.patches, u.size >= threshold ? Math.ceil(u.size / (64 * KiB)) : 0, `${u.size}`);
  }
  assertEquals(sizes.filter((u) => u.patches > 1).length, 2);
});

flagTest(["--max-concurrent"], "bounds the blob uploads in flight (default 3)", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive();
  const cases: [string[], number, number][] = [[["--max-concurrent", "1"], 1, 1], [
    ["--max-concurrent", "3"],
    2,
    3,
  ], [[], 2, 3]];
  for (const [i, [args, min, max]] of cases.entries()) {
    await using proxy = startProxy({
      upstream: registry.url,
      delay: { method: "PUT", path: /\/blobs\/uploads\//, ms: 300 },
    });
    const result = await push(proxy.url, `c${i}`, archive, args);
    assertEquals(result.code, 0, result.stderr);
    const inFlight = proxy.maxInFlight;
    assert(inFlight >= min && inFlight <= max, `${args}: ${inFlight} not in [${min}, ${max}]`);
  }
});

const MANIFEST_PUT = { method: "PUT", path: /\/manifests\// };
const manifestPuts = (proxy: TestProxy) =>
  proxy.requests.filter((r) => r.method === "PUT" && r.path.includes("/manifests/")).length;

flagTest(["--retry-attempts"], "retries temporary failures that many times", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive();
  // [flag value (none: the default, 3), 503s before the manifest PUT goes through, exit code]
  const cases: [string | undefined, number, number][] = [
    ["0", 2, 1],
    ["1", 2, 1],
    ["2", 2, 0],
    ["3", 2, 0],
    [undefined, 3, 0],
    [undefined, 4, 1],
  ];
  for (const [i, [attempts, failures, exit]] of cases.entries()) {
    const what = `--retry-attempts ${attempts ?? "(default)"} with ${failures} 503s`;
    // `Retry-After: 0` keeps the test quick; the backoff itself is unit-tested.
    const occurrences = Array.from({ length: failures }, (_, n) => n + 1);
    const faults = [{ ...MANIFEST_PUT, occurrences, status: 503, headers: { "Retry-After": "0" } }];
    await using proxy = startProxy({ upstream: registry.url, faults });
    const args = attempts === undefined ? [] : ["--retry-attempts", attempts];
    const result = await push(proxy.url, `r${i}`, archive, args);
    assertEquals(result.code, exit, `${what}: ${result.stderr}`);
    assertEquals(manifestPuts(proxy), Math.min(failures, Number(attempts ?? 3)) + 1, what);
    if (exit === 1) assertStringIncludes(result.stderr, "503");
  }
  // A 400 is final: exactly one request, however many retries are allowed.
  const bad = { ...MANIFEST_PUT, status: 400, body: '{"errors":[]}' };
  await using proxy = startProxy({ upstream: registry.url, faults: [bad] });
  const result = await push(proxy.url, "bad", archive, ["--retry-attempts", "3"]);
  assertEquals([result.code, manifestPuts(proxy)], [1, 1], result.stderr);
  assertStringIncludes(result.stderr, "400");
});

/** A TCP server on 127.0.0.1 that accepts connections and never answers. */
function silentServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) conns.push(conn);
    } catch { /* closed */ }
  })();
  const dropAll = () => {
    for (const conn of conns.splice(0)) {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  };
  return {
    origin: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    dropAll,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      dropAll();
    },
  };
}

flagTest(["-t", "--timeout"], "fails a request when no data moves", async () => {
  await using archive = await makeArchive();
  for (const flag of ["-t", "--timeout"]) {
    await using server = silentServer();
    // Ignoring the flag means the default of 2 h: cut connections after 15 s so the test ends.
    const watchdog = setTimeout(server.dropAll, 15_000);
    const started = Date.now();
    const result = await push(server.origin, "app", archive, [flag, "1", "--retry-attempts", "0"]);
    clearTimeout(watchdog);
    const seconds = (Date.now() - started) / 1000;
    assertEquals(result.code, 1, result.stderr);
    assertStringIncludes(result.stderr, "no data moved");
    assert(seconds < 8, `${flag} 1 took ${seconds} s`);
  }
}, []);

flagTest(["--skip-tls"], "accepts a self-signed certificate, with a warning", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive();
  await using proxy = startProxy({ upstream: registry.url, tls: await selfSignedCert() });
  const refused = await push(proxy.url, "app", archive);
  assertEquals([refused.code, refused.stdout], [1, ""], refused.stderr);
  assertStringIncludes(refused.stderr, "certificate");
  assertStringIncludes(refused.stderr, "--skip-tls");
  assertEquals(ofRepo(await registry.requests(), "app"), [], "nothing reached the registry");

  const result = await push(proxy.url, "app", archive, ["--skip-tls"]);
  assertEquals(result.code, 0, result.stderr);
  assert(RESULT_LINE(proxy.host, "app").test(result.stdout), result.stdout);
  const warnings = lines(result.stderr).filter((l) => l.includes("verification is disabled"));
  assertEquals(warnings.length, 1, result.stderr);
  assert(await registry.manifestExists("app", "1"));
}, [...TOOLS, "openssl"]);

flagTest(["--verbose"], "logs every HTTP request, without credentials", async () => {
  await using registry = await startRegistry({ htpasswd: USER });
  await using archive = await makeArchive();
  const login = ["--verbose", "-u", "alice"];
  const result = await push(registry.url, "app", archive, [...login, "--password-stdin"], {
    stdin: PASSWORD,
  });
  assertEquals(result.code, 0, result.stderr);
  assert(RESULT_LINE(registry.host, "app").test(result.stdout), result.stdout);
  const http = lines(result.stderr).filter((l) => l.startsWith("HTTP "));
  assert(http.some((l) => /^HTTP PUT \S+\/v2\/app\/manifests\/1 -> 201 /.test(l)), result.stderr);
  assert(http.some((l) => /^HTTP GET \S+\/v2\/ -> 401 /.test(l)), result.stderr);
  assertEquals(count(http.map((l) => ({ method: l.split(" ")[1]! })), "HEAD"), BLOBS);
  // -p and credentials in the URL: the password shows up nowhere.
  const secrets = [PASSWORD, btoa(`alice:${PASSWORD}`), encodeURIComponent(PASSWORD)];
  const withFlag = await push(registry.url, "p", archive, [...login, "-p", PASSWORD]);
  const inUrl = await runCli([
    ...["--verbose", "-f", archive.path, "-r"],
    `http://alice:${encodeURIComponent(PASSWORD)}@${registry.host}/u:1`,
  ]);
  for (const r of [result, withFlag, inUrl]) {
    assertEquals(r.code, 0, r.stderr);
    for (const s of secrets) assert(!`${r.stdout}${r.stderr}`.includes(s), `leaked ${s}`);
  }
}, [...TOOLS, "htpasswd"]);

flagTest(["-q", "--quiet"], "stderr is empty, stdout has the result line only", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive();
  for (const flag of ["-q", "--quiet"]) {
    const result = await push(registry.url, `q${flag.length}`, archive, [flag]);
    assertEquals([result.code, result.stderr], [0, ""]);
    assert(RESULT_LINE(registry.host, `q${flag.length}`).test(result.stdout), result.stdout);
  }
});

flagTest(["--dry-run"], "sends no POST, PATCH or PUT", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive();
  const result = await push(registry.url, "app", archive, ["--dry-run"]);
  assertEquals([result.code, result.stdout], [0, ""], result.stderr);
  assertStringIncludes(result.stderr, `Dry run: ${BLOBS} blob(s)`);
  const methods = new Set((await registry.requests()).map((r) => r.method));
  assertEquals([...methods].sort(), ["GET", "HEAD"]);
  assertEquals(await registry.listTags("app"), []);
});

flagTest(["--skip-existing", "--force-upload"], "skip or re-send blobs present", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive();
  const since = async (n: number) => (await registry.requests()).slice(n);
  assertEquals((await push(registry.url, "app", archive)).code, 0);
  for (const args of [[], ["--skip-existing"]]) {
    const before = (await registry.requests()).length;
    assertEquals((await push(registry.url, "app", archive, args)).code, 0);
    const log = await since(before);
    assertEquals(log.map((r) => r.method).sort(), ["GET", ...Array(BLOBS).fill("HEAD"), "PUT"]);
    assert(log.every((r) => r.status < 400), JSON.stringify(log));
  }
  const before = (await registry.requests()).length;
  const forced = await push(registry.url, "app", archive, ["--force-upload"]);
  assertEquals(forced.code, 0, forced.stderr);
  const log = await since(before);
  assertEquals([count(log, "HEAD"), count(log, "POST"), count(log, "PUT")], [0, BLOBS, BLOBS + 1]);
});

flagTest(["-u", "--username", "-p", "--password", "--password-stdin"], "log in", async () => {
  await using registry = await startRegistry({ htpasswd: USER });
  await using archive = await makeArchive();
  const warning = (stderr: string) =>
    lines(stderr).filter((l) => l.startsWith("Warning:") && l.includes("--password-stdin"));
  const cases: [string[], string | undefined, number, number][] = [
    [["-u", "alice", "-p", PASSWORD], undefined, 0, 1],
    [["--username", "alice", "--password", PASSWORD], undefined, 0, 1],
    [["-u", "alice", "--password-stdin"], `${PASSWORD}\n`, 0, 0],
    [["-u", "alice", "-p", "wrong"], undefined, 1, 1],
    [["-u", "mallory", "--password-stdin"], PASSWORD, 1, 0],
    [[], undefined, 1, 0],
  ];
  for (const [i, [args, stdin, exit, warnings]] of cases.entries()) {
    const result = await push(registry.url, `a${i}`, archive, args, stdin ? { stdin } : {});
    assertEquals(result.code, exit, `${args}: ${result.stderr}`);
    assertEquals(warning(result.stderr).length, warnings, `${args}: ${result.stderr}`);
    assertEquals(await registry.manifestExists(`a${i}`, "1"), exit === 0);
  }
}, [...TOOLS, "htpasswd"]);

const THRESHOLD = ["--large-layer-threshold", "256KiB"];
/** ECR-style: every PATCH answered 405 (more cases in tests/registry/quirks_test.ts). */
const REFUSE_PATCH = { refusePatch: 405 };

flagTest(["--chunked"], "no fallback to one PUT when chunks are refused", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive();
  await using proxy = startProxy({ upstream: registry.url, quirks: REFUSE_PATCH });
  // Without the flag, the 405 makes the push fall back to monolithic PUTs.
  const auto = await push(proxy.url, "auto", archive, THRESHOLD);
  assertEquals(auto.code, 0, auto.stderr);
  assertStringIncludes(auto.stderr, "405");
  const forced = await push(proxy.url, "forced", archive, [...THRESHOLD, "--chunked"]);
  assertEquals([forced.code, forced.stdout], [1, ""], forced.stderr);
  assertStringIncludes(forced.stderr, "--no-chunked");
  assertEquals(await registry.listTags("forced"), []);
});

flagTest(["--no-chunked"], "one PUT per blob, even over the threshold", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive();
  const args = [...THRESHOLD, "--chunk-size", "64KiB", "--no-chunked"];
  assertEquals((await push(registry.url, "app", archive, args)).code, 0);
  for (const u of await uploads(registry, "app")) assertEquals(u.patches, 0, `${u.size}`);
  // Not even a first PATCH to find out: a registry refusing them is never asked.
  await using proxy = startProxy({ upstream: registry.url, quirks: REFUSE_PATCH });
  const result = await push(proxy.url, "p", archive, [
    "--large-layer-threshold",
    "1",
    "--no-chunked",
  ]);
  assertEquals(result.code, 0, result.stderr);
  assertEquals(count(proxy.requests, "PATCH"), 0);
});

flagTest(["--mount-from"], "mounts blobs from another repository (201), uploads none", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive();
  assertEquals((await push(registry.url, "team/base", archive)).code, 0);
  const before = (await registry.requests()).length;
  const result = await push(registry.url, "team/app", archive, ["--mount-from", "team/base"]);
  assertEquals(result.code, 0, result.stderr);
  assert(RESULT_LINE(registry.host, "team/app").test(result.stdout), result.stdout);
  const log = ofRepo((await registry.requests()).slice(before), "team/app");
  const posts = log.filter((r) => r.method === "POST");
  assertEquals(posts.length, BLOBS);
  for (const post of posts) {
    assertEquals(post.status, 201, post.uri);
    assertEquals(new URL(post.uri, "http://x").searchParams.get("from"), "team/base");
  }
  assertEquals(count(log, "PATCH") + count(log, "PUT"), 1, "only the manifest PUT");
  const { digest } = await registry.fetchManifest("team/app", "1");
  assertEquals(result.stdout, `${registry.host}/team/app:1@${digest}\n`);
  // The mount is tried first: a blob it took was never announced as an upload.
  const said = lines(result.stderr);
  assertEquals(said.filter((l) => l.startsWith("Mounted ")).length, BLOBS, result.stderr);
  assertEquals(said.filter((l) => l.startsWith("Uploading ")), [], result.stderr);
});

flagTest(["--ca-cert"], "trusts a certificate the system doesn't", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive();
  // node's TLS takes a self-signed leaf as its own CA.
  const tls = await selfSignedCert();
  await using proxy = startProxy({ upstream: registry.url, tls });
  const dir = await Deno.makeTempDir({ prefix: "dip-ca-" });
  try {
    await Deno.writeTextFile(`${dir}/cert.pem`, tls.cert);
    const refused = await push(proxy.url, "app", archive);
    assertEquals([refused.code, refused.stdout], [1, ""], refused.stderr);
    assertStringIncludes(refused.stderr, "certificate");
    const result = await push(proxy.url, "app", archive, ["--ca-cert", `${dir}/cert.pem`]);
    assertEquals(result.code, 0, result.stderr);
    assert(RESULT_LINE(proxy.host, "app").test(result.stdout), result.stdout);
    assert(!result.stderr.includes("verification is disabled"), "verified, not skipped");
    assert(await registry.manifestExists("app", "1"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, [...TOOLS, "openssl"]);

/** Flips one byte in the middle of the archive's largest entry (the 560 KB layer). */
async function corruptLargestLayer(path: string): Promise<void> {
  const bytes = await Deno.readFile(path);
  let largest = { at: 0, size: 0 };
  for (let at = 0; at + 512 <= bytes.length;) {
    const header = bytes.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const size = parseInt(new TextDecoder().decode(header.subarray(124, 136)).trim() || "0", 8);
    if (size > largest.size) largest = { at: at + 512, size };
    at += 512 + Math.ceil(size / 512) * 512;
  }
  const middle = largest.at + Math.floor(largest.size / 2);
  bytes[middle] = bytes[middle]! ^ 0xff;
  await Deno.writeFile(path, bytes);
}

flagTest(["--verify"], "a corrupt layer fails the push before any upload", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive();
  await corruptLargestLayer(archive.path);
  // Without the flag, the other blobs go up before the bad one is caught.
  const late = await push(registry.url, "late", archive);
  assertEquals(late.code, 1, late.stderr);
  assertStringIncludes(late.stderr, "does not match its digest");
  assert(count(ofRepo(await registry.requests(), "late"), "POST") > 0, "uploads started");
  const early = await push(registry.url, "early", archive, ["--verify"]);
  assertEquals([early.code, early.stdout], [1, ""], early.stderr);
  assertStringIncludes(early.stderr, "does not match its digest");
  assertEquals(count(ofRepo(await registry.requests(), "early"), "POST"), 0, "nothing sent");
});

flagTest(["--no-resume"], "ignores saved chunked progress and saves none", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive();
  const state = await Deno.makeTempDir({ prefix: "dip-state-" });
  const saved = async () => {
    const files: string[] = [];
    try {
      for await (const e of Deno.readDir(`${state}/docker-image-pusher/uploads`)) {
        files.push(e.name);
      }
    } catch { /* no directory: nothing saved */ }
    return files;
  };
  // One blob at a time in 64 KiB chunks; the third PATCH (after 128 KiB confirmed) gets a 400.
  const args = [...THRESHOLD, "--chunk-size", "64KiB", "--max-concurrent", "1"];
  const interrupt = { method: "PATCH", occurrences: [3], status: 400 };
  const run = (proxy: TestProxy, repo: string, extra: string[] = []) =>
    push(proxy.url, repo, archive, [...args, "--retry-attempts", "0", ...extra], {
      env: { XDG_STATE_HOME: state },
    });
  const firstRange = (proxy: TestProxy, since: number) =>
    proxy.requests.slice(since).find((r) => r.method === "PATCH")?.headers.get("content-range");
  try {
    // Without the flag: the session is saved, and the next run continues it.
    await using resumed = startProxy({ upstream: registry.url, faults: [interrupt] });
    assertEquals((await run(resumed, "a")).code, 1);
    assertEquals((await saved()).length, 1, "progress saved");
    let since = resumed.requests.length;
    const again = await run(resumed, "a");
    assertEquals(again.code, 0, again.stderr);
    assertStringIncludes(again.stderr, "Resuming the saved upload");
    assertEquals(firstRange(resumed, since), `${128 * KiB}-${192 * KiB - 1}`);

    // With it: saved progress is ignored (the blob starts at 0)…
    await using ignored = startProxy({ upstream: registry.url, faults: [interrupt] });
    assertEquals((await run(ignored, "b")).code, 1);
    assertEquals((await saved()).length, 1, "progress saved");
    since = ignored.requests.length;
    const fresh = await run(ignored, "b", ["--no-resume"]);
    assertEquals(fresh.code, 0, fresh.stderr);
    assert(!fresh.stderr.includes("Resuming"), fresh.stderr);
    assertEquals(firstRange(ignored, since), `0-${64 * KiB - 1}`);

    // …and none is saved.
    await Deno.remove(`${state}/docker-image-pusher`, { recursive: true });
    await using unsaved = startProxy({ upstream: registry.url, faults: [interrupt] });
    assertEquals((await run(unsaved, "c", ["--no-resume"])).code, 1);
    assertEquals(await saved(), []);
  } finally {
    await Deno.remove(state, { recursive: true });
  }
});

flagTest(["--compression", "--compression-level"], "codec and level of the layers", async () => {
  await using registry = await startRegistry();
  await using archive = await makeArchive();
  const cases: [string[], string, number | undefined][] = [
    [["--compression", "gzip", "--compression-level", "1"], "rootfs.diff.tar.gzip", 4],
    [["--compression", "gzip", "--compression-level", "9"], "rootfs.diff.tar.gzip", 2],
    [["--compression", "zstd", "--compression-level", "auto"], "layer.v1.tar+zstd", undefined],
    [["--compression", "none"], "rootfs.diff.tar", undefined],
  ];
  for (const [i, [args, suffix, xfl]] of cases.entries()) {
    const what = args.join(" ");
    const result = await push(registry.url, `z${i}`, archive, args);
    assertEquals(result.code, 0, `${what}\n${result.stderr}`);
    const { json } = await registry.fetchManifest(`z${i}`, "1");
    const layers = json.layers as { mediaType: string; digest: string }[];
    for (const layer of layers) {
      assert(layer.mediaType.endsWith(suffix), `${what}: ${layer.mediaType}`);
      const head = (await registry.fetchBlob(`z${i}`, layer.digest)).subarray(0, 10);
      if (xfl !== undefined) assertEquals([head[0], head[1], head[8]], [0x1f, 0x8b, xfl], what);
    }
  }
});

integrationTest(
  "-r …@digest that the archive's manifest won't have: the hint's push works",
  async () => {
    await using registry = await startRegistry();
    const dir = await Deno.makeTempDir({ prefix: "dip-flags-" });
    try {
      // A two-platform index of uncompressed layers: compressing them would change every digest.
      const { images, indexDigest } = await writeOciArchive(`${dir}/multi.tar`, [
        { name: "app:amd64" },
        { name: "app:arm64", architecture: "arm64" },
      ], { compression: "none", index: { refName: "1" } });
      const arm64 = images[1]!.manifestDigest!;
      const elsewhere = `sha256:${"a".repeat(64)}`;
      const cases: [string, string[], string][] = [
        // Once, --compression none was suggested for a child's digest, and then refused.
        [arm64, [], `${arm64} is the linux/arm64 manifest of the archive's index ${indexDigest}`],
        [arm64, ["--compression", "none"], "or by a tag"],
        [elsewhere, [], `The archive's manifest is ${indexDigest}, not ${elsewhere}`],
      ];
      for (const [i, [digest, args, message]] of cases.entries()) {
        const repo = `hint${i}`;
        const target = ["-r", `${registry.url}/${repo}@${digest}`, "-f", `${dir}/multi.tar`];
        const refused = await runCli([...target, ...args]);
        assertEquals([refused.code, refused.stdout], [2, ""], refused.stderr);
        assertStringIncludes(refused.stderr, message);
        // Do what the hint says, and nothing else.
        const hint = lines(refused.stderr).find((l) => l.startsWith("Hint: "))!;
        const named = /@(sha256:[0-9a-f]{64})/.exec(hint)?.[1];
        assertEquals(named, indexDigest, hint);
        const asStored = hint.includes("--compression none") ? ["--compression", "none"] : [];
        const followed = await runCli([
          "-r",
          `${registry.url}/${repo}@${named}`,
          "-f",
          `${dir}/multi.tar`,
          ...args,
          ...asStored,
        ]);
        assertEquals(followed.code, 0, `${hint}\n${followed.stderr}`);
        assert(await registry.manifestExists(repo, indexDigest!));
        // What the user asked for, when it was the platform manifest, is there too.
        if (digest === arm64) assert(await registry.manifestExists(repo, arm64), hint);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { tools: TOOLS },
);

Deno.test("every flag in --help has a test above", () => {
  const missing = pushOptions().flatMap((o) => [o.long, o.short])
    .filter((flag): flag is string => flag !== undefined && !covered.has(flag));
  assertEquals(missing, []);
});

Deno.test("--help into a reader that quits early (head) is no error", async () => {
  for (const args of [["--help"], ["push", "--help"], ["pull", "--help"]]) {
    const program = buildProgram({
      writeOut() {
        throw new Deno.errors.BrokenPipe("Broken pipe (os error 32)");
      },
      writeErr() {},
    }, async () => {});
    const error = await program.parseAsync(args, { from: "user" }).then(() => undefined, (e) => e);
    // Commander's own "help shown" exit, not the broken pipe.
    assertEquals((error as { code?: string }).code, "commander.helpDisplayed", String(error));
  }
});

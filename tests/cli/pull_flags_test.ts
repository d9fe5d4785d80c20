/**
 * Every flag of `docker-image-pusher pull`, run as a user would, each test failing if its flag
 * is ignored; the last test checks that every flag in `pull --help` has one. Also the errors a
 * pull reports: one line, exit 1 (usage errors: exit 2 with a hint).
 */
import { buildProgram } from "../../src/cli/program.ts";
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { lines } from "../helpers/cli.ts";
import { startProxy } from "../helpers/proxy.ts";
import { selfSignedCert } from "../helpers/tls.ts";
import { integrationTest, startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { pull, seed, tempDir } from "../pull/_support.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const USER = { username: "alice", password: "pw-Zq8#pull" };
const LAYERS = [120_000, 250_000, 400_000, 30_000];
/** Covered elsewhere: -o everywhere; --platform in pull_roundtrip_test.ts; --no-resume in
 * pull_resume_test.ts. */
const covered = new Set<string>([
  "-o",
  "--output",
  "--platform",
  "--no-resume",
  // tests/cli/referrers_pull_test.ts
  "--no-referrers",
  // tests/cli/pull_json_test.ts
  "--json",
  "-h",
  "--help",
]);

function flagTest(
  flags: string[],
  name: string,
  fn: () => Promise<void>,
  tools = ["docker-registry"],
) {
  for (const flag of flags) covered.add(flag);
  integrationTest(`pull ${flags.join(", ")}: ${name}`, fn, { tools });
}

async function seeded(options: Parameters<typeof startRegistry>[0] = {}): Promise<TestRegistry> {
  const registry = await startRegistry(options);
  const login = options.htpasswd ? ["-u", USER.username, "-p", USER.password] : [];
  if (login.length === 0) {
    await seed(registry, "app:1", [{ name: "app:1", layerSizes: LAYERS }]);
  } else {
    // An authenticated registry: push with credentials.
    await using dir = await tempDir();
    const { writeOciArchive } = await import("../helpers/image_fixtures.ts");
    const { runCli } = await import("../helpers/cli.ts");
    await writeOciArchive(`${dir.path}/a.tar`, [{ name: "app:1", layerSizes: LAYERS }]);
    const r = await runCli(["-r", `${registry.url}/app:1`, "-f", `${dir.path}/a.tar`, ...login]);
    assertEquals(r.code, 0, r.stderr);
  }
  return registry;
}

flagTest(["-u", "--username", "-p", "--password", "--password-stdin"], "log in", async () => {
  await using registry = await seeded({ htpasswd: USER });
  await using dir = await tempDir();
  const source = `${registry.url}/app:1`;
  const refused = await pull([source, "-o", `${dir.path}/a.tar`]);
  assertEquals(refused.code, 1);
  assertEquals(lines(refused.stderr).length, 1, refused.stderr);
  assertStringIncludes(refused.stderr, "Authentication failed");
  const wrong = await pull([source, "-o", `${dir.path}/a.tar`, "-u", "alice", "-p", "nope"]);
  assertEquals(wrong.code, 1);
  assertStringIncludes(wrong.stderr, `Authentication failed for user "alice"`);
  for (
    const args of [["-u", "alice", "-p", USER.password], [
      "--username",
      "alice",
      "--password",
      USER.password,
    ]]
  ) {
    const ok = await pull([source, "-o", `${dir.path}/b.tar`, ...args]);
    assertEquals(ok.code, 0, ok.stderr);
    assertStringIncludes(ok.stderr, "prefer --password-stdin");
  }
  const stdin = await pull([source, "-o", `${dir.path}/c.tar`, "-u", "alice", "--password-stdin"], {
    stdin: `${USER.password}\n`,
  });
  assertEquals(stdin.code, 0, stdin.stderr);
  assert(!stdin.stderr.includes("prefer --password-stdin"));

  // The password comes in on standard input while the archive goes out on standard output.
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "pull", source, "-o", "-", "-u", "alice"].concat(
      "--password-stdin",
    ),
    env: { NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdinWriter = child.stdin.getWriter();
  await stdinWriter.write(new TextEncoder().encode(`${USER.password}\n`));
  await stdinWriter.close();
  const streamed = await child.output();
  assertEquals(streamed.code, 0, new TextDecoder().decode(streamed.stderr));
  await Deno.writeFile(`${dir.path}/d.tar`, streamed.stdout);
  assertEquals(await tarNames(`${dir.path}/d.tar`), await tarNames(`${dir.path}/c.tar`));
  assertEquals(
    await Deno.readFile(`${dir.path}/d.tar`),
    await Deno.readFile(`${dir.path}/c.tar`),
    "-o - writes the archive a file pull writes",
  );
}, ["docker-registry", "htpasswd", "tar"]);

/** The entry names of a tar file, as GNU tar lists them. */
async function tarNames(path: string): Promise<string[]> {
  const listed = await new Deno.Command("tar", { args: ["tf", path] }).output();
  assert(listed.success, new TextDecoder().decode(listed.stderr));
  return new TextDecoder().decode(listed.stdout).trim().split("\n");
}

flagTest(["--retry-attempts"], "retries a failing blob download that many times", async () => {
  await using registry = await seeded();
  await using dir = await tempDir();
  const faults = [{
    method: "GET",
    path: /\/blobs\//,
    occurrences: [1, 2],
    status: 503,
    headers: { "Retry-After": "0" },
  }];
  for (const [attempts, code] of [["1", 1], ["2", 0]] as const) {
    await using proxy = startProxy({ upstream: registry.url, faults });
    const result = await pull([
      `${proxy.url}/app:1`,
      "-o",
      `${dir.path}/r${attempts}.tar`,
      "--retry-attempts",
      attempts,
    ]);
    assertEquals(result.code, code, result.stderr);
  }
});

flagTest(["--max-concurrent"], "bounds the layer downloads in flight", async () => {
  await using registry = await seeded();
  await using dir = await tempDir();
  for (const [n, min, max] of [["1", 1, 1], ["3", 2, 3]] as const) {
    await using proxy = startProxy({
      upstream: registry.url,
      delay: { method: "GET", path: /\/blobs\//, ms: 300 },
    });
    const result = await pull([
      `${proxy.url}/app:1`,
      "-o",
      `${dir.path}/m${n}.tar`,
      "--max-concurrent",
      n,
    ]);
    assertEquals(result.code, 0, result.stderr);
    assert(proxy.maxInFlight >= min && proxy.maxInFlight <= max, `${n}: ${proxy.maxInFlight}`);
  }
});

flagTest(["-t", "--timeout"], "fails a request when no data moves", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) conns.push(conn);
    } catch { /* closed */ }
  })();
  await using dir = await tempDir();
  try {
    for (const flag of ["-t", "--timeout"]) {
      const started = Date.now();
      const origin = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
      const result = await pull([
        `${origin}/app:1`,
        "-o",
        `${dir.path}/t.tar`,
        flag,
        "1",
        "--retry-attempts",
        "0",
      ], {
        deadlineMs: 20_000,
      });
      assertEquals(result.code, 1, result.stderr);
      assertStringIncludes(result.stderr, "no data moved");
      assert(Date.now() - started < 8000);
    }
  } finally {
    listener.close();
    await accepting;
    for (const conn of conns) conn.close();
  }
}, []);

flagTest(["--skip-tls", "--ca-cert"], "trust a self-signed registry", async () => {
  await using registry = await seeded();
  await using dir = await tempDir();
  const tls = await selfSignedCert();
  await using proxy = startProxy({ upstream: registry.url, tls });
  await Deno.writeTextFile(`${dir.path}/ca.pem`, tls.cert);
  const refused = await pull([`${proxy.url}/app:1`, "-o", `${dir.path}/a.tar`]);
  assertEquals(refused.code, 1);
  assertStringIncludes(refused.stderr, "certificate");
  const skip = await pull([`${proxy.url}/app:1`, "-o", `${dir.path}/b.tar`, "--skip-tls"]);
  assertEquals(skip.code, 0, skip.stderr);
  assertStringIncludes(skip.stderr, "verification is disabled");
  const ca = await pull([
    `${proxy.url}/app:1`,
    "-o",
    `${dir.path}/c.tar`,
    "--ca-cert",
    `${dir.path}/ca.pem`,
  ]);
  assertEquals(ca.code, 0, ca.stderr);
}, ["docker-registry", "openssl"]);

flagTest(["--verbose", "-q", "--quiet"], "more or less on stderr", async () => {
  await using registry = await seeded();
  await using dir = await tempDir();
  const verbose = await pull([`${registry.url}/app:1`, "-o", `${dir.path}/v.tar`, "--verbose"]);
  assertEquals(verbose.code, 0, verbose.stderr);
  assertStringIncludes(verbose.stderr, "GET ");
  assertStringIncludes(verbose.stderr, "/v2/app/manifests/1");
  const plain = await pull([`${registry.url}/app:1`, "-o", `${dir.path}/p.tar`]);
  assert(!plain.stderr.includes("/v2/app/manifests/1"));
  for (const flag of ["-q", "--quiet"]) {
    const quiet = await pull([`${registry.url}/app:1`, "-o", `${dir.path}/q.tar`, flag]);
    assertEquals([quiet.code, quiet.stderr], [0, ""]);
    assertEquals(lines(quiet.stdout).length, 1);
  }
});

integrationTest("pull errors: unknown tag, repository, digest; usage errors", async () => {
  await using registry = await seeded();
  await using dir = await tempDir();
  const out = `${dir.path}/x.tar`;
  // distribution answers MANIFEST_UNKNOWN for a repository it does not have; others NAME_UNKNOWN.
  const cases: [string, string][] = [
    [`${registry.url}/app:nope`, "no tag nope (MANIFEST_UNKNOWN)"],
    [`${registry.url}/nothere:1`, "nothere:1 not found"],
    [`${registry.url}/app@sha256:${"0".repeat(64)}`, "no manifest sha256:000"],
  ];
  for (const [source, text] of cases) {
    const result = await pull([source, "-o", out]);
    assertEquals(result.code, 1, result.stderr);
    assertEquals(lines(result.stderr).length, 1, result.stderr);
    assertStringIncludes(result.stderr, text);
    assert(!(await Deno.stat(out).then(() => true, () => false)));
  }
  const usage: [string[], string][] = [
    [[`${registry.url}/app:1`], "-o/--output is required"],
    [["-o", out], "Missing required argument"],
    [[`${registry.url}/app:1`, "-o", out, "--platform", "linux"], "Invalid platform"],
  ];
  for (const [args, text] of usage) {
    const result = await pull(args);
    assertEquals(result.code, 2, result.stderr);
    assertStringIncludes(result.stderr, text);
    assertStringIncludes(result.stderr, "Hint:");
  }
});

Deno.test("every flag in pull --help has a test", () => {
  const program = buildProgram({ writeOut() {}, writeErr() {} }, async () => {});
  const command = program.commands.find((c) => c.name() === "pull")!;
  const flags = command.options.flatMap((o) => [o.short, o.long]).filter((f): f is string => !!f);
  assert(flags.length > 10);
  const missing = flags.filter((f) => !covered.has(f));
  assertEquals(missing, []);
});

integrationTest("pull -o - into a reader that stops early: one clear line, exit 1", async () => {
  await using registry = await seeded();
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const script = `set -o pipefail; "${Deno.execPath()}" run -A --quiet ${main} pull ` +
    `${registry.url}/app:1 -o - -q | head -c 100 > /dev/null`;
  const out = await new Deno.Command("bash", { args: ["-c", script], stderr: "piped" }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 1, stderr);
  assertEquals(
    stderr,
    "Error: Standard output was closed before the archive was written: the program reading " +
      "it stopped (see its own error)\n",
  );
});

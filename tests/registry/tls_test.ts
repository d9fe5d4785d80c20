/**
 * The CLI against a real HTTPS registry whose certificate comes from a private CA (as in-house
 * registries have): verification is on by default and its failure says how to fix it;
 * `--ca-cert` / `DOCKER_PUSHER_CA_CERT` trust the CA; `--skip-tls` skips verification and says
 * so once; all of it also from the single-file bundle. An `https://` target never falls back
 * to plain HTTP.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { type CliOptions, type CliResult, lines, runCli } from "../helpers/cli.ts";
import { run } from "../helpers/command.ts";
import { writeOciArchive } from "../helpers/image_fixtures.ts";
import {
  integrationTest,
  type LoggedRequest,
  startRegistry,
  type TestRegistry,
} from "../helpers/registry.ts";
import { pullBack } from "../helpers/skopeo.ts";
import { makeTestCa, type TestCa } from "../helpers/tls.ts";

const TOOLS = ["docker-registry", "openssl"];
const BUNDLE_SCRIPT = new URL("../../scripts/bundle.sh", import.meta.url).pathname;

/** A private CA, an HTTPS registry with a certificate it signed, and a small archive. */
interface Setup extends AsyncDisposable {
  ca: TestCa;
  registry: TestRegistry;
  dir: string;
  archive: string;
  configDigest: string;
  manifestDigest: string;
}

async function setup(): Promise<Setup> {
  const dir = await Deno.makeTempDir({ prefix: "dip-tls-" });
  try {
    const ca = await makeTestCa(dir);
    const archive = await writeOciArchive(`${dir}/app.tar`, [{ name: "app:1" }]);
    const registry = await startRegistry({
      tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert },
    });
    return {
      ca,
      registry,
      dir,
      archive: archive.path,
      configDigest: archive.images[0]!.configDigest,
      manifestDigest: archive.images[0]!.manifestDigest!,
      [Symbol.asyncDispose]: async () => {
        await registry.stop();
        await Deno.remove(dir, { recursive: true });
      },
    };
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}

/** Pushes the setup's archive to `https://<registry>/<repo>:1`, plus `args`. */
function push(
  s: Setup,
  repo: string,
  args: string[],
  options: CliOptions = {},
): Promise<CliResult> {
  return runCli(["-r", `https://${s.registry.host}/${repo}:1`, "-f", s.archive, ...args], options);
}

/** Exit 0, and stdout names the manifest the registry now serves for `repo:1`. */
async function assertPushed(s: Setup, repo: string, result: CliResult): Promise<void> {
  assertEquals(result.code, 0, `the push failed; stderr:\n${result.stderr}`);
  assertEquals(lines(result.stdout), [`${s.registry.host}/${repo}:1@${s.manifestDigest}`]);
  const served = await s.registry.fetchManifest(repo, "1");
  assertEquals(served.digest, s.manifestDigest);
}

/**
 * A clean failure with `code`: nothing on stdout, exactly one `Error:` line (perhaps a `Hint:`
 * after it), no stack trace. Returns the `Error:` line.
 */
function assertFailed(result: CliResult, code: number): string {
  const context = `exit ${result.code}\n--- stderr ---\n${result.stderr}`;
  assertEquals(result.code, code, context);
  assertEquals(result.stdout, "", context);
  assert(!/^\s+at /m.test(result.stderr) && !/uncaught/i.test(result.stderr), context);
  const all = lines(result.stderr);
  const errors = all.filter((line) => line.startsWith("Error: "));
  assertEquals(errors.length, 1, context);
  const at = all.indexOf(errors[0]!);
  assert(all.slice(at + 1).every((line) => line.startsWith("Hint: ")), context);
  assert(all.length - at <= 2, context);
  return errors[0]!;
}

/** The default refusal: the `Error:` line names the certificate problem and both ways out. */
function assertUntrusted(result: CliResult): void {
  const error = assertFailed(result, 1);
  assert(/certificate/i.test(error), error);
  assertStringIncludes(error, "--ca-cert");
  assertStringIncludes(error, "--skip-tls");
}

function isWrite(request: LoggedRequest): boolean {
  return ["POST", "PUT", "PATCH", "DELETE"].includes(request.method);
}

/** `--skip-tls` worked and said once, on stderr, that verification is off. */
function assertSkipWarnedOnce(result: CliResult): void {
  const warnings = lines(result.stderr).filter((line) => /verification/i.test(line));
  assertEquals(warnings.length, 1, `stderr:\n${result.stderr}`);
  assert(/disabled|off|skipp/i.test(warnings[0]!), warnings[0]);
}

integrationTest("tls: a certificate from an unknown CA is refused, nothing is sent", async () => {
  await using s = await setup();
  const result = await push(s, "default/app", []);
  assertUntrusted(result);
  assertEquals((await s.registry.requests()).filter(isWrite), []);
  assertEquals(await s.registry.listTags("default/app"), []);
}, { tools: TOOLS });

integrationTest("tls: --ca-cert and DOCKER_PUSHER_CA_CERT trust the private CA", async () => {
  await using s = await setup();
  const flag = await push(s, "ca/flag", ["--ca-cert", s.ca.caCert]);
  await assertPushed(s, "ca/flag", flag);
  assert(!/verification/i.test(flag.stderr), `stderr:\n${flag.stderr}`);
  const pulled = await pullBack(s.registry, "ca/flag", "1");
  assertEquals(pulled.configDigest, s.configDigest);

  const env = await push(s, "ca/env", [], { env: { DOCKER_PUSHER_CA_CERT: s.ca.caCert } });
  await assertPushed(s, "ca/env", env);
}, { tools: [...TOOLS, "skopeo"] });

integrationTest("tls: --skip-tls pushes and says once that verification is disabled", async () => {
  await using s = await setup();
  const result = await push(s, "skip/app", ["--skip-tls"]);
  await assertPushed(s, "skip/app", result);
  assertSkipWarnedOnce(result);
}, { tools: TOOLS });

integrationTest("tls: --ca-cert with a missing file is a usage error", async () => {
  await using s = await setup();
  const result = await push(s, "missing/app", ["--ca-cert", `${s.dir}/nonexistent.pem`]);
  assertFailed(result, 2);
  assertStringIncludes(result.stderr, "nonexistent.pem");
  assertEquals((await s.registry.requests()).filter(isWrite), []);
}, { tools: TOOLS });

integrationTest(
  "tls: the bundle refuses by default, honours --ca-cert and --skip-tls",
  async () => {
    await using s = await setup();
    const bundle = `${s.dir}/dip.js`;
    await run("bash", [BUNDLE_SCRIPT, bundle]);
    const script = { script: bundle };

    assertUntrusted(await push(s, "bundle/default", [], script));
    assertEquals((await s.registry.requests()).filter(isWrite), []);
    await assertPushed(
      s,
      "bundle/ca",
      await push(s, "bundle/ca", ["--ca-cert", s.ca.caCert], script),
    );
    const skipped = await push(s, "bundle/skip", ["--skip-tls"], script);
    await assertPushed(s, "bundle/skip", skipped);
    assertSkipWarnedOnce(skipped);
  },
  { tools: TOOLS },
);

integrationTest("tls: an https:// target never falls back to plain HTTP", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dip-tls-plain-" });
  try {
    const archive = await writeOciArchive(`${dir}/app.tar`, [{ name: "app:1" }]);
    await using registry = await startRegistry();
    const before = (await registry.requests()).length;
    for (const extra of [[], ["--skip-tls"]]) {
      const result = await runCli([
        "-r",
        `https://${registry.host}/x:1`,
        "-f",
        archive.path,
        ...extra,
      ]);
      assertFailed(result, 1);
    }
    // The TLS handshake fails before any HTTP request, so the access log gains nothing.
    assertEquals((await registry.requests()).slice(before), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { tools: ["docker-registry"] });

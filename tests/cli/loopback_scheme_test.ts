/**
 * A registry on this machine named without a scheme (`localhost:PORT/app:1`,
 * `127.0.0.1:PORT/app:1`), as docker and crane users write it: tried over HTTPS, reached over
 * plain HTTP if it does not speak TLS (said once under --verbose), in push, pull and
 * --mount-from. A TLS registry there stays on HTTPS (a certificate refused is not a reason to
 * drop TLS), and a host that is not loopback never falls back: `registry.test`, which only a
 * forwarding proxy resolves (to 127.0.0.1), so the client cannot tell it is local.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { type CliResult, lines, runCli } from "../helpers/cli.ts";
import { startForwardProxy } from "../helpers/forward_proxy.ts";
import {
  type FixtureArchive,
  writeDockerSaveLegacy,
  writeOciArchive,
} from "../helpers/image_fixtures.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import { makeTestCa } from "../helpers/tls.ts";
import { pull, skopeoConfig, tempDir } from "../pull/_support.ts";

const NOTICE = "does not speak TLS: using plain HTTP";

function assertOk(result: CliResult, what: string): void {
  assertEquals(result.code, 0, `${what} failed; stderr:\n${result.stderr}`);
}

/** The `HTTP …` lines of a --verbose run: the URLs it actually sent to. */
function httpLines(stderr: string): string[] {
  return lines(stderr).filter((line) => line.startsWith("HTTP "));
}

/** How often `text` occurs in `stderr`. */
function count(stderr: string, text: string): number {
  return stderr.split(text).length - 1;
}

/** One `Error:` line, exit 1, nothing on stdout; returns the line. */
function assertOneError(result: CliResult): string {
  assertEquals(result.code, 1, result.stderr);
  assertEquals(result.stdout, "");
  const errors = lines(result.stderr).filter((line) => line.startsWith("Error:"));
  assertEquals(errors.length, 1, result.stderr);
  return errors[0]!;
}

async function archive(dir: string): Promise<FixtureArchive> {
  return await writeOciArchive(`${dir}/app.tar`, [{ name: "app:1", layerSizes: [40_000] }]);
}

integrationTest(
  "push and pull with no scheme reach a plain-HTTP registry on localhost and 127.0.0.1",
  async () => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    const fixture = await archive(dir.path);
    const digest = fixture.images[0]!.manifestDigest!;
    const port = registry.host.split(":")[1]!;
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`]) {
      const pushed = await runCli(["-r", `${host}/app:1`, "-f", fixture.path, "--verbose"]);
      assertOk(pushed, `push to ${host}`);
      assertEquals(lines(pushed.stdout), [`${host}/app:1@${digest}`]);
      // Said once, however many requests and clients the run had.
      assertEquals(count(pushed.stderr, `Notice: ${host} ${NOTICE}`), 1, pushed.stderr);
      // Every request went over http, the first one included (its https try failed the
      // handshake); none is logged as https.
      const sent = httpLines(pushed.stderr);
      assert(sent.length > 3, pushed.stderr);
      for (const line of sent) assertStringIncludes(line, ` http://${host}/`);

      const pulled = await pull([`${host}/app:1`, "-o", `${dir.path}/${port}.tar`, "--verbose"]);
      assertOk(pulled, `pull from ${host}`);
      assertEquals(count(pulled.stderr, `Notice: ${host} ${NOTICE}`), 1, pulled.stderr);
      for (const line of httpLines(pulled.stderr)) assertStringIncludes(line, ` http://${host}/`);
      const config = await skopeoConfig(`docker-archive:${dir.path}/${port}.tar`);
      assertEquals(config.diffIds, [...fixture.images[0]!.layerDiffIds]);
    }
    assertEquals((await registry.fetchManifest("app", "1")).digest, digest);

    // Without --verbose the switch is not worth a line.
    const quiet = await runCli(["-r", `localhost:${port}/app:2`, "-f", fixture.path]);
    assertOk(quiet, "push without --verbose");
    assertEquals(count(quiet.stderr, NOTICE), 0, quiet.stderr);
  },
  { tools: ["docker-registry", "skopeo"] },
);

integrationTest("--mount-from and --all with no scheme on a loopback registry", async () => {
  await using registry = await startRegistry();
  await using dir = await tempDir();
  const fixture = await archive(dir.path);
  const port = registry.host.split(":")[1]!;
  assertOk(await runCli(["-r", `localhost:${port}/base:1`, "-f", fixture.path]), "seed");
  const before = (await registry.requests()).length;
  const mounted = await runCli([
    "-r",
    `localhost:${port}/other:1`,
    "-f",
    fixture.path,
    "--mount-from",
    "base",
  ]);
  assertOk(mounted, "push with --mount-from");
  const mounts = (await registry.requests()).slice(before)
    .filter((r) => r.method === "POST" && r.uri.includes("mount="));
  assert(mounts.length > 0 && mounts.every((r) => r.status === 201), JSON.stringify(mounts));

  // --all's target is read by another parser (a registry and a prefix); same rule.
  const save = await writeDockerSaveLegacy(`${dir.path}/save.tar`, [{ name: "tool:2" }]);
  const all = await runCli(["-r", `127.0.0.1:${port}/mirror`, "-f", save.path, "--all"]);
  assertOk(all, "push --all");
  assertEquals(await registry.listTags("mirror/library/tool"), ["2"]);
});

integrationTest(
  "a TLS registry on localhost with no scheme stays on HTTPS: --ca-cert, or a certificate error",
  async () => {
    await using dir = await tempDir();
    const ca = await makeTestCa(dir.path);
    await using registry = await startRegistry({
      tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert },
    });
    const fixture = await archive(dir.path);
    const target = `localhost:${registry.host.split(":")[1]}/app:1`;

    const pushed = await runCli([
      "-r",
      target,
      "-f",
      fixture.path,
      "--ca-cert",
      ca.caCert,
      "--verbose",
    ]);
    assertOk(pushed, "push over https");
    assertEquals(lines(pushed.stdout), [`${target}@${fixture.images[0]!.manifestDigest}`]);
    assertEquals(count(pushed.stderr, NOTICE), 0, pushed.stderr);
    const sent = httpLines(pushed.stderr);
    assert(sent.length > 3, pushed.stderr);
    for (const line of sent) assertStringIncludes(line, " https://localhost:");

    const pulled = await pull([
      target,
      "-o",
      `${dir.path}/a.tar`,
      "--ca-cert",
      ca.caCert,
      "--verbose",
    ]);
    assertOk(pulled, "pull over https");
    for (const line of httpLines(pulled.stderr)) assertStringIncludes(line, " https://localhost:");

    // Its certificate not trusted: the server speaks TLS, so no plain-HTTP try (which would
    // end in "Client sent an HTTP request to an HTTPS server" instead), but how to trust it.
    for (
      const args of [["-r", target, "-f", fixture.path], [
        "pull",
        target,
        "-o",
        `${dir.path}/x.tar`,
      ]]
    ) {
      const refused = await runCli([...args, "--verbose"]);
      const error = assertOneError(refused);
      assertStringIncludes(error, "TLS certificate verification failed");
      assertEquals(count(refused.stderr, NOTICE), 0, refused.stderr);
      assertEquals(count(refused.stderr, " http://localhost"), 0, refused.stderr);
    }
  },
  { tools: ["docker-registry", "openssl", "skopeo"] },
);

integrationTest(
  "a host that is not loopback, or an https:// URL, never falls back to plain HTTP",
  async () => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    const fixture = await archive(dir.path);
    const port = registry.host.split(":")[1]!;
    await using proxy = await startForwardProxy({ aliases: ["registry.test"] });
    // Both schemes through the proxy: a plain-HTTP try would get through it, and be seen.
    const env = { HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url };

    // The proxy does reach the registry as registry.test, over http when asked to.
    const explicit = await runCli(
      ["-r", `http://registry.test:${port}/app:1`, "-f", fixture.path],
      { env },
    );
    assertOk(explicit, "push to http://registry.test");
    assert(proxy.forwarded.length > 0, "the proxy forwarded nothing");
    proxy.forwarded.length = 0;
    proxy.connects.length = 0;

    const runs: [string, string[]][] = [
      ["push", ["-r", `registry.test:${port}/app:2`, "-f", fixture.path, "--verbose"]],
      ["pull", ["pull", `registry.test:${port}/app:1`, "-o", `${dir.path}/a.tar`, "--verbose"]],
    ];
    for (const [what, args] of runs) {
      const result = await runCli(args, { env });
      assertStringIncludes(assertOneError(result), "the server does not speak TLS here", what);
      assert(proxy.connects.includes(`registry.test:${port}`), `${what}: no CONNECT`);
      assertEquals(proxy.forwarded, [], `${what} fell back to plain HTTP`);
      assertEquals(count(result.stderr, NOTICE), 0, result.stderr);
    }

    // https:// written on a loopback registry is obeyed as written.
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`]) {
      const result = await runCli(["-r", `https://${host}/app:3`, "-f", fixture.path, "--verbose"]);
      assertStringIncludes(assertOneError(result), "the server does not speak TLS here", host);
      assertEquals(count(result.stderr, ` http://${host}`), 0, result.stderr);
    }
    assertEquals(await registry.listTags("app"), ["1"]);
  },
);

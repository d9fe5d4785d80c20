/**
 * The CLI behind a real forwarding proxy, against a real registry: plain-HTTP pushes go through
 * `HTTP_PROXY` as absolute-form requests, HTTPS pushes through `HTTPS_PROXY` as a CONNECT
 * tunnel (verified end to end with `--ca-cert`), and `NO_PROXY` sends them direct. The proxy
 * (`tests/helpers/forward_proxy.ts`) forwards only to 127.0.0.1.
 */
import { NAME } from "../../src/version.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { type CliResult, lines, runCli } from "../helpers/cli.ts";
import { startForwardProxy } from "../helpers/forward_proxy.ts";
import { writeOciArchive } from "../helpers/image_fixtures.ts";
import { startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { makeTestCa, type TestCa } from "../helpers/tls.ts";
import { integrationTest } from "../helpers/tools.ts";

/** A temporary directory with a one-image OCI archive (and, with `tls`, a test CA). */
async function withArchive(
  fn: (archive: string, manifestDigest: string, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dip-proxy-" });
  try {
    const archive = await writeOciArchive(`${dir}/app.tar`, [{ name: "app:1" }]);
    await fn(archive.path, archive.images[0]!.manifestDigest!, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Exit 0, stdout names the pushed manifest, and the registry serves it. */
async function assertPushed(
  result: CliResult,
  registry: TestRegistry,
  manifestDigest: string,
): Promise<void> {
  assertEquals(result.code, 0, `the push failed; stderr:\n${result.stderr}`);
  assertEquals(lines(result.stdout), [`${registry.host}/app:1@${manifestDigest}`]);
  assertEquals((await registry.fetchManifest("app", "1")).digest, manifestDigest);
}

integrationTest("HTTP_PROXY carries a plain-HTTP push as forwarded requests", async () => {
  await withArchive(async (archive, manifestDigest) => {
    await using registry = await startRegistry();
    await using proxy = await startForwardProxy();
    const result = await runCli(["-r", `http://${registry.host}/app:1`, "-f", archive], {
      env: { HTTP_PROXY: proxy.url },
    });
    await assertPushed(result, registry, manifestDigest);
    assertEquals(proxy.connects, []);
    const manifestPut = `PUT http://${registry.host}/v2/app/manifests/1`;
    assert(proxy.forwarded.includes(manifestPut), proxy.forwarded.join("\n"));
    assert(
      proxy.forwarded.some((r) => r.startsWith(`PUT http://${registry.host}/v2/app/blobs/`)),
      `no blob upload went through the proxy:\n${proxy.forwarded.join("\n")}`,
    );
    // Every request the registry saw from the CLI came through the proxy.
    const fromCli = (await registry.requests())
      .filter((r) => r.userAgent.startsWith(`${NAME}/`))
      .map((r) => `${r.method} http://${registry.host}${r.uri}`);
    assertEquals(fromCli.toSorted(), proxy.forwarded.toSorted());
  });
}, { tools: ["docker-registry"] });

integrationTest("NO_PROXY=127.0.0.1 sends the push direct", async () => {
  await withArchive(async (archive, manifestDigest) => {
    await using registry = await startRegistry();
    await using proxy = await startForwardProxy();
    const result = await runCli(["-r", `http://${registry.host}/app:1`, "-f", archive], {
      env: { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, NO_PROXY: "127.0.0.1" },
    });
    await assertPushed(result, registry, manifestDigest);
    assertEquals(proxy.forwarded, []);
    assertEquals(proxy.connects, []);
    assertEquals(proxy.connections(), 0);
  });
}, { tools: ["docker-registry"] });

integrationTest(
  "HTTPS_PROXY tunnels an HTTPS push with CONNECT, verified by --ca-cert",
  async () => {
    await withArchive(async (archive, manifestDigest, dir) => {
      const ca: TestCa = await makeTestCa(dir);
      await using registry = await startRegistry({
        tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert },
      });
      await using proxy = await startForwardProxy();
      const result = await runCli(
        ["-r", `https://${registry.host}/app:1`, "-f", archive, "--ca-cert", ca.caCert],
        { env: { HTTPS_PROXY: proxy.url, HTTP_PROXY: "http://127.0.0.1:9/" } },
      );
      await assertPushed(result, registry, manifestDigest);
      assert(proxy.connects.length >= 1, "no CONNECT reached the proxy");
      assertEquals([...new Set(proxy.connects)], [registry.host]);
      assertEquals(proxy.forwarded, [], "https requests must be tunnelled, not forwarded");
    });
  },
  { tools: ["docker-registry", "openssl"] },
);

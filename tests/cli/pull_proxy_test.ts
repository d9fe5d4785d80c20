/**
 * `pull` behind a real forwarding proxy (`tests/helpers/forward_proxy.ts`), against a real
 * registry: downloads go over fetch (`src/registry/fetch_transport.ts`), which must still take
 * the proxy from `HTTP_PROXY`/`HTTPS_PROXY` as `proxy_env.ts` reads them, tunnel HTTPS with
 * CONNECT and verify it with `--ca-cert`, and go direct for `NO_PROXY`.
 */
import { NAME } from "../../src/version.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { runCli } from "../helpers/cli.ts";
import { startForwardProxy } from "../helpers/forward_proxy.ts";
import { writeOciArchive } from "../helpers/image_fixtures.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import { makeTestCa } from "../helpers/tls.ts";
import { pull, seed, skopeoConfig, tempDir } from "../pull/_support.ts";

const LAYERS = [300_000, 70_000];

integrationTest("pull: HTTP_PROXY carries every request; NO_PROXY sends them direct", async () => {
  await using registry = await startRegistry();
  await using dir = await tempDir();
  const { fixture } = await seed(registry, "app:1", [{ name: "app:1", layerSizes: LAYERS }]);
  const seeding = (await registry.requests()).length;
  await using proxy = await startForwardProxy();
  const source = `http://${registry.host}/app:1`;
  const proxied = await pull([source, "-o", `${dir.path}/a.tar`], {
    env: { HTTP_PROXY: proxy.url },
  });
  assertEquals(proxied.code, 0, proxied.stderr);
  assertEquals((await skopeoConfig(`docker-archive:${dir.path}/a.tar`)).diffIds, [
    ...fixture.images[0]!.layerDiffIds,
  ]);
  const fromCli = (await registry.requests()).slice(seeding)
    .filter((r) => r.userAgent.startsWith(`${NAME}/`))
    .map((r) => `${r.method} http://${registry.host}${r.uri}`);
  assert(
    fromCli.filter((r) => r.includes("/blobs/")).length === 1 + LAYERS.length,
    fromCli.join("\n"),
  );
  assertEquals(fromCli.toSorted(), proxy.forwarded.toSorted());

  const direct = await pull([source, "-o", `${dir.path}/b.tar`], {
    env: { HTTP_PROXY: proxy.url, NO_PROXY: "127.0.0.1" },
  });
  assertEquals(direct.code, 0, direct.stderr);
  assertEquals(proxy.forwarded.length, fromCli.length);
}, { tools: ["docker-registry", "skopeo"] });

integrationTest("pull: HTTPS_PROXY tunnels with CONNECT, verified by --ca-cert", async () => {
  await using dir = await tempDir();
  const ca = await makeTestCa(dir.path);
  await using registry = await startRegistry({
    tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert },
  });
  const fixture = await writeOciArchive(`${dir.path}/seed.tar`, [
    { name: "app:1", layerSizes: LAYERS },
  ]);
  const target = `https://${registry.host}/app:1`;
  const seeded = await runCli(["-r", target, "-f", fixture.path, "--ca-cert", ca.caCert]);
  assertEquals(seeded.code, 0, seeded.stderr);
  await using proxy = await startForwardProxy();
  const result = await pull(
    [target, "-o", `${dir.path}/a.tar`, "--ca-cert", ca.caCert],
    { env: { HTTPS_PROXY: proxy.url, HTTP_PROXY: "http://127.0.0.1:9/" } },
  );
  assertEquals(result.code, 0, result.stderr);
  assertEquals((await skopeoConfig(`docker-archive:${dir.path}/a.tar`)).diffIds, [
    ...fixture.images[0]!.layerDiffIds,
  ]);
  assert(proxy.connects.length >= 1, "no CONNECT reached the proxy");
  assertEquals([...new Set(proxy.connects)], [registry.host]);
  assertEquals(proxy.forwarded, []);
}, { tools: ["docker-registry", "openssl", "skopeo"] });

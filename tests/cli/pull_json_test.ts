/**
 * `pull --json` (issue 18 item 5): stdout carries one JSON document in place of the
 * `<name>@<digest>` lines, listing each image and the referrers that came with it (a cosign
 * signature, an SBOM and the SBOM's signature); `--no-referrers` lists none; with `-o -` it is a
 * usage error before any request; a failure (an unknown image, an interruption) prints the
 * failure document, exit code unchanged.
 */
import { startThrottleProxy } from "../../scripts/throttle_proxy.ts";
import { ReferrersSupport } from "../../src/registry/referrers.ts";
import { startCli } from "../helpers/cli.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import {
  makeSigningKey,
  openClient,
  pushCosignSignature,
  pushSbomReferrer,
  pushSignatureReferrer,
  pushSmallImage,
} from "../helpers/signed_fixtures.ts";
import { pull, seed, tempDir } from "../pull/_support.ts";

interface ReferrerJson {
  digest: string;
  mediaType: string;
  size: number;
  kind: string;
  artifactType: string;
  subject: string;
  tag: string | null;
}

integrationTest(
  "pull --json: one document with the image and its referrers; --no-referrers lists none",
  async () => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    using opened = openClient(registry.url, "team/app");
    const support = new ReferrersSupport();
    const image = await pushSmallImage(opened.client, "1", { seed: "pull-json" });
    const key = await makeSigningKey(dir.path);
    const signature = await pushCosignSignature(opened.client, image, key);
    const sbom = await pushSbomReferrer(opened.client, image, { support });
    const sbomSignature = await pushSignatureReferrer(opened.client, sbom.manifest, key, {
      support,
    });
    const source = `${registry.url}/team/app:1`;
    const archive = `${dir.path}/app.tar`;

    const result = await pull([source, "-o", archive, "--json"]);
    assertEquals(result.code, 0, result.stderr);
    const document = JSON.parse(result.stdout);
    assertEquals(document.schemaVersion, 1);
    assertEquals(document.success, true);
    assertEquals(document.errors, []);
    assertEquals(document.archive.path, archive);
    assertEquals(document.archive.bytes, (await Deno.stat(archive)).size);
    assert(document.archive.downloaded > 0, result.stdout);
    assertEquals(document.images.length, 1);
    const [pulled] = document.images;
    assertEquals(pulled.source, source);
    assertEquals(pulled.digest, image.digest);
    assert(pulled.name.endsWith("team/app:1"), pulled.name);
    assertEquals(pulled.platforms.length, 1);
    // Progress stays on stderr: stdout is the document alone.
    assert(result.stderr.includes("Pulled 1 image(s)"), result.stderr);

    const byDigest = new Map<string, ReferrerJson>(
      (pulled.referrers as ReferrerJson[]).map((r) => [r.digest, r]),
    );
    assertEquals(byDigest.size, 3);
    const sig = byDigest.get(signature.manifest.digest)!;
    assertEquals(
      [sig.kind, sig.subject, sig.tag, sig.mediaType, sig.size],
      [
        "signature",
        image.digest,
        signature.tag,
        signature.manifest.mediaType,
        signature.manifest.size,
      ],
    );
    const spdx = byDigest.get(sbom.manifest.digest)!;
    assertEquals(
      [spdx.kind, spdx.subject, spdx.tag, spdx.artifactType, spdx.size],
      ["sbom", image.digest, null, "application/spdx+json", sbom.manifest.size],
    );
    const sbomSig = byDigest.get(sbomSignature.manifest.digest)!;
    assertEquals([sbomSig.kind, sbomSig.subject], ["signature", sbom.manifest.digest]);

    const bare = await pull([source, "-o", `${dir.path}/bare.tar`, "--json", "--no-referrers"]);
    assertEquals(bare.code, 0, bare.stderr);
    const plain = JSON.parse(bare.stdout);
    assertEquals(plain.images[0].digest, image.digest);
    assertEquals(plain.images[0].referrers, []);
  },
);

integrationTest("pull --json leaves URL credentials out of the source it lists", async () => {
  await using registry = await startRegistry();
  await using dir = await tempDir();
  using opened = openClient(registry.url, "app");
  const image = await pushSmallImage(opened.client, "1", { seed: "pull-json-url" });
  const host = registry.url.replace(/^https?:\/\//, "");
  const source = `http://bob:s3cret@${host}/app:1`;
  const result = await pull([source, "-o", `${dir.path}/a.tar`, "--json", "-q"]);
  assertEquals(result.code, 0, result.stderr);
  assert(!result.stdout.includes("s3cret"), result.stdout);
  const document = JSON.parse(result.stdout);
  assertEquals(document.images[0].source, `http://${host}/app:1`);
  assertEquals(document.images[0].digest, image.digest);
});

Deno.test("pull --json with -o - (or /dev/stdout): exit 2 before any request", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        connections++;
        conn.close();
      }
    } catch {
      // closed at the end of the test
    }
  })();
  const source = `127.0.0.1:${listener.addr.port}/app:1`;
  for (const output of ["-", "/dev/stdout"]) {
    const result = await pull([source, "-o", output, "--json"]);
    assertEquals(result.code, 2, result.stderr);
    assert(result.stderr.includes("--json cannot be used with -o"), result.stderr);
    assert(result.stderr.includes("Hint:"), result.stderr);
    const document = JSON.parse(result.stdout);
    assertEquals([document.success, document.errors[0].kind], [false, "usage"]);
  }
  assertEquals(connections, 0);
  listener.close();
  await accepting;
});

integrationTest("pull --json of an unknown image: the failure document, exit 1", async () => {
  await using registry = await startRegistry();
  await using dir = await tempDir();
  const archive = `${dir.path}/none.tar`;
  const result = await pull([`${registry.url}/nothing/here:1`, "-o", archive, "--json"]);
  assertEquals(result.code, 1, result.stderr);
  const document = JSON.parse(result.stdout);
  assertEquals(document.schemaVersion, 1);
  assertEquals(document.success, false);
  assertEquals(document.images, []);
  assertEquals(document.archive.path, archive);
  assertEquals(document.errors.length, 1);
  const [error] = document.errors;
  assertEquals([error.kind, error.status], ["registry", 404]);
  assert(error.message.length > 0 && result.stderr.includes(error.message), result.stderr);
});

integrationTest("pull --json interrupted (SIGINT): the failure document, exit 130", async () => {
  await using registry = await startRegistry();
  await using dir = await tempDir();
  await seed(registry, "big/app:1", [{ name: "big:1", layerSizes: [16 * 1024 * 1024] }], {
    compression: "none",
  });
  const [hostname, port] = registry.host.split(":") as [string, string];
  // 20 Mbit/s: the layer takes about 7 s, long enough to be interrupted in its middle.
  await using slow = await startThrottleProxy({
    target: { hostname, port: Number(port) },
    bitsPerSecond: 20e6,
  });
  const out = `${dir.path}/big.tar`;
  const running = startCli([
    "pull",
    `http://127.0.0.1:${slow.port}/big/app:1`,
    "-o",
    out,
    "--json",
  ]);
  const deadline = Date.now() + 30_000;
  // Interrupted once the download is under way (its state file is written at the start).
  while (!(await Deno.stat(`${out}.partial.json`).then(() => true, () => false))) {
    assert(Date.now() < deadline, "the download never started");
    await new Promise((r) => setTimeout(r, 50));
  }
  running.child.kill("SIGINT");
  const result = await running.done;
  assertEquals(result.code, 130, result.stderr);
  const document = JSON.parse(result.stdout);
  assertEquals([document.success, document.images], [false, []]);
  assertEquals(document.errors[0].kind, "interrupted");
});

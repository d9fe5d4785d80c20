/**
 * A referrer's blobs are more blobs of the pull's layout: killed in the middle of a large SBOM
 * layer, the rerun keeps what arrived and asks for the rest with one Range request, and the
 * archive is the one a pull in one go writes.
 */
import { startThrottleProxy } from "../../scripts/throttle_proxy.ts";
import { EMPTY_DESCRIPTOR } from "../../src/image/referrer.ts";
import { putManifestAnswer } from "../../src/registry/manifests.ts";
import { addToFallbackIndex } from "../../src/registry/referrers_fallback.ts";
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { startCli } from "../helpers/cli.ts";
import { seededBytes, sha256Digest } from "../helpers/random.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import { openClient, pushBlob, pushSmallImage } from "../helpers/signed_fixtures.ts";
import { blobGets } from "../pull/_resume_support.ts";
import { pull, tempDir } from "../pull/_support.ts";

const MiB = 1024 * 1024;

async function savedDone(path: string, digest: string): Promise<number> {
  try {
    const state = JSON.parse(await Deno.readTextFile(path)) as {
      blobs: Record<string, { done: number }>;
    };
    return state.blobs[digest]?.done ?? 0;
  } catch {
    return 0;
  }
}

integrationTest("SIGKILL in a referrer's blob: the rerun downloads only the rest", async () => {
  await using registry = await startRegistry();
  await using dir = await tempDir();
  using opened = openClient(registry.url, "team/app");
  const image = await pushSmallImage(opened.client, "1");
  // An SBOM of 48 MiB (a large SPDX document, say), an OCI 1.1 referrer of the image.
  const sbom = seededBytes("a large SBOM", 48 * MiB);
  const layer = await pushBlob(opened.client, sbom);
  await pushBlob(opened.client, new TextEncoder().encode("{}"));
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    artifactType: "application/spdx+json",
    config: EMPTY_DESCRIPTOR,
    layers: [{ mediaType: "application/spdx+json", digest: layer, size: sbom.length }],
    subject: { mediaType: image.mediaType, digest: image.digest, size: image.size },
  }));
  const digest = sha256Digest(manifest);
  await putManifestAnswer(
    opened.client,
    digest,
    "application/vnd.oci.image.manifest.v1+json",
    manifest,
  );
  await addToFallbackIndex(opened.client, image.digest, [{
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest,
    size: manifest.length,
    artifactType: "application/spdx+json",
  }]);

  const [hostname, port] = registry.host.split(":") as [string, string];
  // 200 Mbit/s: the SBOM takes about 2 s, long enough to be killed in its middle.
  await using slow = await startThrottleProxy({
    target: { hostname, port: Number(port) },
    bitsPerSecond: 200e6,
  });
  const out = `${dir.path}/app.tar`;
  const running = startCli(["pull", `http://127.0.0.1:${slow.port}/team/app:1`, "-o", out]);
  const deadline = Date.now() + 30_000;
  while ((await savedDone(`${out}.partial.json`, layer)) < 16 * MiB) {
    assert(Date.now() < deadline, "the SBOM never got 16 MiB in");
    await new Promise((r) => setTimeout(r, 50));
  }
  running.child.kill("SIGKILL");
  assertEquals((await running.done).signal, "SIGKILL");
  const done = await savedDone(`${out}.partial.json`, layer);
  assert(done >= 16 * MiB && done < sbom.length, `${done} saved`);
  const before = (await blobGets(registry, layer)).length;

  const rerun = await pull([`${registry.url}/team/app:1`, "-o", out]);
  assertEquals(rerun.code, 0, rerun.stderr);
  assertStringIncludes(rerun.stderr, "with 1 SBOM into");
  assertStringIncludes(rerun.stderr, "kept from the earlier run");
  // The killed GET may be logged only now (the registry notices late): one 200, cut short.
  const gets = (await blobGets(registry, layer)).slice(before);
  assertEquals(gets.filter((g) => g.status !== 200), [{ status: 206, bytes: sbom.length - done }]);
  assert(gets.length <= 2, JSON.stringify(gets));

  const whole = `${dir.path}/whole.tar`;
  assertEquals((await pull([`${registry.url}/team/app:1`, "-o", whole])).code, 0);
  assertEquals(sha256Digest(await Deno.readFile(out)), sha256Digest(await Deno.readFile(whole)));
}, { tools: ["docker-registry"] });

/**
 * The air-gap acceptance of issue 18: a signed image (cosign `.sig`, an SPDX SBOM referrer, a
 * signature of the SBOM) and a buildx index with attestations go from one registry to another
 * through `pull` → file → `push`, and through `pull -o - | push -f -`, with the push's default
 * settings. Everything a referrer names arrives under the same digest, the fallback indexes
 * list it, and the cosign signature still verifies with `openssl`. (A whole buildx index with
 * uncompressed layers keeps them as stored: the attestations' in-toto statements name its
 * platforms' digests.)
 */
import { fallbackTag } from "../../src/image/referrer.ts";
import { ReferrersSupport } from "../../src/registry/referrers.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { runCli } from "../helpers/cli.ts";
import { integrationTest, startRegistry, type TestRegistry } from "../helpers/registry.ts";
import {
  makeSigningKey,
  openClient,
  pushBuildxIndex,
  pushCosignSignature,
  pushSbomReferrer,
  pushSignatureReferrer,
  pushSmallImage,
  verifyCosignSignature,
} from "../helpers/signed_fixtures.ts";
import { pull, tempDir } from "../pull/_support.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** The digests a fallback tag lists; [] when there is none. */
async function listed(registry: TestRegistry, repo: string, subject: string): Promise<string[]> {
  if (!(await registry.manifestExists(repo, fallbackTag(subject)))) return [];
  const { json } = await registry.fetchManifest(repo, fallbackTag(subject));
  return (json as { manifests: { digest: string }[] }).manifests.map((m) => m.digest);
}

/** Copies `source` to `target` the two ways: through a file, and through a pipe. */
async function copyBothWays(
  source: string,
  targets: [string, string],
  dir: string,
  pullArgs: string[] = [],
): Promise<{ pulled: string; pushed: string }> {
  const archive = `${dir}/copy.tar`;
  const pulled = await pull([source, "-o", archive, ...pullArgs]);
  assertEquals(pulled.code, 0, pulled.stderr);
  const pushed = await runCli(["-r", targets[0], "-f", archive]);
  assertEquals(pushed.code, 0, pushed.stderr);
  const piped = await new Deno.Command("bash", {
    args: [
      "-c",
      `set -o pipefail; "${Deno.execPath()}" run -A --quiet "${MAIN}" pull "${source}" ` +
      `${pullArgs.join(" ")} -o - -q | "${Deno.execPath()}" run -A --quiet "${MAIN}" push -f - ` +
      `-r "${targets[1]}" -q`,
    ],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  assertEquals(piped.code, 0, new TextDecoder().decode(piped.stderr));
  return { pulled: pulled.stderr, pushed: pushed.stderr };
}

integrationTest(
  "a signed image crosses the gap: pull → file → push, and pull -o - | push -f -",
  async () => {
    await using source = await startRegistry();
    await using target = await startRegistry();
    await using dir = await tempDir();
    using opened = openClient(source.url, "team/app");
    const support = new ReferrersSupport();
    const image = await pushSmallImage(opened.client, "1", { layerSizes: [2000, 500] });
    const key = await makeSigningKey(dir.path);
    const signature = await pushCosignSignature(opened.client, image, key);
    const sbom = await pushSbomReferrer(opened.client, image, { support });
    const sbomSignature = await pushSignatureReferrer(opened.client, sbom.manifest, key, {
      support,
    });
    await copyBothWays(
      `${source.url}/team/app:1`,
      [`${target.url}/file/app:1`, `${target.url}/pipe/app:1`],
      dir.path,
    );
    for (const repo of ["file/app", "pipe/app"]) {
      assertEquals((await target.fetchManifest(repo, "1")).digest, image.digest, repo);
      const sig = await target.fetchManifest(repo, signature.tag);
      assertEquals(sig.digest, signature.manifest.digest, repo);
      const payload = await target.fetchBlob(repo, signature.manifest.blobs[1]!.digest);
      assert(
        await verifyCosignSignature(sig.bytes, payload, image.digest, key.publicKeyPath),
        `${repo}: the cosign signature does not verify`,
      );
      assertEquals(await listed(target, repo, image.digest), [sbom.manifest.digest], repo);
      assertEquals(
        await listed(target, repo, sbom.manifest.digest),
        [sbomSignature.manifest.digest],
        repo,
      );
      for (const m of [signature.manifest, sbom.manifest, sbomSignature.manifest]) {
        assertEquals((await target.fetchManifest(repo, m.digest)).digest, m.digest, repo);
        for (const blob of m.blobs) {
          assert(await target.blobExists(repo, blob.digest), `${repo}: ${blob.digest} is missing`);
        }
      }
    }
  },
  { tools: ["docker-registry", "openssl"] },
);

integrationTest(
  "a buildx index crosses the gap: the whole index, and one platform with its attestation (same digests)",
  async () => {
    await using source = await startRegistry();
    await using target = await startRegistry();
    await using dir = await tempDir();
    using opened = openClient(source.url, "team/multi");
    const buildx = await pushBuildxIndex(opened.client, "1");
    await copyBothWays(
      `${source.url}/team/multi:1`,
      [`${target.url}/file/multi:1`, `${target.url}/pipe/multi:1`],
      dir.path,
      ["--platform", "all"],
    );
    // The index's layers are uncompressed, and its attestations name its platforms: the
    // default push keeps them as stored, so every digest is the one they name.
    for (const repo of ["file/multi", "pipe/multi"]) {
      const pushed = await target.fetchManifest(repo, "1");
      assertEquals(pushed.digest, buildx.index.digest, repo);
      const index = pushed.json as {
        manifests: { digest: string; annotations?: Record<string, string> }[];
      };
      const attestations = index.manifests.filter((m) =>
        m.annotations?.["vnd.docker.reference.type"] === "attestation-manifest"
      );
      assertEquals(attestations.length, 2, repo);
      const platforms = index.manifests.filter((m) => !attestations.includes(m));
      for (const entry of attestations) {
        const subject = entry.annotations!["vnd.docker.reference.digest"]!;
        assert(platforms.some((p) => p.digest === subject), `${repo}: ${subject} is not listed`);
        assert(await target.manifestExists(repo, subject), `${repo}: ${subject} is missing`);
        assert(await target.manifestExists(repo, entry.digest), `${repo}: ${entry.digest}`);
      }
    }
    const [arm, armAttestation] = [buildx.platforms[1]!, buildx.attestations[1]!];
    const said = await copyBothWays(
      `${source.url}/team/multi:1`,
      [`${target.url}/file/arm:1`, `${target.url}/pipe/arm:1`],
      dir.path,
      ["--platform", "linux/arm64"],
    );
    // The attestation is one on both sides of the gap, not an "other artifact" on the push.
    assert(said.pulled.includes("with 1 attestation into"), said.pulled);
    assert(said.pushed.includes("Pushed with the image: 1 attestation"), said.pushed);
    for (const repo of ["file/arm", "pipe/arm"]) {
      assertEquals((await target.fetchManifest(repo, "1")).digest, arm.digest, repo);
      assertEquals(await listed(target, repo, arm.digest), [armAttestation.digest], repo);
      assertEquals(
        (await target.fetchManifest(repo, armAttestation.digest)).digest,
        armAttestation.digest,
      );
    }
  },
  { tools: ["docker-registry"] },
);

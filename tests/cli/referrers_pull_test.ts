/**
 * `pull` brings what refers to an image (issue 18): a cosign-style signature, an SPDX SBOM
 * (an OCI 1.1 referrer) and a signature of that SBOM, stored byte for byte and named in
 * `index.json` by the fallback tag and cosign tag they were found under; `--no-referrers`
 * leaves them out; `-o -` carries the same bytes; the referrers API is used where a registry
 * has it; `--platform` of a buildx index keeps that platform's attestation.
 */
import { fallbackTag } from "../../src/image/referrer.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { startReferrersRegistry } from "../helpers/referrers_registry.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import { skopeo } from "../helpers/skopeo.ts";
import { pull, readArchive, seed, tempDir } from "../pull/_support.ts";
import {
  describeManifest,
  putBuildxIndex,
  sha256,
  type SignedImage,
  signImage,
} from "./referrers_support.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const REF_NAME = "org.opencontainers.image.ref.name";

/** One file of the archive, read with GNU tar. */
async function member(archive: string, name: string): Promise<Uint8Array> {
  const out = await new Deno.Command("tar", { args: ["xOf", archive, name] }).output();
  assertEquals(out.code, 0, `${name} is not in ${archive}`);
  return out.stdout;
}

const blobName = (digest: string) => `blobs/sha256/${digest.slice("sha256:".length)}`;

/** Every manifest and blob of the three referrers, by digest. */
async function referrerDigests(
  registry: { fetchManifest(repo: string, ref: string): Promise<{ json: unknown }> },
  repo: string,
  signed: SignedImage,
): Promise<string[]> {
  const digests: string[] = [];
  for (const { digest } of [signed.signature, signed.sbom, signed.sbomSignature]) {
    const { json } = await registry.fetchManifest(repo, digest) as {
      json: { config: { digest: string }; layers: { digest: string }[] };
    };
    digests.push(digest, json.config.digest, ...json.layers.map((l) => l.digest));
  }
  return [...new Set(digests)];
}

integrationTest(
  "pull brings a cosign signature, an SBOM and the SBOM's signature; --no-referrers leaves them; -o - carries the same bytes",
  async () => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    await seed(registry, "team/app:1", [{ name: "app:1", layerSeeds: ["signed"] }]);
    const image = await describeManifest(registry.url, "team/app", "1");
    const signed = await signImage(registry.url, "team/app", image, true);
    const source = `${registry.url}/team/app:1`;

    const archive = `${dir.path}/app.tar`;
    const pulled = await pull([source, "-o", archive]);
    assertEquals(pulled.code, 0, pulled.stderr);
    assert(
      pulled.stderr.includes("Pulled 1 image(s) with 2 signatures, 1 SBOM into"),
      pulled.stderr,
    );
    const { names, index, manifest } = await readArchive(archive);
    // index.json: the image, the two fallback-tag lists, the cosign tag.
    const byName = new Map(index.manifests.map((m) => [m.annotations?.[REF_NAME], m.digest]));
    assertEquals(index.manifests.length, 4, JSON.stringify(index));
    assertEquals(byName.get("1"), image.digest);
    assertEquals(byName.get(`${fallbackTag(image.digest)}.sig`), signed.signature.digest);
    for (
      const [subject, referrer] of [
        [image.digest, signed.sbom],
        [signed.sbom.digest, signed.sbomSignature],
      ] as const
    ) {
      const list = byName.get(fallbackTag(subject));
      assert(list !== undefined, `no fallback-tag entry for ${subject}`);
      const listed = JSON.parse(new TextDecoder().decode(await member(archive, blobName(list))));
      assertEquals(listed.manifests.map((m: { digest: string }) => m.digest), [referrer.digest]);
      assertEquals(listed.manifests[0].artifactType, referrer.artifactType);
    }
    // docker load's manifest.json knows only the image.
    assertEquals(manifest.length, 1);
    // Every referrer manifest and blob, byte for byte.
    for (const digest of await referrerDigests(registry, "team/app", signed)) {
      assertEquals(sha256(await member(archive, blobName(digest))), digest);
    }
    // skopeo's oci-archive: reads the signature under its cosign tag.
    const raw = await skopeo([
      "inspect",
      "--raw",
      `oci-archive:${archive}:${fallbackTag(image.digest)}.sig`,
    ]);
    assertEquals(sha256(new TextEncoder().encode(raw)), signed.signature.digest);

    // -o -: the same archive, byte for byte.
    const streamed = await new Deno.Command("sh", {
      args: ["-c", `"${Deno.execPath()}" run -A --quiet "${MAIN}" pull "${source}" -o - -q`],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    assertEquals(streamed.code, 0, new TextDecoder().decode(streamed.stderr));
    assertEquals(sha256(streamed.stdout), sha256(await Deno.readFile(archive)));

    const plain = `${dir.path}/plain.tar`;
    const without = await pull([source, "-o", plain, "--no-referrers"]);
    assertEquals(without.code, 0, without.stderr);
    assert(!without.stderr.includes(" with "), without.stderr);
    const bare = await readArchive(plain);
    assertEquals(bare.index.manifests.map((m) => m.digest), [image.digest]);
    const extra = names.filter((n) => !bare.names.includes(n));
    assertEquals(
      extra.sort(),
      [
        ...(await referrerDigests(registry, "team/app", signed)),
        byName.get(fallbackTag(image.digest))!,
        byName.get(fallbackTag(signed.sbom.digest))!,
      ].map(blobName).sort(),
    );
  },
  { tools: ["docker-registry", "skopeo"] },
);

integrationTest("pull asks the referrers API where the registry has it", async () => {
  await using double = await startReferrersRegistry();
  await using dir = await tempDir();
  await seed(
    double.registry!,
    "team/app:1",
    [{ name: "app:1", layerSeeds: ["api"] }],
  );
  const image = await describeManifest(double.url, "team/app", "1");
  // Through the double: it records the referrers from their subject; no fallback tags.
  const signed = await signImage(double.url, "team/app", image, false);
  double.requests.length = 0;
  const archive = `${dir.path}/app.tar`;
  const pulled = await pull([`${double.url}/team/app:1`, "-o", archive]);
  assertEquals(pulled.code, 0, pulled.stderr);
  assert(pulled.stderr.includes("with 2 signatures, 1 SBOM"), pulled.stderr);
  const asked = double.requests.map((r) => `${r.method} ${r.path}`);
  for (const subject of [image.digest, signed.sbom.digest]) {
    assert(asked.includes(`GET /v2/team/app/referrers/${subject}`), asked.join("\n"));
    assert(
      !asked.some((a) => a.endsWith(`/manifests/${fallbackTag(subject)}`)),
      `the fallback tag was read: ${asked.join("\n")}`,
    );
  }
  const { index } = await readArchive(archive);
  const listed = index.manifests.find((m) =>
    m.annotations?.[REF_NAME] === fallbackTag(image.digest)
  );
  assert(listed !== undefined, JSON.stringify(index));
  const list = JSON.parse(new TextDecoder().decode(await member(archive, blobName(listed.digest))));
  assertEquals(list.manifests.map((m: { digest: string }) => m.digest), [signed.sbom.digest]);
}, { tools: ["docker-registry"] });

integrationTest(
  "pull --platform of a buildx index keeps that platform's attestation as its referrer",
  async () => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    const buildx = await putBuildxIndex(registry.url, "team/multi", "1", "attest");
    const archive = `${dir.path}/arm.tar`;
    const pulled = await pull([
      `${registry.url}/team/multi:1`,
      "--platform",
      "linux/arm64",
      "-o",
      archive,
    ]);
    assertEquals(pulled.code, 0, pulled.stderr);
    assert(pulled.stderr.includes("with 1 attestation"), pulled.stderr);
    const { index, names } = await readArchive(archive);
    const [arm, armAttestation] = [buildx.platforms[1]!, buildx.attestations[1]!];
    assertEquals(index.manifests[0]!.digest, arm.digest);
    const listed = index.manifests.find((m) =>
      m.annotations?.[REF_NAME] === fallbackTag(arm.digest)
    );
    assert(listed !== undefined, JSON.stringify(index));
    const list = JSON.parse(
      new TextDecoder().decode(await member(archive, blobName(listed.digest))),
    );
    assertEquals(list.manifests.length, 1);
    assertEquals(list.manifests[0].digest, armAttestation.digest);
    assertEquals(list.manifests[0].annotations["vnd.docker.reference.digest"], arm.digest);
    assert(names.includes(blobName(armAttestation.digest)));
    // The other platform's attestation stays behind with its platform.
    assert(!names.includes(blobName(buildx.attestations[0]!.digest)));

    // The whole index: attestations come as the index's children, never as platforms.
    const all = `${dir.path}/all.tar`;
    const whole = await pull([`${registry.url}/team/multi:1`, "--platform", "all", "-o", all]);
    assertEquals(whole.code, 0, whole.stderr);
    const stored = await readArchive(all);
    assertEquals(stored.index.manifests.map((m) => m.digest), [buildx.index.digest]);
    for (const attestation of buildx.attestations) {
      assert(stored.names.includes(blobName(attestation.digest)));
    }
    // --platform unknown/unknown never picks an attestation.
    const unknown = await pull([
      `${registry.url}/team/multi:1`,
      "--platform",
      "unknown/unknown",
      "-o",
      `${dir.path}/none.tar`,
    ]);
    assertEquals(unknown.code, 1, unknown.stderr);
    assert(unknown.stderr.includes("linux/amd64, linux/arm64"), unknown.stderr);
  },
  { tools: ["docker-registry"] },
);

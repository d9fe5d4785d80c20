/**
 * `pull` brings what refers to an image (issue 18): a cosign-style signature, an SPDX SBOM
 * (an OCI 1.1 referrer) and a signature of that SBOM, stored byte for byte and named in
 * `index.json` by the fallback tag and cosign tag they were found under; `--no-referrers`
 * leaves them out; `-o -` carries the same bytes; the referrers API is used where a registry
 * has it; `--platform` of a buildx index keeps that platform's attestation.
 */
import { fallbackTag } from "../../src/image/referrer.ts";
import { ReferrersSupport } from "../../src/registry/referrers.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { sha256Digest } from "../helpers/random.ts";
import { startReferrersRegistry } from "../helpers/referrers_registry.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
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
import { skopeo } from "../helpers/skopeo.ts";
import { pull, readArchive, tempDir } from "../pull/_support.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const REF_NAME = "org.opencontainers.image.ref.name";

/** One file of the archive, read with GNU tar. */
async function member(archive: string, name: string): Promise<Uint8Array> {
  const out = await new Deno.Command("tar", { args: ["xOf", archive, name] }).output();
  assertEquals(out.code, 0, `${name} is not in ${archive}`);
  return out.stdout;
}

const blobName = (digest: string) => `blobs/sha256/${digest.slice("sha256:".length)}`;
const parse = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes));

/**
 * `repo:1`, signed cosign's old way, with an SPDX SBOM referrer and a signature of the SBOM:
 * through the double, its API lists them; on distribution, the fallback tags do.
 */
async function signedImage(url: string, repo: string, keyDir: string) {
  using opened = openClient(url, repo);
  const support = new ReferrersSupport();
  const image = await pushSmallImage(opened.client, "1", { seed: `${url}/${repo}` });
  const key = await makeSigningKey(keyDir);
  const signature = await pushCosignSignature(opened.client, image, key);
  const sbom = await pushSbomReferrer(opened.client, image, { support });
  const sbomSignature = await pushSignatureReferrer(opened.client, sbom.manifest, key, {
    support,
  });
  const manifests = [signature.manifest, sbom.manifest, sbomSignature.manifest];
  return { image, key, signature, sbom, sbomSignature, manifests };
}

integrationTest(
  "pull brings a cosign signature, an SBOM and the SBOM's signature; --no-referrers leaves them; -o - carries the same bytes",
  async () => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    const signed = await signedImage(registry.url, "team/app", dir.path);
    const { image, signature, sbom, sbomSignature } = signed;
    const source = `${registry.url}/team/app:1`;

    const archive = `${dir.path}/app.tar`;
    const pulled = await pull([source, "-o", archive]);
    assertEquals(pulled.code, 0, pulled.stderr);
    assert(
      pulled.stderr.includes("Pulled 1 image(s) with 2 signatures, 1 SBOM into"),
      pulled.stderr,
    );
    // The plan counts what is downloaded: configs and referrers' blobs too, not only layers.
    assert(/Pulling \d+ blob\(s\), /.test(pulled.stderr), pulled.stderr);
    // Not a terminal: a line for each referrer found.
    const short = (digest: string) => digest.slice(7, 19);
    assert(
      pulled.stderr.includes(
        `Found SBOM ${short(sbom.manifest.digest)} (application/spdx+json) of ${
          short(image.digest)
        }`,
      ),
      pulled.stderr,
    );
    assert(
      pulled.stderr.includes(
        `Found signature ${short(signature.manifest.digest)} (${signature.tag}) of ${
          short(image.digest)
        }`,
      ),
      pulled.stderr,
    );
    const { names, index, manifest } = await readArchive(archive);
    // index.json: the image, the two fallback-tag lists, the cosign tag.
    const byName = new Map(index.manifests.map((m) => [m.annotations?.[REF_NAME], m.digest]));
    assertEquals(index.manifests.length, 4, JSON.stringify(index));
    assertEquals(byName.get("1"), image.digest);
    assertEquals(byName.get(signature.tag), signature.manifest.digest);
    for (const [subject, referrer] of [[image, sbom], [sbom.manifest, sbomSignature]] as const) {
      const list = byName.get(fallbackTag(subject.digest));
      assert(list !== undefined, `no fallback-tag entry for ${subject.digest}`);
      const listed = parse(await member(archive, blobName(list)));
      assertEquals(listed.manifests, [referrer.descriptor]);
    }
    // docker load's manifest.json knows only the image.
    assertEquals(manifest.length, 1);
    // Every referrer manifest and blob, byte for byte.
    for (const { bytes, blobs } of signed.manifests) {
      for (const content of [{ bytes }, ...blobs]) {
        assertEquals(await member(archive, blobName(sha256Digest(content.bytes))), content.bytes);
      }
    }
    // The signatures still verify, from the archive's bytes alone.
    for (const [sig, subject] of [[signature, image], [sbomSignature, sbom.manifest]] as const) {
      const bytes = await member(archive, blobName(sig.manifest.digest));
      const payload = await member(archive, blobName(sha256Digest(sig.payload)));
      assert(
        await verifyCosignSignature(bytes, payload, subject.digest, signed.key.publicKeyPath),
        `the signature of ${subject.digest} does not verify`,
      );
    }
    // skopeo's oci-archive: reads the signature under its cosign tag.
    const raw = await skopeo(["inspect", "--raw", `oci-archive:${archive}:${signature.tag}`]);
    assertEquals(sha256Digest(new TextEncoder().encode(raw)), signature.manifest.digest);

    // -o -: the same archive, byte for byte.
    const streamed = await new Deno.Command("sh", {
      args: ["-c", `"${Deno.execPath()}" run -A --quiet "${MAIN}" pull "${source}" -o - -q`],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    assertEquals(streamed.code, 0, new TextDecoder().decode(streamed.stderr));
    assertEquals(sha256Digest(streamed.stdout), sha256Digest(await Deno.readFile(archive)));

    const plain = `${dir.path}/plain.tar`;
    const without = await pull([source, "-o", plain, "--no-referrers"]);
    assertEquals(without.code, 0, without.stderr);
    assert(!without.stderr.includes(" with "), without.stderr);
    const bare = await readArchive(plain);
    assertEquals(bare.index.manifests.map((m) => m.digest), [image.digest]);
    const extra = names.filter((n) => !bare.names.includes(n));
    const expected = new Set([
      ...signed.manifests.flatMap((m) => [m.digest, ...m.blobs.map((b) => b.digest)]),
      byName.get(fallbackTag(image.digest))!,
      byName.get(fallbackTag(sbom.manifest.digest))!,
    ]);
    assertEquals(extra.sort(), [...expected].map(blobName).sort());
  },
  { tools: ["docker-registry", "skopeo", "openssl"] },
);

integrationTest("pull asks the referrers API where the registry has it", async () => {
  await using double = await startReferrersRegistry();
  await using dir = await tempDir();
  const { image, sbom } = await signedImage(double.url, "team/app", dir.path);
  double.requests.length = 0;
  const archive = `${dir.path}/app.tar`;
  const pulled = await pull([`${double.url}/team/app:1`, "-o", archive]);
  assertEquals(pulled.code, 0, pulled.stderr);
  assert(pulled.stderr.includes("with 2 signatures, 1 SBOM"), pulled.stderr);
  const asked = double.requests.map((r) => `${r.method} ${r.path}`);
  for (const subject of [image.digest, sbom.manifest.digest]) {
    assert(asked.includes(`GET /v2/team/app/referrers/${subject}`), asked.join("\n"));
    assert(
      !asked.some((a) => a.endsWith(`/manifests/${fallbackTag(subject)}`)),
      `the fallback tag was read: ${asked.join("\n")}`,
    );
  }
  // The cosign tags are probed with HEAD only (Docker Hub counts GETs against its limit).
  assert(!asked.some((a) => a.startsWith("GET ") && a.endsWith(".att")), asked.join("\n"));
  const { index } = await readArchive(archive);
  const listed = index.manifests.find((m) =>
    m.annotations?.[REF_NAME] === fallbackTag(image.digest)
  );
  assert(listed !== undefined, JSON.stringify(index));
  const list = parse(await member(archive, blobName(listed.digest)));
  assertEquals(list.manifests.map((m: { digest: string }) => m.digest), [sbom.manifest.digest]);
}, { tools: ["docker-registry", "openssl"] });

integrationTest(
  "pull --platform of a buildx index keeps that platform's attestation as its referrer",
  async () => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    using opened = openClient(registry.url, "team/multi");
    const buildx = await pushBuildxIndex(opened.client, "1");
    // cosign signs the digest the tag names: the index's, which one platform leaves behind.
    await pushCosignSignature(opened.client, buildx.index, await makeSigningKey(dir.path));
    const archive = `${dir.path}/arm.tar`;
    const source = `${registry.url}/team/multi:1`;
    const pulled = await pull([source, "--platform", "linux/arm64", "-o", archive]);
    assertEquals(pulled.code, 0, pulled.stderr);
    assert(pulled.stderr.includes("with 1 attestation into"), pulled.stderr);
    assert(
      pulled.stderr.includes(
        `Warning: 1 referrer(s) of the index ${buildx.index.digest} (${registry.host}/team/multi:1) stay behind`,
      ),
      pulled.stderr,
    );
    const { index, names } = await readArchive(archive);
    const [arm, armAttestation] = [buildx.platforms[1]!, buildx.attestations[1]!];
    assertEquals(index.manifests[0]!.digest, arm.digest);
    const listed = index.manifests.find((m) =>
      m.annotations?.[REF_NAME] === fallbackTag(arm.digest)
    );
    assert(listed !== undefined, JSON.stringify(index));
    const list = parse(await member(archive, blobName(listed.digest)));
    assertEquals(list.manifests.length, 1);
    assertEquals(list.manifests[0].digest, armAttestation.digest);
    assertEquals(list.manifests[0].annotations["vnd.docker.reference.digest"], arm.digest);
    for (const { digest } of [armAttestation, ...armAttestation.blobs]) {
      assert(names.includes(blobName(digest)), `${digest} is not in the archive`);
    }
    // The other platform's attestation stays behind with its platform.
    assert(!names.includes(blobName(buildx.attestations[0]!.digest)));

    // The whole index: attestations come as the index's children, never as platforms.
    const all = `${dir.path}/all.tar`;
    const whole = await pull([source, "--platform", "all", "-o", all]);
    assertEquals(whole.code, 0, whole.stderr);
    assert(whole.stderr.includes("with 1 signature into"), whole.stderr);
    assert(!whole.stderr.includes("unknown/unknown"), whole.stderr);
    const stored = await readArchive(all);
    assertEquals(
      stored.index.manifests.map((m) => m.annotations?.[REF_NAME]),
      ["1", `${fallbackTag(buildx.index.digest)}.sig`],
    );
    assertEquals(stored.index.manifests[0]!.digest, buildx.index.digest);
    for (const attestation of buildx.attestations) {
      assert(stored.names.includes(blobName(attestation.digest)));
    }
    // --platform unknown/unknown never picks an attestation.
    const unknown = await pull([source, "--platform", "unknown/unknown", "-o", `${dir.path}/x`]);
    assertEquals(unknown.code, 1, unknown.stderr);
    assert(unknown.stderr.includes("it has linux/amd64, linux/arm64"), unknown.stderr);
  },
  { tools: ["docker-registry", "openssl"] },
);

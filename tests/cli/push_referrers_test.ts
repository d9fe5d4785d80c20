/**
 * `push` restores what an archive carries with its image (issue 18): an OCI layout holding an
 * image, its cosign `.sig`, an SPDX SBOM referrer and a signature of that SBOM, pushed as a
 * user would (a subprocess) into a real registry (distribution: the fallback tag). Everything
 * arrives with the archive's digests, the `.sig` verifies with openssl, the result line and
 * `--output json` say what came along, and compression that would break a signature is
 * refused (or left out with `--no-referrers`). A buildx index whose layers are compressed on
 * the way keeps its attestations pointing at the platform manifests as pushed.
 */
import { fallbackTag } from "../../src/image/referrer.ts";
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { runCli } from "../helpers/cli.ts";
import { integrationTest, startRegistry, type TestRegistry } from "../helpers/registry.ts";
import {
  buildBuildxIndex,
  buildSignedSet,
  makeSigningKey,
  type SignedSet,
  verifyCosignSignature,
  writeOciLayout,
  writeSignedLayout,
} from "../helpers/signed_fixtures.ts";

interface Layout extends AsyncDisposable {
  dir: string;
  set: SignedSet;
  publicKeyPath: string;
}

/**
 * A signed set laid into an OCI layout directory (its layers stored uncompressed, of
 * `layerSizes` bytes of payload).
 */
async function signedLayout(layerSizes?: number[]): Promise<Layout> {
  const dir = await Deno.makeTempDir({ prefix: "dip-push-referrers-" });
  const key = await makeSigningKey(dir);
  const set = await buildSignedSet("app", key, layerSizes ? { layerSizes } : {});
  await writeSignedLayout(`${dir}/layout`, set);
  return {
    dir: `${dir}/layout`,
    set,
    publicKeyPath: key.publicKeyPath,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

async function listed(registry: TestRegistry, subject: string): Promise<string[]> {
  const index = await registry.fetchManifest("app", fallbackTag(subject));
  return (index.json.manifests as { digest: string }[]).map((d) => d.digest);
}

const TOOLS = ["docker-registry", "openssl"];
/** The library's default compression (the test harness sets none for older tests). */
const DEFAULT_COMPRESSION = { env: { DOCKER_PUSHER_COMPRESSION: "" } };

integrationTest("a signed image crosses with its signatures and SBOM, same digests", async () => {
  await using registry = await startRegistry();
  await using layout = await signedLayout();
  const { set } = layout;
  const result = await runCli(
    ["-r", `${registry.url}/app:1`, "-f", layout.dir],
    DEFAULT_COMPRESSION,
  );
  assertEquals(result.code, 0, result.stderr);
  // Layers stored uncompressed stay so: the signatures name this digest.
  assertEquals((await registry.fetchManifest("app", "1")).digest, set.image.digest);
  assertStringIncludes(result.stderr, "as stored, not compressed");
  assertStringIncludes(result.stderr, "Pushed with the image: 2 signatures, 1 SBOM");
  const sig = await registry.fetchManifest("app", set.cosignSignature.tag);
  assertEquals(sig.digest, set.cosignSignature.manifest.digest);
  assert(
    await verifyCosignSignature(
      sig.bytes,
      set.cosignSignature.payload,
      set.image.digest,
      layout.publicKeyPath,
    ),
    "the .sig verifies after the trip",
  );
  assertEquals(await listed(registry, set.image.digest), [set.sbom.manifest.digest]);
  assertEquals(await listed(registry, set.sbom.manifest.digest), [
    set.sbomSignature.manifest.digest,
  ]);
}, { tools: TOOLS });

integrationTest("--output json lists the referrers pushed; --dry-run writes none", async () => {
  await using registry = await startRegistry();
  await using layout = await signedLayout();
  const { set } = layout;
  const dry = await runCli(
    ["-r", `${registry.url}/app:1`, "-f", layout.dir, "--dry-run"],
    DEFAULT_COMPRESSION,
  );
  assertEquals(dry.code, 0, dry.stderr);
  assertStringIncludes(dry.stderr, "Would push with the image: 2 signatures, 1 SBOM");
  const writes = (await registry.requests()).filter((r) => !["GET", "HEAD"].includes(r.method));
  assertEquals(writes.map((r) => `${r.method} ${r.path}`), []);

  const json = await runCli(
    ["-r", `${registry.url}/app:1`, "-f", layout.dir, "--output", "json"],
    DEFAULT_COMPRESSION,
  );
  assertEquals(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout);
  const referrers = report.images[0].referrers as Record<string, unknown>[];
  assertEquals(
    referrers.map((r) => [r.digest, r.kind, r.subject, r.tag]).sort(),
    [
      [set.cosignSignature.manifest.digest, "signature", set.image.digest, set.cosignSignature.tag],
      [set.sbom.manifest.digest, "sbom", set.image.digest, null],
      [set.sbomSignature.manifest.digest, "signature", set.sbom.manifest.digest, null],
    ].sort(),
  );
  assert(referrers.every((r) => typeof r.artifactType === "string" && r.artifactType !== ""));
  assertEquals(report.images[0].keptAsStoredFor, [set.image.digest]);
}, { tools: TOOLS });

integrationTest(
  "--compression with referrers: exit 2 before anything is sent; --no-referrers pushes the image alone",
  async () => {
    await using registry = await startRegistry();
    await using layout = await signedLayout();
    const { set } = layout;
    const refused = await runCli([
      "-r",
      `${registry.url}/app:1`,
      "-f",
      layout.dir,
      "--compression",
      "gzip",
    ]);
    assertEquals(refused.code, 2, refused.stderr);
    assertStringIncludes(refused.stderr, "--no-referrers");
    assertStringIncludes(refused.stderr, "--compression none");
    const sent = (await registry.requests()).filter((r) => r.path.startsWith("/v2/app/"));
    assertEquals(sent.map((r) => `${r.method} ${r.path}`), []);

    const alone = await runCli([
      "-r",
      `${registry.url}/app:1`,
      "-f",
      layout.dir,
      "--compression",
      "gzip",
      "--no-referrers",
    ]);
    assertEquals(alone.code, 0, alone.stderr);
    const pushed = await registry.fetchManifest("app", "1");
    assert(pushed.digest !== set.image.digest, "its layers went compressed");
    assertEquals(await registry.manifestExists("app", set.cosignSignature.tag), false);
    assertEquals(await registry.manifestExists("app", fallbackTag(set.image.digest)), false);
  },
  { tools: TOOLS },
);

integrationTest(
  "from a stream: layers already compressed as they passed stop the push before any manifest; --compression none carries everything",
  async () => {
    await using registry = await startRegistry();
    // A layer over the stream's hold size goes up as it passes (compressed, by default).
    await using layout = await signedLayout([2 * 1024 * 1024]);
    const { set } = layout;
    const tar = `${layout.dir}.tar`;
    const made = await new Deno.Command("tar", { args: ["-cf", tar, "-C", layout.dir, "."] })
      .output();
    assertEquals(made.code, 0);
    const refused = await runCli(["-r", `${registry.url}/app:1`, "-f", "-"], {
      ...DEFAULT_COMPRESSION,
      stdinFile: tar,
    });
    assertEquals(refused.code, 2, refused.stderr);
    assertStringIncludes(refused.stderr, "--compression none");
    const manifests = (await registry.requests())
      .filter((r) => r.method === "PUT" && r.path.includes("/manifests/"));
    assertEquals(manifests.map((r) => r.path), []);

    const kept = await runCli(["-r", `${registry.url}/app:1`, "-f", "-", "--compression", "none"], {
      stdinFile: tar,
    });
    assertEquals(kept.code, 0, kept.stderr);
    assertEquals((await registry.fetchManifest("app", "1")).digest, set.image.digest);
    assertEquals(
      (await registry.fetchManifest("app", set.cosignSignature.tag)).digest,
      set.cosignSignature.manifest.digest,
    );
    assertEquals(await listed(registry, set.image.digest), [set.sbom.manifest.digest]);
  },
  { tools: TOOLS },
);

integrationTest(
  "a buildx index with uncompressed layers, pushed by default: every attestation names a platform manifest the repository has",
  async () => {
    await using registry = await startRegistry();
    const dir = await Deno.makeTempDir({ prefix: "dip-push-buildx-" });
    try {
      const buildx = await buildBuildxIndex("app");
      await writeOciLayout(dir, [{
        manifest: buildx.index,
        refName: "1",
        annotations: { "io.containerd.image.name": "docker.io/library/app:1" },
      }]);
      const result = await runCli(["-r", `${registry.url}/app:1`, "-f", dir], DEFAULT_COMPRESSION);
      assertEquals(result.code, 0, result.stderr);
      const index = await registry.fetchManifest("app", "1");
      // Kept as stored: the attestations' in-toto statements name these very digests.
      assertEquals(index.digest, buildx.index.digest, "its layers went as stored");
      assertStringIncludes(result.stderr, "as stored, not compressed");
      const entries = index.json.manifests as {
        digest: string;
        annotations?: Record<string, string>;
      }[];
      const attestations = entries.filter((e) =>
        e.annotations?.["vnd.docker.reference.type"] === "attestation-manifest"
      );
      const platforms = entries.filter((e) => !attestations.includes(e)).map((e) => e.digest);
      assertEquals(attestations.length, 2);
      for (const attestation of attestations) {
        const named = attestation.annotations!["vnd.docker.reference.digest"]!;
        assert(platforms.includes(named), `${named} is a platform of the index`);
        assertEquals((await registry.fetchManifest("app", named)).digest, named);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { tools: TOOLS },
);

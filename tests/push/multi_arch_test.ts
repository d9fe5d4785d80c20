import type { ManifestNode } from "../../src/image/graph.ts";
import { MEDIA_TYPES } from "../../src/image/media_types.ts";
import { sha256Digest } from "../../src/digest.ts";
import { ArchiveError, InvalidOptionError } from "../../src/errors.ts";
import {
  buildIndex,
  checkDistinctPlatforms,
  describePlatform,
  findListed,
  type IndexChild,
  indexChildren,
  platformEntries,
  type PlatformEntry,
  type PushedManifest,
  readPlatform,
} from "../../src/push/multi_arch.ts";
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "../helpers/assert.ts";
import { checkTarget } from "../../src/push/target_check.ts";
import { attestationItem, imageNode, indexNode } from "./_multi_arch_fixtures.ts";

type Json = Record<string, unknown>;

const encoder = new TextEncoder();

function parse(bytes: Uint8Array): Json {
  return JSON.parse(new TextDecoder().decode(bytes)) as Json;
}

/** What each entry's manifest was pushed as, when nothing was rewritten. */
function pushedAsIs(entries: readonly PlatformEntry[]): Map<string, PushedManifest> {
  return new Map(entries.map(({ node }) => [node.digest, {
    mediaType: node.mediaType,
    digest: node.digest,
    size: node.bytes.length,
  }]));
}

async function entriesOf(inputs: [ManifestNode, string][]): Promise<PlatformEntry[]> {
  const entries: PlatformEntry[] = [];
  for (const [root, label] of inputs) entries.push(...await platformEntries(root, label));
  return entries;
}

Deno.test("Docker schema 2 images are joined into a Docker manifest list", async () => {
  const amd64 = imageNode({ os: "linux", architecture: "amd64" });
  const arm64 = imageNode({ os: "linux", architecture: "arm64", variant: "v8" });
  const entries = await entriesOf([[amd64, "app-amd64.tar (app:1)"], [
    arm64,
    "app-arm64.tar (app:1)",
  ]]);
  checkDistinctPlatforms(entries);
  const index = buildIndex(indexChildren(entries, pushedAsIs(entries)));

  assertEquals(index.mediaType, MEDIA_TYPES.dockerManifestList);
  assertEquals(parse(index.bytes), {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.dockerManifestList,
    manifests: [
      {
        mediaType: MEDIA_TYPES.dockerManifest,
        digest: amd64.digest,
        size: amd64.bytes.length,
        platform: { architecture: "amd64", os: "linux" },
      },
      {
        mediaType: MEDIA_TYPES.dockerManifest,
        digest: arm64.digest,
        size: arm64.bytes.length,
        platform: { architecture: "arm64", os: "linux", variant: "v8" },
      },
    ],
  });
});

Deno.test("one OCI manifest among the children makes an OCI index", async () => {
  const amd64 = imageNode({ os: "linux", architecture: "amd64" });
  const arm64 = imageNode({ os: "linux", architecture: "arm64" }, {
    mediaType: MEDIA_TYPES.ociManifest,
  });
  const entries = await entriesOf([[amd64, "a.tar"], [arm64, "b.tar"]]);
  const index = buildIndex(indexChildren(entries, pushedAsIs(entries)));
  assertEquals(index.mediaType, MEDIA_TYPES.ociIndex);
  assertEquals(parse(index.bytes)["mediaType"], MEDIA_TYPES.ociIndex);

  const alone = buildIndex(indexChildren(entries.slice(1), pushedAsIs(entries)));
  assertEquals(alone.mediaType, MEDIA_TYPES.ociIndex);
});

Deno.test("the index is built from the pushed descriptors, not the archive's", async () => {
  const amd64 = imageNode({ os: "linux", architecture: "amd64" });
  const entries = await platformEntries(amd64, "a.tar");
  // Compressing layers on the way up turned the Docker manifest into a new OCI one.
  const rewritten = encoder.encode("rewritten manifest");
  const pushed = new Map([[amd64.digest, {
    mediaType: MEDIA_TYPES.ociManifest,
    digest: sha256Digest(rewritten),
    size: rewritten.length,
  }]]);
  const [child] = indexChildren(entries, pushed);
  assertEquals(child, {
    mediaType: MEDIA_TYPES.ociManifest,
    digest: sha256Digest(rewritten),
    size: rewritten.length,
    platform: { os: "linux", architecture: "amd64" },
  });
  assertEquals(buildIndex([child!]).mediaType, MEDIA_TYPES.ociIndex);
  assertThrows(() => indexChildren(entries, new Map()), RangeError, amd64.digest);
});

Deno.test("readPlatform reads os, architecture, variant, os.version and os.features", async () => {
  const windows = imageNode({
    os: "windows",
    architecture: "amd64",
    "os.version": "10.0.20348.2113",
    "os.features": ["win32k"],
  });
  assertEquals(await readPlatform(windows, "win.tar"), {
    os: "windows",
    architecture: "amd64",
    "os.version": "10.0.20348.2113",
    "os.features": ["win32k"],
  });
  // Read in small chunks, with empty fields Go would have left out.
  const arm = imageNode(
    { os: "linux", architecture: "arm", variant: "v6", "os.version": "", "os.features": [] },
    { config: { chunkSize: 7 } },
  );
  assertEquals(await readPlatform(arm, "arm.tar"), {
    os: "linux",
    architecture: "arm",
    variant: "v6",
  });
});

Deno.test("readPlatform refuses a config without os or architecture, naming the input", async () => {
  // The archive is fine (it pushes on its own): joining it is what cannot be done, and the
  // hint says how to get an image that can be joined.
  const noArch = imageNode({ os: "linux" });
  const error = await assertRejects(
    () => readPlatform(noArch, "app-amd64.tar (app:1)"),
    InvalidOptionError,
    "Cannot join app-amd64.tar (app:1) into a multi-platform index: its config ",
  );
  assertStringIncludes(error.message, `${noArch.blobs[0]!.digest} names no architecture`);
  // The core names no flag; the CLI words the hint (tests/cli/usage_error_test.ts).
  assertEquals(error.reason, "no-platform");
  assertStringIncludes(error.hint!, "push it on its own");

  await assertRejects(
    () => platformEntries(imageNode({ architecture: "amd64", os: 5 }), "x.tar"),
    ArchiveError,
    "os must be a string",
  );
  await assertRejects(
    () => platformEntries(imageNode({ architecture: "amd64" }), "x.tar"),
    InvalidOptionError,
    "names no os,",
  );
  await assertRejects(
    () => platformEntries(imageNode({ os: "", architecture: null }), "x.tar"),
    InvalidOptionError,
    "names no os and no architecture,",
  );
});

Deno.test("readPlatform refuses corrupt, missing and mismatched configs", async () => {
  const platform = { os: "linux", architecture: "amd64" };
  await assertRejects(
    () => readPlatform(imageNode({}, { configBytes: encoder.encode('{"os": "lin') }), "x.tar"),
    ArchiveError,
    "not valid JSON",
  );
  await assertRejects(
    () => readPlatform(imageNode({}, { configBytes: encoder.encode("[1]") }), "x.tar"),
    ArchiveError,
    "must be an object",
  );
  await assertRejects(
    () => readPlatform(imageNode(platform, { withoutConfigBlob: true }), "x.tar"),
    ArchiveError,
    "which the archive does not hold",
  );
  await assertRejects(
    () =>
      readPlatform(
        imageNode(platform, { config: { digest: sha256Digest(encoder.encode("other")) } }),
        "x.tar",
      ),
    ArchiveError,
    "does not match its digest",
  );
  await assertRejects(
    () => readPlatform(imageNode(platform, { config: { size: 10_000 } }), "x.tar"),
    ArchiveError,
    "ended after",
  );
  const reads = { count: 0 };
  await assertRejects(
    () => readPlatform(imageNode(platform, { config: { size: 65 * 1024 * 1024, reads } }), "x.tar"),
    ArchiveError,
    "more than the",
  );
  assertEquals(reads.count, 0, "an oversized config is refused before reading it");
  const index = indexNode([{ node: imageNode(platform) }]);
  await assertRejects(() => readPlatform(index, "x.tar"), TypeError, "is an index");
});

Deno.test("readPlatform stops when its signal is aborted", async () => {
  const controller = new AbortController();
  controller.abort(new Error("stopped by the test"));
  await assertRejects(
    () =>
      readPlatform(imageNode({ os: "linux", architecture: "amd64" }), "x.tar", {
        signal: controller.signal,
      }),
    Error,
    "stopped by the test",
  );
});

Deno.test("an input's index is merged: its platforms, annotations and attestations", async () => {
  const amd64 = imageNode({ os: "linux", architecture: "amd64" });
  // The index's platform is used, not the config's (which names no variant).
  const arm64 = imageNode({ os: "linux", architecture: "arm64" });
  // An index entry without a platform takes its config's.
  const s390x = imageNode({ os: "linux", architecture: "s390x" });
  const amd64Attestation = attestationItem(amd64);
  const multi = indexNode([
    {
      node: amd64,
      platform: { architecture: "amd64", os: "linux" },
      annotations: { "org.opencontainers.image.created": "2024-01-01T00:00:00Z" },
    },
    { node: arm64, platform: { architecture: "arm64", os: "linux", variant: "v8" } },
    { node: s390x },
    amd64Attestation,
  ]);
  const armv7 = imageNode({ os: "linux", architecture: "arm", variant: "v7" });
  const entries = await entriesOf([[multi, "app.tar (app:1)"], [armv7, "app-arm.tar (app:1)"]]);
  checkDistinctPlatforms(entries);

  assertEquals(entries.map((e) => [e.node.digest, describePlatform(e.platform), e.attestation]), [
    [amd64.digest, "linux/amd64", false],
    [arm64.digest, "linux/arm64/v8", false],
    [s390x.digest, "linux/s390x", false],
    [amd64Attestation.node.digest, "unknown/unknown", true],
    [armv7.digest, "linux/arm/v7", false],
  ]);
  assertEquals(entries.map((e) => e.label), [
    "app.tar (app:1)",
    "app.tar (app:1)",
    "app.tar (app:1)",
    "app.tar (app:1)",
    "app-arm.tar (app:1)",
  ]);
  assertEquals(entries[0]!.annotations, {
    "org.opencontainers.image.created": "2024-01-01T00:00:00Z",
  });
  assert(!("annotations" in entries[1]!), "no empty annotations");

  const index = buildIndex(indexChildren(entries, pushedAsIs(entries)));
  // The attestation is an OCI manifest, so the index is OCI.
  assertEquals(index.mediaType, MEDIA_TYPES.ociIndex);
  const manifests = parse(index.bytes)["manifests"] as Json[];
  assertEquals(manifests.length, 5);
  assertEquals(manifests[3], {
    mediaType: MEDIA_TYPES.ociManifest,
    digest: amd64Attestation.node.digest,
    size: amd64Attestation.node.bytes.length,
    platform: { architecture: "unknown", os: "unknown" },
    annotations: {
      "vnd.docker.reference.digest": amd64.digest,
      "vnd.docker.reference.type": "attestation-manifest",
    },
  });
});

Deno.test("an attestation follows its subject's pushed digest", async () => {
  const amd64 = imageNode({ os: "linux", architecture: "amd64" });
  const attestation = attestationItem(amd64);
  const entries = await platformEntries(
    indexNode([{ node: amd64, platform: { architecture: "amd64", os: "linux" } }, attestation]),
    "app.tar",
  );
  const pushed = pushedAsIs(entries);
  const rewritten = {
    mediaType: MEDIA_TYPES.ociManifest,
    digest: sha256Digest(encoder.encode("x")),
    size: 1,
  };
  pushed.set(amd64.digest, rewritten);
  const children = indexChildren(entries, pushed);
  assertEquals(children[0]!.digest, rewritten.digest);
  assertEquals(children[1]!.annotations, {
    "vnd.docker.reference.type": "attestation-manifest",
    "vnd.docker.reference.digest": rewritten.digest,
  });
  assertEquals(
    entries[1]!.annotations?.["vnd.docker.reference.digest"],
    amd64.digest,
    "the entry itself is left as the archive gave it",
  );
});

Deno.test("a nested index contributes its own entries", async () => {
  const amd64 = imageNode({ os: "linux", architecture: "amd64" });
  const arm64 = imageNode({ os: "linux", architecture: "arm64" });
  const inner = indexNode([
    { node: amd64, platform: { architecture: "amd64", os: "linux" } },
    { node: arm64, platform: { architecture: "arm64", os: "linux" } },
  ]);
  const outer = indexNode([{ node: inner }]);
  const entries = await platformEntries(outer, "nested.tar");
  assertEquals(entries.map((e) => e.node.digest), [amd64.digest, arm64.digest]);
});

Deno.test("findListed: the index listing a digest, and the platform it gives, at any depth", () => {
  const amd64 = imageNode({ os: "linux", architecture: "amd64" });
  const arm64 = imageNode({ os: "linux", architecture: "arm64" });
  const inner = indexNode([
    { node: amd64, platform: { architecture: "amd64", os: "linux" } },
    { node: arm64 }, // No platform in the index: only the config would say.
  ]);
  const outer = indexNode([{ node: inner, platform: { architecture: "amd64", os: "linux" } }]);
  assertEquals(findListed(outer, amd64.digest), {
    index: inner,
    platform: { os: "linux", architecture: "amd64" },
  });
  assertEquals(findListed(outer, arm64.digest), { index: inner, platform: undefined });
  assertEquals(findListed(outer, inner.digest)?.index, outer);
  assertEquals(findListed(outer, outer.digest), undefined);
  assertEquals(findListed(outer, `sha256:${"0".repeat(64)}`), undefined);
  assertEquals(findListed(amd64, amd64.digest), undefined);

  // A push by a nested manifest's digest names both indexes, and pushes the outer one.
  const image = { names: [], root: outer, notes: [] };
  const error = assertThrows(
    () => checkTarget(image, { tags: [], digest: amd64.digest }, { codec: "none" }),
    InvalidOptionError,
    `${amd64.digest} is the linux/amd64 manifest of index ${inner.digest}, inside the ` +
      `archive's index ${outer.digest}`,
  );
  assertStringIncludes(error.hint!, `@${outer.digest}, or by a tag`);
  checkTarget(image, { tags: [], digest: outer.digest }, { codec: "none" });
});

Deno.test("an index entry the archive does not hold, or a malformed index, is refused", async () => {
  const amd64 = imageNode({ os: "linux", architecture: "amd64" });
  const index = indexNode([{ node: amd64 }]);
  await assertRejects(
    () =>
      platformEntries(
        { ...index, children: [imageNode({ os: "linux", architecture: "arm64" })] },
        "x.tar",
      ),
    ArchiveError,
    "which the archive does not hold",
  );
  const noArch = encoder.encode(JSON.stringify({
    schemaVersion: 2,
    manifests: [{
      mediaType: amd64.mediaType,
      digest: amd64.digest,
      size: amd64.bytes.length,
      platform: { os: "linux" },
    }],
  }));
  const error = await assertRejects(
    () => platformEntries({ ...index, bytes: noArch }, "x.tar"),
    ArchiveError,
    "manifests[0].platform names no architecture",
  );
  assertStringIncludes(error.message, "x.tar: index ");
});

Deno.test("two images for one platform are a usage error naming both", async () => {
  const entries = await entriesOf([
    [imageNode({ os: "linux", architecture: "amd64" }), "app-amd64.tar (app:1)"],
    [imageNode({ os: "linux", architecture: "arm64" }), "app-arm64.tar (app:1)"],
    [imageNode({ os: "linux", architecture: "amd64" }), "other.tar (app:2)"],
  ]);
  const error = assertThrows(() => checkDistinctPlatforms(entries), InvalidOptionError);
  assertEquals(
    error.message,
    "Cannot join the images into one index: app-amd64.tar (app:1) and other.tar (app:2) are " +
      "both for linux/amd64",
  );
  assert(error.hint !== undefined && error.hint.includes("one image per platform"));
});

Deno.test("one input holding two images for a platform names their digests", async () => {
  const a = imageNode({ os: "linux", architecture: "amd64" });
  const b = imageNode({ os: "linux", architecture: "amd64" });
  const entries = await platformEntries(
    indexNode([
      { node: a, platform: { architecture: "amd64", os: "linux" } },
      { node: b, platform: { architecture: "amd64", os: "linux" } },
    ]),
    "app.tar (app:1)",
  );
  const error = assertThrows(() => checkDistinctPlatforms(entries), InvalidOptionError);
  assertStringIncludes(error.message, "app.tar (app:1) holds two images for linux/amd64");
  assertStringIncludes(error.message, a.digest);
  assertStringIncludes(error.message, b.digest);
});

Deno.test("platforms are compared as containerd normalizes them", () => {
  const entry = (label: string, platform: PlatformEntry["platform"], attestation = false) => ({
    node: imageNode({}),
    platform,
    label,
    attestation,
  });
  const clash = (a: PlatformEntry["platform"], b: PlatformEntry["platform"]) => {
    try {
      checkDistinctPlatforms([entry("a", a), entry("b", b)]);
      return false;
    } catch (error) {
      if (error instanceof InvalidOptionError) return true;
      throw error;
    }
  };
  const linux = (architecture: string, variant?: string) => ({
    os: "linux",
    architecture,
    ...(variant ? { variant } : {}),
  });
  assert(clash(linux("arm64"), linux("arm64", "v8")), "arm64 is arm64/v8");
  assert(clash(linux("arm"), linux("arm", "v7")), "arm is arm/v7");
  assert(clash(linux("arm", "7"), linux("arm", "v7")), "7 is v7");
  assert(clash(linux("aarch64"), linux("arm64")), "aarch64 is arm64");
  assert(clash(linux("amd64", "v1"), linux("amd64")), "amd64/v1 is amd64");
  assert(!clash(linux("arm", "v6"), linux("arm", "v7")), "arm/v6 is not arm/v7");
  assert(!clash(linux("amd64"), linux("amd64", "v3")), "amd64/v3 is its own");
  assert(!clash(linux("amd64"), { os: "windows", architecture: "amd64" }), "os differs");
  const windows = (version: string) => ({
    os: "windows",
    architecture: "amd64",
    "os.version": version,
  });
  assert(!clash(windows("10.0.17763.5329"), windows("10.0.20348.2113")), "os.version differs");
  assert(clash(windows("10.0.20348.2113"), windows("10.0.20348.2113")), "same os.version");

  const message = assertThrows(
    () => checkDistinctPlatforms([entry("a", linux("arm64")), entry("b", linux("arm64", "v8"))]),
    InvalidOptionError,
  ).message;
  assertStringIncludes(message, "a and b are both for linux/arm64 and linux/arm64/v8, the same");

  const unknown = { os: "unknown", architecture: "unknown" };
  checkDistinctPlatforms([entry("a", unknown, true), entry("b", unknown, true)]);
});

Deno.test("index bytes are deterministic and the digest is their sha256", () => {
  const child = (annotations: Record<string, string>): IndexChild => ({
    mediaType: MEDIA_TYPES.ociManifest,
    digest: sha256Digest(encoder.encode("m")),
    size: 42,
    // Fields in an order other than the one written.
    platform: {
      variant: "v8",
      "os.features": ["f"],
      os: "linux",
      architecture: "arm64",
      "os.version": "1",
    },
    annotations,
  });
  const a = buildIndex([child({ b: "2", a: "1" })]);
  const b = buildIndex([child({ a: "1", b: "2" })]);
  assertEquals(a.bytes, b.bytes);
  assertEquals(a.digest, sha256Digest(a.bytes));
  assertEquals(
    new TextDecoder().decode(a.bytes),
    `{"schemaVersion":2,"mediaType":"${MEDIA_TYPES.ociIndex}","manifests":[{"mediaType":` +
      `"${MEDIA_TYPES.ociManifest}","digest":"${sha256Digest(encoder.encode("m"))}","size":42,` +
      `"platform":{"architecture":"arm64","os":"linux","os.version":"1","os.features":["f"],` +
      `"variant":"v8"},"annotations":{"a":"1","b":"2"}}]}`,
  );

  const docker = buildIndex([{
    mediaType: MEDIA_TYPES.dockerManifest,
    digest: sha256Digest(encoder.encode("d")),
    size: 7,
    platform: { os: "linux", architecture: "amd64" },
  }]);
  assertEquals(docker.digest, sha256Digest(docker.bytes));
  assertStringIncludes(
    new TextDecoder().decode(docker.bytes),
    `{\n   "schemaVersion": 2,\n   "mediaType": "${MEDIA_TYPES.dockerManifestList}",\n`,
  );
  assertThrows(() => buildIndex([]), RangeError);
});

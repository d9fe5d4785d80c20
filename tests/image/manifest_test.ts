/**
 * The one manifest parser: image manifests and indexes (OCI and Docker), what OCI 1.1 adds
 * (`subject`, `artifactType`, annotations), media types from the document, the hint or the
 * shape, defaults for descriptors that leave theirs out, and every malformed shape refused with
 * where it is, including corrupted bytes.
 */
import { JsonShapeError } from "../../src/image/json_guards.ts";
import { artifactTypeOf, parseManifest } from "../../src/image/manifest.ts";
import { MEDIA_TYPES } from "../../src/image/media_types.ts";
import { EMPTY_DESCRIPTOR } from "../../src/image/referrer.ts";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../helpers/assert.ts";

const D = (c: string) => `sha256:${c.repeat(64)}`;
const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

const SBOM = {
  schemaVersion: 2,
  mediaType: MEDIA_TYPES.ociManifest,
  artifactType: "application/spdx+json",
  config: EMPTY_DESCRIPTOR,
  layers: [{ mediaType: "application/spdx+json", digest: D("b"), size: 10 }],
  subject: { mediaType: MEDIA_TYPES.ociManifest, digest: D("a"), size: 500 },
  annotations: { "org.opencontainers.image.created": "2026-01-01T00:00:00Z" },
};

Deno.test("a referrer manifest: subject, artifactType and annotations are kept", () => {
  const parsed = parseManifest(bytes(SBOM), undefined, "sbom");
  assert(parsed.kind === "manifest");
  assertEquals(parsed.mediaType, MEDIA_TYPES.ociManifest);
  assertEquals(parsed.config.digest, EMPTY_DESCRIPTOR.digest);
  assertEquals(parsed.layers.map((l) => l.mediaType), ["application/spdx+json"]);
  assertEquals(parsed.subject, { mediaType: MEDIA_TYPES.ociManifest, digest: D("a"), size: 500 });
  assertEquals(parsed.annotations, SBOM.annotations);
  assertEquals(artifactTypeOf(parsed), "application/spdx+json");
});

Deno.test("an artifact without artifactType is typed by its config (as the referrers API lists it)", () => {
  const { artifactType: _, ...cosign } = {
    ...SBOM,
    config: {
      mediaType: "application/vnd.dev.cosign.artifact.sig.v1+json",
      digest: D("c"),
      size: 3,
    },
  };
  const parsed = parseManifest(bytes(cosign), undefined, "sig");
  assertEquals(artifactTypeOf(parsed), "application/vnd.dev.cosign.artifact.sig.v1+json");
});

Deno.test("an index: entries with platform, annotations and artifactType; buildx attestations", () => {
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociIndex,
    manifests: [
      {
        mediaType: MEDIA_TYPES.ociManifest,
        digest: D("a"),
        size: 1,
        platform: {
          os: "windows",
          architecture: "amd64",
          "os.version": "10.0.20348.2113",
          "os.features": ["win32k"],
        },
      },
      {
        mediaType: MEDIA_TYPES.ociManifest,
        digest: D("b"),
        size: 2,
        platform: { os: "unknown", architecture: "unknown" },
        annotations: {
          "vnd.docker.reference.type": "attestation-manifest",
          "vnd.docker.reference.digest": D("a"),
        },
      },
      {
        mediaType: MEDIA_TYPES.ociManifest,
        digest: D("c"),
        size: 3,
        artifactType: "application/spdx+json",
      },
    ],
  };
  const parsed = parseManifest(bytes(index), undefined, "index");
  assert(parsed.kind === "index");
  assertEquals(parsed.manifests[0]!.platform, {
    os: "windows",
    architecture: "amd64",
    "os.version": "10.0.20348.2113",
    "os.features": ["win32k"],
  });
  assertEquals(parsed.manifests[1]!.annotations?.["vnd.docker.reference.digest"], D("a"));
  assertEquals(parsed.manifests[2]!.artifactType, "application/spdx+json");
  assertEquals(artifactTypeOf(parsed), undefined);
});

Deno.test("the media type: the document's own, else the hint, else the shape", () => {
  const manifest = { schemaVersion: 2, config: SBOM.config, layers: [] };
  assertEquals(parseManifest(bytes(manifest), undefined, "m").mediaType, MEDIA_TYPES.ociManifest);
  assertEquals(
    parseManifest(bytes(manifest), MEDIA_TYPES.dockerManifest, "m").mediaType,
    MEDIA_TYPES.dockerManifest,
  );
  // A hint that contradicts the shape (Content-Type: an index, for a manifest) loses.
  assertEquals(parseManifest(bytes(manifest), MEDIA_TYPES.ociIndex, "m").kind, "manifest");
  assertEquals(
    parseManifest(
      bytes({ ...manifest, mediaType: MEDIA_TYPES.dockerManifest }),
      MEDIA_TYPES.ociManifest,
      "m",
    )
      .mediaType,
    MEDIA_TYPES.dockerManifest,
  );
  const index = { schemaVersion: 2, manifests: [] };
  assertEquals(parseManifest(bytes(index), undefined, "i").mediaType, MEDIA_TYPES.ociIndex);
  assertEquals(parseManifest(bytes(index), "application/json", "i").kind, "index");
  assertEquals(
    parseManifest(bytes(index), MEDIA_TYPES.dockerManifestList, "i").mediaType,
    MEDIA_TYPES.dockerManifestList,
  );
});

Deno.test("descriptors without a media type get their family's default", () => {
  const docker = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.dockerManifest,
    config: { digest: D("a"), size: 1 },
    layers: [{ digest: D("b"), size: 2 }],
  };
  const parsed = parseManifest(bytes(docker), undefined, "m");
  assert(parsed.kind === "manifest");
  assertEquals(parsed.config.mediaType, MEDIA_TYPES.dockerConfig);
  assertEquals(parsed.layers[0]!.mediaType, MEDIA_TYPES.dockerLayer);
  const list = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.dockerManifestList,
    manifests: [{ digest: D("a"), size: 1 }],
  };
  const index = parseManifest(bytes(list), undefined, "i");
  assert(index.kind === "index");
  assertEquals(index.manifests[0]!.mediaType, MEDIA_TYPES.dockerManifest);
});

Deno.test("malformed manifests are refused with where and what", () => {
  const cases: [unknown, string][] = [
    [[], "the top level must be an object"],
    [{ schemaVersion: 1, name: "x", fsLayers: [] }, "Docker schema 1"],
    [
      { schemaVersion: 2, mediaType: "application/vnd.docker.distribution.manifest.v1+prettyjws" },
      "Docker schema 1",
    ],
    [{ schemaVersion: 3, manifests: [] }, "schemaVersion must be 2"],
    [{ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex }, "manifests must be an array"],
    [{ schemaVersion: 2, layers: [] }, "config must be an object"],
    [{ ...SBOM, layers: {} }, "layers must be an array"],
    [{ ...SBOM, layers: [{ mediaType: "x", digest: "md5:abc", size: 1 }] }, "layers[0].digest"],
    [{ ...SBOM, layers: [{ mediaType: "x", digest: D("a"), size: -1 }] }, "layers[0].size"],
    [{ ...SBOM, subject: "sha256:abc" }, "subject must be an object"],
    [{ ...SBOM, subject: { digest: D("A"), size: 1 } }, "subject.digest"],
    [{ ...SBOM, artifactType: 7 }, "artifactType must be a non-empty string"],
    [{ ...SBOM, annotations: [] }, "annotations must be an object"],
    [
      { schemaVersion: 2, manifests: [{ digest: D("a"), size: 1, platform: { os: 1 } }] },
      "manifests[0].platform.os",
    ],
    [
      { schemaVersion: 2, manifests: [{ digest: D("a"), size: 1, urls: "x" }] },
      "manifests[0].urls",
    ],
  ];
  for (const [value, says] of cases) {
    const error = assertThrows(
      () => parseManifest(bytes(value), undefined, "blobs/sha256/ab"),
      JsonShapeError,
    );
    assertStringIncludes(error.message, "blobs/sha256/ab: ");
    assertStringIncludes(error.message, says);
  }
});

Deno.test("corrupted bytes: truncated, a flipped byte, invalid UTF-8, empty", () => {
  const good = bytes(SBOM);
  const flipped = good.slice();
  flipped[0] = 0x5b; // `[` opens an array that never closes
  const broken = [
    good.subarray(0, good.length - 1),
    flipped,
    new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
    new Uint8Array(),
  ];
  for (const input of broken) {
    const error = assertThrows(
      () => parseManifest(input, undefined, "manifest.json"),
      JsonShapeError,
    );
    assertStringIncludes(error.message, "manifest.json: not valid JSON");
  }
  // Every single-byte truncation either parses as something or fails as a JsonShapeError.
  for (let end = 0; end < good.length; end++) {
    try {
      parseManifest(good.subarray(0, end), undefined, "m");
    } catch (error) {
      assert(error instanceof JsonShapeError, `cut at ${end}: ${error}`);
    }
  }
});

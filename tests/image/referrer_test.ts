/**
 * The referrer model: tag names (fallback and cosign) and their parsing, malformed ones
 * included; what kind an artifact type names; buildx attestation entries; the referrers
 * index's parser (with a corrupted-byte matrix), writer and descriptor of a referrer manifest.
 */
import {
  cosignTag,
  describeReferrer,
  EMPTY_DESCRIPTOR,
  fallbackTag,
  isAttestationEntry,
  kindOfListed,
  parseReferrersIndex,
  parseReferrerTag,
  referrerDescriptor,
  referrerKind,
  REFERRERS_INDEX_MEDIA_TYPE,
  referrersIndexBytes,
  ReferrersIndexError,
  subjectOf,
} from "../../src/image/referrer.ts";
import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";
import { sha256Digest } from "../helpers/random.ts";

const HEX = "0123456789abcdef".repeat(4);
const DIGEST = `sha256:${HEX}`;
const OTHER = `sha256:${"f".repeat(64)}`;
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

Deno.test("fallbackTag and cosignTag name the subject's digest", () => {
  assertEquals(fallbackTag(DIGEST), `sha256-${HEX}`);
  assertEquals(cosignTag(DIGEST, "sig"), `sha256-${HEX}.sig`);
  assertEquals(cosignTag(DIGEST, "att"), `sha256-${HEX}.att`);
  assertEquals(cosignTag(DIGEST, "sbom"), `sha256-${HEX}.sbom`);
});

Deno.test("parseReferrerTag reads the fallback tag and each cosign suffix back", () => {
  assertEquals(parseReferrerTag(fallbackTag(DIGEST)), { subject: DIGEST });
  for (const suffix of ["sig", "att", "sbom"] as const) {
    assertEquals(parseReferrerTag(cosignTag(DIGEST, suffix)), { subject: DIGEST, suffix });
  }
});

Deno.test("parseReferrerTag: tags that only look like referrer tags are not", () => {
  const malformed = [
    "",
    "latest",
    "sha256",
    "sha256-",
    `sha256-${HEX.slice(1)}`, // 63 digits
    `sha256-${HEX}0`, // 65 digits
    `sha256-${HEX.toUpperCase()}`, // the digest's hex is lowercase
    `sha256:${HEX}`, // a digest, not a tag
    `sha512-${HEX}${HEX}`,
    `sha256-${HEX}.sig.sig`,
    `sha256-${HEX}.sign`,
    `sha256-${HEX}.`,
    `sha256-${HEX}.SIG`,
    `v1-sha256-${HEX}`,
    `sha256-${HEX.slice(0, 60)}zzzz`,
  ];
  for (const tag of malformed) assertEquals(parseReferrerTag(tag), undefined, tag);
});

Deno.test("referrerKind: suffixes decide, then artifact types; unknown types are artifacts", () => {
  const cases: [string, string | undefined, string][] = [
    ["application/vnd.oci.image.config.v1+json", "sig", "signature"],
    ["", "sbom", "sbom"],
    ["", "att", "attestation"],
    ["application/vnd.dev.cosign.simplesigning.v1+json", undefined, "signature"],
    ["application/vnd.dev.cosign.artifact.sig.v1+json", undefined, "signature"],
    ["application/vnd.dev.sigstore.bundle.v0.3+json", undefined, "signature"],
    ["application/vnd.cncf.notary.signature", undefined, "signature"],
    ["application/spdx+json", undefined, "sbom"],
    ["application/vnd.cyclonedx+json", undefined, "sbom"],
    ["application/vnd.syft+json", undefined, "sbom"],
    ["application/vnd.in-toto+json", undefined, "attestation"],
    ["https://slsa.dev/provenance/v1", undefined, "attestation"],
    ["application/vnd.example.thing.v1", undefined, "artifact"],
    ["", undefined, "artifact"],
  ];
  for (const [type, suffix, kind] of cases) {
    assertEquals(
      referrerKind(type, suffix as "sig" | "att" | "sbom" | undefined),
      kind,
      `${type} ${suffix}`,
    );
  }
});

Deno.test("kindOfListed: a buildx attestation by its entry's annotations, else by type", () => {
  const attestation = {
    annotations: {
      "vnd.docker.reference.type": "attestation-manifest",
      "vnd.docker.reference.digest": `sha256:${"a".repeat(64)}`,
    },
  };
  // Its artifact type is only its config's media type, which says nothing.
  assertEquals(
    kindOfListed(attestation, "application/vnd.oci.image.config.v1+json"),
    "attestation",
  );
  assertEquals(kindOfListed({}, "application/vnd.oci.image.config.v1+json"), "artifact");
  assertEquals(kindOfListed({ annotations: {} }, "application/spdx+json"), "sbom");
  assertEquals(kindOfListed({}, "application/vnd.oci.image.config.v1+json", "sig"), "signature");
});

Deno.test("isAttestationEntry: only buildx's attestation-manifest annotation", () => {
  assert(isAttestationEntry({
    annotations: {
      "vnd.docker.reference.type": "attestation-manifest",
      "vnd.docker.reference.digest": DIGEST,
    },
  }));
  assert(!isAttestationEntry({}));
  assert(!isAttestationEntry({ annotations: {} }));
  assert(!isAttestationEntry({ annotations: { "vnd.docker.reference.type": "other" } }));
});

Deno.test("parseReferrersIndex keeps artifactType and annotations, ignores unknown fields", () => {
  const bytes = encode({
    schemaVersion: 2,
    mediaType: REFERRERS_INDEX_MEDIA_TYPE,
    manifests: [
      {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: DIGEST,
        size: 123,
        artifactType: "application/vnd.example.unknown",
        annotations: { "org.opencontainers.image.created": "2026-01-01T00:00:00Z" },
        future: { field: true },
      },
      { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: OTHER, size: 0 },
    ],
    annotations: { "top": "level" },
  });
  assertEquals(parseReferrersIndex(bytes), [
    {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: DIGEST,
      size: 123,
      artifactType: "application/vnd.example.unknown",
      annotations: { "org.opencontainers.image.created": "2026-01-01T00:00:00Z" },
    },
    { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: OTHER, size: 0 },
  ]);
});

Deno.test("parseReferrersIndex: no manifests, or null (Go's nil slice), is an empty list", () => {
  assertEquals(parseReferrersIndex(encode({ schemaVersion: 2 })), []);
  assertEquals(parseReferrersIndex(encode({ schemaVersion: 2, manifests: null })), []);
  assertEquals(parseReferrersIndex(encode({ schemaVersion: 2, manifests: [] })), []);
});

Deno.test("parseReferrersIndex: what is not an index, or has a malformed entry, is an error", () => {
  const entry = {
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: DIGEST,
    size: 1,
  };
  const cases: [string, Uint8Array, string][] = [
    ["not JSON", new TextEncoder().encode("<html>404</html>"), "not JSON"],
    ["not UTF-8", new Uint8Array([0x7b, 0xff, 0x7d]), "not JSON"],
    ["an array", encode([entry]), "not a JSON object"],
    ["a string", encode("index"), "not a JSON object"],
    ["manifests an object", encode({ manifests: { 0: entry } }), "not an array"],
    ["entry not an object", encode({ manifests: ["x"] }), "manifests[0] must be an object"],
    ["no mediaType", encode({ manifests: [{ ...entry, mediaType: undefined }] }), "mediaType"],
    ["no digest", encode({ manifests: [{ ...entry, digest: undefined }] }), "digest"],
    ["md5 digest", encode({ manifests: [{ ...entry, digest: "md5:abc" }] }), "digest"],
    ["uppercase", encode({ manifests: [{ ...entry, digest: DIGEST.toUpperCase() }] }), "digest"],
    ["size text", encode({ manifests: [{ ...entry, size: "1" }] }), "size"],
    ["size negative", encode({ manifests: [{ ...entry, size: -1 }] }), "size"],
    ["size fraction", encode({ manifests: [{ ...entry, size: 1.5 }] }), "size"],
    ["annotations list", encode({ manifests: [{ ...entry, annotations: ["a"] }] }), "annotations"],
  ];
  for (const [name, bytes, message] of cases) {
    assertThrows(() => parseReferrersIndex(bytes), ReferrersIndexError, message);
    void name;
  }
});

Deno.test("parseReferrersIndex: every single corrupted byte is parsed or refused, never crashes", () => {
  const bytes = referrersIndexBytes([
    {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: DIGEST,
      size: 42,
      artifactType: "application/spdx+json",
      annotations: { a: "b" },
    },
  ]);
  const text = new TextDecoder().decode(bytes);
  const entry = text.indexOf('"manifests"');
  // Bytes of the entry's required keys: a corruption there loses a required field.
  const required = ['"mediaType"', '"digest"', '"size"'].flatMap((key) => {
    const at = text.indexOf(key, entry);
    return Array.from({ length: key.length - 2 }, (_, k) => at + 1 + k);
  });
  let refused = 0;
  for (let i = 0; i < bytes.length; i++) {
    const corrupt = bytes.slice();
    corrupt[i] = corrupt[i]! ^ 0x55;
    try {
      const parsed = parseReferrersIndex(corrupt);
      assert(!required.includes(i), `byte ${i} (in a required key) was accepted`);
      // What parses still holds only checked entries.
      for (const d of parsed) {
        assert(/^sha256:[0-9a-f]{64}$/.test(d.digest) && Number.isSafeInteger(d.size));
      }
    } catch (error) {
      assert(error instanceof ReferrersIndexError, `byte ${i}: ${error}`);
      refused++;
    }
  }
  assert(refused >= required.length, `only ${refused} corruptions refused`);
});

Deno.test("referrersIndexBytes writes an OCI index that parses back to the same entries", () => {
  const descriptors = [
    { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: DIGEST, size: 7 },
    {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: OTHER,
      size: 9,
      artifactType: "application/spdx+json",
      annotations: { k: "v" },
    },
  ];
  const bytes = referrersIndexBytes(descriptors);
  const json = JSON.parse(new TextDecoder().decode(bytes));
  assertEquals(json.schemaVersion, 2);
  assertEquals(json.mediaType, REFERRERS_INDEX_MEDIA_TYPE);
  assertEquals(Object.keys(json.manifests[1]), [
    "mediaType",
    "digest",
    "size",
    "artifactType",
    "annotations",
  ]);
  assertEquals(parseReferrersIndex(bytes), descriptors);
});

Deno.test("referrerDescriptor checks one entry on its own; non-string annotations are dropped", () => {
  assertEquals(
    referrerDescriptor({ mediaType: "m", digest: DIGEST, size: 1, annotations: { a: 1, b: "c" } }),
    { mediaType: "m", digest: DIGEST, size: 1, annotations: { b: "c" } },
  );
  assertEquals(
    referrerDescriptor({ mediaType: "m", digest: DIGEST, size: 1, artifactType: "" }),
    { mediaType: "m", digest: DIGEST, size: 1 },
  );
  assertThrows(() => referrerDescriptor(null, "x"), ReferrersIndexError, "x must be an object");
});

Deno.test("describeReferrer: artifactType is the manifest's, else its config's media type", () => {
  const sbom = encode({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    artifactType: "application/spdx+json",
    config: EMPTY_DESCRIPTOR,
    layers: [],
    subject: { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: DIGEST, size: 1 },
    annotations: { "org.opencontainers.image.created": "2026-01-01T00:00:00Z" },
  });
  assertEquals(describeReferrer(sbom, sha256Digest(sbom)), {
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: sha256Digest(sbom),
    size: sbom.length,
    artifactType: "application/spdx+json",
    annotations: { "org.opencontainers.image.created": "2026-01-01T00:00:00Z" },
  });
  const old = encode({
    schemaVersion: 2,
    config: { mediaType: "application/vnd.example.config", digest: OTHER, size: 2 },
    layers: [],
  });
  assertEquals(describeReferrer(old, "sha256:x", "application/vnd.oci.image.manifest.v1+json"), {
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: "sha256:x",
    size: old.length,
    artifactType: "application/vnd.example.config",
  });
  assertThrows(() => describeReferrer(new Uint8Array([1, 2]), "d"), ReferrersIndexError);
});

Deno.test("subjectOf names a referrer's subject, and nothing for other manifests", () => {
  assertEquals(subjectOf(encode({ subject: { digest: DIGEST } })), DIGEST);
  assertEquals(subjectOf(encode({ layers: [] })), undefined);
  assertEquals(subjectOf(new TextEncoder().encode("{")), undefined);
  assertEquals(subjectOf(encode(null)), undefined);
});

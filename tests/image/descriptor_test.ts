/** The one descriptor guard and the platform guard: what they keep, default and refuse. */
import { asDescriptor } from "../../src/image/descriptor.ts";
import { JsonShapeError } from "../../src/image/json_guards.ts";
import { MEDIA_TYPES } from "../../src/image/media_types.ts";
import { asPlatform } from "../../src/image/platform.ts";
import { assertEquals, assertStringIncludes, assertThrows } from "../helpers/assert.ts";

const DIGEST = `sha256:${"a".repeat(64)}`;

Deno.test("asDescriptor keeps what OCI 1.1 descriptors carry, and only that", () => {
  const descriptor = asDescriptor({
    mediaType: MEDIA_TYPES.ociManifest,
    digest: DIGEST,
    size: 12,
    artifactType: "application/spdx+json",
    annotations: { a: "1", ignored: 2 },
    urls: ["https://example.invalid/layer"],
    platform: { os: "linux", architecture: "arm", variant: "v7" },
    data: "e30=",
  }, "d");
  assertEquals(descriptor, {
    mediaType: MEDIA_TYPES.ociManifest,
    digest: DIGEST,
    size: 12,
    annotations: { a: "1" },
    platform: { os: "linux", architecture: "arm", variant: "v7" },
    artifactType: "application/spdx+json",
    urls: ["https://example.invalid/layer"],
  });
});

Deno.test("asDescriptor: a missing media type takes the default given, else is an error", () => {
  const bare = { digest: DIGEST, size: 1 };
  assertEquals(
    asDescriptor(bare, "c", { defaultMediaType: MEDIA_TYPES.ociConfig }).mediaType,
    MEDIA_TYPES.ociConfig,
  );
  const error = assertThrows(() => asDescriptor(bare, "manifests[3]"), JsonShapeError);
  assertStringIncludes(error.message, "manifests[3].mediaType must be a non-empty string");
});

Deno.test("asDescriptor: empty annotations and an os-less platform are as if absent", () => {
  const descriptor = asDescriptor(
    {
      mediaType: "x",
      digest: DIGEST,
      size: 1,
      annotations: {},
      platform: { architecture: "amd64" },
    },
    "d",
  );
  assertEquals(descriptor, { mediaType: "x", digest: DIGEST, size: 1 });
});

Deno.test("asPlatform: Windows fields kept, omitempty blanks dropped, wrong types refused", () => {
  assertEquals(
    asPlatform({
      os: "windows",
      architecture: "amd64",
      variant: "",
      "os.version": "10.0",
      "os.features": [],
    }, "p"),
    { os: "windows", architecture: "amd64", "os.version": "10.0" },
  );
  assertEquals(asPlatform({ os: "linux" }, "p"), undefined);
  assertStringIncludes(
    assertThrows(
      () => asPlatform({ os: "linux", architecture: "amd64", "os.features": [1] }, "p"),
      JsonShapeError,
    ).message,
    'p["os.features"][0] must be a string',
  );
  assertStringIncludes(
    assertThrows(() => asPlatform("linux/amd64", "p"), JsonShapeError).message,
    "p must be an object",
  );
});

/**
 * The core refuses options in the library's words (no flag names); the CLI says the same in
 * terms of its flags, with the hints it has always given.
 */
import { InvalidOptionError } from "../../src/errors.ts";
import { readPlatform } from "../../src/push/multi_arch.ts";
import { checkTarget } from "../../src/push/target_check.ts";
import { parseReference, parseRegistryPrefix } from "../../src/image/reference.ts";
import { mountFromOption, pushTargets } from "../../src/api/checks.ts";
import { asUsage, UsageError, usageErrorOf } from "../../src/cli/usage_error.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../helpers/assert.ts";
import type { ArchiveImage } from "../../src/archive/image.ts";
import type { ManifestNode } from "../../src/image/graph.ts";
import { imageNode } from "../push/_multi_arch_fixtures.ts";

/** What the CLI makes of `error`: a UsageError, with its message and hint. */
function cli(error: unknown): { message: string; hint: string | undefined } {
  const converted = usageErrorOf(error);
  assert(converted instanceof UsageError, `not a usage error: ${converted}`);
  assert(!(error as Error).message.includes("--"), `the core named a flag: ${error}`);
  return { message: converted.message, hint: converted.hint };
}

Deno.test("a prefix target with a tag: the core's words, then the CLI's", () => {
  const error = assertThrows(
    () => parseRegistryPrefix("r.example/mirror/app:1"),
    InvalidOptionError,
  );
  assertEquals(error.reason, "prefix-names-image");
  assertEquals(cli(error), {
    message: "--all pushes every image under its own tags; r.example/mirror/app:1 names one",
    hint: "With --all, -r names a registry and an optional prefix, without a tag: " +
      "registry.example.com:5000/mirror",
  });
  assertThrows(() => asUsage(() => parseRegistryPrefix("r.example/m:1")), UsageError, "--all");
});

Deno.test("a digest that compressing changes: the hint says --compression none", () => {
  const layer = {
    mediaType: "application/vnd.oci.image.layer.v1.tar",
    digest: `sha256:${"1".repeat(64)}`,
    size: 10,
  };
  const root = {
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: `sha256:${"2".repeat(64)}`,
    size: 100,
    blobs: [layer],
    children: [],
  } as unknown as ManifestNode;
  const image = { names: [], root, notes: [] } as unknown as ArchiveImage;
  const error = assertThrows(
    () => checkTarget(image, { tags: [], digest: root.digest }, { codec: "gzip", level: "auto" }),
    InvalidOptionError,
  );
  assertEquals(error.option, "compression");
  assertEquals(cli(error).hint, "Add --compression none to push the layers as stored");
  const other = `sha256:${"3".repeat(64)}`;
  const mismatch = assertThrows(
    () => checkTarget(image, { tags: [], digest: other }, { codec: "gzip", level: "auto" }),
    InvalidOptionError,
  );
  assertEquals(
    cli(mismatch).hint,
    `Push by tag, or by the digest the archive holds: @${root.digest} with --compression none`,
  );
});

Deno.test("a config without a platform: the hint names --platform and --multi-arch", async () => {
  const error = await assertRejects(
    () => readPlatform(imageNode({ os: "linux" }), "app.tar (app:1)"),
    InvalidOptionError,
  );
  const { hint } = cli(error);
  assert(hint?.includes("docker build --platform linux/amd64"), hint);
  assert(hint?.endsWith("without --multi-arch"), hint);
});

Deno.test("a push's shape and its mountFrom: the core's words, then the CLI's", () => {
  const refusal = (check: () => unknown) => cli(assertThrows(check, InvalidOptionError));
  const run = { archives: 1, all: false, multiArch: false };
  assertEquals(
    refusal(() => pushTargets(["r.example/a"], { ...run, all: true, multiArch: true })),
    {
      message: "--all and --multi-arch cannot be used together",
      hint: "--all pushes each image under its own name; --multi-arch joins images into one tag",
    },
  );
  const byDigest = `r.example/a@sha256:${"a".repeat(64)}`;
  assertEquals(refusal(() => pushTargets([byDigest], { ...run, multiArch: true })), {
    message: "--multi-arch pushes an index under a tag, not to a digest",
    hint: "Name a tag in -r: registry.example.com/team/app:1.0",
  });
  assertEquals(refusal(() => pushTargets(["r.example/a:1"], { ...run, archives: 2 })), {
    message: "2 archives and one image to push: -f is given more than once without --all or " +
      "--multi-arch",
    hint: "Add --multi-arch to join per-platform archives into one tag, or --all with " +
      "-r REGISTRY[/PREFIX] to push every image under its own name",
  });
  const targets = [parseReference("r.example/team/app:1")];
  assertEquals(refusal(() => mountFromOption("team/base:1", targets)), {
    message: '--mount-from expects a repository name, got "team/base:1"',
    hint: "Name a repository on the same registry, e.g. --mount-from team/base",
  });
  assertEquals(refusal(() => mountFromOption("team/app", targets)), {
    message: "--mount-from names the repository being pushed to",
    hint: "Name another repository of the same registry, one that holds the blobs",
  });
  assertEquals(mountFromOption("team/base", targets), "team/base");
});

Deno.test("anything but the core's refusal of an option is left as it is", () => {
  const other = new Error("boom");
  assert(usageErrorOf(other) === other);
});

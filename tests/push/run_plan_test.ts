import { InvalidOptionError } from "../../src/errors.ts";
import type { ArchiveImage, ImageArchive } from "../../src/archive/image.ts";
import { planRun, type PlanSettings } from "../../src/push/run_plan.ts";
import { parseReference, parseRegistryPrefix } from "../../src/image/reference.ts";
import { assertEquals, assertThrows } from "../helpers/assert.ts";
import { imageNode } from "./_multi_arch_fixtures.ts";

function image(names: string[], seed: string): ArchiveImage {
  return { names, root: imageNode({ os: "linux", architecture: "amd64", seed }), notes: [] };
}

function archive(path: string, images: ArchiveImage[]): ImageArchive {
  return { path, format: "docker-save", images };
}

const settings = (over: Partial<PlanSettings>): PlanSettings => ({
  targets: [parseReference("127.0.0.1:5000/app:1")],
  tags: [],
  all: false,
  multiArch: false,
  images: [],
  ...over,
});

/** Each job as `registry/repository:tag,tag <- labels`. */
function mapping(plan: ReturnType<typeof planRun>): string[] {
  return plan.jobs.map((job) =>
    `${job.target.registry}/${job.target.repository}:${job.tags.join(",")} <- ${
      job.sources.map((s) => s.label).join("+")
    }`
  );
}

Deno.test("planRun --all: each image under PREFIX/<repository path>, every tag, once", () => {
  const app = image(["app:1", "docker.io/library/app:latest"], "a");
  const nginx = image(["nginx:1.25"], "n");
  const team = image(["registry.example.com/team/tool:2", "1"], "t");
  const untagged = image([], "u");
  const onlyRef = image(["1.0"], "r");
  const plan = planRun(
    [archive("a.tar", [app, nginx, untagged]), archive("b.tar", [team, onlyRef, app])],
    settings({
      all: true,
      targets: [parseRegistryPrefix("127.0.0.1:5000/mirror")],
      tags: ["stable"],
    }),
  );
  assertEquals(mapping(plan), [
    "127.0.0.1:5000/mirror/library/app:1,latest,stable <- app:1",
    "127.0.0.1:5000/mirror/library/nginx:1.25,stable <- nginx:1.25",
    "127.0.0.1:5000/mirror/team/tool:2,stable <- registry.example.com/team/tool:2",
  ]);
  assertEquals(plan.skipped.map((s) => [s.archive, s.digest, s.reason.split(":")[0]]), [
    ["a.tar", untagged.root.digest, "untagged"],
    ["b.tar", onlyRef.root.digest, "untagged"],
  ]);
});

Deno.test("planRun --all: several targets; --image picks images, even an untagged one", () => {
  const app = image(["app:1"], "a");
  const other = image(["other:1"], "o");
  const untagged = image([], "u");
  const archives = [archive("a.tar", [app, other, untagged])];
  const plan = planRun(
    archives,
    settings({
      all: true,
      targets: [parseRegistryPrefix("127.0.0.1:5000/m"), parseRegistryPrefix("127.0.0.1:6000")],
      images: ["app:1"],
    }),
  );
  assertEquals(mapping(plan), [
    "127.0.0.1:5000/m/library/app:1 <- app:1",
    "127.0.0.1:6000/library/app:1 <- app:1",
  ]);
  assertEquals(plan.jobs.map((j) => j.targetIndex), [0, 1]);
  // An untagged image named by --image goes into the prefix repository, by digest...
  const byDigest = planRun(
    archives,
    settings({
      all: true,
      targets: [parseRegistryPrefix("127.0.0.1:5000/m")],
      images: [untagged.root.digest.slice(7, 19)],
    }),
  );
  assertEquals(mapping(byDigest), [`127.0.0.1:5000/m: <- ${untagged.root.digest}`]);
  assertEquals(byDigest.skipped, []);
  // ...and needs one.
  assertThrows(
    () =>
      planRun(
        archives,
        settings({
          all: true,
          targets: [parseRegistryPrefix("127.0.0.1:5000")],
          images: [untagged.root.digest],
        }),
      ),
    InvalidOptionError,
    "no prefix repository",
  );
  assertThrows(
    () => planRun(archives, settings({ all: true, images: ["missing:1"] })),
    InvalidOptionError,
    'No image named "missing:1"',
  );
});

Deno.test("planRun --all refuses two images for one tag, and pushes one image once", () => {
  const one = image(["app:1"], "a");
  const two = image(["docker.io/library/app:1"], "b");
  const error = assertThrows(
    () =>
      planRun(
        [archive("a.tar", [one]), archive("b.tar", [two])],
        settings({ all: true, targets: [parseRegistryPrefix("127.0.0.1:5000")] }),
      ),
    InvalidOptionError,
    "Two images would be pushed as 127.0.0.1:5000/library/app:1",
  );
  assertEquals(/a\.tar.*b\.tar/.test(error.message), true, error.message);
  const same = planRun(
    [archive("a.tar", [one]), archive("copy.tar", [one])],
    settings({ all: true, targets: [parseRegistryPrefix("127.0.0.1:5000")] }),
  );
  assertEquals(mapping(same), ["127.0.0.1:5000/library/app:1 <- app:1"]);
});

Deno.test("planRun: one image to each -r, under its tag and every --tag", () => {
  const app = image(["app:1"], "a");
  const plan = planRun(
    [archive("a.tar", [app])],
    settings({
      targets: [parseReference("127.0.0.1:5000/x/app:1"), parseReference("127.0.0.1:6000/y:2")],
      tags: ["latest", "1"],
    }),
  );
  assertEquals(mapping(plan), [
    "127.0.0.1:5000/x/app:1,latest <- app:1",
    "127.0.0.1:6000/y:2,latest,1 <- app:1",
  ]);
  const two = [archive("a.tar", [app, image(["b:1"], "b")])];
  assertThrows(() => planRun(two, settings({})), InvalidOptionError, "holds 2 images; choose one");
  assertThrows(
    () => planRun(two, settings({ images: ["app:1", "b:1"] })),
    InvalidOptionError,
    "2 images are named for one target image",
  );
});

Deno.test("planRun --multi-arch: every image (or those named) joined, per target", () => {
  const amd = image(["app:amd64"], "a");
  const arm = image(["app:arm64"], "b");
  const extra = image(["tool:1"], "t");
  const plan = planRun(
    [archive("amd.tar", [amd]), archive("arm.tar", [arm, extra])],
    settings({ multiArch: true, images: ["app:amd64", "app:arm64"] }),
  );
  assertEquals(mapping(plan), ["127.0.0.1:5000/app:1 <- app:amd64+app:arm64"]);
  assertEquals(plan.jobs[0]!.kind, "multi-arch");
});

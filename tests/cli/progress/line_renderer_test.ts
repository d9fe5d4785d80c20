import { createLineRenderer } from "../../../src/cli/progress/line_renderer.ts";
import { assertEquals } from "../../helpers/assert.ts";
import { digest, FakeClock, GiB, MiB } from "./_support.ts";

const A = digest("a");
const B = digest("b");
const C = digest("c");

function setup(intervalMs?: number) {
  const clock = new FakeClock();
  const lines: string[] = [];
  const renderer = createLineRenderer({
    writeLine: (line) => lines.push(line),
    now: clock.now,
    ...(intervalMs === undefined ? {} : { intervalMs }),
  });
  return { clock, lines, renderer };
}

Deno.test("line renderer prints at most one progress line per 10 s", () => {
  const { clock, lines, renderer } = setup();
  renderer.sink({ type: "plan", image: "app:1", blobs: 1, bytes: 26 * MiB });
  renderer.sink({ type: "blob-start", digest: A, size: 26 * MiB, attempt: 1 });
  for (let s = 0; s <= 25; s++) {
    clock.at(s * 1000);
    renderer.sink({ type: "blob-progress", digest: A, done: s * MiB, size: 26 * MiB });
  }
  clock.at(26_000);
  renderer.sink({ type: "blob-progress", digest: A, done: 26 * MiB, size: 26 * MiB });
  renderer.sink({ type: "blob-done", digest: A, size: 26 * MiB, outcome: "uploaded" });
  renderer.sink({ type: "manifest-done", reference: digest("e"), digest: digest("e") });
  renderer.sink({ type: "manifest-done", reference: "r.example/app:1", digest: digest("f") });
  renderer.stop();
  assertEquals(lines, [
    "Pushing app:1: 1 blob, 26.0 MiB",
    "Uploading aaaaaaaaaaaa (26.0 MiB)",
    "Progress: 10.0 MiB / 26.0 MiB (38%), 1.0 MiB/s, ETA 0:16",
    "Progress: 20.0 MiB / 26.0 MiB (76%), 1.0 MiB/s, ETA 0:06",
    "Uploaded aaaaaaaaaaaa (26.0 MiB) in 26.0 s",
    `Pushed manifest ${digest("e")}`,
    `Pushed manifest r.example/app:1 (${digest("f")})`,
  ]);
});

Deno.test("line renderer spaces progress lines from the last one printed, not a grid", () => {
  const { clock, lines, renderer } = setup();
  renderer.sink({ type: "blob-start", digest: A, size: 100, attempt: 1 });
  for (const t of [9_900, 10_500, 15_000, 20_400, 20_500, 30_499, 30_500]) {
    clock.at(t);
    renderer.sink({ type: "blob-progress", digest: A, done: Math.floor(t / 1000), size: 100 });
  }
  // Printed at 10.5 s, 20.5 s and 30.5 s; the byte counts tell which events printed.
  const progress = lines.filter((line) => line.startsWith("Progress:"));
  assertEquals(progress.map((line) => line.split(",")[0]), [
    "Progress: 10 B / 100 B (10%)",
    "Progress: 20 B / 100 B (20%)",
    "Progress: 30 B / 100 B (30%)",
  ]);
});

Deno.test("line renderer reports skips, mounts, retries and notices, but not HTTP", () => {
  const { clock, lines, renderer } = setup();
  renderer.sink({ type: "plan", image: "r.example/app:2", blobs: 3, bytes: 3 * GiB });
  renderer.sink({ type: "blob-done", digest: B, size: GiB, outcome: "skipped" });
  renderer.sink({ type: "blob-done", digest: C, size: 512 * MiB, outcome: "mounted" });
  renderer.sink({
    type: "notice",
    kind: "too-large-chunked",
    message: "Falling back to chunked upload",
  });
  renderer.sink({ type: "blob-start", digest: A, size: 1.5 * GiB, attempt: 1 });
  renderer.sink({ type: "http", method: "PUT", url: "https://r.example/v2/", status: 503, ms: 40 });
  clock.at(3000);
  renderer.sink({
    type: "retry",
    subject: { kind: "request", action: `upload of ${A}` },
    attempt: 2,
    delayMs: 800,
    reason: "HTTP 503 from PUT https://r.example/v2/app/blobs/uploads/x",
  });
  clock.at(3800);
  renderer.sink({ type: "blob-start", digest: A, size: 1.5 * GiB, attempt: 2 });
  clock.at(63_800);
  renderer.sink({ type: "blob-done", digest: A, size: 1.5 * GiB, outcome: "uploaded" });
  renderer.stop();
  // Events after stop are dropped.
  renderer.sink({ type: "notice", kind: "verifying", message: "late" });
  assertEquals(lines, [
    "Pushing r.example/app:2: 3 blobs, 3.00 GiB",
    "Skipped bbbbbbbbbbbb (1.00 GiB): already exists",
    "Mounted cccccccccccc (512.0 MiB) from another repository",
    "Notice: Falling back to chunked upload",
    "Uploading aaaaaaaaaaaa (1.50 GiB)",
    `Retrying upload of ${A} in 800 ms (attempt 2): ` +
    "HTTP 503 from PUT https://r.example/v2/app/blobs/uploads/x",
    "Uploading aaaaaaaaaaaa (1.50 GiB), attempt 2",
    "Uploaded aaaaaaaaaaaa (1.50 GiB) in 1:04",
  ]);
});

Deno.test("line renderer: unknown ETA at the start and zero-byte totals", () => {
  const { lines, renderer } = setup(0);
  renderer.sink({ type: "plan", image: "empty:1", blobs: 1, bytes: 0 });
  renderer.sink({ type: "blob-start", digest: A, size: 0, attempt: 1 });
  renderer.sink({ type: "blob-progress", digest: A, done: 0, size: 0 });
  const big = setup(0);
  big.renderer.sink({ type: "plan", image: "big:1", blobs: 1, bytes: GiB });
  big.renderer.sink({ type: "blob-start", digest: A, size: GiB, attempt: 1 });
  big.renderer.sink({ type: "blob-progress", digest: A, done: MiB, size: GiB });
  assertEquals(lines.at(-1), "Progress: 0 B / 0 B (0%), -- B/s, ETA 0:00");
  assertEquals(big.lines.at(-1), "Progress: 1.0 MiB / 1.00 GiB (0%), -- B/s, ETA --:--");
});

Deno.test("line renderer never says 100% while a blob waits for the registry", () => {
  const { clock, lines, renderer } = setup(1000);
  renderer.sink({ type: "plan", image: "app:1", blobs: 1, bytes: 4 * MiB });
  renderer.sink({ type: "blob-start", digest: A, size: 4 * MiB, attempt: 1 });
  clock.at(2000);
  renderer.sink({ type: "blob-progress", digest: A, done: 4 * MiB, size: 4 * MiB });
  assertEquals(lines.at(-1), "Progress: 4.0 MiB / 4.0 MiB (99%), 2.0 MiB/s, ETA 0:00");
});

Deno.test("line renderer: in a run to several registries, each transfer names its registry", async () => {
  const { forTarget } = await import("../../../src/progress/events.ts");
  const { clock, lines, renderer } = setup();
  const one = forTarget(renderer.sink, "one.example");
  const two = forTarget(renderer.sink, "two.example");
  renderer.sink({ type: "plan", image: "1 image(s)", target: "2 targets", blobs: 1, bytes: MiB });
  one({ type: "blob-start", digest: A, size: MiB, attempt: 1 });
  two({ type: "blob-start", digest: A, size: MiB, attempt: 1 });
  clock.at(1000);
  two({ type: "blob-done", digest: A, size: MiB, outcome: "uploaded" });
  clock.at(3000);
  one({ type: "blob-done", digest: A, size: MiB, outcome: "uploaded" });
  assertEquals(lines, [
    "Pushing 1 image(s) → 2 targets: 1 blob, 1.0 MiB",
    "Uploading aaaaaaaaaaaa (1.0 MiB) to one.example",
    "Uploading aaaaaaaaaaaa (1.0 MiB) to two.example",
    "Uploaded aaaaaaaaaaaa (1.0 MiB) to two.example in 1.0 s",
    "Uploaded aaaaaaaaaaaa (1.0 MiB) to one.example in 3.0 s",
  ]);
});

Deno.test("line renderer: a blob uploaded, then mounted into another repository, gives no time to the mount", () => {
  const { clock, lines, renderer } = setup();
  renderer.sink({ type: "blob-start", digest: A, size: MiB, attempt: 1 });
  clock.at(2000);
  renderer.sink({ type: "blob-done", digest: A, size: MiB, outcome: "uploaded" });
  renderer.sink({ type: "blob-done", digest: A, size: MiB, outcome: "mounted" });
  assertEquals(lines.slice(-2), [
    "Uploaded aaaaaaaaaaaa (1.0 MiB) in 2.0 s",
    "Mounted aaaaaaaaaaaa (1.0 MiB) from another repository",
  ]);
});

Deno.test("line renderer: a layer compressed on the way says what was sent, then its size before", () => {
  const { clock, lines, renderer } = setup();
  renderer.sink({ type: "blob-start", digest: A, size: 10 * MiB, attempt: 1 });
  clock.at(2000);
  renderer.sink({
    type: "blob-done",
    digest: A,
    size: 10 * MiB,
    outcome: "uploaded",
    compressed: { size: 3.1 * MiB, codec: "gzip" },
  });
  renderer.sink({
    type: "blob-done",
    digest: B,
    size: 4 * MiB,
    outcome: "skipped",
    compressed: { size: MiB, codec: "zstd" },
  });
  assertEquals(lines, [
    "Uploading aaaaaaaaaaaa (10.0 MiB)",
    "Uploaded aaaaaaaaaaaa (3.1 MiB, 10.0 MiB before gzip) in 2.0 s",
    "Skipped bbbbbbbbbbbb (1.0 MiB, 4.0 MiB before zstd): already exists",
  ]);
});

Deno.test("line renderer says each referrer a push restores, and what a dry run would", () => {
  const { lines, renderer } = setup();
  const base = { subject: A, artifactType: "application/spdx+json", target: "r.example/app" };
  renderer.sink({ type: "referrer-done", digest: B, kind: "sbom", ...base });
  renderer.sink({
    type: "referrer-done",
    digest: C,
    kind: "signature",
    ...base,
    tag: `sha256-${"a".repeat(64)}.sig`,
  });
  renderer.sink({ type: "referrer-done", digest: B, kind: "sbom", ...base, dryRun: true });
  renderer.stop();
  assertEquals(lines, [
    "Pushed sbom bbbbbbbbbbbb of aaaaaaaaaaaa",
    `Pushed signature cccccccccccc of aaaaaaaaaaaa as sha256-${"a".repeat(64)}.sig`,
    "Would push sbom bbbbbbbbbbbb of aaaaaaaaaaaa",
  ]);
});

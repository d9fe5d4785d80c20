import { textSummary } from "../../src/cli/push_report.ts";
import type { JobReport } from "../../src/push/push_run.ts";
import type { PushJob } from "../../src/push/run_plan.ts";
import { parseReference } from "../../src/registry/reference.ts";
import { assertEquals } from "../helpers/assert.ts";

const MiB = 1024 * 1024;

function report(registry: string, layers: [string, number, number][]): JobReport {
  const job: PushJob = {
    kind: "image",
    sources: [],
    targetIndex: 0,
    target: parseReference(`${registry}/app:1`),
    tags: ["1"],
  };
  const compressedLayers = new Map(layers.map(([d, bytes, size]) => [d, { bytes, size }]));
  return {
    job,
    status: "pushed",
    manifest: { mediaType: "m", digest: `sha256:${"e".repeat(64)}`, size: 1 },
    manifestFinal: true,
    platforms: [],
    uploaded: { count: layers.length, bytes: 0 },
    skipped: { count: 0, bytes: 0 },
    mounted: { count: 0, bytes: 0 },
    compressed: {
      count: layers.length,
      bytes: layers.reduce((n, l) => n + l[1], 0),
      size: layers.reduce((n, l) => n + l[2], 0),
    },
    compressedLayers,
    durationMs: 1,
  };
}

Deno.test("textSummary: a layer sent to two registries was compressed once, and says so", () => {
  const a = report("one.example", [["sha256:a", 10 * MiB, 4 * MiB], ["sha256:b", 2 * MiB, MiB]]);
  const b = report("two.example", [["sha256:a", 10 * MiB, 4 * MiB], ["sha256:b", 2 * MiB, MiB]]);
  const lines = textSummary([a, b], [], { dryRun: false, quiet: false, codec: "gzip" });
  assertEquals(lines[0], "Compressed 2 layer(s) with gzip: 12.0 MiB → 5.0 MiB");
  assertEquals(lines[1], "Summary: 2 push(es)");
  assertEquals(lines.length, 4);
});

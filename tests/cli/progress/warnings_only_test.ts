import { createReporter } from "../../../src/cli/reporter.ts";
import type { ProgressEvent } from "../../../src/progress/events.ts";
import { warningsOnly } from "../../../src/cli/progress/warnings_only.ts";
import { assertEquals } from "../../helpers/assert.ts";

const EVENTS: ProgressEvent[] = [
  { type: "plan", image: "app:1", blobs: 1, bytes: 10 },
  { type: "notice", kind: "chunks-refused-fallback", message: "a fallback taken" },
  { type: "notice", kind: "zstd-layers", level: "warning", message: "zstd layers" },
  { type: "blob-done", digest: "sha256:" + "a".repeat(64), size: 10, outcome: "uploaded" },
];

Deno.test("warningsOnly writes warning notices as lines and drops the rest", () => {
  const lines: string[] = [];
  const sink = warningsOnly((line) => lines.push(line));
  for (const event of EVENTS) sink(event);
  assertEquals(lines, ["Warning: zstd layers"]);
});

Deno.test("a --quiet reporter keeps warnings, at a terminal or not", () => {
  for (const tty of [false, true]) {
    let written = "";
    const reporter = createReporter({
      quiet: true,
      verbose: false,
      tty,
      color: false,
      writeErr: (text) => written += text,
    });
    for (const event of EVENTS) reporter.sink(event);
    reporter.info("an information line");
    reporter.stop();
    assertEquals(written, "Warning: zstd layers\n");
  }
});

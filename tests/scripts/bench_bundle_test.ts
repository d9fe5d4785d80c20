/**
 * `scripts/bench_bundle.ts --small` end to end: it writes its archive, pushes it with skopeo and
 * with ours (per image and `--all`, gzip and as stored) into fresh registries, and prints the
 * table and a PASS/FAIL line per limit. Times are not asserted (start-up dominates at this size);
 * what the access log shows is: the shared layer went up once, every tag is there, and pushes
 * of layers as stored give the same manifests either way.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { integrationTest } from "../helpers/tools.ts";

const SCRIPT = new URL("../../scripts/bench_bundle.ts", import.meta.url).pathname;

integrationTest("bench_bundle --small prints the table and the verdicts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dip-bench-bundle-test-" });
  try {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", SCRIPT, "--small", "--keep", dir],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr);
    assertEquals(output.code, 0, stderr);

    const rows = stdout.split("\n").filter((line) => line.startsWith("| "));
    assertStringIncludes(rows[0] ?? "", "| contender | median wall s |");
    const labels = rows.slice(2).map((row) => row.split(" | ")[0]!.slice(2));
    assertEquals(labels, [
      "skopeo copy, one per image (gzip)",
      "ours, one command per image (gzip)",
      "ours, --all in one run (gzip)",
      "ours, one command per image (none)",
      "ours, --all in one run (none)",
    ]);
    // Column 6: uploads of the shared base layer, from the registry's access log.
    for (const row of rows.slice(2)) assertEquals(row.split(" | ")[5], "1", row);

    for (const codec of ["gzip", "none"]) {
      assert(
        new RegExp(`^(PASS|FAIL): --all \\(${codec}\\) .* × skopeo per image`, "m").test(stdout),
      );
      assert(
        new RegExp(`^(PASS|FAIL): --all \\(${codec}\\) .* × ours per image`, "m").test(stdout),
      );
      assertStringIncludes(stdout, `PASS: --all (${codec}) sent the shared layer once`);
    }
    for (const label of labels) assertStringIncludes(stdout, `PASS: ${label}: all 3 tags`);
    assertStringIncludes(stdout, "PASS: ours per image and --all (none) pushed the same manifest");
    assert(!/^FAIL: (?!--all)/m.test(stdout), stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { tools: ["docker-registry", "skopeo", "/usr/bin/time"] });

/**
 * What a push run reports at its end: the summary lines on stderr (fed job reports, compared as
 * text) and the `--output json` document of runs against the real registry.
 */
import { tallyText, textSummary } from "../../src/cli/push_report.ts";
import { formatBytes } from "../../src/byte_size.ts";
import { shortDigest } from "../../src/cli/progress/format.ts";
import type { JobReport } from "../../src/push/push_run.ts";
import type { PushJob } from "../../src/push/run_plan.ts";
import { parseReference } from "../../src/image/reference.ts";
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { lines, runCli } from "../helpers/cli.ts";
import { writeDockerSaveLegacy } from "../helpers/image_fixtures.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import { startTokenServer } from "../helpers/token_server.ts";

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
    uploaded: { count: layers.length, bytes: 0, archiveBytes: 0 },
    skipped: { count: 0, bytes: 0, archiveBytes: 0 },
    mounted: { count: 0, bytes: 0, archiveBytes: 0 },
    compressed: {
      count: layers.length,
      bytes: layers.reduce((n, l) => n + l[1], 0),
      size: layers.reduce((n, l) => n + l[2], 0),
    },
    compressedLayers,
    referrers: [],
    keptAsStoredFor: [],
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

/** A pushed job's report with these blob tallies: `[count, bytes, archiveBytes?]` each. */
function tallied(
  uploaded: [number, number, number?],
  mounted: [number, number] = [0, 0],
  skipped: [number, number] = [0, 0],
): JobReport {
  const tally = ([count, bytes, archiveBytes]: [number, number, number?]) => ({
    count,
    bytes,
    archiveBytes: archiveBytes ?? bytes,
  });
  return {
    ...report("one.example", []),
    uploaded: tally(uploaded),
    mounted: tally(mounted),
    skipped: tally(skipped),
  };
}

const U: [number, number] = [2, 10_445];
const M: [number, number] = [1, 4_096];
const S: [number, number] = [3, 8_192];
const NONE: [number, number] = [0, 0];
/** 10.0 MiB of layers sent as 3.1 MiB of gzip. */
const GZIPPED: [number, number, number] = [2, 3_250_585, 10 * MiB];

Deno.test("tallyText: every combination of counts reads as one sentence, without stray commas", () => {
  const cases: [JobReport, boolean, string][] = [
    [tallied(NONE), false, "nothing uploaded"],
    [tallied(U), false, "2 blob(s) (10.2 KiB) uploaded"],
    [tallied(NONE, M), false, "nothing uploaded and 1 blob(s) (4.0 KiB) mounted"],
    [tallied(NONE, NONE, S), false, "nothing uploaded and 3 blob(s) (8.0 KiB) already there"],
    [tallied(U, M), false, "2 blob(s) (10.2 KiB) uploaded and 1 (4.0 KiB) mounted"],
    [tallied(U, NONE, S), false, "2 blob(s) (10.2 KiB) uploaded and 3 (8.0 KiB) already there"],
    [
      tallied(NONE, M, S),
      false,
      "nothing uploaded, 1 blob(s) (4.0 KiB) mounted and 3 (8.0 KiB) already there",
    ],
    [
      tallied(U, M, S),
      false,
      "2 blob(s) (10.2 KiB) uploaded, 1 (4.0 KiB) mounted and 3 (8.0 KiB) already there",
    ],
    [
      tallied(GZIPPED, NONE, S),
      false,
      "2 blob(s) (3.1 MiB, 10.0 MiB before gzip) uploaded and 3 (8.0 KiB) already there",
    ],
    [tallied(NONE), true, "nothing would be uploaded"],
    [
      tallied(U, M, S),
      true,
      "2 blob(s) (10.2 KiB) would be uploaded, 1 (4.0 KiB) would be mounted and 3 (8.0 KiB) " +
      "already there",
    ],
  ];
  for (const [job, dryRun, expected] of cases) {
    assertEquals(tallyText(job, dryRun, "gzip"), expected);
  }
});

Deno.test("textSummary: a dry run of one image says each count once, in clauses", () => {
  const digest = `sha256:${"e".repeat(64)}`;
  const tail = `manifest ${digest} would be pushed as one.example/app:1`;
  const cases: [JobReport, string][] = [
    [tallied(U), `Dry run: 2 blob(s) (10.2 KiB) would be uploaded; ${tail}`],
    [
      tallied(NONE, NONE, S),
      `Dry run: nothing would be uploaded; 3 blob(s) (8.0 KiB) already in the registry; ${tail}`,
    ],
    [
      tallied(U, M, S),
      "Dry run: 2 blob(s) (10.2 KiB) would be uploaded; 1 blob(s) (4.0 KiB) would be mounted " +
      `from another repository; 3 blob(s) (8.0 KiB) already in the registry; ${tail}`,
    ],
  ];
  for (const [job, expected] of cases) {
    const options = { dryRun: true, quiet: false, codec: "none" };
    assertEquals(textSummary([{ ...job, status: "planned" }], [], options), [expected]);
  }
});

/** The `errors[]` entries of a JSON report. */
interface ReportErrors {
  errors: { target: string | null; message: string; status: number | null; codes: string[] }[];
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dip-push-report-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

integrationTest(
  "--output json: a wrong password carries the registry's 401 and its UNAUTHORIZED code",
  async () => {
    await withTempDir(async (dir) => {
      await using registry = await startRegistry({
        htpasswd: { username: "alice", password: "right-Pa55" },
      });
      const archive = await writeDockerSaveLegacy(`${dir}/app.tar`, [
        { name: "app:1", layerSizes: [1_000] },
      ]);
      const result = await runCli(
        ["-r", `${registry.url}/app:1`, "-f", archive.path, "-u", "alice", "--password-stdin"]
          .concat(["--output", "json"]),
        { stdin: "wrong-Pa55\n", env: { DOCKER_CONFIG: `${dir}/none` } },
      );
      assertEquals(result.code, 1, result.stderr);
      const report = JSON.parse(result.stdout) as ReportErrors;
      assertEquals(report.errors.length, 1);
      assertEquals(report.errors[0]!.status, 401, JSON.stringify(report.errors[0]));
      assertEquals(report.errors[0]!.codes, ["UNAUTHORIZED"]);
      // The one line on stderr says it too, and never the password.
      const error = lines(result.stderr).find((l) => l.startsWith("Error: "));
      assert(error !== undefined, result.stderr);
      assertStringIncludes(error, 'Authentication failed for user "alice"');
      assertStringIncludes(error, "401 Unauthorized (UNAUTHORIZED");
      assert(!result.stderr.includes("wrong-Pa55") && !result.stdout.includes("wrong-Pa55"));
    });
  },
  { tools: ["docker-registry", "htpasswd"] },
);

integrationTest(
  "--output json: a token service's refusal carries its 401 and code, and names the service",
  async () => {
    await withTempDir(async (dir) => {
      await using tokens = await startTokenServer({
        users: { alice: "right-Pa55", helper: "helper-pw" },
      });
      await using registry = await startRegistry({
        token: {
          realm: tokens.realm,
          service: tokens.service,
          issuer: tokens.issuer,
          rootCertBundle: tokens.certPath,
          credentials: { username: "helper", password: "helper-pw" },
        },
      });
      const archive = await writeDockerSaveLegacy(`${dir}/app.tar`, [
        { name: "app:1", layerSizes: [1_000] },
      ]);
      const result = await runCli(
        ["-r", `${registry.url}/app:1`, "-f", archive.path, "-u", "alice", "--password-stdin"]
          .concat(["--output", "json"]),
        { stdin: "wrong-Pa55\n", env: { DOCKER_CONFIG: `${dir}/none` } },
      );
      assertEquals(result.code, 1, result.stderr);
      const error = (JSON.parse(result.stdout) as ReportErrors).errors[0]!;
      assertEquals([error.status, error.codes], [401, ["UNAUTHORIZED"]], JSON.stringify(error));
      assertStringIncludes(error.message, `${new URL(tokens.realm).host}`);
      assert(!result.stderr.includes("wrong-Pa55") && !result.stdout.includes("wrong-Pa55"));
    });
  },
  { tools: ["docker-registry", "openssl"] },
);

Deno.test("--output json: a usage error still prints the document, and exits 2", async () => {
  for (
    const [args, needle] of [
      [["-r", "127.0.0.1:9/app:1"], "-f/--file is required"],
      [["-r", "127.0.0.1:9/app:1", "-f", "x.tar", "--bogus"], "--bogus"],
      [["-r", "127.0.0.1:9/app:1", "-f", "x.tar", "--tag", "-x", "--dry-run"], "tag"],
    ] as const
  ) {
    const result = await runCli([...args, "--output", "json"]);
    const what = `${args.join(" ")}: ${result.stderr}`;
    assertEquals(result.code, 2, what);
    assert(/^Error: .+\nHint: .+\n$/.test(result.stderr), what);
    const report = JSON.parse(result.stdout) as ReportErrors & Record<string, unknown>;
    assertEquals(report.success, false, what);
    assertEquals(report.dryRun, args.includes("--dry-run" as never), what);
    assertEquals([report.images, report.skipped], [[], []], what);
    assertEquals(report.errors.length, 1, what);
    assertEquals([report.errors[0]!.target, report.errors[0]!.status], [null, null], what);
    assertStringIncludes(report.errors[0]!.message, needle, what);
  }
});

integrationTest(
  "--output json names an archive read from standard input `-`, as inspect does",
  async () => {
    await withTempDir(async (dir) => {
      await using registry = await startRegistry();
      const archive = await writeDockerSaveLegacy(`${dir}/app.tar`, [
        { name: "app:1", layerSizes: [1_000] },
      ]);
      const result = await runCli(
        ["-r", `${registry.url}/app:1`, "-f", "-", "--output", "json"],
        { stdinFile: archive.path },
      );
      assertEquals(result.code, 0, result.stderr);
      const report = JSON.parse(result.stdout) as { images: { sources: { archive: string }[] }[] };
      assertEquals(report.images[0]!.sources.map((s) => s.archive), ["-"]);
      const inspected = await runCli(["inspect", "-f", "-", "--output", "json"], {
        stdinFile: archive.path,
      });
      assertEquals(JSON.parse(inspected.stdout).archive.path, "-");
    });
  },
  { tools: ["docker-registry"] },
);

integrationTest(
  "layers compressed on the way count what was sent, and say their size before compression",
  async () => {
    await withTempDir(async (dir) => {
      await using registry = await startRegistry();
      const archive = await writeDockerSaveLegacy(`${dir}/app.tar`, [
        // Over the 1 MiB a stream keeps in memory: from a pipe, it is sent as it passes.
        { name: "app:1", layerSizes: [1_200_000, 5_000] },
      ]);
      const inspected = JSON.parse(
        (await runCli(["inspect", "-f", archive.path, "--output", "json"])).stdout,
      ) as { images: { layers: { digest: string; size: number }[] }[] };
      const layers = inspected.images[0]!.layers;
      const push = (repo: string, args: string[], stdin = false) =>
        runCli(
          ["-r", `${registry.url}/${repo}:1`, "-f", stdin ? "-" : archive.path]
            .concat("--compression", "gzip", ...args),
          {
            env: { XDG_CACHE_HOME: `${dir}/cache-${repo}` },
            ...(stdin ? { stdinFile: archive.path } : {}),
          },
        );

      const result = await push("json", ["--output", "json"]);
      assertEquals(result.code, 0, result.stderr);
      const sent = (await registry.fetchManifest("json", "1")).json as {
        config: { size: number };
        layers: { size: number }[];
      };
      const report = JSON.parse(result.stdout) as {
        images: { blobs: { uploaded: { count: number; bytes: number; archiveBytes: number } } }[];
      };
      const configSize = sent.config.size;
      assertEquals(report.images[0]!.blobs.uploaded, {
        count: 3,
        bytes: configSize + sent.layers.reduce((n, l) => n + l.size, 0),
        archiveBytes: configSize + layers.reduce((n, l) => n + l.size, 0),
      });

      // The log lines say both sizes of each layer, from a file and from a pipe alike; the
      // config went as it is.
      for (const stdin of [false, true]) {
        const repo = stdin ? "piped" : "text";
        const text = await push(repo, [], stdin);
        assertEquals(text.code, 0, text.stderr);
        const gzipped = ((await registry.fetchManifest(repo, "1")).json as typeof sent).layers;
        const uploaded = lines(text.stderr).filter((l) => l.startsWith("Uploaded "));
        for (const [i, layer] of layers.entries()) {
          // A layer sent as a stream passed is named by its entry, before its digest is known.
          const name = stdin ? "[0-9a-f]{12}" : shortDigest(layer.digest);
          const sizes = `(${formatBytes(gzipped[i]!.size)}, ${
            formatBytes(layer.size)
          } before gzip)`;
          const line = new RegExp(`^Uploaded ${name} ${sizes.replace(/[().]/g, "\\$&")}`);
          assert(uploaded.some((l) => line.test(l)), `${line}\n${text.stderr}`);
        }
        const config = /^Uploaded [0-9a-f]{12} \([0-9.]+ [KM]?i?B\)/;
        assert(uploaded.some((l) => config.test(l)), text.stderr);
      }
    });
  },
  { tools: ["docker-registry"] },
);

Deno.test("textSummary: --quiet keeps the images --all left out, as it keeps failures", () => {
  const skipped = { archive: "b.tar", digest: `sha256:${"d".repeat(64)}`, reason: "untagged" };
  const lines = textSummary([tallied(U)], [skipped], { dryRun: false, quiet: true, codec: "none" });
  assertEquals(lines, [
    "Summary: 1 push(es), 1 image(s) skipped",
    `  - skipped ${skipped.digest} (b.tar): untagged; name it with --image to push it by digest`,
  ]);
});

Deno.test("textSummary says what came along with the images, and a dry run what would", () => {
  const a = report("one.example", []);
  const subject = `sha256:${"e".repeat(64)}`;
  a.referrers.push(
    { digest: `sha256:${"1".repeat(64)}`, kind: "signature", artifactType: "x", subject },
    { digest: `sha256:${"2".repeat(64)}`, kind: "sbom", artifactType: "spdx", subject },
    { digest: `sha256:${"3".repeat(64)}`, kind: "signature", artifactType: "x", subject },
  );
  const text = textSummary([a], [], { dryRun: false, quiet: false, codec: "none" });
  assertEquals(text, ["Pushed with the image: 2 signatures, 1 SBOM"]);
  const dry = textSummary([a], [], { dryRun: true, quiet: false, codec: "none" });
  assertEquals(dry[0], "Would push with the image: 2 signatures, 1 SBOM");
  assertEquals(textSummary([a], [], { dryRun: false, quiet: true, codec: "none" }), []);
});

/**
 * `inspect` as a user runs it: the CLI as a subprocess. Help lists the command and its flags;
 * `-f` (a file, a pipe, compressed files) and `--output` each change what stdout says; the JSON
 * matches the README's schema; a bad archive is exit 1 with one line on stderr, a bad call
 * exit 2 with a hint.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { lines, runCli } from "../helpers/cli.ts";
import { run } from "../helpers/command.ts";
import {
  writeDocker25Save,
  writeDockerSaveLegacy,
  writeOciArchive,
} from "../helpers/image_fixtures.ts";
import { integrationTest } from "../helpers/tools.ts";
import { assertReport, DOCUMENTED_FIELDS } from "../inspect/_report_schema.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dip-inspect-cli-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function json(stdout: string) {
  return assertReport(JSON.parse(stdout));
}

Deno.test("--help and help list inspect; inspect --help lists -f/--file and --output", async () => {
  for (const args of [["--help"], ["help"]]) {
    const { code, stdout, stderr } = await runCli(args);
    assertEquals([code, stderr], [0, ""], args.join(" "));
    assert(/\binspect\b/.test(stdout), `${args}: ${stdout}`);
  }
  for (const args of [["inspect", "--help"], ["help", "inspect"], ["inspect", "-h"]]) {
    const { code, stdout, stderr } = await runCli(args);
    assertEquals([code, stderr], [0, ""], args.join(" "));
    for (const flag of ["-f, --file <path>", "--output <format>", "-h, --help"]) {
      assertStringIncludes(stdout, flag, args.join(" "));
    }
    assertStringIncludes(stdout, "Exit codes: 0 read, 1 not a readable image archive");
  }
});

Deno.test("--output: text by default and with text; json is one document in the schema", async () => {
  await withDir(async (dir) => {
    const { images } = await writeDockerSaveLegacy(`${dir}/app.tar`, [
      { name: "app:1" },
      { name: "tool:2" },
    ]);
    const plain = await runCli(["inspect", "-f", `${dir}/app.tar`]);
    const text = await runCli(["inspect", "-f", `${dir}/app.tar`, "--output", "text"]);
    assertEquals([plain.code, plain.stderr], [0, ""]);
    assertEquals(text, plain, "text is the default");
    const out = lines(plain.stdout);
    assertEquals(out.slice(0, 3), [
      `Archive:  ${dir}/app.tar (uncompressed, indexed in place, ` +
      `${out[0]!.match(/, ([\d.]+ KiB) of tar/)![1]} of tar)`,
      "Format:   docker save (before Docker 25) [docker-save]",
      out[2]!,
    ]);
    assert(/^Totals: {3}2 images, 2 platforms, 6 blobs \(configs and layers/.test(out[2]!), out[2]);
    assertStringIncludes(plain.stdout, "Image 1: app:1\n  Platform:  linux/amd64\n");
    assertStringIncludes(plain.stdout, `  Config:    ${images[1]!.configDigest}\n`);
    assertStringIncludes(plain.stdout, `${images[0]!.layerDigests[0]}  `);

    const asJson = await runCli(["inspect", "-f", `${dir}/app.tar`, "--output", "json"]);
    assertEquals([asJson.code, asJson.stderr], [0, ""]);
    const report = json(asJson.stdout);
    assertEquals(report.images.map((i) => i.configDigest), images.map((i) => i.configDigest));
    assert(asJson.stdout.endsWith("}\n") && asJson.stdout.startsWith("{"), "one document");
  });
});

Deno.test("-f: each archive format gives its own report, through a pipe too", async () => {
  await withDir(async (dir) => {
    await writeDockerSaveLegacy(`${dir}/legacy.tar`, [{ name: "app:1" }]);
    await writeDocker25Save(`${dir}/d25.tar`, [{ name: "app:1" }]);
    await writeOciArchive(`${dir}/oci.tar`, [{ name: "app:1" }]);
    const multi = await writeOciArchive(`${dir}/multi.tar`, [
      { name: "app:amd64", architecture: "amd64" },
      { name: "app:arm64", architecture: "arm64" },
    ], { index: { refName: "1" } });
    const expected: [string, string][] = [
      ["legacy.tar", "docker-save"],
      ["d25.tar", "docker-save-25"],
      ["oci.tar", "oci-layout"],
      ["multi.tar", "oci-layout"],
    ];
    const reports = new Map<string, string>();
    for (const [file, format] of expected) {
      const result = await runCli(["inspect", "-f", `${dir}/${file}`, "--output", "json"]);
      assertEquals([result.code, result.stderr], [0, ""], file);
      assertEquals(json(result.stdout).format, format, file);
      reports.set(file, result.stdout);
    }
    assertEquals(new Set(reports.values()).size, expected.length, "-f changes the report");
    const index = json(reports.get("multi.tar")!).images[0]!;
    assertEquals(index.manifestDigest, multi.indexDigest);
    assertEquals(index.platforms.map((p) => p.architecture), ["amd64", "arm64"]);

    const piped = await runCli(["inspect", "-f", "-", "--output", "json"], {
      stdinFile: `${dir}/multi.tar`,
    });
    assertEquals([piped.code, piped.stderr], [0, ""]);
    const fromPipe = json(piped.stdout);
    assertEquals(fromPipe.archive.path, "-");
    assertEquals(fromPipe.archive.streamed, true);
    assertEquals(fromPipe.images, json(reports.get("multi.tar")!).images);
    const text = await runCli(["inspect", "-f", "-"], { stdinFile: `${dir}/multi.tar` });
    assertStringIncludes(text.stdout, "Archive:  - (uncompressed, read as a stream,");
    assertStringIncludes(text.stdout, `  Index:     ${multi.indexDigest}  `);
    assertStringIncludes(text.stdout, "  Platform:  linux/arm64\n    Manifest:  ");
  });
});

integrationTest(
  "-f app.tar.gz (pigz) and app.tar.zst (zstd): read as streams, same images",
  async () => {
    await withDir(async (dir) => {
      const tar = `${dir}/app.tar`;
      await writeDocker25Save(tar, [{ name: "app:1", layerSizes: [1_200_000, 700] }]);
      await run("sh", ["-c", `pigz -c -b 64 '${tar}' > '${tar}.gz'`]);
      await run("sh", ["-c", `zstd -q -c -B1MiB --no-progress '${tar}' > '${tar}.zst'`]);
      const file = json((await runCli(["inspect", "-f", tar, "--output", "json"])).stdout);
      for (const [suffix, compression] of [[".gz", "gzip"], [".zst", "zstd"]]) {
        const result = await runCli(["inspect", "-f", `${tar}${suffix}`, "--output", "json"]);
        assertEquals([result.code, result.stderr], [0, ""], suffix);
        const report = json(result.stdout);
        assertEquals(report.archive.compression, compression);
        assertEquals(report.images, file.images, suffix);
        assertEquals(report.totals, file.totals, suffix);
      }
    });
  },
  { tools: ["pigz", "zstd"] },
);

Deno.test("a broken archive: exit 1, one Error line on stderr, nothing on stdout", async () => {
  await withDir(async (dir) => {
    await writeOciArchive(`${dir}/app.tar`, [{ name: "app:1" }]);
    const bytes = await Deno.readFile(`${dir}/app.tar`);
    await Deno.writeFile(`${dir}/cut.tar`, bytes.subarray(0, 3000));
    await Deno.writeFile(`${dir}/junk.tar`, new TextEncoder().encode("junk\n".repeat(200)));
    for (
      const [args, needle] of [
        [["-f", `${dir}/cut.tar`], "truncated"],
        [["-f", `${dir}/junk.tar`], "not a tar"],
        [["-f", `${dir}/missing.tar`], "missing.tar"],
      ] as const
    ) {
      const { code, stdout, stderr } = await runCli(["inspect", ...args]);
      assertEquals([code, stdout], [1, ""], args.join(" "));
      assertEquals(lines(stderr).length, 1, stderr);
      assert(stderr.startsWith("Error: "), stderr);
      assertStringIncludes(stderr, needle, args.join(" "));
    }
    const piped = await runCli(["inspect", "-f", "-"], { stdinFile: `${dir}/cut.tar` });
    assertEquals([piped.code, piped.stdout, lines(piped.stderr).length], [1, "", 1], piped.stderr);
  });
});

Deno.test("--output json: every failure prints one document with errors[], same exit code", async () => {
  await withDir(async (dir) => {
    await Deno.writeFile(`${dir}/junk.tar`, new TextEncoder().encode("junk\n".repeat(200)));
    for (
      const [args, code, path, needle] of [
        [["-f", `${dir}/missing.tar`], 1, `${dir}/missing.tar`, "missing.tar"],
        [["-f", `${dir}/junk.tar`], 1, `${dir}/junk.tar`, "not a tar"],
        [[], 2, null, "-f/--file is required"],
        [["-f", "x.tar", "--verbose"], 2, null, "--verbose"],
      ] as const
    ) {
      const result = await runCli(["inspect", ...args, "--output", "json"]);
      const what = `${args.join(" ")}: ${result.stderr}`;
      assertEquals(result.code, code, what);
      const document = JSON.parse(result.stdout);
      assertEquals(Object.keys(document).sort(), ["archive", "errors", "schemaVersion", "success"]);
      assertEquals([document.schemaVersion, document.success], [1, false], what);
      assertEquals(document.archive, { path }, what);
      assertEquals(document.errors.length, 1, what);
      assertStringIncludes(document.errors[0].message, needle, what);
      // stderr says it as without --output json: one Error line (and a usage error's hint).
      assert(result.stderr.startsWith("Error: "), what);
    }
    // A report says it succeeded, in the same words.
    await writeDockerSaveLegacy(`${dir}/app.tar`, [{ name: "app:1" }]);
    const ok = await runCli(["inspect", "-f", `${dir}/app.tar`, "--output", "json"]);
    json(ok.stdout); // the schema: success true, errors[] empty
    const { success, errors } = JSON.parse(ok.stdout);
    assertEquals([ok.code, success, errors], [0, true, []]);
  });
});

Deno.test("usage errors: no -f, a bad --output, an unknown flag: exit 2 with a hint", async () => {
  for (
    const [args, needle] of [
      [["inspect"], "-f/--file is required"],
      [["inspect", "-f", "x.tar", "--output", "yaml"], '--output must be text or json, got "yaml"'],
      [["inspect", "-f", "x.tar", "--verbose"], "--verbose"],
    ] as const
  ) {
    const { code, stdout, stderr } = await runCli([...args]);
    assertEquals([code, stdout], [2, ""], args.join(" "));
    assert(/^Error: .+\nHint: .+\n$/.test(stderr), stderr);
    assertStringIncludes(stderr, needle);
  }
});

Deno.test("inspect ARCHIVE: the archive as an argument reads as -f does; both is refused", async () => {
  await withDir(async (dir) => {
    await writeDockerSaveLegacy(`${dir}/app.tar`, [{ name: "app:1" }]);
    const byFlag = await runCli(["inspect", "-f", `${dir}/app.tar`]);
    assertEquals([byFlag.code, byFlag.stderr], [0, ""]);
    assertEquals(await runCli(["inspect", `${dir}/app.tar`]), byFlag);
    // `-` is standard input, as with -f.
    const piped = await runCli(["inspect", "-"], { stdinFile: `${dir}/app.tar` });
    assertEquals([piped.code, piped.stderr], [0, ""]);
    assertStringIncludes(piped.stdout, "Image 1: app:1");

    const both = await runCli(["inspect", "-f", `${dir}/app.tar`, `${dir}/other.tar`]);
    assertEquals([both.code, both.stdout], [2, ""]);
    assertEquals(lines(both.stderr), [
      `Error: The archive is given twice: as an argument (${dir}/other.tar) and with -f ` +
      `(${dir}/app.tar)`,
      "Hint: Give it once: docker-image-pusher inspect ARCHIVE",
    ]);
  });
});

Deno.test("the README's inspect section documents every field of the JSON", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const start = readme.indexOf("\n## Inspect");
  assert(start >= 0, "README has an Inspect section");
  const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
  for (const field of DOCUMENTED_FIELDS) {
    // As a path (`images[].layers[].size`, `.architecture`) or alone (`bytes`).
    assert(new RegExp(`\`(?:[A-Za-z\\[\\]]*\\.)*${field}\``).test(section), field);
  }
  for (const kind of ["docker-save", "docker-save-25", "skopeo-docker-archive", "oci-layout"]) {
    assertStringIncludes(section, `\`${kind}\``, kind);
  }
});

/**
 * Bad streams, as a user sees them: the CLI as a subprocess reading an archive from a pipe
 * (`-f -`) or from a compressed file (`.tar.gz`, `.tar.zst`, `.tar.xz`, read as a stream in one
 * pass), against a real registry. Compressed streams cut short, garbage, empty input, trailing
 * bytes, tars cut mid-entry, layers whose bytes don't match the digest the archive names, a pipe
 * that stalls, and the usage errors of `-f -`.
 *
 * Every case must end, within a deadline, with one `Error:` line last on stderr (a `Hint:` after
 * it only for usage errors), no stack trace, nothing on stdout, the right exit code, and no
 * manifest `PUT` in the registry's access log. Large layers go up as they stream past, so blob
 * uploads before the failure are allowed: only the manifest makes an image, and it goes last.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { run } from "../helpers/command.ts";
import {
  writeDocker25Save,
  writeDockerSaveLegacy,
  writeOciArchive,
} from "../helpers/image_fixtures.ts";
import { seededBytes } from "../helpers/random.ts";
import { integrationTest, startRegistry, type TestRegistry } from "../helpers/registry.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const TOOLS = ["docker-registry", "gzip", "zstd", "xz", "bzip2"];
const encoder = new TextEncoder();

/** Above the 1 MiB the stream reader holds in memory: such a layer is uploaded as it goes past. */
const LARGE_LAYER = 1_200_000;
const SMALL_LAYER = 1_500;
/** Kills a run that outlives this: a hang fails its case instead of stalling the file. */
const DEADLINE_MS = 30_000;
/** `--timeout` for the stalled pipes: the smallest the CLI accepts is 1s. */
const STALL_TIMEOUT_S = 2;

// ---------------------------------------------------------------------------------------------
// Running the CLI with bytes (or a stalled pipe) on standard input

interface PipedResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Killed at the deadline. */
  hung: boolean;
  ms: number;
}

/**
 * What goes to standard input: nothing (`null`), all of `bytes` then end of input, or `bytes`
 * then nothing more with the pipe kept open (`stall`), until the CLI exits.
 */
type Stdin = null | { bytes: Uint8Array; stall?: boolean };

/** The environment `tests/helpers/cli.ts` gives the CLI: only PATH, HOME and Deno's cache. */
function cliEnv(stateHome: string, runNumber: number, extra: Record<string, string>) {
  const home = Deno.env.get("HOME");
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  const denoDir = Deno.env.get("DENO_DIR") ??
    (xdg ? `${xdg}/deno` : home ? `${home}/.cache/deno` : undefined);
  return {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: home ?? "/tmp",
    ...(denoDir ? { DENO_DIR: denoDir } : {}),
    NO_COLOR: "1",
    XDG_STATE_HOME: stateHome,
    // A cache of its own per run, as cli.ts gives: nothing is mounted from a sibling repository.
    XDG_CACHE_HOME: `${stateHome}/cache-${runNumber}`,
    DOCKER_PUSHER_COMPRESSION: "none",
    ...extra,
  };
}

let runs = 0;

/** Runs the CLI with `args`, feeding `stdin`; never throws for a failure of the CLI. */
async function runPusher(
  args: string[],
  stdin: Stdin,
  options: { stateHome: string; env?: Record<string, string> },
): Promise<PipedResult> {
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    env: cliEnv(options.stateHome, ++runs, options.env ?? {}),
    clearEnv: true,
    stdin: stdin === null ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill("SIGKILL");
  }, DEADLINE_MS);
  try {
    const output = child.output();
    if (stdin !== null) {
      const writer = child.stdin.getWriter();
      // The CLI may fail (and exit) before reading everything: a broken pipe is expected then.
      await writer.write(stdin.bytes).catch(() => {});
      if (stdin.stall === true) await output.catch(() => {});
      await writer.close().catch(() => {});
    }
    const { code, stdout, stderr } = await output;
    const decoder = new TextDecoder();
    return {
      code,
      stdout: decoder.decode(stdout),
      stderr: decoder.decode(stderr),
      hung,
      ms: performance.now() - started,
    };
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Fixture surgery

interface TarEntryAt {
  name: string;
  headerOffset: number;
  dataOffset: number;
  size: number;
}

/** The entries of a ustar archive (the fixtures' names are short), with their offsets. */
function tarEntries(bytes: Uint8Array): TarEntryAt[] {
  const text = (block: Uint8Array, at: number, length: number) => {
    const field = block.subarray(at, at + length);
    const end = field.indexOf(0);
    return new TextDecoder().decode(end === -1 ? field : field.subarray(0, end));
  };
  const entries: TarEntryAt[] = [];
  for (let offset = 0; offset + 512 <= bytes.length;) {
    const block = bytes.subarray(offset, offset + 512);
    if (block.every((b) => b === 0)) break;
    const prefix = text(block, 345, 155);
    const name = `${prefix === "" ? "" : `${prefix}/`}${text(block, 0, 100)}`;
    const size = parseInt(text(block, 124, 12).trim() || "0", 8);
    entries.push({ name, headerOffset: offset, dataOffset: offset + 512, size });
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return entries;
}

function entryNamed(bytes: Uint8Array, name: string): TarEntryAt {
  const entry = tarEntries(bytes).find((e) => e.name === name);
  assert(entry !== undefined, `no entry ${name} in the fixture`);
  return entry;
}

/** A copy of `bytes` with one byte inverted at `at`: same size, other content. */
function flipped(bytes: Uint8Array, at: number): Uint8Array {
  const copy = bytes.slice();
  copy[at] = copy[at]! ^ 0xff;
  return copy;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}

/**
 * `bytes` through a real compressor CLI (`gzip -1 -c FILE`…), from a file: `run` writes all of
 * its stdin before reading stdout, which would deadlock on a megabyte.
 */
async function compress(
  dir: string,
  tool: "gzip" | "zstd" | "xz" | "bzip2",
  bytes: Uint8Array,
): Promise<Uint8Array> {
  const input = `${dir}/compress-input`;
  await Deno.writeFile(input, bytes);
  const args = tool === "zstd" ? ["-1", "-c", "-q", input] : ["-1", "-c", input];
  return (await run(tool, args)).stdoutBytes;
}

function blobName(digest: string): string {
  return `blobs/${digest.replace(":", "/")}`;
}

// ---------------------------------------------------------------------------------------------
// The matrix

interface Case {
  /** Also the repository pushed to, so each case's requests can be told apart. */
  name: string;
  /** Standard input (with `-f -`), or a file to pass to `-f`. */
  input: { stdin: Uint8Array; stall?: boolean } | { file: string };
  /** Extra arguments. */
  args?: string[];
  env?: Record<string, string>;
  /** Default: 1. */
  code?: number;
  /** Each must occur in the `Error:` line: strings case-insensitively, or a pattern. */
  says: (string | RegExp)[];
  /** The run must take at least this long, and end within `[1]`: a timeout's window. */
  window?: [number, number];
  /** Digests the registry must not hold in the case's repository afterwards. */
  absent?: string[];
}

const STDIN = "standard input";

function target(registry: TestRegistry, repo: string): string {
  return `http://${registry.host}/${repo}:1`;
}

/** Runs one case and asserts a clean failure, with no manifest pushed. */
async function check(c: Case, registry: TestRegistry, stateHome: string): Promise<void> {
  const { input } = c;
  const args = ["-r", target(registry, c.name), "-f", "file" in input ? input.file : "-"];
  const stdin = "file" in input
    ? null
    : { bytes: input.stdin, ...(input.stall ? { stall: true } : {}) };
  const result = await runPusher([...args, ...c.args ?? []], stdin, {
    stateHome,
    ...(c.env ? { env: c.env } : {}),
  });
  const context = `case ${c.name}: exit ${result.code} after ${Math.round(result.ms)} ms` +
    `${result.hung ? " (killed at the deadline: a hang)" : ""}, stderr:\n${result.stderr}`;
  assert(!result.hung, context);
  if (c.window !== undefined) {
    assert(result.ms >= c.window[0], `too soon for the timeout; ${context}`);
    assert(result.ms < c.window[1], `too slow; ${context}`);
  }
  const code = c.code ?? 1;
  assertEquals(result.code, code, context);
  assertEquals(result.stdout, "", `stdout must be empty; ${context}`);
  assert(!result.stderr.includes("    at "), `a stack trace; ${context}`);
  assert(!/uncaught/i.test(result.stderr), `an uncaught error; ${context}`);
  // Bad input is not the registry's fault: sending it again cannot help.
  assert(!/^Retrying /m.test(result.stderr), `bad input was retried; ${context}`);

  const lines = result.stderr.split("\n").filter((line) => line !== "");
  const errors = lines.filter((line) => line.startsWith("Error: "));
  assertEquals(errors.length, 1, `one Error: line; ${context}`);
  const error = errors[0]!;
  if (code === 2) {
    // Usage errors end with a hint.
    assertEquals(lines.at(-2), error, context);
    assert(lines.at(-1)!.startsWith("Hint: "), `no hint; ${context}`);
  } else {
    assertEquals(lines.at(-1), error, `the error must come last; ${context}`);
  }
  for (const word of c.says) {
    if (typeof word === "string") {
      assertStringIncludes(error.toLowerCase(), word.toLowerCase(), context);
    } else {
      assert(word.test(error), `the error does not match ${word}; ${context}`);
    }
  }
  const manifestPuts = (await registry.requests()).filter((r) =>
    r.method === "PUT" && r.path.startsWith(`/v2/${c.name}/manifests/`)
  );
  assertEquals(manifestPuts, [], `a manifest was pushed; ${context}`);
  assertEquals(await registry.listTags(c.name), [], context);
  for (const digest of c.absent ?? []) {
    assertEquals(await registry.blobExists(c.name, digest), false, `${digest}; ${context}`);
  }
}

integrationTest("stream errors: the malformed-stream matrix through the CLI", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "dip-stream-errors-" });
  const stateHome = `${dir}/state`;
  try {
    await using registry = await startRegistry();
    const path = (name: string) => `${dir}/${name}`;
    const file = async (name: string, bytes: Uint8Array) => {
      await Deno.writeFile(path(name), bytes);
      return { file: path(name) };
    };

    // One small and one large layer each: the small one is held until the stream's end, the
    // large one is uploaded as it goes past.
    const images = [{ name: "app:1", layerSizes: [SMALL_LAYER, LARGE_LAYER] }];
    const legacy = await writeDockerSaveLegacy(path("legacy.tar"), images);
    const legacyTar = await Deno.readFile(legacy.path);
    const d25 = await writeDocker25Save(path("d25.tar"), images);
    const d25Tar = await Deno.readFile(d25.path);
    const oci = await writeOciArchive(path("oci.tar"), [{ name: "app:1" }]);
    const ociTar = await Deno.readFile(oci.path);

    const legacyLayers = tarEntries(legacyTar).filter((e) => e.name.endsWith("/layer.tar"));
    const smallLegacy = legacyLayers.find((e) => e.size < LARGE_LAYER)!;
    const largeLegacy = legacyLayers.find((e) => e.size > LARGE_LAYER)!;
    const manifestJson = entryNamed(legacyTar, "manifest.json");
    const configJson = tarEntries(legacyTar).find((e) => /^[0-9a-f]{64}\.json$/.test(e.name))!;
    const [smallDiffId, largeDiffId] = legacy.images[0]!.layerDiffIds as [string, string];
    const smallD25 = entryNamed(d25Tar, blobName(d25.images[0]!.layerDigests[0]!));
    const largeD25 = entryNamed(d25Tar, blobName(d25.images[0]!.layerDigests[1]!));
    const ociLayer = entryNamed(ociTar, blobName(oci.images[0]!.layerDigests[1]!));

    const gz = await compress(dir, "gzip", legacyTar);
    const zst = await compress(dir, "zstd", legacyTar);
    const xz = await compress(dir, "xz", legacyTar);
    const bz2 = await compress(dir, "bzip2", legacyTar);
    const png = concat(
      new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      seededBytes("png", 2000),
    );
    const half = (bytes: Uint8Array) => bytes.subarray(0, Math.floor(bytes.length / 2));
    const mismatch = /does(?: not|n't) match/;
    const stall = (bytes: Uint8Array) => ({ stdin: bytes, stall: true });
    const timeout = ["-t", `${STALL_TIMEOUT_S}s`];
    // The timeout, then Deno's start-up and exit with room for a loaded machine.
    const stallWindow: [number, number] = [STALL_TIMEOUT_S * 1000, STALL_TIMEOUT_S * 1000 + 12_000];

    const cases: Case[] = [
      // Compressed streams cut short.
      {
        name: "gzip-half-stdin",
        input: { stdin: half(gz) },
        says: [STDIN, "gzip", "ends early"],
      },
      {
        name: "gzip-no-trailer-file",
        input: await file("no-trailer.tar.gz", gz.subarray(0, gz.length - 4)),
        says: [path("no-trailer.tar.gz"), "gzip", "ends early"],
      },
      {
        name: "gzip-bad-crc-file",
        input: await file("bad-crc.tar.gz", flipped(gz, gz.length - 6)),
        says: [path("bad-crc.tar.gz"), "gzip", "corrupt"],
      },
      {
        name: "zstd-half-file",
        input: await file("half.tar.zst", half(zst)),
        says: [path("half.tar.zst"), "zstd"],
      },
      {
        name: "zstd-cut-stdin",
        input: { stdin: zst.subarray(0, zst.length - 3) },
        says: [STDIN, "zstd"],
      },
      {
        name: "xz-half-file",
        input: await file("half.tar.xz", half(xz)),
        says: [path("half.tar.xz"), "xz"],
      },
      {
        name: "xz-cut-stdin",
        input: { stdin: xz.subarray(0, xz.length - 10) },
        says: [STDIN, "xz"],
      },
      // Not an archive at all.
      {
        name: "garbage-random-stdin",
        input: { stdin: seededBytes("garbage", 64 * 1024) },
        says: [STDIN, "not a tar archive"],
      },
      {
        name: "garbage-png-file",
        input: await file("picture.tar.gz", png),
        // Not compressed by its magic, so indexed as a tar in place, whatever its name says.
        says: [path("picture.tar.gz"), "not a tar archive"],
      },
      {
        name: "garbage-png-stdin",
        input: { stdin: png },
        says: [STDIN, "not a tar archive", "89 50 4e 47"],
      },
      {
        name: "garbage-text-stdin",
        input: { stdin: encoder.encode("this is not an image archive\n".repeat(100)) },
        says: [STDIN, "not a tar archive"],
      },
      {
        name: "garbage-short-text-stdin",
        input: { stdin: encoder.encode("hello\n") },
        says: [STDIN, "not a tar archive"],
      },
      {
        name: "garbage-random-zst-file",
        input: await file("random.tar.zst", seededBytes("garbage", 64 * 1024)),
        says: [path("random.tar.zst"), "not a tar archive"],
      },
      {
        name: "gzip-garbage-inside-file",
        input: await file("garbage.tar.gz", concat(gz.subarray(0, 10), seededBytes("x", 4096))),
        says: [path("garbage.tar.gz"), "gzip"],
      },
      // Empty input.
      { name: "empty-stdin", input: { stdin: new Uint8Array() }, says: [STDIN, "empty"] },
      {
        name: "empty-gz-file",
        input: await file("empty.tar.gz", new Uint8Array()),
        says: [path("empty.tar.gz"), "empty"],
      },
      // Bytes after the end of the compressed data.
      {
        name: "gzip-trailing-garbage-file",
        input: await file("trailing.tar.gz", concat(gz, encoder.encode("garbage after the end"))),
        says: [path("trailing.tar.gz"), "after the gzip data"],
      },
      {
        name: "gzip-trailing-garbage-stdin",
        input: { stdin: concat(gz, seededBytes("trailing", 3000)) },
        says: [STDIN, "after the gzip data"],
      },
      {
        name: "zstd-trailing-garbage-file",
        input: await file("trailing.tar.zst", concat(zst, encoder.encode("garbage after the end"))),
        says: [path("trailing.tar.zst"), "zstd"],
      },
      // Tars cut short, plain on a pipe and inside complete compressed streams.
      {
        name: "tar-cut-large-layer-stdin",
        input: { stdin: legacyTar.subarray(0, largeLegacy.dataOffset + 600_000) },
        says: [STDIN, "truncated", largeLegacy.name],
      },
      {
        name: "tar-cut-small-layer-gzip-file",
        input: await file(
          "cut-small.tar.gz",
          await compress(dir, "gzip", legacyTar.subarray(0, smallLegacy.dataOffset + 700)),
        ),
        says: [path("cut-small.tar.gz"), "truncated", smallLegacy.name],
      },
      {
        name: "tar-cut-large-layer-zstd-stdin",
        input: {
          stdin: await compress(
            dir,
            "zstd",
            legacyTar.subarray(0, largeLegacy.dataOffset + 300_000),
          ),
        },
        says: [STDIN, "zstd", "truncated", largeLegacy.name],
      },
      {
        name: "tar-cut-mid-header-stdin",
        input: { stdin: legacyTar.subarray(0, configJson.headerOffset + 200) },
        says: [STDIN, "truncated"],
      },
      {
        name: "tar-cut-mid-header-xz-file",
        input: await file(
          "cut-header.tar.xz",
          await compress(dir, "xz", legacyTar.subarray(0, manifestJson.headerOffset + 100)),
        ),
        says: [path("cut-header.tar.xz"), "truncated"],
      },
      {
        name: "tar-cut-before-manifest-stdin",
        input: { stdin: legacyTar.subarray(0, manifestJson.headerOffset) },
        says: [STDIN, "not an image archive", "manifest.json"],
      },
      {
        name: "tar-cut-before-manifest-gzip-file",
        input: await file(
          "no-manifest.tar.gz",
          await compress(dir, "gzip", legacyTar.subarray(0, manifestJson.headerOffset)),
        ),
        says: [path("no-manifest.tar.gz"), "not an image archive", "manifest.json"],
      },
      // Layers whose bytes don't match the digest the archive names (same size, one byte off).
      {
        name: "d25-large-layer-altered-stdin",
        input: { stdin: flipped(d25Tar, largeD25.dataOffset + 700_000) },
        says: [STDIN, largeD25.name, mismatch],
        absent: [d25.images[0]!.layerDigests[1]!],
      },
      {
        name: "d25-small-layer-altered-gzip-file",
        input: await file(
          "d25-small.tar.gz",
          await compress(dir, "gzip", flipped(d25Tar, smallD25.dataOffset + 1000)),
        ),
        says: [path("d25-small.tar.gz"), smallD25.name, mismatch],
        absent: [d25.images[0]!.layerDigests[0]!],
      },
      {
        name: "oci-gzip-layer-altered-stdin",
        input: { stdin: flipped(ociTar, ociLayer.dataOffset + 200) },
        says: [STDIN, ociLayer.name, mismatch],
        absent: [oci.images[0]!.layerDigests[1]!],
      },
      {
        name: "legacy-large-layer-altered-stdin",
        input: { stdin: flipped(legacyTar, largeLegacy.dataOffset + 700_000) },
        says: [STDIN, largeLegacy.name, mismatch, largeDiffId],
        absent: [largeDiffId],
      },
      {
        name: "legacy-large-layer-altered-compressing-stdin",
        input: { stdin: flipped(legacyTar, largeLegacy.dataOffset + 700_000) },
        env: { DOCKER_PUSHER_COMPRESSION: "gzip" },
        says: [STDIN, largeLegacy.name, mismatch, largeDiffId],
        absent: [largeDiffId],
      },
      {
        name: "legacy-small-layer-altered-xz-file",
        input: await file(
          "legacy-small.tar.xz",
          await compress(dir, "xz", flipped(legacyTar, smallLegacy.dataOffset + 1024)),
        ),
        says: [path("legacy-small.tar.xz"), smallLegacy.name, mismatch, smallDiffId],
        absent: [smallDiffId],
      },
      // A dry run reads the whole stream too, and fails on it the same way.
      {
        name: "gzip-half-dry-run-stdin",
        input: { stdin: half(gz) },
        args: ["--dry-run"],
        says: [STDIN, "gzip", "ends early"],
      },
      {
        name: "d25-large-layer-altered-dry-run-stdin",
        input: { stdin: flipped(d25Tar, largeD25.dataOffset + 700_000) },
        args: ["--dry-run"],
        says: [STDIN, largeD25.name, mismatch],
      },
      // A pipe that stalls: --timeout applies to reading the input too.
      {
        name: "stall-before-first-block-stdin",
        input: stall(legacyTar.subarray(0, 100)),
        args: timeout,
        says: [STDIN, "timed out", "no data", `${STALL_TIMEOUT_S} s`],
        window: stallWindow,
      },
      {
        name: "stall-in-small-entry-stdin",
        input: stall(legacyTar.subarray(0, smallLegacy.dataOffset + 700)),
        args: timeout,
        says: [STDIN, "timed out", "no data", `${STALL_TIMEOUT_S} s`],
        window: stallWindow,
      },
      {
        name: "stall-in-large-layer-stdin",
        input: stall(legacyTar.subarray(0, largeLegacy.dataOffset + 600_000)),
        args: timeout,
        says: [STDIN, "timed out", "no data", `${STALL_TIMEOUT_S} s`],
        window: stallWindow,
      },
      {
        name: "stall-in-large-layer-compressing-stdin",
        input: stall(legacyTar.subarray(0, largeLegacy.dataOffset + 600_000)),
        args: timeout,
        env: { DOCKER_PUSHER_COMPRESSION: "gzip" },
        says: [STDIN, "timed out", "no data", `${STALL_TIMEOUT_S} s`],
        window: stallWindow,
      },
      {
        name: "stall-gzip-stdin",
        input: stall(half(gz)),
        args: timeout,
        says: [STDIN, "timed out", "no data", `${STALL_TIMEOUT_S} s`],
        window: stallWindow,
      },
      // Usage errors and unsupported formats.
      {
        name: "password-stdin",
        input: { stdin: legacyTar },
        args: ["-u", "someone", "--password-stdin"],
        code: 2,
        says: ["-f -", "--password-stdin", "standard input"],
      },
      {
        name: "bzip2-stdin",
        input: { stdin: bz2 },
        says: [STDIN, "bzip2", "bzip2 -dc"],
      },
      {
        name: "bzip2-file",
        input: await file("app.tar.bz2", bz2),
        says: [path("app.tar.bz2"), "bzip2", "decompress"],
      },
    ];
    assert(cases.length >= 15);
    assertEquals(new Set(cases.map((c) => c.name)).size, cases.length, "case names are unique");

    for (const c of cases) {
      await t.step(c.name, () => check(c, registry, stateHome));
    }
    // Not one manifest reached the registry, in any repository.
    const puts = (await registry.requests()).filter((r) =>
      r.method === "PUT" && r.path.includes("/manifests/")
    );
    assertEquals(puts, []);
    // Every upload session still open was cancelled: no later run can continue one a stream
    // fed. (distribution answers the DELETE of a session a cut PATCH left behind with 404 and
    // purges it itself later; a registry that takes the DELETE frees it at once.)
    const deleted = new Set(
      (await registry.requests()).filter((r) => r.method === "DELETE")
        .map((r) => r.path.split("/").at(-1)),
    );
    const open = await openUploads(registry.storageDir);
    assertEquals(open.filter((session) => !deleted.has(session.split("/").at(-1))), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { tools: TOOLS });

/** Upload sessions the registry holds open, as `repository/_uploads/<id>` paths. */
async function openUploads(storageDir: string): Promise<string[]> {
  const open: string[] = [];
  const walk = async (dir: string, repository: string[]): Promise<void> => {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isDirectory) continue;
      if (entry.name === "_uploads") {
        for await (const session of Deno.readDir(`${dir}/_uploads`)) {
          open.push(`${repository.join("/")}/_uploads/${session.name}`);
        }
      } else if (!entry.name.startsWith("_")) {
        await walk(`${dir}/${entry.name}`, [...repository, entry.name]);
      }
    }
  };
  const root = `${storageDir}/docker/registry/v2/repositories`;
  if (await Deno.stat(root).then(() => true, () => false)) await walk(root, []);
  return open;
}

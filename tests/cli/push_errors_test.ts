/**
 * Failures as a user sees them: the CLI as a subprocess, against a real registry, with bad
 * archives, bad arguments, bad credentials and no registry at all. Every failure must be a
 * short message on stderr (an `Error:` line, perhaps a `Hint:` line, never a stack trace), a
 * non-zero exit code, nothing on stdout, and no manifest in the registry. Also `--dry-run`,
 * which must not write anything.
 */
import { gzipSync } from "node:zlib";
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { type CliResult, lines, runCli } from "../helpers/cli.ts";
import {
  type FixtureArchive,
  makeBigLayerArchive,
  writeDocker25Save,
  writeDockerSaveLegacy,
  writeOciArchive,
} from "../helpers/image_fixtures.ts";
import { seededBytes, sha256Digest, sha256Hex } from "../helpers/random.ts";
import {
  type Credentials,
  integrationTest,
  type LoggedRequest,
  startRegistry,
  type TestRegistry,
} from "../helpers/registry.ts";
import { tarBytes, TarWriter } from "../helpers/tar_writer.ts";
import { makeTestCa } from "../helpers/tls.ts";

const REGISTRY_ONLY = ["docker-registry"];
const WITH_HTPASSWD = ["docker-registry", "htpasswd"];

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dip-push-errors-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `-r` for a repository of the test registry (plain HTTP). */
function target(registry: TestRegistry, repoAndRef: string): string {
  return `http://${registry.host}/${repoAndRef}`;
}

/** What a failed run must look like. */
interface ExpectedFailure {
  code: number;
  /** Each must occur in stderr: strings case-insensitively, or a pattern. */
  says: (string | RegExp)[];
  /** Require a `Hint:` line. Default: a hint is allowed, not required. */
  hint?: boolean;
  /**
   * Lines allowed before the error: "none" (the default: stderr is the `Error:` line and
   * perhaps a `Hint:` line), or "any" (progress, warnings or `--verbose` request lines).
   */
  before?: "none" | "any";
}

/** Asserts a clean failure: exit code, the key words, no stack trace, empty stdout. */
function assertFailure(result: CliResult, expected: ExpectedFailure): void {
  const context = `exit ${result.code}, stderr:\n${result.stderr}`;
  assertEquals(result.code, expected.code, context);
  assertEquals(result.stdout, "", `stdout must be empty; ${context}`);
  assert(!/^\s+at /m.test(result.stderr), `a stack trace; ${context}`);
  assert(!/uncaught/i.test(result.stderr), `an uncaught error; ${context}`);

  const all = lines(result.stderr);
  let errorAt = all.findIndex((line) => line.startsWith("Error: "));
  assert(errorAt !== -1, `no "Error:" line; ${context}`);
  assertEquals(all.filter((line) => line.startsWith("Error: ")).length, 1, context);
  if ((expected.before ?? "none") === "none") assertEquals(errorAt, 0, context);
  const after = all.slice(++errorAt);
  assert(after.length <= 1, `more than a hint after the error; ${context}`);
  if (after.length === 1) assert(after[0]!.startsWith("Hint: "), context);
  if (expected.hint === true) assertEquals(after.length, 1, `no "Hint:" line; ${context}`);

  for (const word of expected.says) {
    if (typeof word === "string") {
      assertStringIncludes(result.stderr.toLowerCase(), word.toLowerCase(), context);
    } else {
      assert(word.test(result.stderr), `stderr does not match ${word}; ${context}`);
    }
  }
}

function isWrite(request: LoggedRequest): boolean {
  return ["POST", "PATCH", "PUT", "DELETE"].includes(request.method);
}

/** Asserts the repository has no tags and no manifest was ever stored (or sent). */
async function assertNothingPushed(registry: TestRegistry, repo: string): Promise<void> {
  assertEquals(await registry.listTags(repo), []);
  const manifestPuts = (await registry.requests()).filter((r) =>
    r.method === "PUT" && r.path.startsWith(`/v2/${repo}/manifests/`)
  );
  assertEquals(manifestPuts, []);
}

/** Asserts nothing at all was written to the registry. */
async function assertNoWrites(registry: TestRegistry): Promise<void> {
  assertEquals((await registry.requests()).filter(isWrite), []);
}

// ---------------------------------------------------------------------------------------------
// Tar surgery on fixture archives (their names are short, so plain ustar headers)

interface RawEntry {
  name: string;
  type: "file" | "dir" | "symlink";
  linkName: string;
  headerOffset: number;
  dataOffset: number;
  data: Uint8Array;
}

function headerField(block: Uint8Array, at: number, length: number): string {
  const bytes = block.subarray(at, at + length);
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end === -1 ? bytes : bytes.subarray(0, end));
}

/** The entries of a ustar archive with where each header and its data start. */
function listTar(bytes: Uint8Array): RawEntry[] {
  const entries: RawEntry[] = [];
  for (let offset = 0; offset + 512 <= bytes.length;) {
    const block = bytes.subarray(offset, offset + 512);
    if (block.every((b) => b === 0)) break;
    const prefix = headerField(block, 345, 155);
    const name = `${prefix === "" ? "" : `${prefix}/`}${headerField(block, 0, 100)}`;
    const size = parseInt(headerField(block, 124, 12).trim() || "0", 8);
    const flag = String.fromCharCode(block[156]!);
    const type = flag === "5"
      ? "dir"
      : flag === "2"
      ? "symlink"
      : flag === "0" || flag === "\0"
      ? "file"
      : undefined;
    if (type === undefined) throw new Error(`listTar: unexpected type "${flag}" for ${name}`);
    const dataOffset = offset + 512;
    entries.push({
      name,
      type,
      linkName: headerField(block, 157, 100),
      headerOffset: offset,
      dataOffset,
      data: bytes.slice(dataOffset, dataOffset + size),
    });
    offset = dataOffset + Math.ceil(size / 512) * 512;
  }
  return entries;
}

/** Writes `entries` as a new, well-formed archive. */
async function writeTar(path: string, entries: RawEntry[]): Promise<void> {
  await using tar = await TarWriter.create(path);
  for (const entry of entries) {
    if (entry.type === "dir") await tar.addDirectory(entry.name);
    else if (entry.type === "symlink") await tar.addSymlink(entry.name, entry.linkName);
    else await tar.addFile(entry.name, entry.data);
  }
  await tar.close();
}

/** Rewrites the archive at `from` into `to`, replacing (or, with null, dropping) entries. */
async function rewriteTar(
  from: string,
  to: string,
  replace: Record<string, string | null>,
): Promise<void> {
  const entries = listTar(await Deno.readFile(from));
  for (const name of Object.keys(replace)) {
    assert(entries.some((e) => e.name === name), `no ${name} in ${from}`);
  }
  const kept = entries.flatMap((entry) => {
    if (!(entry.name in replace)) return [entry];
    const text = replace[entry.name];
    return text === null || text === undefined
      ? []
      : [{ ...entry, data: new TextEncoder().encode(text) }];
  });
  await writeTar(to, kept);
}

function entryNamed(entries: RawEntry[], name: string): RawEntry {
  const entry = entries.find((e) => e.name === name);
  assert(entry !== undefined, `no entry ${name}`);
  return entry;
}

function blobName(digest: string): string {
  return `blobs/${digest.replace(":", "/")}`;
}

/** A small two-layer legacy `docker save` and its entries. */
async function legacyArchive(dir: string, name = "app:1") {
  const archive = await writeDockerSaveLegacy(`${dir}/legacy.tar`, [
    { name, layerSizes: [1500, 2500] },
  ]);
  const bytes = await Deno.readFile(archive.path);
  const entries = listTar(bytes);
  const layers = entries.filter((e) => e.name.endsWith("/layer.tar") && e.type === "file");
  assertEquals(layers.length, 2);
  return { archive, bytes, entries, layers };
}

// ---------------------------------------------------------------------------------------------
// Unreadable archives

integrationTest("errors: an archive truncated inside a layer's data", async () => {
  await withTempDir(async (dir) => {
    await using registry = await startRegistry();
    const legacy = await legacyArchive(dir);
    const layer = legacy.layers[1]!;
    const oci = await writeOciArchive(`${dir}/oci.tar`, [{ name: "app:1" }]);
    const ociBytes = await Deno.readFile(oci.path);
    const ociLayer = entryNamed(listTar(ociBytes), blobName(oci.images[0]!.layerDigests[0]!));

    const cases = [
      { kind: "legacy", bytes: legacy.bytes, at: layer.dataOffset + 1000, entry: layer.name },
      { kind: "oci", bytes: ociBytes, at: ociLayer.dataOffset + 100, entry: ociLayer.name },
    ];
    for (const { kind, bytes, at, entry } of cases) {
      const path = `${dir}/${kind}-cut.tar`;
      await Deno.writeFile(path, bytes.subarray(0, at));
      const result = await runCli(["-r", target(registry, `${kind}:1`), "-f", path]);
      assertFailure(result, { code: 1, says: [path, "truncated", entry] });
      await assertNothingPushed(registry, kind);
    }
    await assertNoWrites(registry);
  });
}, { tools: REGISTRY_ONLY });

integrationTest("errors: an archive cut at a header boundary, losing manifest.json", async () => {
  await withTempDir(async (dir) => {
    await using registry = await startRegistry();
    const { bytes, entries } = await legacyArchive(dir);
    const manifest = entryNamed(entries, "manifest.json");
    const path = `${dir}/cut.tar`;
    await Deno.writeFile(path, bytes.subarray(0, manifest.headerOffset));

    const result = await runCli(["-r", target(registry, "app:1"), "-f", path]);
    assertFailure(result, { code: 1, says: [path, "manifest.json", "index.json"] });
    await assertNothingPushed(registry, "app");
    await assertNoWrites(registry);
  });
}, { tools: REGISTRY_ONLY });

integrationTest("errors: files that are not tar archives", async () => {
  await withTempDir(async (dir) => {
    await using registry = await startRegistry();
    const random = `${dir}/random.tar`;
    await Deno.writeFile(random, seededBytes("not a tar", 4096));
    // A gzip stream is read as one (see push_stream_test.ts); gzip'd garbage is no tar.
    const gzipped = `${dir}/app.tar.gz`;
    await Deno.writeFile(gzipped, gzipSync(seededBytes("not a tar either", 4096)));
    const empty = `${dir}/empty.tar`;
    await Deno.writeFile(empty, new Uint8Array());

    const cases: [string, (string | RegExp)[]][] = [
      [random, ["not a tar archive"]],
      [gzipped, ["not a tar archive"]],
      [empty, ["empty"]],
    ];
    for (const [path, says] of cases) {
      const result = await runCli(["-r", target(registry, "app:1"), "-f", path]);
      assertFailure(result, { code: 1, says: [path, ...says] });
    }
    await assertNothingPushed(registry, "app");
    await assertNoWrites(registry);
  });
}, { tools: REGISTRY_ONLY });

integrationTest("errors: a missing file, and a directory given as the file", async () => {
  await withTempDir(async (dir) => {
    await using registry = await startRegistry();
    const missing = `${dir}/no-such-archive.tar`;
    assertFailure(await runCli(["-r", target(registry, "app:1"), "-f", missing]), {
      code: 1,
      says: [missing, "no such file"],
    });
    assertFailure(await runCli(["-r", target(registry, "app:1"), "-f", dir]), {
      code: 1,
      says: [dir, "directory"],
    });
    await assertNothingPushed(registry, "app");
    await assertNoWrites(registry);
  });
}, { tools: REGISTRY_ONLY });

integrationTest(
  "errors: manifest.json or index.json that is not JSON or has the wrong shape",
  async () => {
    await withTempDir(async (dir) => {
      await using registry = await startRegistry();
      const { archive, entries } = await legacyArchive(dir);
      const configName = entries.find((e) => /^[0-9a-f]{64}\.json$/.test(e.name))?.name;
      assert(configName !== undefined, "the archive has a config");
      const oci = await writeOciArchive(`${dir}/oci.tar`, [{ name: "app:1" }]);

      const cases: { name: string; from: string; file: string; text: string; says: string[] }[] = [
        {
          name: "not-json",
          from: archive.path,
          file: "manifest.json",
          text: "[{not json",
          says: ["manifest.json", "not valid JSON"],
        },
        {
          name: "object",
          from: archive.path,
          file: "manifest.json",
          text: `{"Config":"${configName}","Layers":[]}`,
          says: ["manifest.json", "must be an array"],
        },
        {
          name: "no-layers",
          from: archive.path,
          file: "manifest.json",
          text: `[{"Config":"${configName}","RepoTags":["app:1"]}]`,
          says: ["manifest.json", "Layers", "must be an array"],
        },
        {
          name: "empty-list",
          from: archive.path,
          file: "manifest.json",
          text: "[]",
          says: ["manifest.json", "no images"],
        },
        {
          name: "index-not-json",
          from: oci.path,
          file: "index.json",
          text: "\u0000\u0001garbage",
          says: ["index.json", "not valid JSON"],
        },
        {
          name: "index-shape",
          from: oci.path,
          file: "index.json",
          text: `{"schemaVersion":2,"manifests":{"digest":"sha256:00"}}`,
          says: ["index.json", "manifests", "must be an array"],
        },
      ];
      for (const c of cases) {
        const path = `${dir}/${c.name}.tar`;
        await rewriteTar(c.from, path, { [c.file]: c.text });
        const result = await runCli(["-r", target(registry, `${c.name}:1`), "-f", path]);
        assertFailure(result, { code: 1, says: [path, ...c.says] });
        await assertNothingPushed(registry, c.name);
      }
      await assertNoWrites(registry);
    });
  },
  { tools: REGISTRY_ONLY },
);

integrationTest("errors: an OCI archive missing a layer blob", async () => {
  await withTempDir(async (dir) => {
    await using registry = await startRegistry();
    const oci = await writeOciArchive(`${dir}/oci.tar`, [{ name: "app:1" }]);
    const missing = oci.images[0]!.layerDigests[1]!;
    const path = `${dir}/missing-layer.tar`;
    await rewriteTar(oci.path, path, { [blobName(missing)]: null });

    const result = await runCli(["-r", target(registry, "app:1"), "-f", path]);
    assertFailure(result, { code: 1, says: [path, missing, "missing"] });
    await assertNothingPushed(registry, "app");
    await assertNoWrites(registry);
  });
}, { tools: REGISTRY_ONLY });

integrationTest("errors: a docker save layer that does not match its diff_id", async () => {
  await withTempDir(async (dir) => {
    await using registry = await startRegistry();
    const { archive, bytes, layers } = await legacyArchive(dir);
    const layer = layers[1]!;
    // Past the layer's first tar header, so it still looks like a tar: only the hash can tell.
    const tampered = bytes.slice();
    tampered[layer.dataOffset + 1024] = tampered[layer.dataOffset + 1024]! ^ 0xff;
    const path = `${dir}/tampered.tar`;
    await Deno.writeFile(path, tampered);
    const diffId = archive.images[0]!.layerDiffIds[1]!;
    const says = [path, layer.name, /does(?: not|n't) match its digest/, diffId];

    // --quiet leaves only the error: at most two lines.
    const quiet = await runCli(["-r", target(registry, "quiet:1"), "-f", path, "-q"]);
    assertFailure(quiet, { code: 1, says });
    await assertNothingPushed(registry, "quiet");
    assertEquals(await registry.blobExists("quiet", diffId), false);

    // With progress lines the error still comes last, once, without a stack trace.
    const loud = await runCli(["-r", target(registry, "loud:1"), "-f", path]);
    assertFailure(loud, { code: 1, says, before: "any" });
    await assertNothingPushed(registry, "loud");
    assertEquals(await registry.blobExists("loud", diffId), false);

    // A dry run hashes every blob too.
    const dry = await runCli(["-r", target(registry, "dry:1"), "-f", path, "--dry-run"]);
    assertFailure(dry, { code: 1, says, before: "any" });
    await assertNothingPushed(registry, "dry");
  });
}, { tools: REGISTRY_ONLY });

// ---------------------------------------------------------------------------------------------
// Usage errors

Deno.test("errors: no -r is a usage error with a hint", async () => {
  await withTempDir(async (dir) => {
    const { archive } = await legacyArchive(dir);
    const result = await runCli(["-f", archive.path]);
    assertFailure(result, { code: 2, says: ["-r/--repository-url", "required"], hint: true });
  });
});

integrationTest("errors: no -f, and an unknown flag, are usage errors", async () => {
  await withTempDir(async (dir) => {
    await using registry = await startRegistry();
    const { archive } = await legacyArchive(dir);

    const noFile = await runCli(["-r", target(registry, "app:1")]);
    assertFailure(noFile, { code: 2, says: ["-f/--file", "required"], hint: true });

    const unknown = await runCli([
      "-r",
      target(registry, "app:1"),
      "-f",
      archive.path,
      "--no-such-flag",
    ]);
    assertFailure(unknown, { code: 2, says: ["--no-such-flag"], hint: true });

    await assertNothingPushed(registry, "app");
    // Nothing reached the registry at all.
    assertEquals(
      (await registry.requests()).filter((r) => r.userAgent.startsWith("docker-image-pusher")),
      [],
    );
  });
}, { tools: REGISTRY_ONLY });

integrationTest(
  "errors: a multi-image archive needs --image, which must name an image",
  async () => {
    await withTempDir(async (dir) => {
      await using registry = await startRegistry();
      const archives: FixtureArchive[] = [
        await writeDockerSaveLegacy(`${dir}/legacy.tar`, [
          { name: "app:1", layerSizes: [300] },
          { name: "tool:2", layerSizes: [400] },
        ]),
        await writeDocker25Save(`${dir}/d25.tar`, [
          { name: "app:1", layerSizes: [300] },
          { name: "tool:2", layerSizes: [400] },
        ]),
      ];
      for (const archive of archives) {
        const ambiguous = await runCli(["-r", target(registry, "app:1"), "-f", archive.path]);
        assertFailure(ambiguous, {
          code: 2,
          says: [archive.path, "2 images", "--image", "app:1", "tool:2"],
          hint: true,
        });

        const unknown = await runCli([
          "-r",
          target(registry, "app:1"),
          "-f",
          archive.path,
          "--image",
          "other:3",
        ]);
        assertFailure(unknown, { code: 2, says: ["other:3", "app:1", "tool:2"], hint: true });
      }
      await assertNothingPushed(registry, "app");
      await assertNoWrites(registry);
    });
  },
  { tools: REGISTRY_ONLY },
);

// ---------------------------------------------------------------------------------------------
// Credentials and connectivity

const CREDS: Credentials = { username: "pusher", password: "right-Pa55word" };
const WRONG = "wr0ng-S3cret-xyzzy";

integrationTest("errors: a wrong password fails and is never printed", async () => {
  await withTempDir(async (dir) => {
    await using registry = await startRegistry({ htpasswd: CREDS });
    const { archive } = await legacyArchive(dir);
    const base = (repo: string) => ["-r", target(registry, `${repo}:1`), "-f", archive.path];
    const says = ["authentication failed", CREDS.username];

    const variants: {
      repo: string;
      args: string[];
      env?: Record<string, string>;
      stdin?: string;
      before?: "any";
    }[] = [
      { repo: "stdin", args: ["-u", CREDS.username, "--password-stdin"], stdin: `${WRONG}\n` },
      {
        repo: "verbose",
        args: ["--verbose"],
        env: { DOCKER_PUSHER_USERNAME: CREDS.username, DOCKER_PUSHER_PASSWORD: WRONG },
        before: "any",
      },
      // -p adds a warning about passwords on the command line.
      { repo: "flag", args: ["-u", CREDS.username, "-p", WRONG, "--verbose"], before: "any" },
      {
        repo: "dry-run",
        args: ["-u", CREDS.username, "--password-stdin", "--dry-run"],
        stdin: `${WRONG}\n`,
      },
    ];
    for (const v of variants) {
      const result = await runCli([...base(v.repo), ...v.args], {
        ...(v.env === undefined ? {} : { env: v.env }),
        ...(v.stdin === undefined ? {} : { stdin: v.stdin }),
      });
      assertFailure(result, { code: 1, says, ...(v.before ? { before: v.before } : {}) });
      assert(!result.stderr.includes(WRONG), `the password leaked: ${result.stderr}`);
      if (v.repo === "verbose" || v.repo === "flag") {
        assertStringIncludes(result.stderr, "401", "--verbose logs the refused requests");
      }
      await assertNothingPushed(registry, v.repo);
    }

    // Credentials in the URL are redacted as well.
    const inUrl = await runCli([
      "-r",
      `http://${CREDS.username}:${WRONG}@${registry.host}/url:1`,
      "-f",
      archive.path,
      "--verbose",
    ]);
    assertFailure(inUrl, { code: 1, says, before: "any" });
    assert(!inUrl.stderr.includes(WRONG), `the password leaked: ${inUrl.stderr}`);
    await assertNothingPushed(registry, "url");

    await assertNoWrites(registry);
  });
}, { tools: WITH_HTPASSWD });

Deno.test("errors: an unreachable registry (connection refused)", async () => {
  await withTempDir(async (dir) => {
    const { archive } = await legacyArchive(dir);
    // A port that was free a moment ago: nothing listens there now.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const { port } = listener.addr as Deno.NetAddr;
    listener.close();

    const result = await runCli([
      "-r",
      `http://127.0.0.1:${port}/app:1`,
      "-f",
      archive.path,
      "--retry-attempts",
      "0",
    ]);
    assertFailure(result, { code: 1, says: ["connection refused", `127.0.0.1:${port}`] });
  });
});

// ---------------------------------------------------------------------------------------------
// --dry-run

integrationTest("dry run: reports what would be uploaded and writes nothing", async () => {
  await withTempDir(async (dir) => {
    await using registry = await startRegistry();
    const { archive } = await legacyArchive(dir);
    const image = archive.images[0]!;
    const blobs = [image.configDigest, ...image.layerDiffIds];

    const result = await runCli(["-r", target(registry, "app:1"), "-f", archive.path, "--dry-run"]);
    assertEquals(result.code, 0, result.stderr);
    assertEquals(result.stdout, "");
    assert(!/^\s+at /m.test(result.stderr), result.stderr);
    assert(
      /Dry run: 3 blob\(s\) \([^;]+\) would be uploaded; manifest /.test(result.stderr),
      result.stderr,
    );
    assert(!result.stderr.includes("already in the registry"), result.stderr);

    await assertNoWrites(registry);
    assertEquals(await registry.listTags("app"), []);
    for (const digest of blobs) assertEquals(await registry.blobExists("app", digest), false);
  });
}, { tools: REGISTRY_ONLY });

integrationTest("dry run: blobs the registry has are reported as existing", async () => {
  await withTempDir(async (dir) => {
    await using registry = await startRegistry();
    const { archive } = await legacyArchive(dir);

    const pushed = await runCli(["-r", target(registry, "app:1"), "-f", archive.path]);
    assertEquals(pushed.code, 0, pushed.stderr);
    const before = (await registry.requests()).length;

    const result = await runCli(["-r", target(registry, "app:2"), "-f", archive.path, "--dry-run"]);
    assertEquals(result.code, 0, result.stderr);
    assertEquals(result.stdout, "");
    assertStringIncludes(result.stderr, "Dry run: nothing would be uploaded");
    assert(/; 3 blob\(s\) \([^;]+\) already in the registry/.test(result.stderr), result.stderr);

    const dryRequests = (await registry.requests()).slice(before);
    assertEquals(dryRequests.filter(isWrite), []);
    assertEquals(await registry.listTags("app"), ["1"]);
  });
}, { tools: REGISTRY_ONLY });

integrationTest(
  "dry run: after a compressed push, predicts exactly what the next push does",
  async () => {
    await withTempDir(async (dir) => {
      await using registry = await startRegistry();
      const { archive } = await legacyArchive(dir);
      // Default compression (gzip), and one blob-info cache shared by every run, as for a user.
      const env = { DOCKER_PUSHER_COMPRESSION: "", XDG_CACHE_HOME: `${dir}/cache` };
      const run = (ref: string, extra: string[] = []) =>
        runCli(["-r", target(registry, ref), "-f", archive.path, ...extra], { env });
      const writesSince = async (n: number) =>
        (await registry.requests()).slice(n).filter(isWrite).map((r) => `${r.method} ${r.path}`);

      const first = await run("app:1");
      assertEquals(first.code, 0, first.stderr);
      const { digest } = await registry.fetchManifest("app", "1");

      // Same repository: the layers are there in the gzip form the cache remembers.
      let before = (await registry.requests()).length;
      const dry = await run("app:1", ["--dry-run"]);
      assertEquals([dry.code, dry.stdout], [0, ""], dry.stderr);
      assertStringIncludes(dry.stderr, "Dry run: nothing would be uploaded; 3 blob(s) (");
      assertStringIncludes(dry.stderr, `manifest ${digest} would be pushed`);
      assertEquals(await writesSince(before), [], "a dry run writes nothing");
      before = (await registry.requests()).length;
      const again = await run("app:1");
      assertEquals(again.code, 0, again.stderr);
      assertEquals(await writesSince(before), ["PUT /v2/app/manifests/1"], "only the manifest");

      // Another repository of the registry: the cache knows where the blobs are, so a push mounts
      // every one of them, and the dry run says so.
      before = (await registry.requests()).length;
      const dryOther = await run("other:1", ["--dry-run"]);
      assertEquals([dryOther.code, dryOther.stdout], [0, ""], dryOther.stderr);
      assertStringIncludes(
        dryOther.stderr,
        "Dry run: nothing would be uploaded; 3 blob(s) (",
      );
      assertStringIncludes(
        dryOther.stderr,
        `would be mounted from another repository; manifest ${digest} would be pushed`,
      );
      assertEquals(await writesSince(before), [], "a dry run writes nothing");
      before = (await registry.requests()).length;
      const other = await run("other:1");
      assertEquals(other.stdout, `${registry.host}/other:1@${digest}\n`, other.stderr);
      const log = (await registry.requests()).slice(before).filter(isWrite);
      assertEquals(log.map((r) => `${r.method} ${r.status}`).sort(), [
        ...Array(3).fill("POST 201"),
        "PUT 201",
      ]);
    });
  },
  { tools: REGISTRY_ONLY },
);

// ---------------------------------------------------------------------------------------------
// Output

/**
 * Runs the CLI with its stdout piped into `true`, which exits at once: by the time the push
 * ends, the pipe has no reader and writing to it fails (EPIPE). Returns the CLI's exit code.
 */
async function runWithClosedStdout(args: string[], dir: string) {
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  const home = Deno.env.get("HOME") ?? "/tmp";
  const denoDir = Deno.env.get("DENO_DIR") ?? (xdg ? `${xdg}/deno` : `${home}/.cache/deno`);
  const output = await new Deno.Command("bash", {
    args: [
      "-c",
      '"$@" | true; exit "${PIPESTATUS[0]}"',
      "bash",
      ...[Deno.execPath(), "run", "-A", "--quiet", main, ...args],
    ],
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: home,
      DENO_DIR: denoDir,
      NO_COLOR: "1",
      XDG_STATE_HOME: `${dir}/state`,
      XDG_CACHE_HOME: `${dir}/cache`,
      DOCKER_PUSHER_COMPRESSION: "none",
    },
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
}

integrationTest("a closed stdout does not fail a push that went through", async () => {
  await withTempDir(async (dir) => {
    await using registry = await startRegistry();
    const { archive } = await legacyArchive(dir);
    const result = await runWithClosedStdout(
      ["-r", target(registry, "app:1"), "-f", archive.path],
      dir,
    );
    const { digest } = await registry.fetchManifest("app", "1");
    assertEquals(result.code, 0, result.stderr);
    const last = lines(result.stderr).at(-1) ?? "";
    assertStringIncludes(last, `Pushed ${registry.host}/app:1@${digest}`);
    assertStringIncludes(last, "stdout was closed");
    assert(!result.stderr.includes("Error:"), result.stderr);
  });
}, { tools: REGISTRY_ONLY });

integrationTest(
  "errors: an http:// target whose registry speaks TLS says to use https://",
  async () => {
    await withTempDir(async (dir) => {
      const ca = await makeTestCa(dir);
      await using registry = await startRegistry({
        tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert },
      });
      const { archive } = await legacyArchive(dir);
      const result = await runCli(["-r", `http://${registry.host}/app:1`, "-f", archive.path]);
      assertFailure(result, { code: 1, says: ["400", "speaks HTTPS", "https://"] });
    });
  },
  { tools: [...REGISTRY_ONLY, "openssl"] },
);

integrationTest("output: the Pushing line names the target; the compression summary", async () => {
  await withTempDir(async (dir) => {
    await using registry = await startRegistry();
    const env = { DOCKER_PUSHER_COMPRESSION: "gzip" };
    // Random file contents: the layers barely shrink (tar headers and padding only).
    const random = await makeBigLayerArchive(`${dir}/random.tar`, 300_000, "docker-legacy", {
      name: "docker.io/example/acc:1.0",
    });
    const stored = await runCli(["-r", target(registry, "app:1"), "-f", random.path], { env });
    assertEquals(stored.code, 0, stored.stderr);
    const err = lines(stored.stderr);
    // The archive's name as docker shows it, and where it goes: not a push to Docker Hub.
    assert(err[0]?.startsWith(`Pushing example/acc:1.0 → ${registry.host}/app:1: `), err[0]);
    assertEquals(err.at(-1), "1 layer(s) did not compress with gzip; sent as stored (294.5 KiB)");
    assert(!/Compressed|Notice|Warning/.test(stored.stderr), stored.stderr);

    // Text-like files: a real saving, stated in sizes people read.
    await writeTextArchive(`${dir}/text.tar`);
    const shrunk = await runCli(["-r", target(registry, "text:1"), "-f", `${dir}/text.tar`], {
      env,
    });
    assertEquals(shrunk.code, 0, shrunk.stderr);
    const last = lines(shrunk.stderr).at(-1) ?? "";
    assert(/^Compressed 1 layer\(s\) with gzip: \S+ KiB → \S+ KiB$/.test(last), shrunk.stderr);
  });
}, { tools: REGISTRY_ONLY });

/** A pre-25 `docker save` of one image whose one layer holds 200 KB of text: it compresses. */
async function writeTextArchive(path: string): Promise<void> {
  const words = "usr lib bin etc share doc locale layer image tar\n".split(" ");
  const picks = seededBytes("text", 40_000);
  const text = Array.from(picks, (b) => words[b % words.length]).join(" ");
  const layer = await tarBytes(async (tar) => {
    await tar.addFile("notes.txt", new TextEncoder().encode(text));
  });
  const config = new TextEncoder().encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: [sha256Digest(layer)] },
  }));
  const configName = `${sha256Hex(config)}.json`;
  const manifest = [{ Config: configName, RepoTags: ["text:1"], Layers: ["l1/layer.tar"] }];
  await using tar = await TarWriter.create(path);
  await tar.addFile("l1/layer.tar", layer);
  await tar.addFile(configName, config);
  await tar.addFile("manifest.json", new TextEncoder().encode(JSON.stringify(manifest)));
  await tar.close();
}

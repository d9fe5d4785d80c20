/**
 * `pull -o PATH` for every kind of PATH, against the real registry: a regular file is replaced
 * only when the archive is complete, anything else (a FIFO, a device, standard output by name)
 * is written into and left as it was, a symbolic link is kept and its target written; a path
 * that cannot take the archive is a usage error before the first request, and a directory in
 * the way of its `.partial` one line with no advice to rerun. Also `pull A A`, and what an
 * interruption says a rerun will find.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../helpers/assert.ts";
import { interruptedPull, openPullOutput } from "../../src/cli/pull_output.ts";
import { UsageError } from "../../src/cli/usage_error.ts";
import { lines } from "../helpers/cli.ts";
import type { FixtureArchive } from "../helpers/image_fixtures.ts";
import { integrationTest, startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { NAME } from "../../src/version.ts";
import { pull, readArchive, seed, skopeoConfig, tempDir } from "../pull/_support.ts";

const TOOLS = ["docker-registry", "skopeo"];
const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const IS_ROOT = Deno.uid() === 0;

async function seeded(): Promise<{ registry: TestRegistry; fixture: FixtureArchive }> {
  const registry = await startRegistry();
  try {
    const { fixture } = await seed(registry, "app:1", [
      { name: "app:1", layerSizes: [150_000, 40_000] },
    ]);
    return { registry, fixture };
  } catch (error) {
    await registry.stop();
    throw error;
  }
}

/** Checks with skopeo that `archive` holds the seeded image. */
async function assertHoldsImage(archive: string, fixture: FixtureArchive): Promise<void> {
  const config = await skopeoConfig(`docker-archive:${archive}`);
  assertEquals(config.digest, fixture.images[0]!.configDigest);
  assertEquals(config.diffIds, fixture.images[0]!.layerDiffIds);
}

/** What the registry saw from our program (the helper's own requests left out). */
async function ourRequests(registry: TestRegistry): Promise<string[]> {
  return (await registry.requests())
    .filter((r) => r.userAgent.startsWith(`${NAME}/`))
    .map((r) => `${r.method} ${r.path}`);
}

/** The files of `dir` whose names say they were left by a pull. */
async function leftovers(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (/\.partial|dip-probe/.test(entry.name)) names.push(entry.name);
  }
  return names;
}

integrationTest("pull -o FIFO: its reader gets the archive, and it stays a FIFO", async () => {
  const { registry, fixture } = await seeded();
  await using _ = registry;
  await using dir = await tempDir();
  const fifo = `${dir.path}/fifo`;
  assert((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success);
  const reader = new Deno.Command("sh", {
    args: ["-c", 'cat "$1" > "$2"', "sh", fifo, `${dir.path}/copy.tar`],
  }).spawn();
  // A pull that replaced the FIFO left its reader waiting forever: end both, and fail.
  const result = await pull([`${registry.url}/app:1`, "-o", fifo], { deadlineMs: 60_000 });
  const timer = setTimeout(() => reader.kill(), 10_000);
  const read = await reader.status;
  clearTimeout(timer);
  assert(!result.hung, "the pull hung");
  assertEquals(result.code, 0, result.stderr);
  assert(read.success, "the FIFO's reader never got an end of file");
  assert((await Deno.lstat(fifo)).isFifo, "the FIFO was replaced");
  await assertHoldsImage(`${dir.path}/copy.tar`, fixture);
  assertStringIncludes(result.stderr, `Pulled 1 image(s) into ${fifo}`);
  assertEquals(lines(result.stdout).length, 1, result.stdout);
  assertEquals(await leftovers(dir.path), []);
}, { tools: TOOLS });

integrationTest(
  "pull -o LINK: the link is kept and its target, existing or not, gets the archive",
  async () => {
    const { registry, fixture } = await seeded();
    await using _ = registry;
    await using dir = await tempDir();
    await Deno.mkdir(`${dir.path}/sub`);
    await Deno.writeTextFile(`${dir.path}/sub/real.tar`, "an older file");
    await Deno.symlink("sub/real.tar", `${dir.path}/link.tar`);
    await Deno.symlink("sub/new.tar", `${dir.path}/dangling.tar`);
    for (const [link, target] of [["link.tar", "real.tar"], ["dangling.tar", "new.tar"]]) {
      const result = await pull([`${registry.url}/app:1`, "-o", `${dir.path}/${link}`]);
      assertEquals(result.code, 0, result.stderr);
      assert((await Deno.lstat(`${dir.path}/${link}`)).isSymlink, `${link} was replaced`);
      assertEquals(await Deno.readLink(`${dir.path}/${link}`), `sub/${target}`);
      assert((await Deno.lstat(`${dir.path}/sub/${target}`)).isFile);
      await assertHoldsImage(`${dir.path}/${link}`, fixture);
    }
    assertEquals(await leftovers(dir.path), []);
    assertEquals(await leftovers(`${dir.path}/sub`), []);
  },
  { tools: TOOLS },
);

integrationTest("pull -o DEVICE streams into it and leaves it a device", async () => {
  const { registry } = await seeded();
  await using _ = registry;
  await using dir = await tempDir();
  const devices = ["/dev/null"];
  if (IS_ROOT) {
    // A null device of our own (1, 3 as /dev/null): what the old rename would have replaced.
    const made = await new Deno.Command("mknod", { args: [`${dir.path}/null`, "c", "1", "3"] })
      .output();
    assert(made.success, new TextDecoder().decode(made.stderr));
    devices.unshift(`${dir.path}/null`);
  }
  for (const device of devices) {
    const result = await pull([`${registry.url}/app:1`, "-o", device]);
    assertEquals(result.code, 0, result.stderr);
    assert((await Deno.lstat(device)).isCharDevice, `${device} is no longer a device`);
    assert(!(await Deno.lstat(`${device}.partial`).then(() => true, () => false)));
    assertStringIncludes(result.stderr, `Pulled 1 image(s) into ${device}`);
  }
}, { tools: ["docker-registry"] });

integrationTest("pull -o /dev/full: one line naming it and why, exit 1, nothing left", async () => {
  const { registry } = await seeded();
  await using _ = registry;
  const result = await pull([`${registry.url}/app:1`, "-o", "/dev/full"], { deadlineMs: 60_000 });
  assert(!result.hung, "the pull hung");
  assertEquals(result.code, 1, result.stderr);
  const errors = lines(result.stderr).filter((line) => line.startsWith("Error"));
  assertEquals(errors, [
    "Error: Cannot write the archive to /dev/full: no space left on device (ENOSPC)",
  ]);
  assertEquals(lines(result.stdout), [], "no image is reported pulled");
  assert(lines(result.stderr)[0]!.endsWith(" into /dev/full"), result.stderr);
  assert((await Deno.lstat("/dev/full")).isCharDevice, "/dev/full is no longer a device");
  assert(!(await Deno.lstat("/dev/full.partial").then(() => true, () => false)));
}, { tools: ["docker-registry"] });

integrationTest(
  "pull -o /dev/stdout, /dev/fd/1 or a link to them writes into a pipe, as -o - does",
  async () => {
    const { registry, fixture } = await seeded();
    await using _ = registry;
    await using dir = await tempDir();
    // A link to it is standard output too.
    await Deno.symlink("/dev/stdout", `${dir.path}/to-stdout.tar`);
    const outputs = ["/dev/stdout", "/dev/fd/1", `${dir.path}/to-stdout.tar`];
    for (const [i, output] of outputs.entries()) {
      const child = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", MAIN, "pull", `${registry.url}/app:1`, "-o", output],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(child.stderr);
      assertEquals(child.code, 0, stderr);
      assertStringIncludes(stderr, "Pulled 1 image(s) into standard output", output);
      const copy = `${dir.path}/copy-${i}.tar`;
      await Deno.writeFile(copy, child.stdout);
      await assertHoldsImage(copy, fixture);
    }
  },
  { tools: TOOLS },
);

integrationTest(
  "pull -o checks the path before the first request: a usage error, nothing downloaded",
  async () => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    await Deno.writeTextFile(`${dir.path}/file`, "x");
    await Deno.mkdir(`${dir.path}/locked`);
    const locked = `${dir.path}/locked`;
    // Root writes whatever the mode says: only an immutable directory refuses it.
    const lock = IS_ROOT ? ["chattr", "+i", locked] : ["chmod", "555", locked];
    const unlock = IS_ROOT ? ["chattr", "-i", locked] : ["chmod", "755", locked];
    const [tool, ...args] = lock;
    assert((await new Deno.Command(tool!, { args }).output()).success, `${lock.join(" ")} failed`);
    try {
      const cases: [string, string][] = [
        [dir.path, `Output ${dir.path} is a directory`],
        [`${dir.path}/missing/dir/x.tar`, `directory ${dir.path}/missing/dir does not exist`],
        [`${dir.path}/file/x.tar`, "is not a directory"],
        [`${locked}/x.tar`, `cannot create files in ${locked} (`],
      ];
      for (const [output, text] of cases) {
        const result = await pull([`${registry.url}/app:1`, "-o", output]);
        assertEquals(result.code, 2, result.stderr);
        const [error, hint, ...rest] = lines(result.stderr);
        assertStringIncludes(error!, text);
        assert(error!.startsWith("Error: Cannot write") || error!.startsWith("Error: Output"));
        assert(hint?.startsWith("Hint: "), result.stderr);
        assertEquals(rest, [], result.stderr);
        assert(!error!.includes(".partial"), result.stderr);
      }
    } finally {
      const [tool, ...args] = unlock;
      await new Deno.Command(tool!, { args }).output();
    }
    assertEquals(await ourRequests(registry), []);
    assertEquals(await leftovers(dir.path), []);
  },
  { tools: ["docker-registry", IS_ROOT ? "chattr" : "chmod"] },
);

integrationTest(
  "a directory where OUTPUT.partial goes: one line naming it, no advice to run again",
  async () => {
    const { registry } = await seeded();
    await using _ = registry;
    await using dir = await tempDir();
    const out = `${dir.path}/app.tar`;
    // A rerun meets the same directory: saying the partial archive is kept for it would be
    // wrong twice over (there is no state file either).
    await Deno.mkdir(`${out}.partial`);
    const result = await pull([`${registry.url}/app:1`, "-o", out]);
    assertEquals(result.code, 1, result.stderr);
    const errors = lines(result.stderr).filter((line) => line.startsWith("Error"));
    assertEquals(errors, [
      `Error: Cannot write the archive to ${out}.partial: is a directory (EISDIR)`,
    ]);
    assert(!result.stderr.includes("run the same command again"), result.stderr);
    assert((await Deno.lstat(`${out}.partial`)).isDirectory, "the directory was removed");
    assertEquals((await leftovers(dir.path)).sort(), ["app.tar.partial"]);
  },
  { tools: ["docker-registry"] },
);

integrationTest("pull A A writes the image once; skopeo reads the archive", async () => {
  const { registry, fixture } = await seeded();
  await using _ = registry;
  await using dir = await tempDir();
  const out = `${dir.path}/app.tar`;
  const source = `${registry.url}/app:1`;
  const result = await pull([source, source, "-o", out]);
  assertEquals(result.code, 0, result.stderr);
  assertEquals(lines(result.stdout).length, 1, result.stdout);
  assertEquals((await readArchive(out)).index.manifests.length, 1);
  await assertHoldsImage(out, fixture);
  const config = await skopeoConfig(`oci-archive:${out}`);
  assertEquals(config.digest, fixture.images[0]!.configDigest);
}, { tools: TOOLS });

Deno.test("an interrupted pull says a partial archive is kept only when there is one", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/app.tar`;
  assertEquals(interruptedPull({ kind: "file", path }), "Interrupted.");
  await Deno.writeFile(`${path}.partial`, new Uint8Array(10));
  assertEquals(
    interruptedPull({ kind: "file", path }),
    `Interrupted. Run the same command again to resume: what was downloaded is kept in ${path}.partial.`,
  );
  const stream = new WritableStream<Uint8Array>();
  assertEquals(
    interruptedPull({ kind: "stream", label: "fifo", stream, toStdout: false, close() {} }),
    "Interrupted. A pull to fifo cannot resume; run it again.",
  );
});

Deno.test("-o - with a terminal on stdout is a usage error, -o - into a pipe is not", async () => {
  const signal = new AbortController().signal;
  const error = await assertRejects(
    () => openPullOutput("-", { stdoutIsTerminal: true, signal }),
    UsageError,
  );
  assertStringIncludes(error.message, "Refusing to write the archive to a terminal");
  assertStringIncludes(error.hint ?? "", "-o app.tar");
  const stream = new WritableStream<Uint8Array>();
  const output = await openPullOutput("-", {
    stdoutIsTerminal: false,
    stdout: () => stream,
    signal,
  });
  assertEquals(output.kind === "stream" && output.stream, stream);
});

integrationTest(
  "pull -o /dev/stderr while standard error goes to a file: refused before any request, " +
    "so no progress line lands in the archive",
  async () => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    const log = `${dir.path}/stderr.log`;
    const child = await new Deno.Command("sh", {
      args: [
        "-c",
        `"$0" run -A --quiet "$1" pull "$2" -o /dev/stderr 2>"$3"`,
        Deno.execPath(),
        MAIN,
        `${registry.url}/app:1`,
        log,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    const text = await Deno.readTextFile(log);
    assertEquals(child.code, 2, text);
    assertStringIncludes(text, "Refusing to write the archive to standard error (/dev/stderr)");
    assertEquals(await ourRequests(registry), []);
  },
  { tools: TOOLS },
);

Deno.test("openPullOutput: /dev/null is written into even when standard error goes there too", async () => {
  const signal = new AbortController().signal;
  const output = await openPullOutput("/dev/null", {
    signal,
    stderrInfo: () => Deno.statSync("/dev/null"),
  });
  assertEquals(output.kind, "stream");
  if (output.kind === "stream") output.close();
});

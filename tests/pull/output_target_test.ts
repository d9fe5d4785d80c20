/**
 * How a pull's output path is written, decided from the file system alone: regular files
 * through `.partial`, everything else as a stream, links followed, and paths that cannot work
 * refused before anything is created.
 */
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import {
  openOutputStream,
  OutputPathError,
  outputWritable,
  resolveOutputTarget,
} from "../../src/pull/output_target.ts";
import { OutputWriteError } from "../../src/pull/pull_errors.ts";
import { tempDir } from "./_support.ts";

async function problem(path: string): Promise<string> {
  const error = await assertRejects(() => resolveOutputTarget(path), OutputPathError);
  return error.problem;
}

async function entries(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

Deno.test("a new path and a regular file are files, written where they are", async () => {
  await using dir = await tempDir();
  assertEquals(await resolveOutputTarget(`${dir.path}/new.tar`), {
    kind: "file",
    path: `${dir.path}/new.tar`,
  });
  await Deno.writeTextFile(`${dir.path}/old.tar`, "x");
  assertEquals(await resolveOutputTarget(`${dir.path}/old.tar`), {
    kind: "file",
    path: `${dir.path}/old.tar`,
  });
  // The check of the directory leaves nothing behind.
  assertEquals(await entries(dir.path), ["old.tar"]);
});

Deno.test("a symbolic link is followed to its final target, existing or not", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/sub`);
  await Deno.writeTextFile(`${dir.path}/sub/real.tar`, "x");
  await Deno.symlink("sub/real.tar", `${dir.path}/link.tar`);
  await Deno.symlink("link.tar", `${dir.path}/chain.tar`);
  await Deno.symlink("sub/later.tar", `${dir.path}/dangling.tar`);
  const real = { kind: "file", path: `${dir.path}/sub/real.tar` };
  assertEquals(await resolveOutputTarget(`${dir.path}/link.tar`), real);
  assertEquals(await resolveOutputTarget(`${dir.path}/chain.tar`), real);
  assertEquals(await resolveOutputTarget(`${dir.path}/dangling.tar`), {
    kind: "file",
    path: `${dir.path}/sub/later.tar`,
  });
  await Deno.symlink("loop-b", `${dir.path}/loop-a`);
  await Deno.symlink("loop-a", `${dir.path}/loop-b`);
  assertEquals(await problem(`${dir.path}/loop-a`), "link-loop");
});

Deno.test("devices, FIFOs and the process's descriptors are streams", async () => {
  await using dir = await tempDir();
  const fifo = `${dir.path}/fifo`;
  const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  assert(made.success);
  assertEquals(await resolveOutputTarget(fifo), { kind: "stream", path: fifo });
  assertEquals(await resolveOutputTarget("/dev/null"), { kind: "stream", path: "/dev/null" });
  for (const path of ["/dev/stdout", "/dev/stderr", "/dev/fd/1", "/proc/self/fd/2"]) {
    assertEquals(await resolveOutputTarget(path), { kind: "stream", path }, path);
  }
  // A link to a device is the device.
  await Deno.symlink("/dev/null", `${dir.path}/null.tar`);
  assertEquals(await resolveOutputTarget(`${dir.path}/null.tar`), {
    kind: "stream",
    path: "/dev/null",
  });
});

Deno.test("paths that cannot take the archive are refused, and why", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/file`, "x");
  assertEquals(await problem(dir.path), "directory");
  assertEquals(await problem(`${dir.path}/`), "directory");
  assertEquals(await problem(`${dir.path}/missing/x.tar`), "missing-parent");
  assertEquals(await problem(`${dir.path}/file/x.tar`), "parent-not-directory");
  await Deno.symlink("missing/x.tar", `${dir.path}/to-missing.tar`);
  assertEquals(await problem(`${dir.path}/to-missing.tar`), "missing-parent");
  assertEquals(await entries(dir.path), ["file", "to-missing.tar"]);
});

Deno.test("a device that cannot be opened is an OutputPathError naming it", async () => {
  await using dir = await tempDir();
  // A socket has a path but cannot be opened as a file (ENXIO).
  using _listener = Deno.listen({ transport: "unix", path: `${dir.path}/sock` });
  const target = await resolveOutputTarget(`${dir.path}/sock`);
  assertEquals(target.kind, "stream");
  const error = await assertRejects(() => openOutputStream(target), OutputPathError);
  assertEquals(error.problem, "unopenable");
  assert(error.message.startsWith(`Cannot open ${dir.path}/sock for writing`), error.message);
});

Deno.test("openOutputStream: an interruption stops the wait for a FIFO's reader", async () => {
  await using dir = await tempDir();
  const fifo = `${dir.path}/fifo`;
  assert((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success);
  const controller = new AbortController();
  const opening = openOutputStream({ path: fifo }, controller.signal);
  setTimeout(() => controller.abort(new DOMException("Interrupted", "AbortError")), 50);
  const error = await assertRejects(() => opening);
  assertEquals((error as DOMException).name, "AbortError");
  // The open still waiting in its thread ends when a reader comes; the file is closed then.
  using reader = await Deno.open(fifo, { read: true });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assertEquals(await reader.read(new Uint8Array(1)), null);
});

Deno.test("outputWritable: every failed write rejects, naming the output, small ones too", async () => {
  using file = await Deno.open("/dev/full", { write: true });
  const writer = outputWritable(file, "/dev/full").getWriter();
  // Tar headers are 512 bytes: `file.writable` resolved such writes and lost their ENOSPC.
  const error = await assertRejects(() => writer.write(new Uint8Array(512)), OutputWriteError);
  assertEquals(
    error.message,
    "Cannot write the archive to /dev/full: no space left on device (ENOSPC)",
  );
  assertEquals(error.code, "ENOSPC");
  // The stream stays failed with the same error.
  assertEquals(await assertRejects(() => writer.write(new Uint8Array(512))), error);
});

Deno.test("outputWritable: a FIFO whose reader has gone is EPIPE, not a success", async () => {
  await using dir = await tempDir();
  const fifo = `${dir.path}/fifo`;
  assert((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success);
  const reader = new Deno.Command("head", { args: ["-c", "1", fifo], stdout: "null" }).spawn();
  using file = await Deno.open(fifo, { write: true });
  const writer = outputWritable(file, fifo).getWriter();
  // 64 KiB, which `file.writable` writes at once too, so the reader has its byte either way.
  await writer.write(new Uint8Array(64 * 1024));
  await reader.status;
  const error = await assertRejects(async () => {
    for (let i = 0; i < 3; i++) await writer.write(new Uint8Array(512));
    await writer.close();
  }, OutputWriteError);
  assertEquals(error.code, "EPIPE");
  assertEquals(
    error.message,
    `Cannot write the archive to ${fifo}: the program reading it stopped (EPIPE)`,
  );
});

/**
 * The state saver writes one save at a time: requests made while a save runs make one more
 * save, of the progress of when it starts; saves after the first overwrite the file in place
 * (no create and rename, which ext4 holds up while the archive is flushed), each of the same
 * length; a save that fails rejects nothing and leaves `saved` as it was. A first save that
 * fails rejects with one line naming the state file and why.
 */
import { loadPartialState, savePartialState, StateSaver } from "../../src/pull/partial_state.ts";
import { StateWriteError } from "../../src/pull/pull_errors.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { tempDir } from "./_support.ts";

const IS_ROOT = Deno.uid() === 0;

const HEX = "a".repeat(64);

Deno.test("requests during a save make one more save, of the latest progress", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/out.tar.partial.json`;
  let done = 1;
  const takes: number[] = [];
  const first = Promise.withResolvers<void>();
  await using saver = new StateSaver(path, async () => {
    takes.push(done);
    if (takes.length === 1) await first.promise;
    return { version: 1, layout: "L", blobs: { "sha256:x": { done, sha256: HEX } } };
  });
  saver.request();
  for (done = 2; done <= 5; done++) saver.request();
  done = 5;
  first.resolve();
  await saver.settled();
  assertEquals(takes, [1, 5]);
  assertEquals(saver.saved?.blobs["sha256:x"]?.done, 5);
  assertEquals((await loadPartialState(path, "L"))?.blobs, {
    "sha256:x": { done: 5, sha256: HEX },
  });

  await saver.flush();
  assertEquals(takes, [1, 5, 5]);
});

Deno.test("a save that fails rejects nothing and leaves `saved` as it was", async () => {
  await using dir = await tempDir();
  await using saver = new StateSaver(
    `${dir.path}/missing/out.tar.partial.json`,
    () => Promise.resolve({ version: 1 as const, layout: "L", blobs: {} }),
  );
  await saver.flush();
  assertEquals(saver.saved, undefined);
});

Deno.test("saves after the first overwrite the file in place, at the same length", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/out.tar.partial.json`;
  let done = 0;
  await using saver = new StateSaver(path, () =>
    Promise.resolve({
      version: 1 as const,
      layout: "L",
      blobs: { "sha256:x": { done, sha256: HEX }, "sha256:y": { done: 7, sha256: HEX } },
    }));
  await saver.flush();
  const first = await Deno.stat(path);
  for (done of [5, 1_073_741_824, 3]) {
    await saver.flush();
    const now = await Deno.stat(path);
    assertEquals([now.ino, now.size], [first.ino, first.size]);
    assertEquals((await loadPartialState(path, "L"))?.blobs["sha256:x"]?.done, done);
  }
});

Deno.test({
  name: "a state file that cannot be written: one line naming it and why, no temporary left",
  // Root writes whatever the mode says: only an immutable directory refuses it.
  ignore: IS_ROOT && !await hasCommand("chattr"),
  fn: async () => {
    await using dir = await tempDir();
    const locked = `${dir.path}/locked`;
    await Deno.mkdir(locked);
    const lock = IS_ROOT ? ["chattr", "+i", locked] : ["chmod", "555", locked];
    const unlock = IS_ROOT ? ["chattr", "-i", locked] : ["chmod", "755", locked];
    await run(lock);
    try {
      const path = `${locked}/out.tar.partial.json`;
      const error = await assertRejects(
        () => savePartialState(path, { version: 1, layout: "L", blobs: {} }),
        StateWriteError,
      );
      const code = IS_ROOT ? "EPERM" : "EACCES";
      assertEquals(
        error.message,
        `Cannot write the pull's resume state to ${path}: permission denied (${code})`,
      );
      assertEquals([error.path, error.code], [path, code]);
      assertEquals([...Deno.readDirSync(locked)], []);
    } finally {
      await run(unlock);
    }
  },
});

async function run([command, ...args]: string[]): Promise<void> {
  const { success } = await new Deno.Command(command!, { args, stderr: "null" }).output();
  assert(success, `${command} ${args.join(" ")} failed`);
}

async function hasCommand(command: string): Promise<boolean> {
  return await new Deno.Command("sh", { args: ["-c", `command -v ${command}`], stdout: "null" })
    .output().then((o) => o.success, () => false);
}

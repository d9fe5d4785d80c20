import { userDir, writeFileAtomic } from "../src/state_files.ts";
import { assertEquals, assertRejects } from "./helpers/assert.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dip-state-files-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

Deno.test("writeFileAtomic replaces a file whole, private to the user, leaving nothing beside it", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/state.json`;
    await writeFileAtomic(path, "a longer first version");
    await writeFileAtomic(path, new TextEncoder().encode("short"));
    assertEquals(await Deno.readTextFile(path), "short");
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
    assertEquals(names(dir), ["state.json"]);
  });
});

Deno.test("writeFileAtomic that fails rejects and removes its temporary file", async () => {
  await withDir(async (dir) => {
    // A non-empty directory where the file goes: the temp file is written, the rename fails.
    await Deno.mkdir(`${dir}/state.json/taken`, { recursive: true });
    await assertRejects(() => writeFileAtomic(`${dir}/state.json`, "x"));
    assertEquals(names(dir), ["state.json"]);
    // And with no directory to write in, it rejects without creating one.
    await assertRejects(
      () => writeFileAtomic(`${dir}/missing/state.json`, "x"),
      Deno.errors.NotFound,
    );
    assertEquals(names(dir), ["state.json"]);
  });
});

Deno.test("userDir: XDG first, then the platform's place under HOME, else none", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assertEquals(
    userDir("cache", env({ XDG_CACHE_HOME: "/c", XDG_STATE_HOME: "/s" })),
    "/c/docker-image-pusher",
  );
  assertEquals(
    userDir("state", env({ XDG_CACHE_HOME: "/c", XDG_STATE_HOME: "/s" })),
    "/s/docker-image-pusher",
  );
  assertEquals(userDir("cache", env({})), undefined);
  assertEquals(userDir("state", env({ XDG_CACHE_HOME: "/c" })), undefined);
  if (Deno.build.os === "linux") {
    assertEquals(userDir("cache", env({ HOME: "/h" })), "/h/.cache/docker-image-pusher");
    assertEquals(userDir("state", env({ HOME: "/h" })), "/h/.local/state/docker-image-pusher");
  }
});

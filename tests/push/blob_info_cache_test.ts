import { BlobInfoCache, defaultCacheDir } from "../../src/push/blob_info_cache.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, "0")}`;
const LAYER = digest(1);
const OTHER_LAYER = digest(2);
const info = (n: number) => ({ digest: digest(1000 + n), size: 100 + n });

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dip-cache-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("BlobInfoCache: a missing, empty or damaged file is an empty cache", async () => {
  await withDir(async (dir) => {
    const missing = await BlobInfoCache.open(`${dir}/nowhere`);
    assertEquals(missing.path, `${dir}/nowhere/blob-info.json`);
    assertEquals(missing.compressed(LAYER, { codec: "gzip", level: "auto" }), undefined);
    assertEquals(missing.repositoriesWith(LAYER, "reg"), []);

    const path = `${dir}/blob-info.json`;
    const damaged = [
      "",
      "{",
      "null",
      "[]",
      '"text"',
      "{}",
      '{"compressed": {}}',
      '{"compressed": [], "locations": null}',
      // Right shape, wrong entries: a level that is neither a number nor "auto", a bad size.
      `{"compressed": {"${LAYER} gzip": [{"digest": "x", "size": 1, "level": "max"}]}, "locations": {}}`,
      `{"compressed": {"${LAYER} gzip": [{"digest": "x", "size": "1", "level": 1}]}, "locations": {}}`,
      `{"compressed": {}, "locations": {"${LAYER}": [1]}}`,
      `{"compressed": {"${LAYER} gzip": {}}, "locations": {}}`,
    ];
    for (const text of damaged) {
      await Deno.writeTextFile(path, text);
      const cache = await BlobInfoCache.open(dir);
      assertEquals(cache.compressed(LAYER, { codec: "gzip", level: "auto" }), undefined, text);
      assertEquals(cache.compressed(LAYER, { codec: "gzip", level: 1 }), undefined, text);
      assertEquals(cache.repositoriesWith(LAYER, "reg"), [], text);
    }

    // The next save replaces the damaged file with a sound one.
    const cache = await BlobInfoCache.open(dir);
    cache.recordLocation(LAYER, "reg", "app");
    await cache.save();
    assertEquals((await BlobInfoCache.open(dir)).repositoriesWith(LAYER, "reg"), ["app"]);
  });
});

Deno.test("BlobInfoCache.compressed matches the codec and a fixed level exactly", async () => {
  await withDir(async (dir) => {
    const cache = await BlobInfoCache.open(dir);
    cache.recordCompressed(LAYER, { codec: "gzip", level: 6 }, info(6));
    cache.recordCompressed(LAYER, { codec: "gzip", level: 9 }, info(9));

    assertEquals(cache.compressed(LAYER, { codec: "gzip", level: 6 }), info(6));
    assertEquals(cache.compressed(LAYER, { codec: "gzip", level: 9 }), info(9));
    assertEquals(cache.compressed(LAYER, { codec: "gzip", level: 1 }), undefined);
    assertEquals(cache.compressed(LAYER, { codec: "zstd", level: 6 }), undefined);
    assertEquals(cache.compressed(LAYER, { codec: "zstd", level: "auto" }), undefined);
    assertEquals(cache.compressed(LAYER, { codec: "none" }), undefined);
    assertEquals(cache.compressed(OTHER_LAYER, { codec: "gzip", level: 6 }), undefined);

    // Recording a level again replaces what it became.
    cache.recordCompressed(LAYER, { codec: "gzip", level: 6 }, info(60));
    assertEquals(cache.compressed(LAYER, { codec: "gzip", level: 6 }), info(60));
    assertEquals(cache.compressed(LAYER, { codec: "gzip", level: 9 }), info(9));
  });
});

Deno.test("BlobInfoCache.compressed for auto takes any level, preferring an auto entry", async () => {
  await withDir(async (dir) => {
    const cache = await BlobInfoCache.open(dir);
    cache.recordCompressed(LAYER, { codec: "zstd", level: 3 }, info(3));
    assertEquals(cache.compressed(LAYER, { codec: "zstd", level: "auto" }), info(3));
    cache.recordCompressed(LAYER, { codec: "zstd", level: 19 }, info(19));
    // Without an auto entry, the most recently recorded level.
    assertEquals(cache.compressed(LAYER, { codec: "zstd", level: "auto" }), info(19));

    cache.recordCompressed(LAYER, { codec: "zstd", level: "auto" }, info(0));
    cache.recordCompressed(LAYER, { codec: "zstd", level: 5 }, info(5));
    assertEquals(cache.compressed(LAYER, { codec: "zstd", level: "auto" }), info(0));
    // An auto entry does not stand in for a fixed level.
    assertEquals(cache.compressed(LAYER, { codec: "zstd", level: 7 }), undefined);
    assertEquals(cache.compressed(LAYER, { codec: "gzip", level: "auto" }), undefined);

    // The preference survives a save and a fresh open.
    await cache.save();
    const reopened = await BlobInfoCache.open(dir);
    assertEquals(reopened.compressed(LAYER, { codec: "zstd", level: "auto" }), info(0));
    assertEquals(reopened.compressed(LAYER, { codec: "zstd", level: 19 }), info(19));
  });
});

Deno.test("BlobInfoCache.repositoriesWith lists the registry's repositories, newest first", async () => {
  await withDir(async (dir) => {
    const cache = await BlobInfoCache.open(dir);
    cache.recordLocation(LAYER, "reg:5000", "team/one");
    cache.recordLocation(LAYER, "other.io", "team/elsewhere");
    cache.recordLocation(LAYER, "reg:5000", "team/two");
    cache.recordLocation(LAYER, "reg", "team/no-port");
    cache.recordLocation(OTHER_LAYER, "reg:5000", "team/three");

    assertEquals(cache.repositoriesWith(LAYER, "reg:5000"), ["team/two", "team/one"]);
    assertEquals(cache.repositoriesWith(LAYER, "other.io"), ["team/elsewhere"]);
    // "reg" is not a prefix match for "reg:5000".
    assertEquals(cache.repositoriesWith(LAYER, "reg"), ["team/no-port"]);
    assertEquals(cache.repositoriesWith(LAYER, "nowhere"), []);
    assertEquals(cache.repositoriesWith(OTHER_LAYER, "reg:5000"), ["team/three"]);

    // Seeing a repository again makes it the most recent.
    cache.recordLocation(LAYER, "reg:5000", "team/one");
    assertEquals(cache.repositoriesWith(LAYER, "reg:5000"), ["team/one", "team/two"]);
  });
});

Deno.test("BlobInfoCache keeps only the newest locations of a blob", async () => {
  await withDir(async (dir) => {
    const cache = await BlobInfoCache.open(dir);
    for (let i = 0; i < 12; i++) cache.recordLocation(LAYER, "reg", `repo-${i}`);
    const expected = Array.from({ length: 8 }, (_, i) => `repo-${11 - i}`);
    assertEquals(cache.repositoriesWith(LAYER, "reg"), expected);
    await cache.save();
    assertEquals((await BlobInfoCache.open(dir)).repositoriesWith(LAYER, "reg"), expected);
  });
});

Deno.test("BlobInfoCache.save writes a private file that a fresh open reads back", async () => {
  await withDir(async (root) => {
    // The directory does not exist yet: save creates it, private to the user.
    const dir = `${root}/cache/docker-image-pusher`;
    const cache = await BlobInfoCache.open(dir);
    cache.recordCompressed(LAYER, { codec: "gzip", level: "auto" }, info(1));
    cache.recordCompressed(LAYER, { codec: "zstd", level: 3 }, info(2));
    cache.recordLocation(info(1).digest, "reg:5000", "team/app");
    await cache.save();

    assertEquals((await Deno.stat(cache.path!)).mode! & 0o777, 0o600);
    assertEquals((await Deno.stat(dir)).mode! & 0o777, 0o700);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["blob-info.json"]);

    const reopened = await BlobInfoCache.open(dir);
    assertEquals(reopened.compressed(LAYER, { codec: "gzip", level: "auto" }), info(1));
    assertEquals(reopened.compressed(LAYER, { codec: "zstd", level: 3 }), info(2));
    assertEquals(reopened.repositoriesWith(info(1).digest, "reg:5000"), ["team/app"]);

    // Saving again (nothing new, or an update) keeps the file private and sound.
    await cache.save();
    reopened.recordLocation(info(1).digest, "reg:5000", "team/next");
    await reopened.save();
    assertEquals((await Deno.stat(cache.path!)).mode! & 0o777, 0o600);
    const third = await BlobInfoCache.open(dir);
    assertEquals(third.repositoriesWith(info(1).digest, "reg:5000"), ["team/next", "team/app"]);
    assertEquals(third.compressed(LAYER, { codec: "gzip", level: "auto" }), info(1));
  });
});

Deno.test("BlobInfoCache.save merges with what another push saved meanwhile", async () => {
  await withDir(async (dir) => {
    const seed = await BlobInfoCache.open(dir);
    seed.recordCompressed(LAYER, { codec: "gzip", level: 1 }, info(1));
    await seed.save();

    // Two pushes start from the same file.
    const first = await BlobInfoCache.open(dir);
    const second = await BlobInfoCache.open(dir);
    first.recordCompressed(LAYER, { codec: "gzip", level: 9 }, info(9));
    first.recordLocation(info(9).digest, "reg", "first/app");
    second.recordCompressed(OTHER_LAYER, { codec: "zstd", level: 3 }, info(3));
    second.recordCompressed(LAYER, { codec: "gzip", level: 5 }, info(5));
    second.recordLocation(info(9).digest, "reg", "second/app");
    await first.save();
    await second.save();

    const merged = await BlobInfoCache.open(dir);
    assertEquals(merged.compressed(LAYER, { codec: "gzip", level: 1 }), info(1));
    assertEquals(merged.compressed(LAYER, { codec: "gzip", level: 9 }), info(9));
    assertEquals(merged.compressed(LAYER, { codec: "gzip", level: 5 }), info(5));
    assertEquals(merged.compressed(OTHER_LAYER, { codec: "zstd", level: 3 }), info(3));
    assertEquals(merged.repositoriesWith(info(9).digest, "reg"), ["second/app", "first/app"]);

    // Each writer only adds what it learnt: the first, saving again, loses nothing of the second.
    first.recordLocation(LAYER, "reg", "first/again");
    await first.save();
    const after = await BlobInfoCache.open(dir);
    assertEquals(after.compressed(OTHER_LAYER, { codec: "zstd", level: 3 }), info(3));
    assertEquals(after.repositoriesWith(info(9).digest, "reg"), ["second/app", "first/app"]);
    assertEquals(after.repositoriesWith(LAYER, "reg"), ["first/again"]);
    assert(![...Deno.readDirSync(dir)].some((e) => e.name.endsWith(".tmp")), "temp file left");
  });
});

Deno.test("defaultCacheDir prefers XDG_CACHE_HOME, then the platform's place under HOME", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assertEquals(
    defaultCacheDir(env({ XDG_CACHE_HOME: "/xdg", HOME: "/home/u" })),
    "/xdg/docker-image-pusher",
  );
  assertEquals(defaultCacheDir(env({})), undefined);
  const home = defaultCacheDir(env({ HOME: "/home/u", XDG_CACHE_HOME: "" }));
  if (Deno.build.os === "linux") assertEquals(home, "/home/u/.cache/docker-image-pusher");
  if (Deno.build.os === "darwin") {
    assertEquals(home, "/home/u/Library/Caches/docker-image-pusher");
  }
  if (Deno.build.os === "windows") {
    assertEquals(
      defaultCacheDir(env({ LOCALAPPDATA: "C:\\Users\\u\\AppData\\Local" })),
      "C:\\Users\\u\\AppData\\Local\\docker-image-pusher\\cache",
    );
  }
});

Deno.test("BlobInfoCache.save that cannot replace the file rejects and leaves no temporary file", async () => {
  await withDir(async (dir) => {
    const cache = await BlobInfoCache.open(dir);
    // A non-empty directory where the file goes: writing the temp file works, renaming fails.
    await Deno.mkdir(`${dir}/blob-info.json/taken`, { recursive: true });
    cache.recordLocation(LAYER, "reg:5000", "team/app");
    await assertRejects(() => cache.save());
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["blob-info.json"]);
  });
});

import { defaultStateDir, ResumeStore } from "../../src/push/resume_store.ts";
import { assert, assertEquals } from "../helpers/assert.ts";

const DIGEST = `sha256:${"ab".repeat(32)}`;

async function withStore(fn: (store: ResumeStore, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dip-state-" });
  try {
    await fn(new ResumeStore(dir), dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("ResumeStore saves, loads and removes one record per registry, repository and blob", async () => {
  await withStore(async (store) => {
    assertEquals(await store.load("reg:5000", "team/app", DIGEST), undefined);
    await store.save({
      registry: "reg:5000",
      repository: "team/app",
      digest: DIGEST,
      location: "https://reg:5000/v2/team/app/blobs/uploads/u?_state=x",
      offset: 1024,
    });
    const record = await store.load("reg:5000", "team/app", DIGEST);
    assertEquals(record?.offset, 1024);
    assertEquals(record?.location, "https://reg:5000/v2/team/app/blobs/uploads/u?_state=x");
    assertEquals(await store.load("reg:5000", "team/other", DIGEST), undefined);
    assertEquals(await store.load("other:5000", "team/app", DIGEST), undefined);

    await store.save({
      registry: "reg:5000",
      repository: "team/app",
      digest: DIGEST,
      location: "https://reg:5000/next",
      offset: 2048,
    });
    assertEquals((await store.load("reg:5000", "team/app", DIGEST))?.offset, 2048);
    await store.remove("reg:5000", "team/app", DIGEST);
    assertEquals(await store.load("reg:5000", "team/app", DIGEST), undefined);
    await store.remove("reg:5000", "team/app", DIGEST); // removing twice is fine
  });
});

Deno.test("ResumeStore files are private, hold no credentials, and leave no temp files", async () => {
  await withStore(async (store) => {
    await store.save({
      registry: "reg",
      repository: "app",
      digest: DIGEST,
      location: "https://reg/v2/app/blobs/uploads/u",
      offset: 1,
    });
    const files = [...Deno.readDirSync(store.dir)].map((e) => e.name);
    assertEquals(files.length, 1);
    assert(files[0]!.endsWith(".json"));
    const path = `${store.dir}/${files[0]}`;
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
    const keys = Object.keys(JSON.parse(await Deno.readTextFile(path))).sort();
    assertEquals(keys, ["digest", "location", "offset", "registry", "repository", "updatedAt"]);
  });
});

Deno.test("ResumeStore ignores corrupt or foreign records", async () => {
  await withStore(async (store) => {
    await store.save({ registry: "r", repository: "a", digest: DIGEST, location: "x", offset: 5 });
    const file = [...Deno.readDirSync(store.dir)][0]!.name;
    for (
      const text of [
        "not json",
        '{"registry":"r"}',
        JSON.stringify({
          registry: "r",
          repository: "a",
          digest: DIGEST,
          location: "x",
          offset: -1,
        }),
        JSON.stringify({
          registry: "q",
          repository: "a",
          digest: DIGEST,
          location: "x",
          offset: 1,
        }),
      ]
    ) {
      await Deno.writeTextFile(`${store.dir}/${file}`, text);
      assertEquals(await store.load("r", "a", DIGEST), undefined, text);
    }
  });
});

Deno.test("defaultStateDir follows XDG_STATE_HOME, then the platform's place", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assertEquals(
    defaultStateDir(env({ XDG_STATE_HOME: "/s", HOME: "/h" })),
    "/s/docker-image-pusher",
  );
  if (Deno.build.os === "linux") {
    assertEquals(defaultStateDir(env({ HOME: "/h" })), "/h/.local/state/docker-image-pusher");
  }
  assertEquals(defaultStateDir(env({})), undefined);
});

/**
 * The public `push` (mod.ts), in-process, against the real registry: a file, a stream, a dry
 * run, multi-arch, typed failures (a refused password, a registry that is not there, an
 * impossible option) and an abort mid-upload that leaves nothing running (--trace-leaks).
 */
import {
  AuthError,
  InvalidOptionError,
  NetworkError,
  type ProgressEvent,
  push,
  PushError,
} from "../../mod.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import {
  makeBigLayerArchive,
  writeDocker25Save,
  writeOciArchive,
} from "../helpers/image_fixtures.ts";
import { startFaultProxy } from "../helpers/fault_proxy.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";

const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

/** A temporary directory, removed after `fn`; `env` keeps caches and docker's config in it. */
async function withDir(
  fn: (dir: string, env: (name: string) => string | undefined) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dip-api-push-" });
  const vars: Record<string, string> = {
    XDG_CACHE_HOME: `${dir}/cache`,
    XDG_STATE_HOME: `${dir}/state`,
    DOCKER_CONFIG: `${dir}/docker`,
  };
  try {
    await fn(dir, (name) => vars[name]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

integrationTest("push: an archive file goes up, and its events name each blob", async () => {
  await using registry = await startRegistry();
  await withDir(async (dir, env) => {
    const archive = await writeDocker25Save(`${dir}/app.tar`, [{ name: "app:1" }]);
    const events: ProgressEvent[] = [];
    const result = await push({
      archive: archive.path,
      targets: [`${registry.host}/team/app:1`],
      tags: ["latest"],
      compression: "none",
      env,
      onProgress: (event) => events.push(event),
    });
    assertEquals(result.dryRun, false);
    assertEquals(result.images.length, 1);
    const image = result.images[0]!;
    assertEquals(image.repository, `${registry.host}/team/app`);
    assertEquals(image.tags, ["1", "latest"]);
    assertEquals(image.manifest.digest, archive.images[0]!.manifestDigest);
    // config + 2 layers
    assertEquals(image.uploaded.count, 3);
    assertEquals(image.platforms, ["linux/amd64"]);
    assertEquals(await registry.listTags("team/app"), ["1", "latest"]);
    assertEquals((await registry.fetchManifest("team/app", "1")).digest, image.manifest.digest);
    const done = events.filter((e) => e.type === "blob-done");
    assertEquals(done.length, 3);
    for (const event of events) assertEquals(typeof event.type, "string");
    const layers = new Set(archive.images[0]!.layerDigests);
    for (const digest of layers) assert(done.some((e) => e.digest === digest), digest);
  });
});

integrationTest(
  "push: a ReadableStream of a compressed archive goes up as a file does",
  async () => {
    await using registry = await startRegistry();
    await withDir(async (dir, env) => {
      const archive = await writeOciArchive(`${dir}/app.tar`, [{ name: "app:2" }]);
      const bytes = await Deno.readFile(archive.path);
      const gzipped = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
      const result = await push({
        archive: gzipped,
        targets: [`${registry.host}/stream/app:2`],
        env,
      });
      assertEquals(result.images[0]!.manifest.digest, archive.images[0]!.manifestDigest);
      assertEquals(await registry.listTags("stream/app"), ["2"]);
      for (const digest of archive.images[0]!.layerDigests) {
        assert(await registry.blobExists("stream/app", digest), `layer ${digest} is missing`);
      }
    });
  },
);

integrationTest("push: a dry run counts what would go up and sends nothing", async () => {
  await using registry = await startRegistry();
  await withDir(async (dir, env) => {
    const archive = await writeOciArchive(`${dir}/app.tar`, [{ name: "app:1" }]);
    const result = await push({
      archive: archive.path,
      targets: [`${registry.host}/dry/app:1`],
      dryRun: true,
      env,
    });
    assertEquals(result.dryRun, true);
    assertEquals(result.images[0]!.uploaded.count, 3);
    assertEquals(result.images[0]!.manifest.digest, archive.images[0]!.manifestDigest);
    assertEquals(await registry.listTags("dry/app"), []);
    const writes = (await registry.requests()).filter((r) =>
      r.method !== "GET" && r.method !== "HEAD"
    );
    assertEquals(writes, [], "a dry run sends only lookups");
  });
});

integrationTest("push: multiArch joins two archives into one index", async () => {
  await using registry = await startRegistry();
  await withDir(async (dir, env) => {
    const amd = await writeDocker25Save(`${dir}/amd.tar`, [{
      name: "app:amd",
      architecture: "amd64",
    }]);
    const arm = await writeDocker25Save(`${dir}/arm.tar`, [{
      name: "app:arm",
      architecture: "arm64",
    }]);
    const result = await push({
      archive: [amd.path, arm.path],
      targets: [`${registry.host}/multi/app:1`],
      multiArch: true,
      compression: "none",
      env,
    });
    const image = result.images[0]!;
    assertEquals(image.manifest.mediaType, OCI_INDEX);
    assertEquals(image.platforms, ["linux/amd64", "linux/arm64"]);
    const index = await registry.fetchManifest("multi/app", "1");
    assertEquals(index.digest, image.manifest.digest);
    const children = (index.json.manifests as { digest: string }[]).map((m) => m.digest);
    assertEquals(children, [amd.images[0]!.manifestDigest, arm.images[0]!.manifestDigest]);
  });
});

integrationTest("push: retries and notices are typed: a kind, and the blob by digest", async () => {
  await using registry = await startRegistry();
  // The first blob lookup is answered 503: it is retried.
  await using proxy = startFaultProxy({
    upstream: registry.url,
    rate503: 1,
    maxFaults: 1,
    faultsOn: { methods: ["HEAD"], path: /\/blobs\/sha256:/ },
  });
  await withDir(async (dir, env) => {
    const archive = await writeOciArchive(`${dir}/app.tar`, [{ name: "app:1" }]);
    const events: ProgressEvent[] = [];
    await push({
      archive: archive.path,
      targets: [`http://${proxy.host}/typed/app:1`],
      verify: true,
      env,
      onProgress: (event) => events.push(event),
    });
    const retries = events.filter((e) => e.type === "retry");
    assertEquals(retries.length, 1, JSON.stringify(events));
    const [retry] = retries;
    assertEquals(retry!.status, 503);
    assertEquals(retry!.subject.kind, "request");
    assertEquals(retry!.attempt, 2);
    const notices = events.filter((e) => e.type === "notice");
    assertEquals(notices.map((n) => n.kind), ["verifying"]);
  });
});

integrationTest(
  "push: a refused password is an AuthError carrying the 401 and its codes",
  async () => {
    await using registry = await startRegistry({
      htpasswd: { username: "alice", password: "right" },
    });
    await withDir(async (dir, env) => {
      const archive = await writeOciArchive(`${dir}/app.tar`, [{ name: "app:1" }]);
      const error = await assertRejects(
        () =>
          push({
            archive: archive.path,
            targets: [`${registry.host}/auth/app:1`],
            credentials: { username: "alice", password: "wrong" },
            env,
          }),
        AuthError,
      );
      assertEquals(error.registryError?.status, 401);
      assert(error.registryError?.hasCode("UNAUTHORIZED"), String(error.registryError?.codes));
      assert(!error.message.includes("wrong"), "the password must not be in the message");
      assertEquals(await registry.listTags("auth/app"), []);
    });
  },
);

integrationTest("push: a credentials function is asked for the registry by name", async () => {
  await using registry = await startRegistry({
    htpasswd: { username: "alice", password: "right" },
  });
  await withDir(async (dir, env) => {
    const archive = await writeOciArchive(`${dir}/app.tar`, [{ name: "app:1" }]);
    const asked: string[] = [];
    await push({
      archive: archive.path,
      targets: [`${registry.host}/auth/app:1`],
      credentials: (name) => {
        asked.push(name);
        return { username: "alice", password: "right" };
      },
      env,
    });
    assertEquals(asked, [registry.host]);
    assertEquals(await registry.listTags("auth/app"), ["1"]);
  });
});

integrationTest("push: a registry that is not there is a NetworkError", async () => {
  // A port that was free a moment ago: nothing listens there.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await withDir(async (dir, env) => {
    const archive = await writeOciArchive(`${dir}/app.tar`, [{ name: "app:1" }]);
    await assertRejects(
      () =>
        push({
          archive: archive.path,
          targets: [`http://127.0.0.1:${port}/dead/app:1`],
          retryAttempts: 0,
          env,
        }),
      NetworkError,
    );
  });
});

integrationTest(
  "push: one of two registries down is a PushError holding the other's result",
  async () => {
    await using registry = await startRegistry();
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    await withDir(async (dir, env) => {
      const archive = await writeOciArchive(`${dir}/app.tar`, [{ name: "app:1" }]);
      const error = await assertRejects(
        () =>
          push({
            archive: archive.path,
            targets: [`${registry.host}/up/app:1`, `http://127.0.0.1:${port}/down/app:1`],
            retryAttempts: 0,
            env,
          }),
        PushError,
      );
      assertEquals(error.errors.length, 1);
      assert(error.errors[0] instanceof NetworkError, String(error.errors[0]));
      assertEquals(error.result.images.map((i) => i.repository), [`${registry.host}/up/app`]);
      assertEquals(await registry.listTags("up/app"), ["1"]);
    });
  },
);

Deno.test("push: options that cannot go together are an InvalidOptionError, before any I/O", async () => {
  const error = await assertRejects(
    () =>
      push({
        archive: "/nonexistent.tar",
        targets: ["localhost:1/a:1"],
        all: true,
        multiArch: true,
      }),
    InvalidOptionError,
  );
  assert(error instanceof TypeError);
  assertEquals(error.reason, "exclusive");
  assert(!error.message.includes("--"), `no flag names in the library: ${error.message}`);
  const range = await assertRejects(
    () => push({ archive: "/nonexistent.tar", targets: ["localhost:1/a:1"], maxConcurrent: 0 }),
    InvalidOptionError,
  );
  assertEquals(range.option, "maxConcurrent");
});

Deno.test("push: mountFrom must be a repository name, and not a target's", async () => {
  const cases: [string, string][] = [
    ["team//base", "invalid-repository"],
    ["team/base:1", "invalid-repository"],
    ["Team/Base", "invalid-repository"],
    ["", "invalid-repository"],
    ["team/app", "mount-from-target"],
  ];
  for (const [mountFrom, reason] of cases) {
    const error = await assertRejects(
      () => push({ archive: "/nonexistent.tar", targets: ["localhost:1/team/app:1"], mountFrom }),
      InvalidOptionError,
    );
    assertEquals([error.option, error.reason, error.value], ["mountFrom", reason, mountFrom]);
  }
});

integrationTest("push: aborted mid-upload, it rejects with the signal's reason", async () => {
  await using registry = await startRegistry();
  await withDir(async (dir, env) => {
    const archive = await makeBigLayerArchive(`${dir}/big.tar`, 64 * 1024 * 1024, "oci");
    const controller = new AbortController();
    const reason = new Error("stopped by the test");
    let progressed = 0;
    const rejected = await assertRejects(() =>
      push({
        archive: archive.path,
        targets: [`${registry.host}/abort/big:1`],
        compression: "none",
        chunked: false,
        env,
        signal: controller.signal,
        onProgress: (event) => {
          if (event.type === "blob-progress" && event.done > 0 && ++progressed === 1) {
            controller.abort(reason);
          }
        },
      })
    );
    assert(rejected === reason, `rejected with ${rejected}, not the signal's reason`);
    assertEquals(await registry.listTags("abort/big"), []);
  });
});

/**
 * The public `pull` (mod.ts), in-process, against the real registry: to a path and to a
 * WritableStream (the same archive both ways), a platform the image lacks, and an impossible
 * option.
 */
import {
  ImageNotFoundError,
  inspect,
  InvalidOptionError,
  PlatformNotFoundError,
  pull,
  type PullOptions,
  push,
} from "../../mod.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { makeBigLayerArchive, writeOciArchive } from "../helpers/image_fixtures.ts";
import { integrationTest, startRegistry, type TestRegistry } from "../helpers/registry.ts";

const env = (): string | undefined => undefined;

/** Pushes a one-image archive to `repo:1` and returns its manifest digest. */
async function seed(registry: TestRegistry, dir: string, repo: string): Promise<string> {
  const archive = await writeOciArchive(`${dir}/seed.tar`, [{ name: "app:1" }]);
  await push({ archive: archive.path, targets: [`${registry.host}/${repo}:1`], env });
  return archive.images[0]!.manifestDigest!;
}

integrationTest("pull: to a path and to a WritableStream, the same archive", async () => {
  await using registry = await startRegistry();
  const dir = await Deno.makeTempDir({ prefix: "dip-api-pull-" });
  try {
    const digest = await seed(registry, dir, "team/app");
    const source = `${registry.host}/team/app:1`;

    const toFile = await pull({ sources: [source], output: `${dir}/out.tar`, env });
    assertEquals(toFile.images.map((i) => [i.name, i.digest]), [[source, digest]]);
    assertEquals(toFile.archiveSize, (await Deno.stat(`${dir}/out.tar`)).size);
    const fromFile = await inspect(`${dir}/out.tar`);
    assertEquals(fromFile.images[0]!.manifestDigest, digest);

    const chunks: Uint8Array<ArrayBuffer>[] = [];
    let closed = false;
    const stream = new WritableStream<Uint8Array>({
      write: (chunk) => void chunks.push(chunk.slice()),
      close: () => void (closed = true),
    });
    const toStream = await pull({ sources: [source], output: stream, env });
    assert(closed, "the stream is closed once the archive is written");
    assertEquals(toStream.images[0]!.digest, digest);
    const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
    assertEquals(bytes, await Deno.readFile(`${dir}/out.tar`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

integrationTest("pull: typed failures for a missing image and a missing platform", async () => {
  await using registry = await startRegistry();
  const dir = await Deno.makeTempDir({ prefix: "dip-api-pull-" });
  try {
    await seed(registry, dir, "team/app");
    await assertRejects(
      () => pull({ sources: [`${registry.host}/team/none:1`], output: `${dir}/x.tar`, env }),
      ImageNotFoundError,
    );
    const error = await assertRejects(
      () =>
        pull({
          sources: [`${registry.host}/team/app:1`],
          output: `${dir}/x.tar`,
          platform: "linux/s390x",
          env,
        }),
      PlatformNotFoundError,
    );
    assertEquals(error.wanted.architecture, "s390x");
    // A stream the pull refused before writing is aborted, not left open.
    let aborted: unknown;
    const stream = new WritableStream<Uint8Array>({ abort: (reason) => void (aborted = reason) });
    await assertRejects(
      () => pull({ sources: [`${registry.host}/team/none:1`], output: stream, env }),
      ImageNotFoundError,
    );
    assert(aborted instanceof ImageNotFoundError, `the stream was aborted with ${aborted}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

integrationTest("pull: aborted mid-download, it rejects with the signal's reason", async () => {
  await using registry = await startRegistry();
  const dir = await Deno.makeTempDir({ prefix: "dip-api-pull-" });
  try {
    const big = await makeBigLayerArchive(`${dir}/big.tar`, 64 * 1024 * 1024, "oci");
    await push({
      archive: big.path,
      targets: [`${registry.host}/big/app:1`],
      compression: "none",
      env,
    });
    const controller = new AbortController();
    const reason = new Error("stopped by the test");
    const rejected = await assertRejects(() =>
      pull({
        sources: [`${registry.host}/big/app:1`],
        output: `${dir}/out.tar`,
        env,
        signal: controller.signal,
        onProgress: (event) => {
          if (event.type === "blob-progress" && event.done > 0) controller.abort(reason);
        },
      })
    );
    assert(rejected === reason, `rejected with ${rejected}, not the signal's reason`);
    // Nothing is at the output: only a complete archive is renamed into place.
    assertEquals(await Deno.stat(`${dir}/out.tar`).then(() => true, () => false), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pull: a platform that cannot be parsed is an InvalidOptionError", async () => {
  const error = await assertRejects(
    () => pull({ sources: ["localhost:1/a:1"], output: "/nonexistent/x.tar", platform: "linux" }),
    InvalidOptionError,
  );
  assertEquals(error.option, "platform");
});

Deno.test("pull: maxConcurrent, retryAttempts and timeoutSeconds out of range, as push", async () => {
  const cases: [keyof PullOptions, number][] = [
    ["maxConcurrent", 0],
    ["maxConcurrent", 65],
    ["retryAttempts", -1],
    ["retryAttempts", 101],
    ["timeoutSeconds", 0],
    ["timeoutSeconds", 1.5],
  ];
  for (const [option, value] of cases) {
    const error = await assertRejects(
      () => pull({ sources: ["localhost:1/a:1"], output: "/nonexistent/x.tar", [option]: value }),
      InvalidOptionError,
    );
    assertEquals([error.option, error.reason, error.value], [option, "out-of-range", `${value}`]);
  }
});

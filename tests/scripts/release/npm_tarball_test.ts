/**
 * Fetching the pinned runtime tarballs: `npm pack` is run only when the cache lacks a tarball
 * matching the pin, and a tarball that does not match is refused and never cached. A stand-in
 * npm serves tarballs made here (the real registry is not for tests).
 */
import { assert, assertEquals, assertRejects } from "../../helpers/assert.ts";
import {
  cachedTarballPath,
  fetchPinnedTarball,
  integrityOf,
  type PinnedPackage,
  readTarballFiles,
} from "../../../scripts/release/npm_tarball.ts";
import { tarGz } from "../../../scripts/release/tar_gz.ts";

/** A stand-in npm whose `pack SPEC --json --pack-destination DIR` copies `served` into DIR. */
async function standInNpm(dir: string, served: string): Promise<{ npm: string; log: string }> {
  const npm = `${dir}/npm`;
  const log = `${dir}/npm.log`;
  await Deno.writeTextFile(
    npm,
    `#!/bin/sh\necho "$*" >> '${log}'\n` +
      `[ -f '${served}' ] || { echo 'npm error 404 Not Found' >&2; exit 1; }\n` +
      `cp '${served}' "$5/deno-linux-x64-glibc-9.9.9.tgz"\necho '[]'\n`,
    { mode: 0o755 },
  );
  return { npm, log };
}

async function runtimeTarball(content: string): Promise<Uint8Array> {
  const encoder = new TextEncoder();
  return await tarGz([
    { kind: "dir", name: "package", mode: 0o755 },
    { kind: "file", name: "package/deno", mode: 0o755, data: encoder.encode(content) },
    { kind: "file", name: "package/package.json", mode: 0o644, data: encoder.encode("{}") },
  ]);
}

const lines = async (path: string) =>
  (await Deno.readTextFile(path).catch(() => "")).trim().split("\n").filter((l) => l !== "");

Deno.test("fetchPinnedTarball runs npm pack once, then serves the cache while it matches the pin", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dip-npm-test-" });
  try {
    const good = await runtimeTarball("the runtime");
    await Deno.writeFile(`${dir}/served.tgz`, good);
    const { npm, log } = await standInNpm(dir, `${dir}/served.tgz`);
    const pkg: PinnedPackage = {
      name: "@deno/linux-x64-glibc",
      version: "9.9.9",
      integrity: integrityOf(good),
    };
    const cache = `${dir}/cache`;
    assertEquals(await fetchPinnedTarball(pkg, cache, { npm }), good);
    assertEquals(await lines(log), [
      `pack @deno/linux-x64-glibc@9.9.9 --json --pack-destination ${
        (await lines(log))[0]!
          .split(" ").at(-1)
      }`,
    ]);
    assertEquals(cachedTarballPath(cache, pkg), `${cache}/deno-linux-x64-glibc-9.9.9.tgz`);
    assertEquals(await Deno.readFile(cachedTarballPath(cache, pkg)), good);
    // Only the cached tarball is left: npm's download folder is gone.
    assertEquals([...Deno.readDirSync(cache)].map((e) => e.name), [
      "deno-linux-x64-glibc-9.9.9.tgz",
    ]);

    // Cached: npm is not run again.
    assertEquals(await fetchPinnedTarball(pkg, cache, { npm }), good);
    assertEquals((await lines(log)).length, 1);

    // A damaged cache entry is fetched again.
    await Deno.writeTextFile(cachedTarballPath(cache, pkg), "damaged");
    assertEquals(await fetchPinnedTarball(pkg, cache, { npm }), good);
    assertEquals((await lines(log)).length, 2);

    const files = await readTarballFiles(good, ["package/deno"], "test tarball");
    assertEquals(new TextDecoder().decode(files.get("package/deno")!.data), "the runtime");
    assertEquals(files.get("package/deno")!.mode, 0o755);
    await assertRejects(
      () => readTarballFiles(good, ["package/deno.exe"], "test tarball"),
      Error,
      "test tarball holds no package/deno.exe",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetchPinnedTarball refuses a tarball that does not match the pin, and caches nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dip-npm-test-" });
  try {
    await Deno.writeFile(`${dir}/served.tgz`, await runtimeTarball("something else"));
    const { npm } = await standInNpm(dir, `${dir}/served.tgz`);
    const pkg: PinnedPackage = {
      name: "@deno/linux-x64-glibc",
      version: "9.9.9",
      integrity: integrityOf(await runtimeTarball("the runtime")),
    };
    const cache = `${dir}/cache`;
    const error = await assertRejects(() => fetchPinnedTarball(pkg, cache, { npm }), Error);
    assert(
      error.message.startsWith("npm served @deno/linux-x64-glibc@9.9.9 with integrity sha512-"),
      error.message,
    );
    assert(error.message.includes(`but the pin says ${pkg.integrity}`), error.message);
    assertEquals([...Deno.readDirSync(cache)], []);

    // npm failing is an error naming the package, npm's exit code and its last words.
    await Deno.remove(`${dir}/served.tgz`);
    await assertRejects(
      () => fetchPinnedTarball(pkg, cache, { npm }),
      Error,
      "npm pack @deno/linux-x64-glibc@9.9.9 failed (exit 1): npm error 404 Not Found",
    );
    await assertRejects(
      () => fetchPinnedTarball(pkg, cache, { npm: `${dir}/no-such-npm` }),
      Error,
      "is npm installed?",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

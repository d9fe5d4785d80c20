/**
 * A pull that stops part-way continues where it stopped: killed with SIGKILL in the middle of
 * a 64 MiB layer, the rerun asks for the rest with a Range request (counted in the registry's
 * access log) and the archive is whole; `--no-resume` downloads it all again; a full disk
 * leaves no archive at the final path and keeps the state for the rerun, but one full before
 * the first state save keeps nothing and advises no rerun; a state file that cannot be written
 * is one line naming it, and the partial archive it would have described is removed.
 */
import { startThrottleProxy } from "../../scripts/throttle_proxy.ts";
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { runCli, startCli } from "../helpers/cli.ts";
import { formatBytes } from "../../src/byte_size.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import { blobGets } from "../pull/_resume_support.ts";
import { pull, seed, tempDir } from "../pull/_support.ts";

const MiB = 1024 * 1024;
const BIG = 64 * MiB;

async function savedDone(path: string, digest: string): Promise<number> {
  try {
    const state = JSON.parse(await Deno.readTextFile(path)) as {
      blobs: Record<string, { done: number }>;
    };
    return state.blobs[digest]?.done ?? 0;
  } catch {
    return 0;
  }
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

integrationTest(
  "SIGKILL mid-layer: the rerun downloads only the rest; --no-resume all",
  async () => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    const { fixture, digest } = await seed(registry, "big/app:1", [
      { name: "big:1", layerSizes: [BIG, 3_000] },
    ], { compression: "none" });
    const layer = fixture.images[0]!.layerDigests[0]!;
    const size = (await registry.fetchManifest("big/app", "1")).json as {
      layers: { size: number }[];
    };
    const layerSize = size.layers[0]!.size;
    const [hostname, port] = registry.host.split(":") as [string, string];
    // 200 Mbit/s: the layer takes about 2.7 s, long enough to be killed in its middle.
    await using slow = await startThrottleProxy({
      target: { hostname, port: Number(port) },
      bitsPerSecond: 200e6,
    });
    const out = `${dir.path}/big.tar`;
    const before = (await blobGets(registry, layer)).length;
    const running = startCli(["pull", `http://127.0.0.1:${slow.port}/big/app:1`, "-o", out]);
    const deadline = Date.now() + 30_000;
    while ((await savedDone(`${out}.partial.json`, layer)) < 16 * MiB) {
      assert(Date.now() < deadline, "the download never got 16 MiB in");
      await new Promise((r) => setTimeout(r, 50));
    }
    running.child.kill("SIGKILL");
    const killed = await running.done;
    assertEquals(killed.signal, "SIGKILL");
    assert(!(await exists(out)), "no archive at the final path");
    const done = await savedDone(`${out}.partial.json`, layer);
    assert(done >= 16 * MiB && done < layerSize, `${done} saved`);

    const rerun = await pull([`${registry.url}/big/app:1`, "-o", out]);
    assertEquals(rerun.code, 0, rerun.stderr);
    assertStringIncludes(rerun.stderr, "kept from the earlier run");
    // Its line says what this run moved, not the whole layer.
    assertStringIncludes(
      rerun.stderr,
      `Downloaded ${formatBytes(layerSize - done)} of ${layer.slice(7, 19)} (${
        formatBytes(layerSize)
      })`,
    );
    // The killed GET (the registry logs it when it notices, maybe after the rerun began), then
    // one Range request for exactly the rest.
    const gets = (await blobGets(registry, layer)).slice(before);
    assertEquals(gets.filter((g) => g.status !== 200), [{ status: 206, bytes: layerSize - done }]);
    assertEquals(gets.length, 2, JSON.stringify(gets));
    assert(
      !(await exists(`${out}.partial`)) && !(await exists(`${out}.partial.json`)),
      "cleaned up",
    );
    const pushed = await runCli(["-r", `${registry.url}/copy/app:1`, "-f", out]);
    assertEquals(pushed.stdout, `${registry.host}/copy/app:1@${digest}\n`, pushed.stderr);

    // --no-resume: a saved partial archive is ignored; the whole layer comes again.
    const mark = (await blobGets(registry, layer)).length;
    const second = startCli(["pull", `http://127.0.0.1:${slow.port}/big/app:1`, "-o", `${out}2`]);
    while ((await savedDone(`${out}2.partial.json`, layer)) < 8 * MiB) {
      await new Promise((r) => setTimeout(r, 50));
    }
    second.child.kill("SIGKILL");
    await second.done;
    const fresh = await pull([`${registry.url}/big/app:1`, "-o", `${out}2`, "--no-resume"]);
    assertEquals(fresh.code, 0, fresh.stderr);
    // The killed GET and the fresh one; the registry logs the killed one when it notices, which
    // may be after the fresh one started. No Range: the fresh one sent the whole layer.
    const again = (await blobGets(registry, layer)).slice(mark).sort((a, b) => a.bytes - b.bytes);
    assertEquals(again.length, 2, JSON.stringify(again));
    assert(again[0]!.bytes < layerSize, JSON.stringify(again));
    assertEquals(again[1], { status: 200, bytes: layerSize });
  },
  { tools: ["docker-registry"] },
);

/** A 4 MiB tmpfs, where root may mount one; undefined elsewhere. */
async function smallDisk(dir: string): Promise<AsyncDisposable | undefined> {
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", "size=4m", "tmpfs", dir],
    stderr: "null",
  }).output().catch(() => undefined);
  if (!mount?.success) return undefined;
  return {
    [Symbol.asyncDispose]: async () => {
      await new Deno.Command("umount", { args: [dir] }).output();
    },
  };
}

integrationTest(
  "a full disk: no archive at the final path; state kept; the rerun ends it",
  async (t) => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    await seed(registry, "disk/app:1", [{ name: "d:1", layerSizes: [3 * MiB, 2 * MiB] }], {
      compression: "none",
    });
    await Deno.mkdir(`${dir.path}/disk`);
    await using disk = await smallDisk(`${dir.path}/disk`);
    if (disk === undefined) {
      await t.step({ name: "needs root to mount a tmpfs", ignore: true, fn: () => {} });
      return;
    }
    const out = `${dir.path}/disk/app.tar`;
    const full = await pull([`${registry.url}/disk/app:1`, "-o", out]);
    assertEquals(full.code, 1, full.stderr);
    assertStringIncludes(
      full.stderr,
      `Error: Cannot write the archive to ${out}.partial: no space left on device (ENOSPC)`,
    );
    assertStringIncludes(full.stderr, "run the same command again to continue");
    assert(!(await exists(out)), "no archive at the final path");
    assert(await exists(`${out}.partial.json`), "state kept");
    // Room again (the partial file moves to a bigger disk with its state): the rerun finishes.
    const roomy = `${dir.path}/app.tar`;
    await Deno.copyFile(`${out}.partial`, `${roomy}.partial`);
    await Deno.copyFile(`${out}.partial.json`, `${roomy}.partial.json`);
    const rerun = await pull([`${registry.url}/disk/app:1`, "-o", roomy]);
    assertEquals(rerun.code, 0, rerun.stderr);
  },
  { tools: ["docker-registry"] },
);

integrationTest(
  "a disk full before the first state save: one line, no advice, nothing left",
  async (t) => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    await seed(registry, "full/app:1", [{ name: "f:1", layerSizes: [40_000] }]);
    await Deno.mkdir(`${dir.path}/disk`);
    await using disk = await smallDisk(`${dir.path}/disk`);
    if (disk === undefined) {
      await t.step({ name: "needs root to mount a tmpfs", ignore: true, fn: () => {} });
      return;
    }
    // Filled to the last byte: laying out the archive (its holes take no room) fails at its
    // first header, before any state is written.
    {
      using filler = await Deno.open(`${dir.path}/disk/filler`, { write: true, create: true });
      const block = new Uint8Array(64 * 1024);
      try {
        for (;;) await filler.write(block);
      } catch (error) {
        if (!(error instanceof Error) || !/no space left/i.test(error.message)) throw error;
      }
    }
    const out = `${dir.path}/disk/app.tar`;
    const result = await pull([`${registry.url}/full/app:1`, "-o", out]);
    assertEquals(result.code, 1, result.stderr);
    const errors = result.stderr.split("\n").filter((line) => line.startsWith("Error: "));
    assertEquals(errors.length, 1, result.stderr);
    assert(
      errors[0]!.startsWith(
        `Error: Cannot write the archive to ${out}.partial: no space left on device (ENOSPC)`,
      ),
      result.stderr,
    );
    // Nothing is kept: no state file to name, and no partial archive without one.
    assert(!result.stderr.includes("run the same command again"), result.stderr);
    assert(!(await exists(`${out}.partial`)), "the partial archive was left");
    assert(!(await exists(`${out}.partial.json`)));
  },
  { tools: ["docker-registry"] },
);

integrationTest(
  "a state file that cannot be written: one line naming it and why, nothing downloaded",
  async () => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    const { fixture } = await seed(registry, "state/app:1", [{
      name: "s:1",
      layerSizes: [40_000],
    }]);
    const out = `${dir.path}/app.tar`;
    // A directory where the state file goes: the archive's directory takes files, the state's
    // rename over it fails (EISDIR), as root or not.
    await Deno.mkdir(`${out}.partial.json`);
    const result = await pull([`${registry.url}/state/app:1`, "-o", out]);
    assertEquals(result.code, 1, result.stderr);
    const errors = result.stderr.split("\n").filter((line) => line.startsWith("Error: "));
    assertEquals(errors, [
      `Error: Cannot write the pull's resume state to ${out}.partial.json: is a directory (EISDIR)`,
    ]);
    assert(!(await exists(out)), "no archive at the final path");
    // The full-size archive this run laid out goes too: with no state beside it, a rerun
    // could not continue it.
    assert(!(await exists(`${out}.partial`)), "the partial archive was left");
    assertEquals(await blobGets(registry, fixture.images[0]!.layerDigests[0]!), []);
  },
  { tools: ["docker-registry"] },
);

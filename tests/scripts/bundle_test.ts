/**
 * The single-file build: `scripts/bundle.sh` output runs on its own (no node_modules, no
 * import map) and pushes a real image.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { runCli } from "../helpers/cli.ts";
import { run } from "../helpers/command.ts";
import { writeOciArchive } from "../helpers/image_fixtures.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import { VERSION } from "../../src/version.ts";

const SCRIPT = new URL("../../scripts/bundle.sh", import.meta.url).pathname;

integrationTest("the bundle answers --version and pushes an image", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dip-bundle-" });
  try {
    const bundle = `${dir}/docker-image-pusher.js`;
    await run("bash", [SCRIPT, bundle]);
    const text = await Deno.readTextFile(bundle);
    assert(!/from\s+["'](npm:|commander|log-update)/.test(text), "dependencies are inlined");

    const version = await runCli(["--version"], { script: bundle });
    assertEquals(version.code, 0);
    assertEquals(version.stdout.trim(), VERSION);

    await using registry = await startRegistry();
    const archive = await writeOciArchive(`${dir}/app.tar`, [{ name: "app:1" }]);
    const pushed = await runCli(
      ["-r", `http://${registry.host}/bundle/app:1`, "-f", archive.path],
      { script: bundle },
    );
    assertEquals(pushed.code, 0, pushed.stderr);
    assertStringIncludes(
      pushed.stdout,
      `${registry.host}/bundle/app:1@${archive.images[0]!.manifestDigest}`,
    );
    assert(await registry.manifestExists("bundle/app", "1"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { tools: ["docker-registry"] });

/**
 * The README's "Use it as a library" program, as printed: its ```ts block is taken from the
 * README, pointed at this checkout's mod.ts and at a real registry, type-checked and run. A
 * README example that stops compiling, or stops working, fails here.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { run } from "../helpers/command.ts";
import { writeDocker25Save } from "../helpers/image_fixtures.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";

const README = new URL("../../README.md", import.meta.url);
const MOD = new URL("../../mod.ts", import.meta.url);
/** The package's own configuration: the import map `mod.ts` resolves its dependencies with. */
const CONFIG = new URL("../../deno.json", import.meta.url);

/** The first ```ts block of the README's section `heading`. */
function exampleOf(readme: string, heading: string): string {
  const start = readme.indexOf(`\n${heading}\n`);
  assert(start >= 0, `the README has no section "${heading}"`);
  const next = readme.indexOf("\n## ", start + heading.length + 2);
  const section = readme.slice(start, next < 0 ? undefined : next);
  const block = /\n```ts\n([\s\S]*?)\n```\n/.exec(section);
  assert(block !== null, `"${heading}" has no \`\`\`ts block`);
  return block[1]!;
}

integrationTest("README: the library example type-checks and runs against a registry", async () => {
  await using registry = await startRegistry();
  const dir = await Deno.makeTempDir({ prefix: "dip-api-readme-" });
  try {
    const example = exampleOf(await Deno.readTextFile(README), "## Use it as a library");
    assertStringIncludes(example, `from "jsr:@docker-image-pusher/cli"`);
    assertStringIncludes(example, "registry.example.com");
    const program = example
      .replaceAll("jsr:@docker-image-pusher/cli", MOD.href)
      .replaceAll("registry.example.com", registry.host);
    await Deno.writeTextFile(`${dir}/copy.ts`, program);
    const archive = await writeDocker25Save(`${dir}/app.tar`, [{ name: "app:1" }]);
    // Throws with the program's stderr when it fails (a type error, a failed push).
    const result = await run(Deno.execPath(), [
      "run",
      "--check",
      "-A",
      "--config",
      CONFIG.pathname,
      "copy.ts",
      archive.path,
    ], {
      cwd: dir,
      env: {
        DENO_NO_UPDATE_CHECK: "1",
        XDG_CACHE_HOME: `${dir}/cache`,
        XDG_STATE_HOME: `${dir}/state`,
        DOCKER_CONFIG: `${dir}/docker`,
      },
    });
    assertStringIncludes(result.stdout, `pushed ${registry.host}/team/app:1@sha256:`);
    assertStringIncludes(result.stdout, "pulled ");
    assertEquals(await registry.listTags("team/app"), ["1", "latest"]);
    assert((await Deno.stat(`${dir}/copy.tar`)).isFile);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

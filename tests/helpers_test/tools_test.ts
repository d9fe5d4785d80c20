import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { missingTools, toolOnPath } from "../helpers/tools.ts";

const helpers = new URL("../helpers/", import.meta.url).href;

/** Runs a throwaway script in a child Deno with `env` added (and CI removed when asked). */
async function deno(
  args: string[],
  env: Record<string, string>,
  clearCi: boolean,
): Promise<{ code: number; output: string }> {
  const merged: Record<string, string> = { ...Deno.env.toObject(), NO_COLOR: "1", ...env };
  if (clearCi) delete merged["CI"];
  const output = await new Deno.Command(Deno.execPath(), {
    args,
    env: merged,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: output.code, output: decode(output.stdout) + decode(output.stderr) };
}

Deno.test("toolOnPath finds executables on PATH only", () => {
  assert(toolOnPath("sh"));
  assert(!toolOnPath("dip-no-such-tool-xyz"));
  assertEquals(missingTools(["sh", "dip-no-such-tool-xyz"]), ["dip-no-such-tool-xyz"]);
});

Deno.test("toolOnPath sees a tool that appears after a look-up that missed it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dip-tools-test-" });
  const path = Deno.env.get("PATH") ?? "";
  try {
    const tool = `${dir}/dip-late-tool`;
    Deno.env.set("PATH", `${dir}:${path}`);
    assert(!toolOnPath("dip-late-tool"));
    assert(!toolOnPath(tool));
    await Deno.writeTextFile(tool, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    // Installed after the first look-up (as the demo installs the registry): found now.
    assert(toolOnPath("dip-late-tool"));
    assert(toolOnPath(tool));
  } finally {
    Deno.env.set("PATH", path);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("integrationTest skips without the tool locally and fails under CI", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dip-tools-test-" });
  try {
    const file = `${dir}/needs_tool_test.ts`;
    await Deno.writeTextFile(
      file,
      `import { integrationTest } from "${helpers}tools.ts";\n` +
        `integrationTest("needs a tool", async () => {}, { tools: ["dip-no-such-tool-xyz"] });\n`,
    );
    const local = await deno(["test", "-A", "--no-check", "--no-config", file], {}, true);
    assertEquals(local.code, 0, local.output);
    assertStringIncludes(local.output, "1 ignored");

    const ci = await deno(["test", "-A", "--no-check", "--no-config", file], { CI: "true" }, false);
    assertEquals(ci.code, 1, ci.output);
    assertStringIncludes(ci.output, "Missing tools for an integration test: dip-no-such-tool-xyz");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("startRegistry reports the stderr of a registry that exits early", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dip-tools-test-" });
  try {
    // A fake docker-registry first on PATH that fails like a bad config does.
    await Deno.mkdir(`${dir}/bin`);
    await Deno.writeTextFile(
      `${dir}/bin/docker-registry`,
      "#!/bin/sh\necho 'configuration error: bad storage' >&2\nexit 1\n",
      { mode: 0o755 },
    );
    const script = `${dir}/start.ts`;
    await Deno.writeTextFile(
      script,
      `import { startRegistry } from "${helpers}registry.ts";\n` +
        `try { await startRegistry(); } catch (e) { console.log(String(e)); Deno.exit(3); }\n`,
    );
    const result = await deno(
      ["run", "-A", "--no-check", "--no-config", script],
      { PATH: `${dir}/bin:${Deno.env.get("PATH") ?? ""}` },
      false,
    );
    assertEquals(result.code, 3, result.output);
    assertStringIncludes(result.output, "Failed to start the test registry");
    assertStringIncludes(result.output, "exited with code 1");
    assertStringIncludes(result.output, "configuration error: bad storage");
    // Its temporary directory is gone.
    const leftovers = [...Deno.readDirSync(Deno.env.get("TMPDIR") ?? "/tmp")].filter((e) =>
      e.name.startsWith("dip-registry-") && result.output.includes(e.name)
    );
    assertEquals(leftovers, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { missingTools, TEST_TOOL_PACKAGES, toolOnPath } from "../helpers/tools.ts";

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

const installScript = new URL("../../scripts/install_test_tools.ts", import.meta.url).pathname;

/** The packages of the tools a PATH of only `bin` lacks: those named by name, not by path. */
function packagesOfNamedTools(): string[] {
  const named = Object.keys(TEST_TOOL_PACKAGES).filter((tool) => !tool.includes("/"));
  return [...new Set(named.map((tool) => TEST_TOOL_PACKAGES[tool]!))].sort();
}

Deno.test("install_test_tools: one apt-get install of every missing tool's package", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dip-tools-test-" });
  try {
    // A PATH holding none of the tools; the stand-in apt-get records its arguments and
    // "installs" every tool as an executable stub there.
    const bin = `${dir}/bin`;
    const log = `${dir}/apt.log`;
    await Deno.mkdir(bin);
    const named = Object.keys(TEST_TOOL_PACKAGES).filter((tool) => !tool.includes("/"));
    await Deno.writeTextFile(
      `${bin}/apt-get`,
      `#!/bin/sh\necho "$DEBIAN_FRONTEND $*" >> '${log}'\n` +
        `if [ "$1" = install ]; then for t in ${named.join(" ")}; do ` +
        `printf '#!/bin/sh\\n' > '${bin}'/$t; /bin/chmod +x '${bin}'/$t; done; fi\n`,
      { mode: 0o755 },
    );
    // Not root: through sudo -n, whose stand-in drops -n and runs the rest.
    await Deno.writeTextFile(`${bin}/sudo`, '#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n', {
      mode: 0o755,
    });
    // Without CI: the machine's Docker daemon may be down, which is not this test's business
    // (its line is left out below).
    const result = await deno(["run", "-A", installScript], { PATH: bin }, true);
    assertEquals(result.code, 0, result.output);
    assertEquals((await Deno.readTextFile(log)).trim().split("\n"), [
      "noninteractive update -qq",
      `noninteractive install -y -qq --no-install-recommends ${packagesOfNamedTools().join(" ")}`,
    ]);
    assertStringIncludes(result.output, `installed ${named.join(", ")}`);
    // Everything there now: a second run installs nothing.
    await Deno.remove(log);
    const again = await deno(["run", "-A", installScript], { PATH: bin }, true);
    assertEquals(again.code, 0, again.output);
    assertEquals(again.output.split("\n").filter((l) => l !== "" && !/Docker daemon/.test(l)), []);
    assert(!(await Deno.stat(log).then(() => true, () => false)), "apt-get ran again");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("install_test_tools without apt-get: says what to install; fails only under CI", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dip-tools-test-" });
  try {
    const local = await deno(["run", "-A", installScript], { PATH: dir }, true);
    assertEquals(local.code, 0, local.output);
    assertStringIncludes(local.output, "missing docker-registry, skopeo,");
    assertStringIncludes(
      local.output,
      `sudo apt-get install ${packagesOfNamedTools().join(" ")}); their tests are skipped\n`,
    );
    const ci = await deno(["run", "-A", installScript], { PATH: dir, CI: "true" }, false);
    assertEquals(ci.code, 1, ci.output);
    assertStringIncludes(ci.output, "their tests fail, as CI is set");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Tools that every Debian system has (Essential packages), which tests may run undeclared. */
const BASE_TOOLS = new Set([
  "sh",
  "bash",
  "cat",
  "chmod",
  "cp",
  "head",
  "mkfifo",
  "mknod",
  "mount",
  "umount",
]);

Deno.test("every tool a test runs or declares has a Debian package that the installers install", async () => {
  const root = new URL("../../", import.meta.url).pathname;
  const named = new Map<string, string>();
  const literals = (text: string) => [...text.matchAll(/"([^"\s]+)"/g)].map((m) => m[1]!);
  for await (const file of walk(`${root}tests`)) {
    const text = await Deno.readTextFile(file);
    const found = [
      // run() of helpers/command.ts (some files have a run() of their own, of the CLI).
      ...(/import \{[^}]*\brun\b[^}]*\} from "[./]*helpers\/command\.ts"/.test(text)
        ? [...text.matchAll(/\brun\(\s*"([^"]+)"/g)].map((m) => m[1]!)
        : []),
      ...[...text.matchAll(/\b(?:Deno\.Command|requireTool)\(\s*"([^"]+)"/g)].map((m) => m[1]!),
      // Declarations: `tools: [...]`, and constants of tool lists (`const TOOLS = [...]`).
      ...[
        ...text.matchAll(
          /(?:tools:|const [A-Z_]*(?:TOOLS|REGISTRY|HTPASSWD)[A-Z_]* =)\s*\[([^\]]*)\]/g,
        ),
      ]
        .flatMap((m) => literals(m[1]!)),
    ];
    for (const tool of found) if (!named.has(tool)) named.set(tool, file.slice(root.length));
  }
  const unknown = [...named].filter(([tool]) =>
    !(tool in TEST_TOOL_PACKAGES) && !BASE_TOOLS.has(tool) && !tool.startsWith("dip-")
  );
  assertEquals(unknown, [], "add these to TEST_TOOL_PACKAGES (tests/helpers/tools.ts)");
  // .ci/run installs the packages itself before Deno runs: every one of them.
  const ciRun = await Deno.readTextFile(`${root}.ci/run`);
  const notInCi = [...new Set(Object.values(TEST_TOOL_PACKAGES))].filter((p) =>
    !new RegExp(`[\\s\\\\]${p.replace(".", "\\.")}(?=[\\s\\\\])`).test(ciRun)
  );
  assertEquals(notInCi, [], ".ci/run does not install these");
});

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* walk(path);
    else if (entry.name.endsWith(".ts")) yield path;
  }
}

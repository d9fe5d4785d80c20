/**
 * The README's first command, `deno task demo`, on a machine without the registry: it installs
 * the package and pushes in the same run. apt-get and sudo are stand-ins on a PATH of their own
 * that holds no registry, so the demo's first look-up misses it; the stand-in apt-get "installs"
 * it by linking the real binary into that PATH.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { integrationTest } from "../helpers/tools.ts";

const demo = new URL("../../scripts/demo.ts", import.meta.url).pathname;

/** The real binary's path, from the test's own PATH. */
function which(name: string): string {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
    } catch {
      // not in this directory
    }
  }
  throw new Error(`${name} is not on PATH`);
}

integrationTest(
  "demo: installs a missing registry and pushes in one run",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "dip-demo-test-" });
    try {
      const bin = `${dir}/bin`;
      const log = `${dir}/apt.log`;
      await Deno.mkdir(bin);
      const registry = which("docker-registry");
      await Deno.writeTextFile(
        `${bin}/apt-get`,
        `#!/bin/sh\necho "$*" >> '${log}'\n` +
          `if [ "$1" = install ]; then /bin/ln -s '${registry}' '${bin}/docker-registry'; fi\n`,
        { mode: 0o755 },
      );
      await Deno.writeTextFile(`${bin}/sudo`, '#!/bin/sh\nexec "$@"\n', { mode: 0o755 });
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", demo],
        env: { PATH: bin, NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(output.stdout);
      const stderr = new TextDecoder().decode(output.stderr);
      assertEquals(output.code, 0, stderr);
      assertStringIncludes(stderr, "docker-registry is missing: installing the Debian package");
      assertEquals(
        (await Deno.readTextFile(log)).trim().split("\n"),
        ["update -qq", "install -y -qq --no-install-recommends docker-registry"],
      );
      assert(/\/demo\/hello:1\.0@sha256:[0-9a-f]{64}$/m.test(stdout), stdout);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { tools: ["docker-registry"] },
);

/**
 * The real credential system: files from disk, and `docker-credential-<name> get` run as a
 * process found on PATH. Helpers are bash scripts in a temporary directory; each lookup runs
 * in a `deno eval` subprocess whose PATH starts with that directory, so this process's own
 * environment is never changed.
 */
import type { HelperResult } from "../../src/credentials/docker_config.ts";
import { realCredentialSystem } from "../../src/credentials/system.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";

const SYSTEM_MODULE = new URL("../../src/credentials/system.ts", import.meta.url).href;

/** Bash helpers: each records its arguments and stdin into `<dir>/<name>.args|.stdin`. */
const HELPERS: Record<string, string> = {
  good: `printf '{"ServerURL":"%s","Username":"alice","Secret":"pw"}' "$input"`,
  empty: `echo "credentials not found in native keychain"; exit 1`,
  broken: `echo "gpg: decryption failed: No secret key" >&2; exit 3`,
  silent: `exit 4`,
};

async function withHelpers(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dip-cred-helpers-" });
  try {
    for (const [name, body] of Object.entries(HELPERS)) {
      const path = `${dir}/docker-credential-${name}`;
      await Deno.writeTextFile(
        path,
        `#!/usr/bin/env bash\nprintf '%s' "$*" > "${dir}/${name}.args"\ninput=$(cat)\n` +
          `printf '%s' "$input" > "${dir}/${name}.stdin"\n${body}\n`,
      );
      await Deno.chmod(path, 0o755);
    }
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs `runHelper(helper, serverUrl)` in a subprocess whose PATH is `dir` first. */
async function runHelperIn(dir: string, helper: string, serverUrl: string): Promise<HelperResult> {
  const code = `
    import { realCredentialSystem } from ${JSON.stringify(SYSTEM_MODULE)};
    const result = await realCredentialSystem(() => undefined)
      .runHelper(${JSON.stringify(helper)}, ${JSON.stringify(serverUrl)});
    Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(result)));
  `;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", code],
    env: { PATH: `${dir}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}` },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert(output.success, `deno eval failed:\n${stderr}`);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

Deno.test("readTextFile reads a file and answers undefined for a missing one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dip-cred-files-" });
  try {
    const system = realCredentialSystem((name) => (name === "HOME" ? dir : undefined));
    await Deno.writeTextFile(`${dir}/config.json`, '{"auths":{}}');
    assertEquals(system.env("HOME"), dir);
    assertEquals(await system.readTextFile(`${dir}/config.json`), '{"auths":{}}');
    assertEquals(await system.readTextFile(`${dir}/missing.json`), undefined);
    assertEquals(await system.readTextFile(`${dir}/no/such/dir/config.json`), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readTextFile fails, naming the path, on a file it cannot read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dip-cred-files-" });
  try {
    const system = realCredentialSystem(() => undefined);
    // A directory where the config should be: exists, but is not readable as text.
    await Deno.mkdir(`${dir}/config.json`);
    await assertRejects(
      () => system.readTextFile(`${dir}/config.json`),
      Error,
      `Cannot read docker config ${dir}/config.json`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runHelper runs docker-credential-<name> get with the server URL on stdin", async () => {
  await withHelpers(async (dir) => {
    const result = await runHelperIn(dir, "good", "https://index.docker.io/v1/");
    assertEquals(result, {
      ok: true,
      stdout: '{"ServerURL":"https://index.docker.io/v1/","Username":"alice","Secret":"pw"}',
    });
    assertEquals(await Deno.readTextFile(`${dir}/good.args`), "get");
    assertEquals(await Deno.readTextFile(`${dir}/good.stdin`), "https://index.docker.io/v1/");
    const other = await runHelperIn(dir, "good", "127.0.0.1:5000");
    assert(
      other.ok && other.stdout.includes('"ServerURL":"127.0.0.1:5000"'),
      JSON.stringify(other),
    );
  });
});

Deno.test("runHelper: a missing helper is a failure saying it is not on PATH", async () => {
  await withHelpers(async (dir) => {
    const result = await runHelperIn(dir, "nonexistent", "host:5000");
    assert(!result.ok, JSON.stringify(result));
    assertEquals(result.notFound, false);
    // The caller names the helper and where it is configured.
    assertEquals(result.message, "not on PATH");
  });
});

Deno.test("runHelper: 'credentials not found' is notFound", async () => {
  await withHelpers(async (dir) => {
    const result = await runHelperIn(dir, "empty", "host:5000");
    assertEquals(result, {
      ok: false,
      notFound: true,
      message: "credentials not found in native keychain",
    });
    assertEquals(await Deno.readTextFile(`${dir}/empty.stdin`), "host:5000");
  });
});

Deno.test("runHelper: other failures carry the helper's message or exit code", async () => {
  await withHelpers(async (dir) => {
    assertEquals(await runHelperIn(dir, "broken", "host:5000"), {
      ok: false,
      notFound: false,
      message: "gpg: decryption failed: No secret key",
    });
    assertEquals(await runHelperIn(dir, "silent", "host:5000"), {
      ok: false,
      notFound: false,
      message: "exit code 4",
    });
  });
});

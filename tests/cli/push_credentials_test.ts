/**
 * Credentials as a user meets them, through the CLI against the real registry (open, Basic
 * and token modes): a broken docker config (a Docker Desktop `credsStore` without its helper,
 * unparsable JSON) matters only when the registry asks for credentials; `--verbose` logs the
 * token service's requests, redacted; `--password-stdin` refuses an empty password and, at a
 * terminal, asks without echoing; and a password in the URL serves the same user named again
 * in the environment.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { type CliResult, lines, runCli } from "../helpers/cli.ts";
import { writeDockerSaveLegacy } from "../helpers/image_fixtures.ts";
import { PTY_TOOL, startCliInPty } from "../helpers/pty.ts";
import {
  integrationTest,
  startRegistry,
  type StartRegistryOptions,
  type TestRegistry,
} from "../helpers/registry.ts";
import { startTokenServer, type TokenServerOptions } from "../helpers/token_server.ts";

const USER = "alice";
const PASSWORD = "pw-Kd3.alice-Secret";
const ALICE = { username: USER, password: PASSWORD };
const REFRESH_TOKEN = `rt-${crypto.randomUUID()}`;
/** The registry helper's own account in token mode, kept apart from the CLI's. */
const HELPER = { username: "helper", password: "helper-pw" };
/** The config Docker Desktop writes, copied to a machine that has no docker-credential-desktop. */
const DESKTOP_CONFIG = { auths: {}, credsStore: "desktop" };
const REGISTRY = ["docker-registry"];
const BASIC_TOOLS = [...REGISTRY, "htpasswd"];
const TOKEN_TOOLS = [...REGISTRY, "openssl"];

/** A temporary directory with a small archive and docker configs; remove with `await using`. */
interface Workspace extends AsyncDisposable {
  dir: string;
  archive: string;
  /** Writes `<dir>/<name>/config.json` (a string as is) and returns the DOCKER_CONFIG for it. */
  dockerConfig(name: string, config: unknown): Promise<string>;
}

async function workspace(): Promise<Workspace> {
  const dir = await Deno.makeTempDir({ prefix: "dip-push-creds-" });
  await writeDockerSaveLegacy(`${dir}/app.tar`, [{ name: "app:1", layerSizes: [1500, 2500] }]);
  return {
    dir,
    archive: `${dir}/app.tar`,
    async dockerConfig(name, config) {
      await Deno.mkdir(`${dir}/${name}`, { recursive: true });
      const text = typeof config === "string" ? config : JSON.stringify(config);
      await Deno.writeTextFile(`${dir}/${name}/config.json`, text);
      return `${dir}/${name}`;
    },
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** Pushes the workspace's archive to `<registry>/<repo>:1`; DOCKER_CONFIG is empty unless set. */
async function push(
  ws: Workspace,
  registry: TestRegistry,
  repo: string,
  args: string[] = [],
  options: { env?: Record<string, string>; stdin?: string; target?: string } = {},
): Promise<CliResult> {
  const target = options.target ?? `${registry.url}/${repo}:1`;
  return await runCli(["-r", target, "-f", ws.archive, ...args], {
    env: { DOCKER_CONFIG: `${ws.dir}/no-docker-config`, ...options.env },
    ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
    deadlineMs: 60_000,
  });
}

function assertMatch(text: string, pattern: RegExp, message?: string): void {
  assert(pattern.test(text), `${JSON.stringify(text)} does not match ${pattern}\n${message ?? ""}`);
}

function context(result: CliResult): string {
  return `exit ${result.code}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;
}

/** Exit 0 and the one result line for `repo:1`, which the registry now serves. */
async function assertPushed(registry: TestRegistry, repo: string, result: CliResult) {
  assertEquals(result.code, 0, context(result));
  assertEquals(lines(result.stdout).length, 1, context(result));
  assertStringIncludes(result.stdout, `${registry.host}/${repo}:1@sha256:`);
  assert(await registry.manifestExists(repo, "1"), `${repo}:1 is not in the registry`);
}

/** The `Error:` line of a failed run (exactly one). */
function errorLine(result: CliResult): string {
  const errors = lines(result.stderr).filter((line) => line.startsWith("Error: "));
  assertEquals(errors.length, 1, context(result));
  return errors[0]!;
}

function warnings(result: CliResult): string[] {
  return lines(result.stderr).filter((line) => line.startsWith("Warning: "));
}

/** A token server (with `options`) and a registry trusting it. */
async function tokenRegistry(options: Partial<TokenServerOptions> = {}) {
  const server = await startTokenServer({
    ...options,
    users: { [USER]: PASSWORD, [HELPER.username]: HELPER.password },
  });
  try {
    const registry = await startRegistry({
      token: {
        realm: server.realm,
        service: server.service,
        issuer: server.issuer,
        rootCertBundle: server.certPath,
        credentials: HELPER,
      },
    });
    return {
      server,
      registry,
      async [Symbol.asyncDispose]() {
        await registry.stop();
        await server.close();
      },
    };
  } catch (error) {
    await server.close();
    throw error;
  }
}

function basicRegistry(): Promise<TestRegistry> {
  const options: StartRegistryOptions = { htpasswd: ALICE };
  return startRegistry(options);
}

// ---------------------------------------------------------------------------------------------
// A broken docker config (issue 13, item 3)

integrationTest("a broken docker config does not matter to a registry open to all", async () => {
  await using ws = await workspace();
  await using registry = await startRegistry();
  const broken: [string, unknown][] = [
    ["Docker Desktop's credsStore without its helper", DESKTOP_CONFIG],
    ["unparsable JSON", '{"auths": {"x": {"auth": "c2VjcmV0"}'],
  ];
  for (const [i, [what, config]] of broken.entries()) {
    const result = await push(ws, registry, `open/app${i}`, [], {
      env: { DOCKER_CONFIG: await ws.dockerConfig(`broken-${i}`, config) },
    });
    await assertPushed(registry, `open/app${i}`, result);
    assertEquals(warnings(result), [], `${what}\n${context(result)}`);
  }
}, { tools: REGISTRY });

integrationTest(
  "a broken docker config: a token service granting anonymous access gets one warning",
  async () => {
    await using ws = await workspace();
    await using s = await tokenRegistry({ anonymousPull: true });
    const config = await ws.dockerConfig("desktop", DESKTOP_CONFIG);

    // A dry run needs pull access only, which the token service grants anyone.
    const dryRun = await push(ws, s.registry, "anon/app", ["--dry-run"], {
      env: { DOCKER_CONFIG: config },
    });
    assertEquals(dryRun.code, 0, context(dryRun));
    const why = `Credential helper docker-credential-desktop (the "credsStore" of ` +
      `${config}/config.json) failed: not on PATH`;
    assertEquals(warnings(dryRun), [
      `Warning: Cannot read credentials for ${s.registry.host} (${why}); ` +
      "trying without credentials",
    ]);
    assert(s.server.requests.some((r) => !r.authorized && r.status === 200));

    // A push needs more than anonymous access: the refusal says why there were no credentials.
    const pushed = await push(ws, s.registry, "anon/app", [], { env: { DOCKER_CONFIG: config } });
    assertEquals(pushed.code, 1, context(pushed));
    assertEquals(warnings(pushed).length, 1, context(pushed));
    const error = errorLine(pushed);
    assertStringIncludes(error, `Authentication failed for anonymous access at ${s.registry.host}`);
    assertStringIncludes(error, `credentials could not be read (${why})`);
    assertEquals(await s.registry.listTags("anon/app"), []);
  },
  { tools: TOKEN_TOOLS },
);

integrationTest(
  "a broken docker config: a Basic registry's refusal says why, in one line",
  async () => {
    await using ws = await workspace();
    await using registry = await basicRegistry();
    const config = await ws.dockerConfig("garbled", '{"auths": {');

    const result = await push(ws, registry, "basic/app", [], { env: { DOCKER_CONFIG: config } });

    assertEquals(result.code, 1, context(result));
    assertEquals(warnings(result), [], context(result));
    assertMatch(
      errorLine(result),
      new RegExp(
        `^Error: Authentication failed for anonymous access at ${registry.host}: credentials ` +
          `could not be read \\(Docker config ${config}/config\\.json is not valid JSON`,
      ),
    );
  },
  { tools: BASIC_TOOLS },
);

// ---------------------------------------------------------------------------------------------
// --verbose and the token service (issue 13, item 7)

integrationTest(
  "--verbose logs the token service's requests, with no secret in them",
  async () => {
    await using ws = await workspace();
    await using s = await tokenRegistry({ refreshTokens: { [REFRESH_TOKEN]: USER } });
    const realm = new URL(s.server.realm);

    const withStdin = await push(ws, s.registry, "verbose/stdin", [
      "--verbose",
      "-u",
      USER,
      "--password-stdin",
    ], { stdin: PASSWORD });
    await assertPushed(s.registry, "verbose/stdin", withStdin);
    const gets = lines(withStdin.stderr).filter((line) =>
      line.startsWith(`HTTP GET ${realm.origin}${realm.pathname}?`)
    );
    assert(gets.length > 0, `no token request logged\n${context(withStdin)}`);
    for (const line of gets) {
      assertMatch(line, / -> 200 \(\d+ ms\)$/);
      assertStringIncludes(line, `service=${s.server.service}`);
      assertStringIncludes(line, "scope=repository:verbose%2Fstdin:push%2Cpull");
    }

    // An identity token goes in a POST body, which is never logged.
    const config = await ws.dockerConfig("identity", {
      auths: { [s.registry.host]: { identitytoken: REFRESH_TOKEN } },
    });
    const identity = await push(ws, s.registry, "verbose/identity", ["--verbose"], {
      env: { DOCKER_CONFIG: config },
    });
    await assertPushed(s.registry, "verbose/identity", identity);
    const posts = lines(identity.stderr).filter((line) =>
      line.startsWith(`HTTP POST ${realm.origin}${realm.pathname} -> 200 (`)
    );
    assert(posts.length > 0, `no token POST logged\n${context(identity)}`);

    const secrets = [
      PASSWORD,
      btoa(`${USER}:${PASSWORD}`),
      REFRESH_TOKEN,
      ...s.server.issued.map((token) => token.slice(token.lastIndexOf(".") + 1)),
    ];
    for (const result of [withStdin, identity]) {
      for (const secret of secrets) {
        assert(!`${result.stdout}${result.stderr}`.includes(secret), "a secret in the output");
      }
    }
  },
  { tools: TOKEN_TOOLS },
);

// ---------------------------------------------------------------------------------------------
// --password-stdin (issue 13, item 8)

integrationTest("--password-stdin with an empty standard input is a usage error", async () => {
  await using ws = await workspace();
  await using registry = await basicRegistry();
  // undefined: /dev/null.
  for (const stdin of [undefined, "", "\n"]) {
    const result = await push(ws, registry, "empty/app", ["-u", USER, "--password-stdin"], {
      ...(stdin === undefined ? {} : { stdin }),
    });
    const what = `stdin ${JSON.stringify(stdin)}\n${context(result)}`;
    assertEquals(result.code, 2, what);
    assertEquals(result.stdout, "", what);
    assertEquals(
      lines(result.stderr)[0],
      "Error: --password-stdin read an empty password from standard input",
      what,
    );
    assertMatch(lines(result.stderr)[1] ?? "", /^Hint: .*--password-stdin < token\.txt/, what);
  }
  const asked = (await registry.requests()).filter((r) => r.userAgent.startsWith("docker-image"));
  assertEquals(asked, [], "the registry was asked with no password");
}, { tools: BASIC_TOOLS });

integrationTest(
  "--password-stdin at a terminal asks for the password without echoing it",
  async () => {
    await using ws = await workspace();
    await using registry = await basicRegistry();
    const args = (repo: string) => [
      "-r",
      `${registry.url}/${repo}:1`,
      "-f",
      ws.archive,
      "-u",
      USER,
      "--password-stdin",
    ];
    const env = { DOCKER_CONFIG: `${ws.dir}/no-docker-config` };

    {
      await using pty = await startCliInPty(args("tty/app"), { env, columns: 120 });
      await pty.waitForScreen((rows) => rows.some((row) => row.startsWith("Password:")), "prompt");
      // A typo corrected with Backspace, then Enter.
      await pty.sendKeys("-l", `${PASSWORD}x`);
      await pty.sendKeys("BSpace", "Enter");
      const code = await pty.exitCode(60_000);
      const screen = (await pty.screen()).join("\n");
      assertEquals(code, 0, screen);
      assert(!screen.includes(PASSWORD.slice(0, 6)), `the password was echoed:\n${screen}`);
      assert(await registry.manifestExists("tty/app", "1"), screen);
    }
    {
      // Ctrl-C at the prompt interrupts (raw mode gets it as a key, not as a signal).
      await using pty = await startCliInPty(args("tty/interrupted"), { env, columns: 120 });
      await pty.waitForScreen((rows) => rows.some((row) => row.startsWith("Password:")), "prompt");
      await pty.sendKeys("-l", "half-typed");
      await pty.sendKeys("C-c");
      const code = await pty.exitCode(30_000);
      const screen = (await pty.screen()).join("\n");
      assertEquals(code, 130, screen);
      assert(!screen.includes("half-typed"), screen);
    }
    assertEquals(await registry.listTags("tty/interrupted"), []);
  },
  { tools: [...BASIC_TOOLS, PTY_TOOL] },
);

// ---------------------------------------------------------------------------------------------
// Credentials in the URL (issue 13, item 11)

integrationTest(
  "a password in the URL serves the same user named in DOCKER_PUSHER_USERNAME",
  async () => {
    await using ws = await workspace();
    await using registry = await basicRegistry();
    const target = `http://${USER}:${encodeURIComponent(PASSWORD)}@${registry.host}/url/app:1`;

    const same = await push(ws, registry, "url/app", [], {
      target,
      env: { DOCKER_PUSHER_USERNAME: USER },
    });
    await assertPushed(registry, "url/app", same);
    assert(!same.stderr.includes(PASSWORD), context(same));

    // Another user's name never gets the URL's password.
    const other = await push(ws, registry, "url/other", [], {
      target: target.replace("url/app", "url/other"),
      env: { DOCKER_PUSHER_USERNAME: "mallory" },
    });
    assertEquals(other.code, 2, context(other));
    assertStringIncludes(errorLine(other), 'No password for user "mallory"');
  },
  { tools: BASIC_TOOLS },
);

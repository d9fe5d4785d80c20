/**
 * The CLI against the real registry in token mode (`auth: token:` trusting our token server),
 * as Docker Hub, Harbor, GitLab and Quay run it: credentials from flags, stdin, the
 * environment and docker's `config.json` (plain auths, identity tokens, credential helpers);
 * tokens that expire during a 1 GiB chunked upload; refusals that are one clear line and do
 * not loop; and no password, token or refresh token in any output.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { type CliResult, lines, runCli } from "../helpers/cli.ts";
import { run } from "../helpers/command.ts";
import { makeBigLayerArchive, writeDockerSaveLegacy } from "../helpers/image_fixtures.ts";
import { integrationTest, startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { pullBack } from "../helpers/skopeo.ts";
import {
  startTokenServer,
  type TokenRequestRecord,
  type TokenServer,
  type TokenServerOptions,
} from "../helpers/token_server.ts";

const USER = "alice";
const PASSWORD = "pw-Qx7.alice-secret";
const WRONG_PASSWORD = "wrong-Zz9.not-alices";
const ALICE = { username: USER, password: PASSWORD };
/** docker config's `auth`: base64 of `user:password`. */
const BASIC = btoa(`${USER}:${PASSWORD}`);
const WRONG_BASIC = btoa(`${USER}:${WRONG_PASSWORD}`);
const REFRESH_TOKEN = `rt-${crypto.randomUUID()}`;
/** The account the registry helper's own queries use, so they are told apart from the CLI's. */
const HELPER = { username: "helper", password: "helper-pw" };
const CREDENTIAL_HELPER = "dip-test";
const TOOLS = ["docker-registry", "openssl"];
const GiB = 1024 ** 3;

/**
 * Deno's cache directory. The tests give the CLI a HOME of their own; without DENO_DIR, Deno
 * would look for its cache (the npm packages) under that HOME and try to download them.
 */
let denoDir: string | undefined = Deno.env.get("DENO_DIR");

/** The environment every CLI run here gets: `HOME` (no real docker config), `DENO_DIR`. */
async function baseEnv(home: string): Promise<Record<string, string>> {
  if (denoDir === undefined) {
    const { stdout } = await run(Deno.execPath(), ["info", "--json"]);
    denoDir = (JSON.parse(stdout) as { denoDir: string }).denoDir;
  }
  return { HOME: home, DENO_DIR: denoDir };
}

// Every output of the CLI in this file and every token issued, for the leak check at the end.
const outputs: { what: string; text: string }[] = [];
const issuedLists: string[][] = [];

/** A token server, a registry trusting it, a small archive and a clean HOME. */
interface Setup extends AsyncDisposable {
  server: TokenServer;
  registry: TestRegistry;
  dir: string;
  /** An empty directory used as HOME, so no real `~/.docker/config.json` is read. */
  home: string;
  archive: string;
  configDigest: string;
}

async function setup(options: Partial<TokenServerOptions> = {}): Promise<Setup> {
  const dir = await Deno.makeTempDir({ prefix: "dip-auth-token-" });
  const cleanups: (() => Promise<void>)[] = [() => Deno.remove(dir, { recursive: true })];
  const dispose = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  };
  try {
    const server = await startTokenServer({
      ...options,
      users: { [USER]: PASSWORD, [HELPER.username]: HELPER.password, ...options.users },
    });
    cleanups.push(() => server.close());
    issuedLists.push(server.issued);
    const registry = await startRegistry({
      token: {
        realm: server.realm,
        service: server.service,
        issuer: server.issuer,
        rootCertBundle: server.certPath,
        credentials: HELPER,
      },
    });
    cleanups.push(() => registry.stop());
    const home = `${dir}/home`;
    await Deno.mkdir(home);
    const archive = await writeDockerSaveLegacy(`${dir}/app.tar`, [
      { name: "app:1", layerSizes: [1000, 3000] },
    ]);
    return {
      server,
      registry,
      dir,
      home,
      archive: archive.path,
      configDigest: archive.images[0]!.configDigest,
      [Symbol.asyncDispose]: dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}

interface Run {
  result: CliResult;
  /** What the token server recorded while the CLI ran. */
  tokenRequests: TokenRequestRecord[];
}

interface PushOptions {
  env?: Record<string, string>;
  stdin?: string;
  /** Label for failure messages and the leak check. */
  what: string;
}

/** Runs the CLI pushing the setup's archive to `repo:1` (plain HTTP), plus `args`. */
async function push(s: Setup, repo: string, args: string[], options: PushOptions): Promise<Run> {
  const before = s.server.requests.length;
  const result = await runCli(
    ["-r", `http://${s.registry.host}/${repo}:1`, "-f", s.archive, ...args],
    {
      env: { ...await baseEnv(s.home), ...options.env },
      ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
    },
  );
  outputs.push({ what: `${options.what} (stdout)`, text: result.stdout });
  outputs.push({ what: `${options.what} (stderr)`, text: result.stderr });
  return { result, tokenRequests: s.server.requests.slice(before) };
}

/**
 * A successful push of `repo:1`: exit 0, stdout names the manifest the registry serves, which
 * references the archive's config; alice asked for `push,pull` (push first) on `repo`.
 */
async function assertPushed(s: Setup, repo: string, pushed: Run): Promise<void> {
  const { result, tokenRequests } = pushed;
  const context = `exit ${result.code}\n--- stderr ---\n${result.stderr}`;
  assertEquals(result.code, 0, context);
  const prefix = `${s.registry.host}/${repo}:1@`;
  assertEquals(lines(result.stdout).length, 1, context);
  assert(result.stdout.startsWith(prefix), `stdout ${JSON.stringify(result.stdout)}`);
  const served = await s.registry.fetchManifest(repo, "1");
  assertEquals(result.stdout.trim(), `${prefix}${served.digest}`);
  assertEquals((served.json.config as { digest: string }).digest, s.configDigest);

  assert(tokenRequests.length > 0, "the CLI never asked the token server");
  assert(tokenRequests.every((r) => r.status === 200), JSON.stringify(tokenRequests));
  assert(tokenRequests.every((r) => r.account === USER), JSON.stringify(tokenRequests));
  assertScopes(tokenRequests, repo);
}

/** Every token request asked for `repository:<repo>:push,pull`, push listed first. */
function assertScopes(tokenRequests: TokenRequestRecord[], repo: string): void {
  for (const request of tokenRequests) {
    assert(
      request.scopes.includes(`repository:${repo}:push,pull`),
      `scopes ${JSON.stringify(request.scopes)} lack repository:${repo}:push,pull`,
    );
    assert(
      !request.scopes.includes(`repository:${repo}:pull,push`),
      `pull listed first: ${JSON.stringify(request.scopes)}`,
    );
  }
}

/**
 * A clean refusal: exit 1, nothing on stdout, exactly one `Error:` line (perhaps a `Hint:`
 * after it) containing every word of `says`; no stack trace.
 */
function assertRefused(result: CliResult, says: string[]): string {
  const context = `exit ${result.code}\n--- stderr ---\n${result.stderr}`;
  assertEquals(result.code, 1, context);
  assertEquals(result.stdout, "", context);
  assert(!/^\s+at /m.test(result.stderr) && !/uncaught/i.test(result.stderr), context);
  const all = lines(result.stderr);
  const errors = all.filter((line) => line.startsWith("Error: "));
  assertEquals(errors.length, 1, context);
  const at = all.indexOf(errors[0]!);
  assert(all.slice(at + 1).every((line) => line.startsWith("Hint: ")), context);
  assert(all.length - at <= 2, context);
  for (const word of says) assertStringIncludes(errors[0]!, word, context);
  return errors[0]!;
}

/** Nothing was pushed to `repo`: no tag, no manifest PUT. */
async function assertNothingPushed(s: Setup, repo: string): Promise<void> {
  assertEquals(await s.registry.listTags(repo), []);
  assertEquals(await s.registry.manifestExists(repo, "1"), false);
  const puts = (await s.registry.requests()).filter((r) =>
    r.method === "PUT" && r.path.startsWith(`/v2/${repo}/manifests/`)
  );
  assertEquals(puts, []);
}

/** Writes `<dir>/config.json` and returns `dir`. */
async function dockerConfig(dir: string, config: unknown): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
  return dir;
}

/**
 * Writes `docker-credential-dip-test` into `<dir>/bin`: for `get`, it logs the server URL it
 * reads from stdin (one line per call) and prints alice's credentials. Returns the PATH to use
 * and the log's path.
 */
async function credentialHelper(dir: string): Promise<{ path: string; log: string }> {
  const bin = `${dir}/bin`;
  const log = `${dir}/credential-helper.log`;
  await Deno.mkdir(bin, { recursive: true });
  const script = `${bin}/docker-credential-${CREDENTIAL_HELPER}`;
  await Deno.writeTextFile(
    script,
    [
      "#!/usr/bin/env bash",
      "set -eu",
      'input="$(cat)"',
      `printf '%s\\n' "$input" >> '${log}'`,
      'if [ "\${1:-}" = get ]; then',
      `  printf '{"ServerURL":"%s","Username":"${USER}","Secret":"${PASSWORD}"}\\n' "$input"`,
      "else",
      "  echo 'unsupported' >&2",
      "  exit 1",
      "fi",
      "",
    ].join("\n"),
  );
  await Deno.chmod(script, 0o755);
  return { path: `${bin}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`, log };
}

// ---------------------------------------------------------------------------------------------
// Token refresh during a long upload

integrationTest(
  "token auth: a 1 GiB chunked push outlives 2-second tokens by refreshing them",
  async () => {
    await using s = await setup({ lifetimeSeconds: 2 });
    const big = await Deno.makeTempDir({ prefix: "dip-auth-token-big-" });
    try {
      const archive = await makeBigLayerArchive(`${big}/big.tar`, GiB, "docker-legacy");
      const image = archive.images[0]!;
      const before = s.server.requests.length;
      const issuedBefore = s.server.issued.length;
      const result = await runCli([
        "-r",
        `http://${s.registry.host}/big/app:1`,
        "-f",
        archive.path,
        "--large-layer-threshold",
        "1",
        "--chunk-size",
        "32MiB",
        "-u",
        USER,
        "--password-stdin",
      ], { env: await baseEnv(s.home), stdin: PASSWORD });
      outputs.push({ what: "1 GiB push (stdout)", text: result.stdout });
      outputs.push({ what: "1 GiB push (stderr)", text: result.stderr });
      const tokenRequests = s.server.requests.slice(before);
      const issuedDuringPush = s.server.issued.length - issuedBefore;
      // The archive is no longer needed: free the GiB before pulling another one back.
      await Deno.remove(`${big}/big.tar`);

      assertEquals(result.code, 0, result.stderr);
      assert(
        issuedDuringPush > 1,
        `tokens live 2 s, yet the push used ${issuedDuringPush} token(s)`,
      );
      assert(tokenRequests.every((r) => r.account === USER && r.status === 200));
      assertScopes(tokenRequests, "big/app");
      // Chunked, as asked: the layer went up in many PATCHes.
      const patches = (await s.registry.requests()).filter((r) =>
        r.method === "PATCH" && r.path.startsWith("/v2/big/app/blobs/uploads/")
      );
      assert(patches.length >= GiB / (32 * 1024 ** 2), `only ${patches.length} PATCHes`);

      const pulled = await pullBack(s.registry, "big/app", "1", { creds: ALICE });
      assertEquals(result.stdout.trim(), `${s.registry.host}/big/app:1@${pulled.manifestDigest}`);
      assertEquals(pulled.configDigest, image.configDigest);
      assertEquals(pulled.layerDiffIds, image.layerDiffIds);
    } finally {
      await Deno.remove(big, { recursive: true });
    }
  },
  { tools: [...TOOLS, "skopeo"] },
);

// ---------------------------------------------------------------------------------------------
// Credentials from flags and the environment

integrationTest("token auth: -u/-p, --password-stdin and environment variables", async () => {
  await using s = await setup();
  await assertPushed(
    s,
    "flags/app",
    await push(s, "flags/app", ["-u", USER, "-p", PASSWORD], { what: "-u/-p" }),
  );
  await assertPushed(
    s,
    "stdin/app",
    await push(s, "stdin/app", ["-u", USER, "--password-stdin"], {
      stdin: PASSWORD,
      what: "--password-stdin",
    }),
  );
  await assertPushed(
    s,
    "env/app",
    await push(s, "env/app", [], {
      env: { DOCKER_PUSHER_USERNAME: USER, DOCKER_PUSHER_PASSWORD: PASSWORD },
      what: "DOCKER_PUSHER_USERNAME/_PASSWORD",
    }),
  );
}, { tools: TOOLS });

integrationTest("token auth: a server answering only access_token works", async () => {
  await using s = await setup({ accessTokenOnly: true });
  await assertPushed(
    s,
    "oauth/app",
    await push(s, "oauth/app", ["-u", USER, "--password-stdin"], {
      stdin: PASSWORD,
      what: "accessTokenOnly",
    }),
  );
}, { tools: TOOLS });

// ---------------------------------------------------------------------------------------------
// Refusals

integrationTest("token auth: an anonymous push is refused once, naming the registry", async () => {
  await using s = await setup();
  const { result, tokenRequests } = await push(s, "anon/app", [], { what: "anonymous push" });
  assertRefused(result, [s.registry.host]);
  assert(
    tokenRequests.length <= 4,
    `${tokenRequests.length} token requests for one refused push (a retry loop, or a refresh ` +
      `per concurrent upload?); scopes: ${JSON.stringify(tokenRequests.map((r) => r.scopes))}`,
  );
  assert(tokenRequests.every((r) => r.account === undefined));
  await assertNothingPushed(s, "anon/app");
}, { tools: TOOLS });

integrationTest(
  "token auth: a wrong password is refused once, naming registry and user",
  async () => {
    await using s = await setup();
    const { result, tokenRequests } = await push(s, "wrong/app", ["-u", USER, "--password-stdin"], {
      stdin: WRONG_PASSWORD,
      what: "wrong password",
    });
    assertRefused(result, [s.registry.host, USER]);
    assert(tokenRequests.length > 0, "the CLI never asked the token server");
    assert(tokenRequests.length <= 4, `${tokenRequests.length} token requests: a retry loop?`);
    assert(tokenRequests.every((r) => r.status === 401));
    assert(!result.stderr.includes(WRONG_PASSWORD) && !result.stdout.includes(WRONG_PASSWORD));
    await assertNothingPushed(s, "wrong/app");
  },
  { tools: TOOLS },
);

// ---------------------------------------------------------------------------------------------
// Credentials from docker's config.json

integrationTest("docker config: auths with base64 auth, and with username/password", async () => {
  await using s = await setup();
  const byHost = await dockerConfig(`${s.dir}/config-auth`, {
    auths: { [s.registry.host]: { auth: BASIC } },
  });
  await assertPushed(
    s,
    "config/auth",
    await push(s, "config/auth", [], {
      env: { DOCKER_CONFIG: byHost },
      what: "config auths.auth",
    }),
  );

  const byUrl = await dockerConfig(`${s.dir}/config-url`, {
    auths: { [`http://${s.registry.host}`]: { username: USER, password: PASSWORD } },
  });
  await assertPushed(
    s,
    "config/url",
    await push(s, "config/url", [], {
      env: { DOCKER_CONFIG: byUrl },
      what: "config auths username/password",
    }),
  );
}, { tools: TOOLS });

integrationTest(
  "docker config: an identitytoken is a refresh token POSTed to the realm",
  async () => {
    await using s = await setup({ refreshTokens: { [REFRESH_TOKEN]: USER } });
    const config = await dockerConfig(`${s.dir}/config`, {
      auths: { [s.registry.host]: { identitytoken: REFRESH_TOKEN } },
    });
    const run = await push(s, "config/identity", [], {
      env: { DOCKER_CONFIG: config },
      what: "config identitytoken",
    });
    await assertPushed(s, "config/identity", run);
    // The token server accepts a POST only with grant_type=refresh_token and a known token.
    assert(
      run.tokenRequests.some((r) => r.method === "POST"),
      `no POST to the realm: ${JSON.stringify(run.tokenRequests)}`,
    );
  },
  { tools: TOOLS },
);

integrationTest(
  "docker config: credHelpers and credsStore run docker-credential-<name> get",
  async () => {
    await using s = await setup();
    const helper = await credentialHelper(s.dir);

    const perHost = await dockerConfig(`${s.dir}/config-helpers`, {
      credHelpers: { [s.registry.host]: CREDENTIAL_HELPER },
    });
    await assertPushed(
      s,
      "config/helper",
      await push(s, "config/helper", [], {
        env: { DOCKER_CONFIG: perHost, PATH: helper.path },
        what: "config credHelpers",
      }),
    );
    const asked = lines(await Deno.readTextFile(helper.log));
    assert(asked.length > 0);
    assertEquals(new Set(asked), new Set([s.registry.host]), "server URLs the helper was asked");
    await Deno.remove(helper.log);

    const store = await dockerConfig(`${s.dir}/config-store`, { credsStore: CREDENTIAL_HELPER });
    await assertPushed(
      s,
      "config/store",
      await push(s, "config/store", [], {
        env: { DOCKER_CONFIG: store, PATH: helper.path },
        what: "config credsStore",
      }),
    );
    const storeAsked = lines(await Deno.readTextFile(helper.log).catch(() => ""));
    assert(storeAsked.length > 0, "credsStore helper never ran");
    assertEquals(new Set(storeAsked), new Set([s.registry.host]));
  },
  { tools: TOOLS },
);

integrationTest(
  "docker config: flags beat it; without DOCKER_CONFIG, ~/.docker is read",
  async () => {
    await using s = await setup();
    const wrong = await dockerConfig(`${s.dir}/config-wrong`, {
      auths: { [s.registry.host]: { auth: WRONG_BASIC } },
    });
    await assertPushed(
      s,
      "config/flags",
      await push(s, "config/flags", ["-u", USER, "--password-stdin"], {
        env: { DOCKER_CONFIG: wrong },
        stdin: PASSWORD,
        what: "flags over config",
      }),
    );

    const home = `${s.dir}/home-with-config`;
    await dockerConfig(`${home}/.docker`, { auths: { [s.registry.host]: { auth: BASIC } } });
    await assertPushed(
      s,
      "config/home",
      await push(s, "config/home", [], { env: { HOME: home }, what: "HOME/.docker/config.json" }),
    );
  },
  { tools: TOOLS },
);

// ---------------------------------------------------------------------------------------------
// No secrets in any output (keep this test last: it checks what the others collected too)

integrationTest(
  "token auth: no password, refresh token or token appears in any output",
  async () => {
    await using s = await setup({ refreshTokens: { [REFRESH_TOKEN]: USER } });
    const verbose = await push(s, "leak/verbose", ["--verbose", "-u", USER, "--password-stdin"], {
      stdin: PASSWORD,
      what: "--verbose push",
    });
    await assertPushed(s, "leak/verbose", verbose);
    assert(lines(verbose.result.stderr).length > 3, "--verbose logged no requests");
    const identity = await dockerConfig(`${s.dir}/config-identity`, {
      auths: { [s.registry.host]: { identitytoken: REFRESH_TOKEN } },
    });
    await push(s, "leak/identity", ["--verbose"], {
      env: { DOCKER_CONFIG: identity },
      what: "--verbose push with an identitytoken",
    });
    const failed = await push(s, "leak/failed", ["--verbose", "-u", USER, "--password-stdin"], {
      stdin: WRONG_PASSWORD,
      what: "--verbose push with a wrong password",
    });
    assertEquals(failed.result.code, 1, failed.result.stderr);

    const tokens = issuedLists.flat();
    assert(tokens.length > 0);
    const secrets = [
      ["the password", PASSWORD],
      ["a wrong password", WRONG_PASSWORD],
      ["base64(user:password)", BASIC],
      ["base64(user:wrong password)", WRONG_BASIC],
      ["the refresh token", REFRESH_TOKEN],
      ...tokens.flatMap((token) => [
        ["an issued token", token],
        // A token's signature alone is as good as a leak (and survives truncation of the rest).
        ["an issued token's signature", token.slice(token.lastIndexOf(".") + 1)],
      ]),
    ] as const;
    const leaks = outputs.flatMap(({ what, text }) =>
      secrets.filter(([, secret]) => text.includes(secret)).map(([name]) => `${name} in ${what}`)
    );
    assertEquals([...new Set(leaks)], []);
  },
  { tools: TOOLS },
);

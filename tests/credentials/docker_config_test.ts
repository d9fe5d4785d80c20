/**
 * Docker's credential store as `dockerConfigCredentials` reads it, against an in-memory
 * system: config files, environment and credential helpers that answer from a script and
 * record how they were called.
 */
import {
  configHost,
  CredentialStoreError,
  type CredentialSystem,
  DOCKER_HUB_CONFIG_KEY,
  dockerConfigCredentials,
  type HelperResult,
} from "../../src/credentials/docker_config.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../helpers/assert.ts";

const HOME_CONFIG = "/home/u/.docker/config.json";

interface Fake {
  system: CredentialSystem;
  reads: string[];
  helperCalls: { helper: string; serverUrl: string }[];
}

/** A system with `config` at ~/.docker/config.json (a string is written as is). */
function fake(
  config: unknown,
  options: { env?: Record<string, string>; helpers?: Record<string, HelperResult> } = {},
): Fake {
  const env: Record<string, string> = { HOME: "/home/u", ...options.env };
  const files = new Map<string, string>();
  if (config !== undefined) {
    const path = env["DOCKER_CONFIG"] ? `${env["DOCKER_CONFIG"]}/config.json` : HOME_CONFIG;
    files.set(path, typeof config === "string" ? config : JSON.stringify(config));
  }
  const reads: string[] = [];
  const helperCalls: Fake["helperCalls"] = [];
  const system: CredentialSystem = {
    env: (name) => env[name],
    readTextFile: (path) => {
      reads.push(path);
      return Promise.resolve(files.get(path));
    },
    runHelper: (helper, serverUrl) => {
      helperCalls.push({ helper, serverUrl });
      return Promise.resolve(
        options.helpers?.[helper] ??
          { ok: false, notFound: false, message: "not on PATH" },
      );
    },
  };
  return { system, reads, helperCalls };
}

/** Base64 of the UTF-8 bytes of `text`, as docker writes `auth`. */
function b64(text: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

function helperReply(username: string, secret: string): HelperResult {
  return {
    ok: true,
    stdout: JSON.stringify({ ServerURL: "x", Username: username, Secret: secret }),
  };
}

Deno.test("configHost drops schemes and paths, keeps ports, lowercases", () => {
  const cases: [string, string][] = [
    ["host:5000", "host:5000"],
    ["https://host:5000/v2/", "host:5000"],
    ["http://host:5000", "host:5000"],
    ["HTTPS://Registry.Example.COM/v1/", "registry.example.com"],
    ["registry.example.com/some/path", "registry.example.com"],
    ["127.0.0.1:5001", "127.0.0.1:5001"],
    ["[::1]:5000", "[::1]:5000"],
  ];
  for (const [key, host] of cases) assertEquals(configHost(key), host, key);
});

Deno.test("configHost maps every Docker Hub spelling to docker.io", () => {
  const spellings = [
    "docker.io",
    "DOCKER.IO",
    "index.docker.io",
    "registry-1.docker.io",
    DOCKER_HUB_CONFIG_KEY,
    "https://index.docker.io/v2/",
    "http://index.docker.io",
    "https://registry-1.docker.io/v2/",
    "https://docker.io",
  ];
  for (const key of spellings) assertEquals(configHost(key), "docker.io", key);
  assertEquals(configHost("docker.io:5000"), "docker.io:5000");
});

Deno.test("the config comes from $DOCKER_CONFIG, else ~/.docker", async () => {
  const auths = { auths: { "host:5000": { auth: b64("u:p") } } };
  const inHome = fake(auths);
  assertEquals((await dockerConfigCredentials("host:5000", inHome.system))?.credentials, {
    username: "u",
    password: "p",
  });
  assertEquals(inHome.reads, [HOME_CONFIG]);
  const custom = fake(auths, { env: { DOCKER_CONFIG: "/etc/dcfg" } });
  const found = await dockerConfigCredentials("host:5000", custom.system);
  assertEquals(custom.reads, ["/etc/dcfg/config.json"]);
  assertEquals(found?.source, '/etc/dcfg/config.json (auths "host:5000")');
});

Deno.test("a missing config file means no credentials", async () => {
  const { system, reads } = fake(undefined);
  assertEquals(await dockerConfigCredentials("host:5000", system), undefined);
  assertEquals(reads, [HOME_CONFIG]);
});

Deno.test("an invalid config is a CredentialStoreError naming the file", async () => {
  for (const text of ["{not json", "[1, 2]", "null", '"a string"']) {
    const { system } = fake(text);
    await assertRejects(
      () => dockerConfigCredentials("h", system),
      CredentialStoreError,
      `Docker config ${HOME_CONFIG} is not`,
    );
  }
});

Deno.test("a config that cannot be read is a CredentialStoreError", async () => {
  const system: CredentialSystem = {
    env: (name) => (name === "HOME" ? "/home/u" : undefined),
    readTextFile: () =>
      Promise.reject(new Error(`Cannot read docker config ${HOME_CONFIG}: Is a directory`)),
    runHelper: () => Promise.reject(new Error("no helper should run")),
  };
  await assertRejects(
    () => dockerConfigCredentials("h", system),
    CredentialStoreError,
    `Cannot read docker config ${HOME_CONFIG}: Is a directory`,
  );
});

Deno.test("helper failures name the helper and the setting that chose it", async () => {
  const store = fake({ credsStore: "desktop", auths: {} });
  await assertRejects(
    () => dockerConfigCredentials("host:5000", store.system),
    CredentialStoreError,
    `Credential helper docker-credential-desktop (the "credsStore" of ${HOME_CONFIG}) failed: ` +
      "not on PATH",
  );
  const perHost = fake({ credHelpers: { "https://host:5000": "ecr-login" } });
  await assertRejects(
    () => dockerConfigCredentials("host:5000", perHost.system),
    CredentialStoreError,
    `docker-credential-ecr-login (the "credHelpers" entry "https://host:5000" of ${HOME_CONFIG})`,
  );
});

Deno.test("auths: base64 auth (password with ':'), username/password, identitytoken", async () => {
  const { system } = fake({
    auths: {
      "a.example": { auth: b64("alice:pa:ss:wörd") },
      "b.example": { username: "bob", password: "b-pw" },
      "c.example": { identitytoken: "refresh-token" },
      "d.example": { username: "dan", identitytoken: "dan-token", auth: b64("dan:pw") },
      "e.example": {},
    },
  });
  const get = async (registry: string) =>
    (await dockerConfigCredentials(registry, system))?.credentials;
  assertEquals(await get("a.example"), { username: "alice", password: "pa:ss:wörd" });
  assertEquals(await get("b.example"), { username: "bob", password: "b-pw" });
  assertEquals(await get("c.example"), { identityToken: "refresh-token" });
  assertEquals(await get("d.example"), { identityToken: "dan-token", username: "dan" });
  assertEquals(await get("e.example"), undefined);
});

Deno.test("auths keys match host:port exactly, whatever their scheme and path", async () => {
  for (const key of ["https://host:5000/v2/", "http://host:5000", "host:5000", "HOST:5000"]) {
    const { system } = fake({ auths: { [key]: { auth: b64("u:p") } } });
    const found = await dockerConfigCredentials("host:5000", system);
    assertEquals(found?.credentials, { username: "u", password: "p" }, key);
    assertEquals(await dockerConfigCredentials("host:5001", system), undefined, key);
    assertEquals(await dockerConfigCredentials("host", system), undefined, key);
    assertEquals(await dockerConfigCredentials("other", system), undefined, key);
  }
});

Deno.test("Docker Hub: the v1 index key matches, and helpers get the v1 index URL", async () => {
  const auths = { auths: { [DOCKER_HUB_CONFIG_KEY]: { auth: b64("hub:pw") } } };
  for (const registry of ["docker.io", "index.docker.io", "registry-1.docker.io"]) {
    const found = await dockerConfigCredentials(registry, fake(auths).system);
    assertEquals(found?.credentials, { username: "hub", password: "pw" }, registry);
  }
  const store = { credsStore: "desktop" };
  const hub = fake(store, { helpers: { desktop: helperReply("hub", "pw") } });
  await dockerConfigCredentials("docker.io", hub.system);
  assertEquals(hub.helperCalls, [{ helper: "desktop", serverUrl: DOCKER_HUB_CONFIG_KEY }]);
  const other = fake(store, { helpers: { desktop: helperReply("u", "pw") } });
  await dockerConfigCredentials("host:5000", other.system);
  await dockerConfigCredentials("registry.example.com", other.system);
  assertEquals(other.helperCalls.map((c) => c.serverUrl), ["host:5000", "registry.example.com"]);
});

Deno.test("credHelpers for the host beat credsStore, and beat auths", async () => {
  const { system, helperCalls } = fake({
    credsStore: "desktop",
    credHelpers: { "https://ecr.example:443": "ecr-login", "gcr.io": "gcloud" },
    auths: { "ecr.example:443": { auth: b64("stale:stale") } },
  }, {
    helpers: { "ecr-login": helperReply("AWS", "ecr-pw"), desktop: helperReply("d", "d-pw") },
  });
  const found = await dockerConfigCredentials("ecr.example:443", system);
  assertEquals(found, {
    credentials: { username: "AWS", password: "ecr-pw" },
    source: "credential helper docker-credential-ecr-login",
  });
  const fallback = await dockerConfigCredentials("other.example", system);
  assertEquals(fallback?.credentials, { username: "d", password: "d-pw" });
  assertEquals(helperCalls.map((c) => c.helper), ["ecr-login", "desktop"]);
});

Deno.test("a helper's <token> username marks an identity token", async () => {
  const { system } = fake({ credsStore: "acr" }, {
    helpers: { acr: helperReply("<token>", "rt") },
  });
  const found = await dockerConfigCredentials("x.azurecr.io", system);
  assertEquals(found?.credentials, { identityToken: "rt" });
});

Deno.test("'credentials not found' from a helper falls through to auths", async () => {
  const notFound: HelperResult = {
    ok: false,
    notFound: true,
    message: "credentials not found in native keychain",
  };
  const { system, helperCalls } = fake(
    { credsStore: "desktop", auths: { "host:5000": { auth: b64("u:p") } } },
    { helpers: { desktop: notFound } },
  );
  const found = await dockerConfigCredentials("host:5000", system);
  assertEquals(found?.credentials, { username: "u", password: "p" });
  assertEquals(helperCalls.length, 1);
  assertEquals(await dockerConfigCredentials("elsewhere", system), undefined);
});

Deno.test("errors name the helper or the file, and never hold a secret", async () => {
  const SECRET = "s3cr3t-Value";
  const auths = { "host:5000": { auth: b64(`u:${SECRET}`) } };
  const failing: [string, Fake][] = [
    [
      "helper fails",
      fake({ credsStore: "pass", auths }, {
        helpers: { pass: { ok: false, notFound: false, message: "gpg: decryption failed" } },
      }),
    ],
    ["helper missing", fake({ credHelpers: { "host:5000": "gone" }, auths })],
    [
      "helper prints non-JSON",
      fake({ credsStore: "odd", auths }, {
        helpers: { odd: { ok: true, stdout: `user ${SECRET}` } },
      }),
    ],
    ["bad base64", fake({ auths: { "host:5000": { auth: `!!${SECRET}!!` } } })],
    ["no colon", fake({ auths: { "host:5000": { auth: b64(SECRET) } } })],
    ["invalid JSON", fake(`{"auths": {"host:5000": {"auth": "${SECRET}"`)],
  ];
  const expected: Record<string, string> = {
    "helper fails": "docker-credential-pass",
    "helper missing": "docker-credential-gone",
    "helper prints non-JSON": "docker-credential-odd",
    "bad base64": `"host:5000" in ${HOME_CONFIG}`,
    "no colon": `"host:5000" in ${HOME_CONFIG}`,
    "invalid JSON": HOME_CONFIG,
  };
  for (const [name, { system }] of failing) {
    const error = await assertRejects(() => dockerConfigCredentials("host:5000", system));
    assert(error instanceof CredentialStoreError, `${name}: ${error}`);
    assertStringIncludes(error.message, expected[name]!, name);
    const everything = `${String(error)} ${Deno.inspect(error.cause)}`;
    assert(!everything.includes(SECRET), `${name} leaks the secret: ${everything}`);
  }
});

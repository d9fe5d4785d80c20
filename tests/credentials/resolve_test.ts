/**
 * Which credentials a push uses: explicit ones first, docker's configuration otherwise (read
 * only when the lookup runs, that is when a registry asks), and a username alone only
 * completed by docker's stored secret for that same user.
 */
import {
  CredentialStoreError,
  type CredentialSystem,
  type HelperResult,
} from "../../src/credentials/docker_config.ts";
import {
  type CredentialChoice,
  type ExplicitCredentials,
  resolveCredentials,
} from "../../src/credentials/resolve.ts";
import { InvalidOptionError } from "../../src/errors.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../helpers/assert.ts";

const CONFIG = "/home/u/.docker/config.json";

interface Fake {
  system: CredentialSystem;
  /** Every file read and helper run, in order. */
  calls: string[];
}

/** A system whose ~/.docker/config.json is `config` (none when undefined; a string as is). */
function fake(config?: unknown, helpers: Record<string, HelperResult> = {}): Fake {
  const calls: string[] = [];
  const system: CredentialSystem = {
    env: (name) => (name === "HOME" ? "/home/u" : undefined),
    readTextFile: (path) => {
      calls.push(`read ${path}`);
      if (path !== CONFIG || config === undefined) return Promise.resolve(undefined);
      return Promise.resolve(typeof config === "string" ? config : JSON.stringify(config));
    },
    runHelper: (helper, serverUrl) => {
      calls.push(`helper ${helper} ${serverUrl}`);
      return Promise.resolve(
        helpers[helper] ?? { ok: false, notFound: false, message: "not on PATH" },
      );
    },
  };
  return { system, calls };
}

function explicit(username?: string, password?: string): ExplicitCredentials {
  return { username, password };
}

const auth = (user: string, password: string) => ({ auth: btoa(`${user}:${password}`) });

Deno.test("explicit username and password win without reading docker's config", async () => {
  const { system, calls } = fake({ auths: { "host:5000": auth("bob", "config-pw") } });
  const resolved = await resolveCredentials(explicit("alice", "cli-pw"), "host:5000", system);
  assertEquals(resolved, {
    kind: "given",
    credentials: { username: "alice", password: "cli-pw" },
  });
  assertEquals(calls, [], "docker's config must not be read");
});

Deno.test("an empty explicit password still counts as given", async () => {
  const { system, calls } = fake();
  const resolved = await resolveCredentials(explicit("alice", ""), "h", system);
  assertEquals(resolved.kind === "given" && resolved.credentials, {
    username: "alice",
    password: "",
  });
  assertEquals(calls, []);
});

type Lookup = Extract<CredentialChoice, { kind: "docker-config" }>["lookup"];

/** The lookup of a `docker-config` choice (fails the test for a `given` one). */
function lookupOf(choice: CredentialChoice): Lookup {
  assert(choice.kind === "docker-config", JSON.stringify(choice));
  return choice.lookup;
}

Deno.test("no username: docker's config, read only when the lookup runs", async () => {
  const { system, calls } = fake({ auths: { "host:5000": auth("bob", "config-pw") } });
  const resolved = await resolveCredentials(explicit(), "host:5000", system);
  const lookup = lookupOf(resolved);
  assertEquals(calls, [], "the config is read only when a registry asks");
  assertEquals(await lookup(), {
    credentials: { username: "bob", password: "config-pw" },
    source: `${CONFIG} (auths "host:5000")`,
  });
  assertEquals(calls, [`read ${CONFIG}`]);
});

Deno.test("no username and nothing configured: the lookup finds nothing", async () => {
  for (const config of [undefined, {}, { auths: { "other:5000": auth("bob", "pw") } }]) {
    const { system, calls } = fake(config);
    const lookup = lookupOf(await resolveCredentials(explicit(), "host:5000", system));
    assertEquals(await lookup(), undefined);
    assertEquals(calls, [`read ${CONFIG}`]);
  }
});

Deno.test("no username and a broken store: resolving succeeds, the lookup fails", async () => {
  // A Docker Desktop config copied to a machine without its helper, and an unparsable file.
  const broken: [string, Fake, string][] = [
    ["missing helper", fake({ auths: {}, credsStore: "desktop" }), "docker-credential-desktop"],
    ["invalid JSON", fake('{"auths": {'), `${CONFIG} is not valid JSON`],
  ];
  for (const [name, { system, calls }, says] of broken) {
    const lookup = lookupOf(await resolveCredentials(explicit(), "host:5000", system));
    assertEquals(calls, [], name);
    await assertRejects(lookup, CredentialStoreError, says);
  }
});

Deno.test("-u alone is completed by the config's secret for the same user", async () => {
  const { system } = fake({ auths: { "host:5000": auth("alice", "stored-pw") } });
  const resolved = await resolveCredentials(explicit("alice"), "host:5000", system);
  assertEquals(resolved.kind === "given" && resolved.credentials, {
    username: "alice",
    password: "stored-pw",
  });
  const helper = fake({ credsStore: "desktop" }, {
    desktop: { ok: true, stdout: JSON.stringify({ Username: "alice", Secret: "kc-pw" }) },
  });
  const fromHelper = await resolveCredentials(explicit("alice"), "host:5000", helper.system);
  assertEquals(fromHelper, {
    kind: "given",
    credentials: { username: "alice", password: "kc-pw" },
    source: "credential helper docker-credential-desktop",
  });
});

Deno.test("-u alone with another user's (or no) stored secret is an InvalidOptionError", async () => {
  for (const config of [{ auths: { "host:5000": auth("bob", "bob-pw") } }, undefined]) {
    const { system } = fake(config);
    const error = await assertRejects(
      () => resolveCredentials(explicit("alice"), "host:5000", system),
      InvalidOptionError,
      'No password for user "alice"',
    );
    assertStringIncludes(error.message, "host:5000");
    assert(!`${error.message} ${error.hint}`.includes("bob-pw"), error.message);
  }
});

Deno.test("-u alone with a broken store is an InvalidOptionError saying why", async () => {
  const { system } = fake({ credsStore: "desktop" });
  const error = await assertRejects(
    () => resolveCredentials(explicit("alice"), "host:5000", system),
    InvalidOptionError,
    'No password for user "alice" at host:5000 (Credential helper docker-credential-desktop',
  );
  assertStringIncludes(error.message, "not on PATH");
});

Deno.test("the source never holds the secret", async () => {
  const SECRET = "Sup3r-S3cret";
  const cases: [ExplicitCredentials, Fake][] = [
    [explicit("alice", SECRET), fake()],
    [explicit(), fake({ auths: { "host:5000": auth("alice", SECRET) } })],
    [explicit("alice"), fake({ auths: { "host:5000": auth("alice", SECRET) } })],
    [explicit(), fake({ auths: { "host:5000": { identitytoken: SECRET } } })],
    [
      explicit(),
      fake({ credsStore: "desktop" }, {
        desktop: { ok: true, stdout: JSON.stringify({ Username: "<token>", Secret: SECRET }) },
      }),
    ],
  ];
  for (const [given, { system }] of cases) {
    const resolved = await resolveCredentials(given, "host:5000", system);
    const found = resolved.kind === "given" ? resolved : await resolved.lookup();
    assert(found?.credentials !== undefined, JSON.stringify(given));
    assert(!found.source?.includes(SECRET), `source leaks the secret: ${found.source}`);
  }
});

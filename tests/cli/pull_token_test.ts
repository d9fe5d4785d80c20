/**
 * `pull` against the real registry in token mode: every token it asks for names
 * `repository:<name>:pull` and nothing else (never push), each token issued grants pull only,
 * and a pull succeeds with an identity that has pull rights only (the token server's anonymous
 * pulls: it grants anonymous callers `pull`, never `push`, which a push then proves).
 */
import { Buffer } from "node:buffer";
import { assert, assertEquals } from "../helpers/assert.ts";
import { runCli } from "../helpers/cli.ts";
import { writeOciArchive } from "../helpers/image_fixtures.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import { startTokenServer, type TokenServer } from "../helpers/token_server.ts";
import { pull, skopeoConfig, tempDir } from "../pull/_support.ts";

const USER = "alice";
const PASSWORD = "pw-Qx7.alice-pull";
/** The registry helper's own account, told apart from the CLI's in the token server's log. */
const HELPER = { username: "helper", password: "helper-pw" };
const TOOLS = ["docker-registry", "openssl", "skopeo"];

/** The `access` claims of each token issued from index `from` on. */
function accessOf(server: TokenServer, from: number): { name: string; actions: string[] }[][] {
  return server.issued.slice(from).map((token) => {
    const claims = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as {
      access: { name: string; actions: string[] }[];
    };
    return claims.access;
  });
}

integrationTest("token auth: a pull asks for pull scope only, and needs no more", async () => {
  await using server = await startTokenServer({
    users: { [USER]: PASSWORD, [HELPER.username]: HELPER.password },
    anonymousPull: true,
  });
  await using registry = await startRegistry({
    token: {
      realm: server.realm,
      service: server.service,
      issuer: server.issuer,
      rootCertBundle: server.certPath,
      credentials: HELPER,
    },
  });
  await using dir = await tempDir();
  // A HOME of its own: no docker config.json of the machine's is read.
  const home = `${dir.path}/home`;
  await Deno.mkdir(home);
  const env = { HOME: home };
  const fixture = await writeOciArchive(`${dir.path}/seed.tar`, [
    { name: "app:1", layerSizes: [50_000, 7_000] },
  ]);
  const pushed = await runCli([
    "-r",
    `${registry.url}/team/app:1`,
    "-f",
    fixture.path,
    "-u",
    USER,
    "--password-stdin",
  ], { env, stdin: PASSWORD });
  assertEquals(pushed.code, 0, pushed.stderr);
  const image = fixture.images[0]!;

  // With credentials that could push: the pull asks only for pull.
  let requests = server.requests.length;
  let issued = server.issued.length;
  const out = `${dir.path}/alice.tar`;
  const withCredentials = await pull(
    [`${registry.url}/team/app:1`, "-o", out, "-u", USER, "--password-stdin"],
    { env, stdin: PASSWORD },
  );
  assertEquals(withCredentials.code, 0, withCredentials.stderr);
  let asked = server.requests.slice(requests);
  assert(asked.length > 0, "the pull never asked the token server");
  for (const request of asked) {
    assertEquals(request.scopes, ["repository:team/app:pull"], JSON.stringify(asked));
    assertEquals([request.account, request.status], [USER, 200]);
  }
  for (const access of accessOf(server, issued)) {
    assertEquals(access, [{ type: "repository", name: "team/app", actions: ["pull"] }]);
  }
  assertEquals((await skopeoConfig(`docker-archive:${out}`)).digest, image.configDigest);

  // With no credentials, an identity the token server lets pull and never push.
  requests = server.requests.length;
  issued = server.issued.length;
  const anonymousOut = `${dir.path}/anonymous.tar`;
  const anonymous = await pull([`${registry.url}/team/app:1`, "-o", anonymousOut], { env });
  assertEquals(anonymous.code, 0, anonymous.stderr);
  asked = server.requests.slice(requests);
  assert(asked.length > 0, "the anonymous pull never asked the token server");
  for (const request of asked) {
    assertEquals(request.scopes, ["repository:team/app:pull"], JSON.stringify(asked));
    assertEquals([request.account, request.authorized], [undefined, false]);
  }
  for (const access of accessOf(server, issued)) {
    assertEquals(access, [{ type: "repository", name: "team/app", actions: ["pull"] }]);
  }
  const config = await skopeoConfig(`docker-archive:${anonymousOut}`);
  assertEquals(config.digest, image.configDigest);
  assertEquals(config.diffIds, image.layerDiffIds);

  // The same identity cannot push: the pull above needed pull rights only.
  const refused = await runCli(["-r", `${registry.url}/team/app:2`, "-f", fixture.path], { env });
  assertEquals(refused.code, 1, refused.stderr);
  assertEquals(await registry.manifestExists("team/app", "2"), false);
}, { tools: TOOLS });

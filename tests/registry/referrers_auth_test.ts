/**
 * Referrers behind token auth, as on Docker Hub, Harbor or GHCR: the listing goes through the
 * client's auth (a pull-only token is enough), the double refuses the API to a client
 * without credentials as the registry would, and plain distribution behind tokens still says
 * "no API" (its router answers the unknown route 404) so the fallback tag is read.
 */
import { registryErrorIn } from "../../src/registry/registry_error.ts";
import { listReferrers, ReferrersSupport } from "../../src/registry/referrers.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { startReferrersRegistry } from "../helpers/referrers_registry.ts";
import { integrationTest, startRegistry, type StartRegistryOptions } from "../helpers/registry.ts";
import { openClient, pushSbomReferrer, pushSmallImage } from "../helpers/signed_fixtures.ts";
import { startTokenServer, type TokenServer } from "../helpers/token_server.ts";

const ALICE = { username: "alice", password: "pw-referrers" };
const TOOLS = ["docker-registry", "openssl"];

function tokenAuth(tokens: TokenServer): StartRegistryOptions {
  return {
    token: {
      realm: tokens.realm,
      service: tokens.service,
      issuer: tokens.issuer,
      rootCertBundle: tokens.certPath,
      credentials: { username: "helper", password: "hpw" },
    },
  };
}

integrationTest(
  "token auth: the referrers API answers a pull-only token, and refuses no credentials",
  async () => {
    await using tokens = await startTokenServer({
      users: { alice: ALICE.password, helper: "hpw" },
    });
    await using double = await startReferrersRegistry({ registry: tokenAuth(tokens) });
    using opened = openClient(double.url, "app", { credentials: ALICE });
    const support = new ReferrersSupport();
    const image = await pushSmallImage(opened.client, "1");
    const sbom = await pushSbomReferrer(opened.client, image, { support });
    assertEquals(sbom.recordedBy, "api");

    using reading = openClient(double.url, "app", { credentials: ALICE, access: "pull" });
    const reader = reading.client;
    const asked = tokens.requests.length;
    const listing = await listReferrers(reader, image.digest, { support: new ReferrersSupport() });
    assertEquals(listing.found, "api");
    assertEquals(listing.descriptors, [sbom.descriptor]);
    const scopes = tokens.requests.slice(asked).flatMap((r) => r.scopes);
    assertEquals([...new Set(scopes)], ["repository:app:pull"]);

    using anonymous = openClient(double.url, "app");
    const error = await assertRejects(() =>
      listReferrers(anonymous.client, image.digest, { support: new ReferrersSupport() })
    );
    assertEquals(registryErrorIn(error)?.status, 401);
  },
  { tools: TOOLS },
);

integrationTest(
  "token auth on plain distribution: no API, the fallback tag is read with the token",
  async () => {
    await using tokens = await startTokenServer({
      users: { alice: ALICE.password, helper: "hpw" },
    });
    await using registry = await startRegistry(tokenAuth(tokens));
    using opened = openClient(registry.url, "app", { credentials: ALICE });
    const support = new ReferrersSupport();
    const image = await pushSmallImage(opened.client, "1");
    const sbom = await pushSbomReferrer(opened.client, image, { support });
    assertEquals(sbom.recordedBy, "fallback-tag");
    const listing = await listReferrers(opened.client, image.digest, { support });
    assertEquals(listing.found, "fallback-tag");
    assertEquals(listing.descriptors, [sbom.descriptor]);
    assert(listing.index !== undefined);
  },
  { tools: TOOLS },
);

/**
 * `docker load` and `podman load` still read a pulled archive that carries referrers: they load
 * the image `manifest.json` names (docker) or the image `index.json` names (podman), and the
 * signature, SBOM and fallback-index entries `index.json` names by tag are not taken for images.
 */
import { assertEquals } from "../helpers/assert.ts";
import {
  DOCKER_TEST_TOOLS,
  dockerImages,
  Podman,
  PODMAN_TEST_TOOLS,
  uniqueName,
} from "../helpers/docker.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import {
  makeSigningKey,
  openClient,
  pushCosignSignature,
  pushSbomReferrer,
  pushSignatureReferrer,
  pushSmallImage,
} from "../helpers/signed_fixtures.ts";
import { ReferrersSupport } from "../../src/registry/referrers.ts";
import { pull, readArchive, tempDir } from "../pull/_support.ts";

/** A signed image (cosign .sig, SBOM referrer, its signature) pulled into `dir/app.tar`. */
async function pulledSignedImage(url: string, host: string, dir: string) {
  const repo = `${uniqueName()}/app`;
  using opened = openClient(url, repo);
  const support = new ReferrersSupport();
  const image = await pushSmallImage(opened.client, "1", { seed: repo, layerSizes: [300, 200] });
  const key = await makeSigningKey(dir);
  await pushCosignSignature(opened.client, image, key);
  const sbom = await pushSbomReferrer(opened.client, image, { support });
  await pushSignatureReferrer(opened.client, sbom.manifest, key, { support });
  const archive = `${dir}/app.tar`;
  const pulled = await pull([`${url}/${repo}:1`, "-o", archive]);
  assertEquals(pulled.code, 0, pulled.stderr);
  assertEquals((await readArchive(archive)).index.manifests.length, 4);
  const config = JSON.parse(new TextDecoder().decode(image.bytes)).config.digest as string;
  return { archive, name: `${host}/${repo}:1`, config };
}

integrationTest("a pull carrying referrers → podman load: the image alone", async () => {
  await using registry = await startRegistry();
  await using dir = await tempDir();
  await using podman = await Podman.start();
  const { archive, name, config } = await pulledSignedImage(registry.url, registry.host, dir.path);
  assertEquals(await podman.load(archive), [name]);
  assertEquals((await podman.inspect(name)).id, config);
}, { tools: ["docker-registry", "openssl", ...PODMAN_TEST_TOOLS] });

integrationTest("a pull carrying referrers → docker load: the image alone", async () => {
  await using registry = await startRegistry();
  await using dir = await tempDir();
  await using images = await dockerImages();
  const { archive, name, config } = await pulledSignedImage(registry.url, registry.host, dir.path);
  assertEquals(await images.load(archive), [name]);
  assertEquals((await images.inspect(name)).id, config);
}, { tools: ["docker-registry", "openssl", ...DOCKER_TEST_TOOLS] });

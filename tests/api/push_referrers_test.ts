/**
 * The public `push` with an archive that carries referrers (an image, its cosign `.sig`, an
 * SPDX SBOM referrer and a signature of the SBOM), in-process against the real registry: the
 * result lists each referrer with its digest, kind, artifact type and subject; layers the
 * signatures pin stay as stored by default; `compression` given explicitly is refused before
 * anything is sent unless `referrers: false`.
 */
import { InvalidOptionError, type ProgressEvent, push } from "../../mod.ts";
import { fallbackTag } from "../../src/image/referrer.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import {
  buildSignedSet,
  makeSigningKey,
  type SignedSet,
  writeSignedLayout,
} from "../helpers/signed_fixtures.ts";

const TOOLS = ["docker-registry", "openssl"];

/** A signed set laid into an OCI layout in a temporary directory, removed after `fn`. */
async function withSignedLayout(
  fn: (layout: string, set: SignedSet, env: (name: string) => string | undefined) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dip-api-referrers-" });
  const vars: Record<string, string> = {
    XDG_CACHE_HOME: `${dir}/cache`,
    XDG_STATE_HOME: `${dir}/state`,
    DOCKER_CONFIG: `${dir}/docker`,
  };
  try {
    const set = await buildSignedSet("app", await makeSigningKey(dir));
    await writeSignedLayout(`${dir}/layout`, set);
    await fn(`${dir}/layout`, set, (name) => vars[name]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

integrationTest("push: the result lists the referrers that went with the image", async () => {
  await using registry = await startRegistry();
  await withSignedLayout(async (layout, set, env) => {
    const events: ProgressEvent[] = [];
    const result = await push({
      archive: layout,
      targets: [`${registry.host}/app:1`],
      env,
      onProgress: (event) => events.push(event),
    });
    const image = result.images[0]!;
    assertEquals(image.manifest.digest, set.image.digest);
    assertEquals(image.keptAsStoredFor, [set.image.digest]);
    assertEquals(
      image.referrers.map((r) => [r.digest, r.kind, r.subject, r.tag]).sort(),
      [
        [
          set.cosignSignature.manifest.digest,
          "signature",
          set.image.digest,
          set.cosignSignature.tag,
        ],
        [set.sbom.manifest.digest, "sbom", set.image.digest, undefined],
        [set.sbomSignature.manifest.digest, "signature", set.sbom.manifest.digest, undefined],
      ].sort(),
    );
    assertEquals(
      image.referrers.find((r) => r.kind === "sbom")?.artifactType,
      set.sbom.descriptor.artifactType,
    );
    assertEquals(events.filter((e) => e.type === "referrer-done").length, 3);
    assertEquals(
      events.filter((e) => e.type === "notice" && e.kind === "kept-as-stored-for-referrers")
        .length,
      1,
    );
    assert(await registry.manifestExists("app", fallbackTag(set.image.digest)));
  });
}, { tools: TOOLS });

integrationTest(
  "push: an image whose signatures keep its layers as stored, to two targets, says so once",
  async () => {
    await using registry = await startRegistry();
    await withSignedLayout(async (layout, set, env) => {
      const events: ProgressEvent[] = [];
      const result = await push({
        archive: layout,
        targets: [`${registry.host}/app:1`, `${registry.host}/copy:1`],
        env,
        onProgress: (event) => events.push(event),
      });
      // Each target's image keeps its layers, and its digest...
      assertEquals(result.images.map((i) => i.keptAsStoredFor), [
        [set.image.digest],
        [set.image.digest],
      ]);
      assertEquals(result.images.map((i) => i.manifest.digest), [
        set.image.digest,
        set.image.digest,
      ]);
      // ...and the run says why once, after its plan.
      const kept = events.flatMap((e, i) =>
        e.type === "notice" && e.kind === "kept-as-stored-for-referrers" ? [i] : []
      );
      assertEquals(kept.length, 1, JSON.stringify(events.filter((e) => e.type === "notice")));
      assert(events.findIndex((e) => e.type === "plan") < kept[0]!);
    });
  },
  { tools: TOOLS },
);

integrationTest(
  "push: explicit compression that would break a signature is refused; referrers: false goes alone",
  async () => {
    await using registry = await startRegistry();
    await withSignedLayout(async (layout, set, env) => {
      const error = await assertRejects(
        () =>
          push({ archive: layout, targets: [`${registry.host}/app:1`], env, compression: "gzip" }),
        InvalidOptionError,
      );
      assertEquals([error.option, error.reason], ["compression", "referrers-pin-layers"]);
      const sent = (await registry.requests()).filter((r) => r.path.startsWith("/v2/app/"));
      assertEquals(sent.length, 0);

      const alone = await push({
        archive: layout,
        targets: [`${registry.host}/app:1`],
        env,
        compression: "gzip",
        referrers: false,
      });
      assertEquals(alone.images[0]!.referrers, []);
      assert(alone.images[0]!.manifest.digest !== set.image.digest);
      assertEquals(await registry.manifestExists("app", set.cosignSignature.tag), false);
    });
  },
  { tools: TOOLS },
);

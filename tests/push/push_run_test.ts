/**
 * A run against two real registries: each layer compressed on the way is read once and
 * compressed once for both (one stream, broadcast), and both registries end up with the same
 * bytes, so the same manifest digest. A run given jobs it was not prepared for refuses them.
 */
import type { ArchiveBlob, ArchiveImage } from "../../src/archive/image.ts";
import type { ManifestNode } from "../../src/image/graph.ts";
import { openImageArchive } from "../../src/archive/image_archive.ts";
import { silentSink } from "../../src/progress/events.ts";
import { BlobInfoCache } from "../../src/push/blob_info_cache.ts";
import { LayerCompressor } from "../../src/push/layer_compressor.ts";
import { prepareRun, runJobs } from "../../src/push/push_run.ts";
import { planRun } from "../../src/push/run_plan.ts";
import { parseReference } from "../../src/image/reference.ts";
import { createTransport } from "../../src/registry/transport.ts";
import { assertEquals, assertRejects } from "../helpers/assert.ts";
import { writeDockerSaveLegacy } from "../helpers/image_fixtures.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import { clientOn, defaultRunPush } from "./_push_fixtures.ts";

/** `image` with every blob's reads counted in `reads` (by digest). */
function counted(image: ArchiveImage, reads: Map<string, number>): ArchiveImage {
  const wrap = (blob: ArchiveBlob): ArchiveBlob => ({
    ...blob,
    read(offset, length, signal) {
      reads.set(blob.digest, (reads.get(blob.digest) ?? 0) + 1);
      return blob.read(offset, length, signal);
    },
  });
  const node = (n: ManifestNode): ManifestNode => ({
    ...n,
    blobs: n.blobs.map(wrap),
    children: n.children.map(node),
  });
  return { ...image, root: node(image.root) };
}

integrationTest("two registries: each layer is read and compressed once, for both", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dip-push-run-" });
  await using one = await startRegistry();
  await using two = await startRegistry();
  const transport = createTransport({ inactivityTimeoutMs: 30_000 });
  const compressor = new LayerCompressor({
    codec: "gzip",
    level: "auto",
    cache: BlobInfoCache.inMemory(),
  });
  try {
    const fixture = await writeDockerSaveLegacy(`${dir}/app.tar`, [
      // Compressible layers: gzip has work to do, and the level follows the link.
      { name: "app:1", layerSizes: [3_000_000, 1_500_000] },
    ]);
    const archive = await openImageArchive(fixture.path);
    const reads = new Map<string, number>();
    archive.images[0] = counted(archive.images[0]!, reads);
    const targets = [one, two].map((r) => parseReference(`http://${r.host}/app:1`));
    const plan = planRun([archive], {
      targets,
      tags: [],
      all: false,
      multiArch: false,
      images: [],
    });
    const clients = targets.map((t) => clientOn(transport, t.registry, t.repository));
    const compression = { codec: "gzip", level: "auto" } as const;
    const reports = await runJobs(plan.jobs, await prepareRun(plan.jobs, compression), {
      clientFor: (job) => clients[job.targetIndex]!,
      push: defaultRunPush({ compression, compressor }),
      sink: silentSink,
    });
    assertEquals(reports.map((r) => [r.status, r.error]), [["pushed", undefined], [
      "pushed",
      undefined,
    ]]);
    const [a, b] = reports.map((r) => r.manifest!.digest);
    assertEquals(a, b, "both registries hold the same manifest");
    assertEquals((await one.fetchManifest("app", "1")).digest, a);
    assertEquals((await two.fetchManifest("app", "1")).digest, a);
    for (const layer of fixture.images[0]!.layerDigests) {
      assertEquals(reads.get(layer), 1, `layer ${layer} was read ${reads.get(layer)} times`);
    }
    // Both pushes count the layers as compressed and sent (the bytes went to each).
    assertEquals(reports.map((r) => r.compressed.count), [2, 2]);
  } finally {
    compressor.close();
    transport.close();
    await Deno.remove(dir, { recursive: true });
  }
});

integrationTest(
  "a run not prepared for its jobs throws an internal error, and sends nothing",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "dip-push-run-" });
    await using registry = await startRegistry();
    const transport = createTransport({ inactivityTimeoutMs: 30_000 });
    try {
      const fixture = await writeDockerSaveLegacy(`${dir}/app.tar`, [
        { name: "app:1", layerSizes: [10_000] },
      ]);
      const archive = await openImageArchive(fixture.path);
      const target = parseReference(`http://${registry.host}/app:1`);
      const plan = planRun([archive], {
        targets: [target],
        tags: [],
        all: false,
        multiArch: false,
        images: [],
      });
      const client = clientOn(transport, target.registry, target.repository);
      // Decided for none of the jobs: taking a miss for "not kept as stored" could compress
      // layers a signature needs as the archive has them.
      const error = await assertRejects(() =>
        runJobs(plan.jobs, { entries: new Map(), images: new Map() }, {
          clientFor: () => client,
          push: defaultRunPush(),
          sink: silentSink,
        })
      );
      assertEquals(
        (error as Error).message,
        `Internal error: the run was not prepared for the image ${
          archive.images[0]!.root.digest
        } (runJobs needs what prepareRun made of the same jobs)`,
      );
      assertEquals(await registry.listTags("app"), []);
      assertEquals(
        (await registry.requests()).filter((r) => r.method !== "GET" && r.method !== "HEAD"),
        [],
      );
    } finally {
      transport.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

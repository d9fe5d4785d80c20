/**
 * `inspectArchive` in process, on archives of every format written by our generators and by
 * skopeo/umoci: the kind, names, platforms and digests it reports must be those the writer
 * made, and a stream (a pipe, .tar.gz, .tar.zst, .tar.xz) must report what the file does, the
 * digests of large entries computed as they went past.
 */
import { gzipSync, zstdCompressSync } from "node:zlib";
import { inspectArchive } from "../../src/inspect/inspect_archive.ts";
import type { ArchiveReport } from "../../src/inspect/archive_report.ts";
import { ArchiveError } from "../../src/errors.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../helpers/assert.ts";
import { run } from "../helpers/command.ts";
import {
  writeDocker25Save,
  writeDockerSaveLegacy,
  writeOciArchive,
} from "../helpers/image_fixtures.ts";
import { sha256Digest } from "../helpers/random.ts";
import { skopeoArchive, skopeoCopy, umociImage } from "../helpers/skopeo.ts";
import { tarBytes } from "../helpers/tar_writer.ts";
import { integrationTest } from "../helpers/tools.ts";
import { assertArchiveReport } from "./_report_schema.ts";

/** Above the 1 MiB a stream keeps in memory: this layer is hashed as it goes past. */
const LARGE = 1_200_000;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dip-inspect-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The report of `path` read as a stream through the `-` input (a pipe's code path). */
async function inspectPiped(path: string): Promise<ArchiveReport> {
  const file = await Deno.open(path);
  return await inspectArchive("-", { stdin: () => file.readable });
}

/** The report without what says how it was read. */
function content(report: ArchiveReport): Omit<ArchiveReport, "archive"> {
  const { archive: _, ...rest } = report;
  return rest;
}

Deno.test("docker save before 25, two images sharing a layer: names, digests, unique totals", async () => {
  await withDir(async (dir) => {
    const { images } = await writeDockerSaveLegacy(`${dir}/app.tar`, [
      { name: "app:1", layerSizes: [LARGE, 700], layerSeeds: ["base", "app"] },
      { name: "tool:2", layerSizes: [LARGE, 900], layerSeeds: ["base", "tool"] },
    ]);
    const report = assertArchiveReport(await inspectArchive(`${dir}/app.tar`));
    assertEquals(report.format, "docker-save");
    assertEquals(report.archive, {
      path: `${dir}/app.tar`,
      compression: "none",
      streamed: false,
      directory: false,
      tarBytes: (await Deno.stat(`${dir}/app.tar`)).size,
    });
    assertEquals(report.images.map((i) => i.names), [["app:1"], ["tool:2"]]);
    for (const [i, image] of report.images.entries()) {
      assertEquals(image.configDigest, images[i]!.configDigest);
      assertEquals(image.layers.map((l) => l.digest), images[i]!.layerDigests);
      assertEquals(image.layers.map((l) => l.compression), ["none", "none"]);
      assertEquals(image.mediaType, "application/vnd.docker.distribution.manifest.v2+json");
      assertEquals(image.platforms.map((p) => [p.os, p.architecture, p.variant]), [
        ["linux", "amd64", null],
      ]);
      assertEquals(image.platforms[0]!.manifestDigest, image.manifestDigest);
    }
    // Two configs, three layers: the shared base layer counts once.
    const shared = report.images[0]!.layers[0]!;
    assertEquals(shared.digest, report.images[1]!.layers[0]!.digest);
    assertEquals(report.totals.images, 2);
    assertEquals(report.totals.blobs, 5);
    const sizes = new Map(report.images.flatMap((i) => i.layers.map((l) => [l.digest, l.size])));
    assertEquals(sizes.size, 3);
    const layerBytes = [...sizes.values()].reduce((a, b) => a + b, 0);
    assert(report.totals.bytes > layerBytes, "configs count too");
  });
});

Deno.test("docker save 25+ with symlinked legacy layers: docker-save-25, OCI manifest", async () => {
  await withDir(async (dir) => {
    const { images } = await writeDocker25Save(`${dir}/app.tar`, [{ name: "app:1" }], {
      layerSymlinks: true,
    });
    const report = assertArchiveReport(await inspectArchive(`${dir}/app.tar`));
    assertEquals(report.format, "docker-save-25");
    const [image] = report.images;
    assertEquals(image!.names, ["docker.io/library/app:1", "1"]);
    assertEquals(image!.manifestDigest, images[0]!.manifestDigest);
    assertEquals(image!.mediaType, "application/vnd.oci.image.manifest.v1+json");
    assertEquals(image!.configDigest, images[0]!.configDigest);
    assertEquals(image!.layers.map((l) => [l.digest, l.mediaType, l.compression]), [
      [images[0]!.layerDigests[0], "application/vnd.oci.image.layer.v1.tar", "none"],
      [images[0]!.layerDigests[1], "application/vnd.oci.image.layer.v1.tar", "none"],
    ]);
  });
});

Deno.test("OCI layout with a multi-platform index: every child, its platform, no top config", async () => {
  await withDir(async (dir) => {
    const written = await writeOciArchive(`${dir}/multi.tar`, [
      { name: "app:amd64", architecture: "amd64" },
      { name: "app:arm64", architecture: "arm64" },
    ], { index: { refName: "1" } });
    const report = assertArchiveReport(await inspectArchive(`${dir}/multi.tar`));
    assertEquals(report.format, "oci-layout");
    assertEquals(report.images.length, 1);
    const image = report.images[0]!;
    assertEquals(image.names, ["1"]);
    assertEquals(image.manifestDigest, written.indexDigest);
    assertEquals(image.mediaType, "application/vnd.oci.image.index.v1+json");
    assertEquals(image.configDigest, null);
    assertEquals(image.platforms.map((p) => `${p.os}/${p.architecture}`), [
      "linux/amd64",
      "linux/arm64",
    ]);
    for (const [i, platform] of image.platforms.entries()) {
      assertEquals(platform.manifestDigest, written.images[i]!.manifestDigest);
      assertEquals(platform.configDigest, written.images[i]!.configDigest);
      assertEquals(platform.layers.map((l) => l.digest), written.images[i]!.layerDigests);
      assertEquals(platform.layers.map((l) => l.compression), ["gzip", "gzip"]);
    }
    assertEquals(image.layers.length, 4, "the image's layers: those of every platform");
    assertEquals(report.totals, {
      images: 1,
      platforms: 2,
      referrers: 0,
      blobs: 6,
      bytes: report.totals.bytes,
    });
  });
});

integrationTest("skopeo docker-archive (umoci-built image): skopeo-docker-archive", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/l1/etc`, { recursive: true });
    await Deno.writeTextFile(`${dir}/l1/etc/hello`, "hello\n");
    const built = await umociImage(`${dir}/layout`, "v1", [`${dir}/l1`]);
    await skopeoArchive("docker-archive", `${dir}/layout`, "v1", `${dir}/app.tar`, {
      name: "app",
    });
    const report = assertArchiveReport(await inspectArchive(`${dir}/app.tar`));
    assertEquals(report.format, "skopeo-docker-archive");
    const image = report.images[0]!;
    assertEquals(image.names, ["docker.io/library/app:v1"]);
    assertEquals(image.configDigest, built.configDigest);
    // skopeo stores layers uncompressed: the digests are the diff IDs.
    assertEquals(image.layers.map((l) => l.digest), built.layerDiffIds);
    assertEquals(image.layers.map((l) => l.compression), built.layerDiffIds.map(() => "none"));
    // umoci writes the host's platform into the config.
    assertEquals(image.platforms[0]!.os, "linux");
    assert(image.platforms[0]!.architecture !== "unknown");
  });
}, { tools: ["skopeo", "umoci"] });

Deno.test("a pipe, .tar.gz, .tar.zst and .tar.xz report what the file does", async () => {
  await withDir(async (dir) => {
    const tar = `${dir}/app.tar`;
    const { images } = await writeDocker25Save(tar, [
      { name: "app:1", layerSizes: [LARGE, 800] },
      { name: "other:1", layerSizes: [600] },
    ]);
    const bytes = await Deno.readFile(tar);
    await Deno.writeFile(`${tar}.gz`, gzipSync(bytes));
    await Deno.writeFile(`${tar}.zst`, zstdCompressSync(bytes));
    await run("xz", ["-k", "-T1", tar]);
    const fromFile = await inspectArchive(tar);
    assertEquals(fromFile.images[0]!.layers[0]!.digest, images[0]!.layerDigests[0]);

    const piped = assertArchiveReport(await inspectPiped(tar));
    assertEquals(piped.archive, {
      path: "-",
      compression: "none",
      streamed: true,
      directory: false,
      tarBytes: fromFile.archive.tarBytes,
    });
    assertEquals(content(piped), content(fromFile));
    for (const [suffix, compression] of [[".gz", "gzip"], [".zst", "zstd"], [".xz", "xz"]]) {
      const report = assertArchiveReport(await inspectArchive(`${tar}${suffix}`));
      assertEquals(report.archive.compression, compression, suffix);
      assertEquals(report.archive.streamed, true, suffix);
      assertEquals(content(report), content(fromFile), suffix);
    }
  });
});

Deno.test("a gzip'd docker save before 25: large uncompressed layers hashed as they pass", async () => {
  await withDir(async (dir) => {
    const tar = `${dir}/app.tar`;
    const { images } = await writeDockerSaveLegacy(tar, [{ name: "app:1", layerSizes: [LARGE] }]);
    await Deno.writeFile(`${tar}.gz`, gzipSync(await Deno.readFile(tar)));
    const report = assertArchiveReport(await inspectArchive(`${tar}.gz`));
    assertEquals(report.images[0]!.layers.map((l) => l.digest), images[0]!.layerDiffIds);
    assertEquals(content(report), content(await inspectArchive(tar)));
  });
});

Deno.test("a layer whose bytes contradict its media type is reported as its bytes say", async () => {
  await withDir(async (dir) => {
    const encoder = new TextEncoder();
    const layer = await tarBytes(async (tar) => {
      await tar.addFile("hello", encoder.encode("hello\n"));
    });
    const config = encoder.encode(JSON.stringify({
      architecture: "arm",
      os: "linux",
      variant: "v7",
      rootfs: { type: "layers", diff_ids: [sha256Digest(layer)] },
    }));
    const manifest = encoder.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: sha256Digest(config),
        size: config.length,
      },
      layers: [{
        // Says gzip; the bytes are a plain tar.
        mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
        digest: sha256Digest(layer),
        size: layer.length,
      }],
    }));
    const blob = (bytes: Uint8Array) => `blobs/sha256/${sha256Digest(bytes).slice(7)}`;
    const archive = await tarBytes(async (tar) => {
      for (const b of [layer, config, manifest]) await tar.addFile(blob(b), b);
      await tar.addFile("oci-layout", encoder.encode('{"imageLayoutVersion":"1.0.0"}'));
      await tar.addFile(
        "index.json",
        encoder.encode(JSON.stringify({
          schemaVersion: 2,
          manifests: [{
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            digest: sha256Digest(manifest),
            size: manifest.length,
          }],
        })),
      );
    });
    await Deno.writeFile(`${dir}/odd.tar`, archive);
    const report = assertArchiveReport(await inspectArchive(`${dir}/odd.tar`));
    const image = report.images[0]!;
    assertEquals(image.names, []);
    assertEquals(image.platforms[0]!.variant, "v7");
    assertEquals(image.layers[0]!.compression, "none");
    assertEquals(image.notes.length, 1);
    assertStringIncludes(image.notes[0]!, "is uncompressed but its media type");
  });
});

Deno.test("not an image archive, or cut short: an ArchiveError naming the archive", async () => {
  await withDir(async (dir) => {
    await writeOciArchive(`${dir}/app.tar`, [{ name: "app:1" }]);
    const bytes = await Deno.readFile(`${dir}/app.tar`);
    await Deno.writeFile(`${dir}/cut.tar`, bytes.subarray(0, 3000));
    await Deno.writeFile(`${dir}/cut.tar.gz`, gzipSync(bytes).subarray(0, 500));
    await Deno.writeFile(`${dir}/junk.tar`, new TextEncoder().encode("not a tar at all\n"));
    const plain = await tarBytes(async (tar) => {
      await tar.addFile("hello.txt", new TextEncoder().encode("hi"));
    });
    await Deno.writeFile(`${dir}/plain.tar`, plain);
    const cases: [string, string][] = [
      ["cut.tar", "truncated"],
      ["cut.tar.gz", "ends early"],
      ["junk.tar", "not a tar"],
      ["plain.tar", "not an image archive"],
    ];
    for (const [name, needle] of cases) {
      const error = await assertRejects(() => inspectArchive(`${dir}/${name}`), ArchiveError);
      assertStringIncludes(error.message, `${dir}/${name}`, name);
      assertStringIncludes(error.message, needle, name);
    }
  });
});

integrationTest("an image directory (skopeo oci: and dir:) reports what its tar does", async () => {
  await withDir(async (dir) => {
    const { images } = await writeDockerSaveLegacy(`${dir}/app.tar`, [
      { name: "app:1", layerSizes: [LARGE, 700] },
    ]);
    await skopeoCopy(`docker-archive:${dir}/app.tar`, `oci:${dir}/oci:app:1`);
    await skopeoCopy(`docker-archive:${dir}/app.tar`, `dir:${dir}/dir`);
    for (const [name, format] of [["oci", "oci-layout"], ["dir", "dir"]]) {
      const fromDir = assertArchiveReport(await inspectArchive(`${dir}/${name}`));
      assertEquals(fromDir.format, format);
      assertEquals(fromDir.archive.directory, true);
      assertEquals(fromDir.archive.streamed, false);
      // skopeo converts the config to OCI's for oci:; dir: keeps Docker's.
      if (format === "dir") assertEquals(fromDir.images[0]!.configDigest, images[0]!.configDigest);
      await run("tar", ["cf", `${dir}/${name}.tar`, "-C", `${dir}/${name}`, "."]);
      const fromTar = assertArchiveReport(await inspectArchive(`${dir}/${name}.tar`));
      assertEquals(fromTar.archive.directory, false);
      assertEquals(content(fromDir), content(fromTar));
    }
  });
}, { tools: ["skopeo", "tar"] });

integrationTest(
  "a Docker 25 save whose manifest.json names an image otherwise: both names",
  async () => {
    await withDir(async (dir) => {
      await writeDocker25Save(`${dir}/app.tar`, [{ name: "app:1" }]);
      await Deno.mkdir(`${dir}/save`);
      await run("tar", ["xf", `${dir}/app.tar`, "-C", `${dir}/save`]);
      const manifest = JSON.parse(await Deno.readTextFile(`${dir}/save/manifest.json`));
      manifest[0].RepoTags = ["other:2"];
      await Deno.writeTextFile(`${dir}/save/manifest.json`, JSON.stringify(manifest));
      const report = assertArchiveReport(await inspectArchive(`${dir}/save`));
      const image = report.images[0]!;
      assertEquals(image.names, ["docker.io/library/app:1", "1"]);
      assertEquals(image.manifestJsonNames, ["other:2"]);
      assertStringIncludes(image.notes.join("\n"), 'manifest.json names this image "other:2"');
      const agreeing = assertArchiveReport(await inspectArchive(`${dir}/app.tar`));
      assertEquals(agreeing.images[0]!.manifestJsonNames, []);
    });
  },
  { tools: ["tar"] },
);

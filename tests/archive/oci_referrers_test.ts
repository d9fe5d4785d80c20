/**
 * Signatures, SBOMs and attestations stored in an OCI layout (and in a Docker 25+ save, which
 * carries one) hang off the manifest they refer to: under a cosign tag, in the fallback tag's
 * list, or listed by themselves with a `subject`; recursively (a signature of the SBOM); never
 * an image of their own. One whose subject the archive lacks is left out with a note, and so is
 * one whose blobs are missing. Read from a directory, a tar of it, and a gzip stream of the tar.
 */
import { indexArchive, loadImages, openImageArchive } from "../../src/archive/image_archive.ts";
import type { ArchiveBlob, ImageArchive } from "../../src/archive/image.ts";
import { referrersOf } from "../../src/image/graph.ts";
import { readArchiveStream } from "../../src/archive/stream_archive.ts";
import { ArchiveError } from "../../src/errors.ts";
import { fallbackTag, referrersIndexBytes } from "../../src/image/referrer.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../helpers/assert.ts";
import { run } from "../helpers/command.ts";
import {
  buildBuildxIndex,
  buildSbomReferrer,
  buildSmallImage,
  FixtureType,
} from "../helpers/signed_fixtures.ts";
import { integrationTest } from "../helpers/tools.ts";
import { tempDir } from "./_tar_fixtures.ts";
import { listEntry, type SignedSet, signedSet, writeLayout } from "./_referrer_layouts.ts";

async function blobText(blob: ArchiveBlob): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of blob.read(0, blob.size)) {
    text += decoder.decode(chunk, { stream: true });
  }
  return text + decoder.decode();
}

/** Checks the graph `signedSet` gives: one image, its signature and SBOM, the SBOM's signature. */
async function checkSignedGraph(archive: ImageArchive, set: SignedSet, names = ["1"]) {
  assertEquals(archive.images.length, 1, "referrers are never images of their own");
  const root = archive.images[0]!.root;
  assertEquals(root.digest, set.image.digest);
  assertEquals(archive.images[0]!.names, names);
  const byDigest = new Map((root.referrers ?? []).map((r) => [r.node.digest, r]));
  assertEquals(byDigest.size, 2);
  const sig = byDigest.get(set.sig.manifest.digest)!;
  assertEquals(sig.kind, "signature");
  assertEquals(sig.attached, { by: "tag", tag: set.sig.tag });
  assertEquals(sig.node.bytes, set.sig.manifest.bytes, "stored byte for byte");
  const payload = sig.node.blobs.find((b) => b.mediaType === FixtureType.simpleSigning)!;
  assertEquals(await blobText(payload), new TextDecoder().decode(set.sig.payload));
  const sbom = byDigest.get(set.sbom.manifest.digest)!;
  assertEquals(sbom.kind, "sbom");
  assertEquals(sbom.artifactType, FixtureType.spdx);
  assertEquals(sbom.attached, { by: "subject" });
  assertEquals(sbom.node.referrers?.length, 1, "the SBOM's signature hangs off the SBOM");
  const sbomSig = sbom.node.referrers![0]!;
  assertEquals(sbomSig.node.digest, set.sbomSig.manifest.digest);
  assertEquals(sbomSig.kind, "signature");
  assertEquals(
    referrersOf(root).map((p) => [p.subject, p.referrer.node.digest]).sort(),
    [
      [set.image.digest, set.sig.manifest.digest],
      [set.image.digest, set.sbom.manifest.digest],
      [set.sbom.manifest.digest, set.sbomSig.manifest.digest],
    ].sort(),
  );
  assertEquals(archive.notes, undefined);
}

integrationTest(
  "an OCI layout's cosign tag, fallback lists and a signature of the SBOM hang off the image",
  async () => {
    await using dir = await tempDir();
    const set = await signedSet(dir.path);
    const layout = `${dir.path}/layout`;
    await writeLayout(
      layout,
      [
        { manifest: set.image, refName: "1" },
        { manifest: set.sig.manifest, refName: set.sig.tag },
        listEntry(set.imageList, set.image.digest),
        listEntry(set.sbomList, set.sbom.manifest.digest),
      ],
      [set.image, set.sig.manifest, set.sbom.manifest, set.sbomSig.manifest],
      [
        { bytes: set.imageList },
        { bytes: set.sbomList },
      ],
    );
    await checkSignedGraph(await openImageArchive(layout), set);
    // The same as a tar, and as a gzip stream of that tar (JSON and small blobs are held).
    const tar = `${dir.path}/layout.tar`;
    await run("tar", ["-cf", tar, "-C", layout, "oci-layout", "index.json", "blobs"]);
    await checkSignedGraph(await openImageArchive(tar), set);
    await run("gzip", ["-k", tar]);
    const file = await Deno.open(`${tar}.gz`);
    const streamed = await readArchiveStream({ label: "layout.tar.gz", stream: file.readable });
    await checkSignedGraph(await loadImages(streamed.index), set);
  },
  { tools: ["openssl", "tar", "gzip"] },
);

integrationTest(
  "referrers listed by themselves (subject, no tag), as oras and Docker 29 write them",
  async () => {
    await using dir = await tempDir();
    const set = await signedSet(dir.path);
    const layout = `${dir.path}/layout`;
    await writeLayout(layout, [
      { manifest: set.sbomSig.manifest },
      { manifest: set.image, refName: "1" },
      { manifest: set.sig.manifest, refName: set.sig.tag },
      { manifest: set.sbom.manifest },
    ], [set.image, set.sig.manifest, set.sbom.manifest, set.sbomSig.manifest]);
    await checkSignedGraph(await openImageArchive(layout), set);
  },
  { tools: ["openssl"] },
);

integrationTest(
  "a Docker 25+ save: manifest.json lists the image alone, index.json its referrers",
  async () => {
    await using dir = await tempDir();
    const set = await signedSet(dir.path);
    const layout = `${dir.path}/layout`;
    await writeLayout(
      layout,
      [
        { manifest: set.image, refName: "1" },
        { manifest: set.sig.manifest, refName: set.sig.tag },
        listEntry(set.imageList, set.image.digest),
        listEntry(set.sbomList, set.sbom.manifest.digest),
      ],
      [set.image, set.sig.manifest, set.sbom.manifest, set.sbomSig.manifest],
      [
        { bytes: set.imageList },
        { bytes: set.sbomList },
      ],
    );
    const config = set.image.blobs[0]!;
    const layers = set.image.blobs.slice(1).map((b) => `blobs/sha256/${b.digest.slice(7)}`);
    await Deno.writeTextFile(
      `${layout}/manifest.json`,
      JSON.stringify([{
        Config: `blobs/sha256/${config.digest.slice(7)}`,
        RepoTags: ["app:1"],
        Layers: layers,
      }]),
    );
    const tar = `${dir.path}/save.tar`;
    await run("tar", [
      "-cf",
      tar,
      "-C",
      layout,
      "blobs",
      "index.json",
      "manifest.json",
      "oci-layout",
    ]);
    const archive = await openImageArchive(tar);
    assertEquals(archive.format, "oci-layout");
    assertEquals(archive.images.length, 1);
    assertEquals(archive.images[0]!.legacyNames, ["app:1"]);
    assertEquals(referrersOf(archive.images[0]!.root).length, 3);
  },
  { tools: ["openssl", "tar"] },
);

integrationTest(
  "a referrer of a platform manifest hangs off that platform; buildx attestations stay children",
  async () => {
    await using dir = await tempDir();
    const buildx = await buildBuildxIndex("app:1");
    const arm64 = buildx.platforms[1]!;
    const sbom = buildSbomReferrer("app", arm64);
    const list = referrersIndexBytes([sbom.descriptor]);
    await writeLayout(
      dir.path,
      [
        { manifest: buildx.index, refName: "1" },
        listEntry(list, arm64.digest),
      ],
      [buildx.index, sbom.manifest],
      [{ bytes: list }],
    );
    const archive = await openImageArchive(dir.path);
    assertEquals(archive.images.length, 1);
    const root = archive.images[0]!.root;
    assertEquals(root.children.length, 4, "two platforms and their attestation manifests");
    assertEquals(root.referrers, undefined);
    const child = root.children.find((c) => c.digest === arm64.digest)!;
    assertEquals(child.referrers?.map((r) => [r.node.digest, r.kind]), [[
      sbom.manifest.digest,
      "sbom",
    ]]);
  },
);

integrationTest("a referrer whose subject the archive lacks is left out with a note", async () => {
  await using dir = await tempDir();
  const image = await buildSmallImage("kept");
  const other = await buildSmallImage("elsewhere");
  const stray = buildSbomReferrer("app", other);
  await writeLayout(dir.path, [
    { manifest: image, refName: "1" },
    { manifest: stray.manifest },
  ], [image, stray.manifest]);
  const archive = await openImageArchive(dir.path);
  assertEquals(archive.images.map((i) => i.root.digest), [image.digest]);
  assertEquals(archive.images[0]!.root.referrers, undefined);
  assertEquals(archive.notes?.length, 1);
  assertStringIncludes(
    archive.notes![0]!,
    `sbom ${stray.manifest.digest} refers to ${other.digest}`,
  );
  assertStringIncludes(archive.notes![0]!, "left out");
});

integrationTest(
  "a referrer whose blob is missing is left out with a note; the image still loads",
  async () => {
    await using dir = await tempDir();
    const image = await buildSmallImage("kept");
    const sbom = buildSbomReferrer("app", image);
    await writeLayout(dir.path, [
      { manifest: image, refName: "1" },
      { manifest: sbom.manifest },
    ], [image, sbom.manifest]);
    const spdx = sbom.manifest.blobs.find((b) => b.mediaType === FixtureType.spdx)!;
    await Deno.remove(`${dir.path}/blobs/sha256/${spdx.digest.slice(7)}`);
    const archive = await openImageArchive(dir.path);
    assertEquals(archive.images.length, 1);
    assertEquals(archive.images[0]!.root.referrers, undefined);
    assertStringIncludes(archive.notes![0]!, `sbom ${sbom.manifest.digest}`);
    assertStringIncludes(archive.notes![0]!, `layer ${spdx.digest} is missing from the archive`);
  },
);

integrationTest(
  "an entry named by the fallback tag that is not an index is an error naming it",
  async () => {
    await using dir = await tempDir();
    const image = await buildSmallImage("kept");
    const other = await buildSmallImage("other");
    await writeLayout(dir.path, [
      { manifest: image, refName: "1" },
      { manifest: other, refName: fallbackTag(image.digest) },
    ], [image, other]);
    const error = await assertRejects(() => openImageArchive(dir.path), ArchiveError);
    assertStringIncludes(
      error.message,
      `${fallbackTag(image.digest)} is named as the referrers list`,
    );
  },
);

integrationTest(
  "a corrupted referrer manifest fails its digest check: left out, named in the note",
  async () => {
    await using dir = await tempDir();
    const image = await buildSmallImage("kept");
    const sbom = buildSbomReferrer("app", image);
    const list = referrersIndexBytes([sbom.descriptor]);
    await writeLayout(
      dir.path,
      [
        { manifest: image, refName: "1" },
        listEntry(list, image.digest),
      ],
      [image, sbom.manifest],
      [{ bytes: list }],
    );
    const path = `${dir.path}/blobs/sha256/${sbom.manifest.digest.slice(7)}`;
    const bytes = await Deno.readFile(path);
    bytes[bytes.length - 2] = bytes[bytes.length - 2]! ^ 0x01;
    await Deno.writeFile(path, bytes);
    const archive = await openImageArchive(dir.path);
    assertEquals(archive.images[0]!.root.referrers, undefined);
    assertStringIncludes(archive.notes![0]!, "does not match its digest");
    // Indexing alone never fails on it: only loading reads manifests.
    assert((await indexArchive(dir.path)).get("index.json") !== undefined);
  },
);

integrationTest(
  "a fallback list missing from blobs/ is a note; the image still loads",
  async () => {
    await using dir = await tempDir();
    const image = await buildSmallImage("kept");
    const sbom = buildSbomReferrer("app", image);
    const list = referrersIndexBytes([sbom.descriptor]);
    await writeLayout(dir.path, [
      { manifest: image, refName: "1" },
      listEntry(list, image.digest),
    ], [image, sbom.manifest]);
    const archive = await openImageArchive(dir.path);
    assertEquals(archive.images.map((i) => i.root.digest), [image.digest]);
    assertEquals(archive.images[0]!.root.referrers, undefined);
    assertStringIncludes(archive.notes![0]!, `the referrers list ${fallbackTag(image.digest)}`);
    assertStringIncludes(archive.notes![0]!, "is missing from the archive");
  },
);

integrationTest(
  "containerd's export (Docker 29.1): referrers annotated with their subject, cosign's .sig among them",
  async () => {
    await using dir = await tempDir();
    const set = await signedSet(dir.path);
    const subject = (digest: string) => ({ "org.opencontainers.image.referrer.subject": digest });
    await writeLayout(dir.path, [
      {
        manifest: set.image,
        refName: "1",
        annotations: { "io.containerd.image.name": "docker.io/library/app:1" },
      },
      { manifest: set.sig.manifest, annotations: subject(set.image.digest) },
      { manifest: set.sbom.manifest, annotations: subject(set.image.digest) },
      { manifest: set.sbomSig.manifest, annotations: subject(set.sbom.manifest.digest) },
    ], [set.image, set.sig.manifest, set.sbom.manifest, set.sbomSig.manifest]);
    const archive = await openImageArchive(dir.path);
    await checkSignedGraph(archive, set, ["docker.io/library/app:1", "1"]);
  },
);

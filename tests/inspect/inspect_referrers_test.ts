/**
 * `inspectArchive` shows signatures, SBOMs and attestations as what they are (kind, artifact
 * type, subject, size), never as platforms: a buildx index's attestation manifests, a cosign
 * `.sig` tag, an SBOM in the fallback list and a signature of that SBOM. The text rendering
 * says the same. A referrer whose subject is missing is a note on the archive.
 */
import { renderInspectText } from "../../src/cli/inspect_text.ts";
import { inspectArchive } from "../../src/inspect/inspect_archive.ts";
import { referrersIndexBytes } from "../../src/image/referrer.ts";
import { assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import {
  buildBuildxIndex,
  buildSbomReferrer,
  buildSmallImage,
} from "../helpers/signed_fixtures.ts";
import { integrationTest } from "../helpers/tools.ts";
import { listEntry, signedSet, writeLayout } from "../archive/_referrer_layouts.ts";
import { tempDir } from "../archive/_tar_fixtures.ts";
import { assertArchiveReport } from "./_report_schema.ts";

integrationTest(
  "a buildx index's attestations are referrers of their platforms, not platforms",
  async () => {
    await using dir = await tempDir();
    const buildx = await buildBuildxIndex("app:1");
    const sbom = buildSbomReferrer("app", buildx.platforms[0]!);
    const list = referrersIndexBytes([sbom.descriptor]);
    await writeLayout(
      dir.path,
      [
        { manifest: buildx.index, refName: "1" },
        listEntry(list, buildx.platforms[0]!.digest),
      ],
      [buildx.index, sbom.manifest],
      [{ bytes: list }],
    );
    const report = assertArchiveReport(await inspectArchive(dir.path));
    const image = report.images[0]!;
    assertEquals(
      image.platforms.map((p) => `${p.os}/${p.architecture}`),
      ["linux/amd64", "linux/arm64"],
    );
    assertEquals(report.totals.platforms, 2);
    assertEquals(report.totals.referrers, 3);
    const attestations = image.referrers.filter((r) => r.attachedBy === "index");
    assertEquals(
      attestations.map((r) => [r.digest, r.subject, r.kind]),
      buildx.attestations.map((a, i) => [a.digest, buildx.platforms[i]!.digest, "attestation"]),
    );
    assertEquals(attestations[0]!.artifactType, "application/vnd.in-toto+json");
    assertEquals(attestations[0]!.predicateTypes, ["https://slsa.dev/provenance/v0.2"]);
    assertEquals(attestations[0]!.tag, null);
    assertEquals(attestations[0]!.size, buildx.attestations[0]!.size);
    const attestationBytes = buildx.attestations[0]!.size +
      buildx.attestations[0]!.blobs.reduce((n, b) => n + b.bytes.length, 0);
    assertEquals(attestations[0]!.totalBytes, attestationBytes);
    const [spdx] = image.referrers.filter((r) => r.attachedBy === "subject");
    assertEquals(spdx, {
      kind: "sbom",
      artifactType: "application/spdx+json",
      digest: sbom.manifest.digest,
      mediaType: sbom.manifest.mediaType,
      subject: buildx.platforms[0]!.digest,
      attachedBy: "subject",
      tag: null,
      size: sbom.manifest.size,
      totalBytes: sbom.manifest.size + sbom.manifest.blobs.reduce((n, b) => n + b.bytes.length, 0),
      predicateTypes: [],
    });
    // The attestations' blobs count in the totals; no layer of theirs is an image layer.
    const attestationLayers = buildx.attestations.flatMap((a) => a.blobs.map((b) => b.digest));
    assertEquals(image.layers.filter((l) => attestationLayers.includes(l.digest)), []);

    const text = renderInspectText(report);
    assertStringIncludes(
      text,
      "Totals:   1 image, 2 platforms, 3 referrers (signatures, SBOMs, attestations)",
    );
    assertStringIncludes(text, "  Referrers: 3\n");
    assertStringIncludes(
      text,
      `    attestation  ${buildx.attestations[1]!.digest}`,
    );
    assertStringIncludes(text, "application/vnd.in-toto+json (https://slsa.dev/provenance/v0.2)\n");
    assertStringIncludes(
      text,
      `of ${buildx.platforms[1]!.digest}, an attestation manifest in the index\n`,
    );
    assertStringIncludes(text, `    sbom         ${sbom.manifest.digest}`);
    assertEquals(text.includes("unknown/unknown"), false, "never a platform");
  },
);

integrationTest("a signed image: its .sig tag, its SBOM and the SBOM's signature", async () => {
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
  const report = assertArchiveReport(await inspectArchive(layout));
  assertEquals(report.totals.images, 1);
  assertEquals(report.totals.platforms, 1);
  const referrers = report.images[0]!.referrers;
  assertEquals(
    referrers.map((r) => [r.kind, r.digest, r.subject, r.attachedBy, r.tag]).sort(),
    [
      ["signature", set.sig.manifest.digest, set.image.digest, "tag", set.sig.tag],
      ["sbom", set.sbom.manifest.digest, set.image.digest, "subject", null],
      ["signature", set.sbomSig.manifest.digest, set.sbom.manifest.digest, "subject", null],
    ].sort(),
  );
  const text = renderInspectText(report);
  assertStringIncludes(text, `, tag ${set.sig.tag}\n`);
  assertStringIncludes(text, `of ${set.sbom.manifest.digest}\n`);
}, { tools: ["openssl"] });

integrationTest("a referrer of a manifest the archive lacks: a note on the archive", async () => {
  await using dir = await tempDir();
  const image = await buildSmallImage("kept");
  const stray = buildSbomReferrer("app", await buildSmallImage("gone"));
  await writeLayout(dir.path, [{ manifest: image, refName: "1" }, { manifest: stray.manifest }], [
    image,
    stray.manifest,
  ]);
  const report = assertArchiveReport(await inspectArchive(dir.path));
  assertEquals(report.totals.referrers, 0);
  assertEquals(report.notes.length, 1);
  assertStringIncludes(report.notes[0]!, `sbom ${stray.manifest.digest} refers to`);
  assertStringIncludes(renderInspectText(report), `\nNote: sbom ${stray.manifest.digest}`);
});

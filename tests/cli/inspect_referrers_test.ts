/**
 * `inspect` as a subprocess, on an OCI layout (a directory, and a tar of it through a pipe)
 * holding a signed image and a buildx index: signatures, SBOMs and attestations are listed as
 * what they are, in text and in JSON, and never counted or shown as platforms.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { runCli } from "../helpers/cli.ts";
import { run } from "../helpers/command.ts";
import { buildBuildxIndex } from "../helpers/signed_fixtures.ts";
import { integrationTest } from "../helpers/tools.ts";
import { listEntry, signedSet, writeLayout } from "../archive/_referrer_layouts.ts";
import { tempDir } from "../archive/_tar_fixtures.ts";
import { assertReport } from "../inspect/_report_schema.ts";

integrationTest(
  "inspect lists a signed image's and a buildx index's referrers, never as platforms",
  async () => {
    await using dir = await tempDir();
    const set = await signedSet(dir.path);
    const buildx = await buildBuildxIndex("multi:1");
    const layout = `${dir.path}/layout`;
    await writeLayout(
      layout,
      [
        { manifest: set.image, refName: "1" },
        { manifest: buildx.index, refName: "multi" },
        { manifest: set.sig.manifest, refName: set.sig.tag },
        listEntry(set.imageList, set.image.digest),
        listEntry(set.sbomList, set.sbom.manifest.digest),
      ],
      [buildx.index, set.image, set.sig.manifest, set.sbom.manifest, set.sbomSig.manifest],
      [
        { bytes: set.imageList },
        { bytes: set.sbomList },
      ],
    );

    const text = await runCli(["inspect", layout]);
    assertEquals([text.code, text.stderr], [0, ""]);
    assertStringIncludes(
      text.stdout,
      "Totals:   2 images, 3 platforms, 5 referrers (signatures, SBOMs, attestations), ",
    );
    assertStringIncludes(text.stdout, `    signature    ${set.sig.manifest.digest}  `);
    assertStringIncludes(text.stdout, `of ${set.image.digest}, tag ${set.sig.tag}\n`);
    assertStringIncludes(text.stdout, `    sbom         ${set.sbom.manifest.digest}  `);
    assertStringIncludes(text.stdout, "application/spdx+json\n");
    assertStringIncludes(text.stdout, `    signature    ${set.sbomSig.manifest.digest}  `);
    assertStringIncludes(text.stdout, `of ${set.sbom.manifest.digest}\n`);
    assertStringIncludes(text.stdout, `    attestation  ${buildx.attestations[0]!.digest}  `);
    assertEquals(text.stdout.includes("unknown"), false, "no attestation shown as a platform");

    const tar = `${dir.path}/layout.tar`;
    await run("tar", ["-cf", tar, "-C", layout, "oci-layout", "index.json", "blobs"]);
    const piped = await runCli(["inspect", "-", "--output", "json"], { stdinFile: tar });
    assertEquals([piped.code, piped.stderr], [0, ""]);
    const report = assertReport(JSON.parse(piped.stdout));
    assertEquals(report.totals.platforms, 3);
    assertEquals(report.totals.referrers, 5);
    const [signed, multi] = report.images;
    assertEquals(signed!.platforms.length, 1);
    assertEquals(
      signed!.referrers.map((r) => [r.kind, r.attachedBy, r.subject]),
      [
        ["signature", "tag", set.image.digest],
        ["sbom", "subject", set.image.digest],
        ["signature", "subject", set.sbom.manifest.digest],
      ],
    );
    assertEquals(multi!.platforms.map((p) => p.architecture), ["amd64", "arm64"]);
    assert(multi!.referrers.every((r) => r.kind === "attestation" && r.attachedBy === "index"));
    assertEquals(
      multi!.referrers.map((r) => r.subject),
      buildx.platforms.map((p) => p.digest),
    );
  },
  { tools: ["openssl", "tar"] },
);

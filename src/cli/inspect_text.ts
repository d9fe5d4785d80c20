/**
 * `inspect`'s text output: the report (`inspect/archive_report.ts`) as a summary for people,
 * full digests included so they can be copied. `--output json` prints the report itself.
 */
import { ARCHIVE_KIND_NAMES } from "../inspect/archive_kind.ts";
import type {
  ArchiveReport,
  ImageReport,
  LayerReport,
  PlatformReport,
  ReferrerReport,
} from "../inspect/archive_report.ts";
import { formatBytes } from "../byte_size.ts";

/** The report as lines of text, each ending in a newline. */
export function renderInspectText(report: ArchiveReport): string {
  const { archive, totals } = report;
  const how = archive.directory
    ? ["a directory, read in place", `${formatBytes(archive.tarBytes)} of files`]
    : [
      archive.compression === "none" ? "uncompressed" : `${archive.compression}-compressed`,
      archive.streamed ? "read as a stream" : "indexed in place",
      `${formatBytes(archive.tarBytes)} of tar`,
    ];
  const out = [
    `Archive:  ${archive.path} (${how.join(", ")})`,
    `Format:   ${ARCHIVE_KIND_NAMES[report.format]} [${report.format}]`,
    `Totals:   ${count(totals.images, "image")}, ${count(totals.platforms, "platform")}, ` +
    (totals.referrers > 0
      ? `${count(totals.referrers, "referrer")} (signatures, SBOMs, attestations), `
      : "") +
    `${count(totals.blobs, "blob")} (configs and layers, each once), ${formatBytes(totals.bytes)}`,
    ...report.notes.map((note) => `Note: ${note}`),
  ];
  report.images.forEach((image, i) => out.push("", ...imageLines(image, i + 1)));
  return out.map((line) => `${line}\n`).join("");
}

function imageLines(image: ImageReport, n: number): string[] {
  const names = image.names.length === 0 ? "(untagged)" : image.names.join(", ");
  const out = [`Image ${n}: ${names}`];
  if (image.configDigest === null) {
    out.push(`  Index:     ${image.manifestDigest}  ${image.mediaType}`);
    for (const platform of image.platforms) {
      out.push(`  Platform:  ${platformName(platform)}`);
      out.push(...manifestLines(platform, "    "));
    }
  } else {
    const platform = image.platforms[0]!;
    out.push(`  Platform:  ${platformName(platform)}`);
    out.push(...manifestLines(platform, "  "));
  }
  if (image.referrers.length > 0) {
    out.push(`  Referrers: ${image.referrers.length}`);
    for (const referrer of image.referrers) out.push(...referrerLines(referrer, "    "));
  }
  for (const note of image.notes) out.push(`  Note: ${note}`);
  return out;
}

/**
 * A signature, SBOM or attestation: what it is, its digest, its bytes and type, then what it
 * refers to and how it is attached.
 */
function referrerLines(referrer: ReferrerReport, indent: string): string[] {
  const via = referrer.attachedBy === "tag"
    ? `, tag ${referrer.tag}`
    : referrer.attachedBy === "index"
    ? ", an attestation manifest in the index"
    : "";
  const predicates = referrer.predicateTypes.length > 0
    ? ` (${referrer.predicateTypes.join(", ")})`
    : "";
  return [
    `${indent}${referrer.kind.padEnd(11)}  ${referrer.digest}  ` +
    `${formatBytes(referrer.totalBytes).padStart(10)}  ${referrer.artifactType}${predicates}`,
    `${indent}${" ".repeat(13)}of ${referrer.subject}${via}`,
  ];
}

function manifestLines(platform: PlatformReport, indent: string): string[] {
  const bytes = platform.layers.reduce((sum, layer) => sum + layer.size, 0);
  return [
    `${indent}Manifest:  ${platform.manifestDigest}  ${platform.mediaType}`,
    `${indent}Config:    ${platform.configDigest}`,
    `${indent}Layers:    ${platform.layers.length}, ${formatBytes(bytes)}`,
    ...platform.layers.map((layer) => `${indent}  ${layerLine(layer)}`),
  ];
}

function layerLine(layer: LayerReport): string {
  return `${layer.digest}  ${formatBytes(layer.size).padStart(10)}  ` +
    `${layer.compression.padEnd(4)}  ${layer.mediaType}`;
}

function platformName(platform: PlatformReport): string {
  return [platform.os, platform.architecture, platform.variant].filter((p) => p !== null)
    .join("/");
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

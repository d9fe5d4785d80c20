/**
 * The `inspect --output json` document as the README's "inspect" section documents it, as a
 * hand-written guard: every field present with its type, no field that is not documented.
 * `DOCUMENTED_FIELDS` lists the names the README must mention.
 */
import type { ArchiveReport } from "../../src/inspect/archive_report.ts";

const DIGEST = /^sha256:[a-f0-9]{64}$/;
const KINDS = ["docker-save", "docker-save-25", "skopeo-docker-archive", "oci-layout", "dir"];

/** Every field name of the document, at any depth. */
export const DOCUMENTED_FIELDS = [
  "schemaVersion",
  "success",
  "errors",
  "archive",
  "path",
  "compression",
  "streamed",
  "directory",
  "tarBytes",
  "format",
  "images",
  "names",
  "manifestJsonNames",
  "manifestDigest",
  "mediaType",
  "platforms",
  "os",
  "architecture",
  "variant",
  "configDigest",
  "layers",
  "digest",
  "size",
  "notes",
  "referrers",
  "kind",
  "artifactType",
  "subject",
  "attachedBy",
  "tag",
  "totalBytes",
  "predicateTypes",
  "totals",
  "blobs",
  "bytes",
] as const;

/**
 * {@linkcode assertReport} for the report `inspectArchive` returns, which the CLI prints with
 * `success` and `errors` added.
 */
export function assertArchiveReport(value: ArchiveReport): ArchiveReport {
  assertReport({ ...value, success: true, errors: [] });
  return value;
}

/** Throws a `TypeError` naming the first field that breaks the schema; returns the report. */
export function assertReport(value: unknown): ArchiveReport {
  const top = object(value, "$", [
    "schemaVersion",
    "success",
    "archive",
    "format",
    "images",
    "notes",
    "totals",
    "errors",
  ]);
  check(top.schemaVersion === 1, "$.schemaVersion must be 1");
  check(top.success === true, "$.success must be true in a report");
  check(array(top.errors, "$.errors").length === 0, "$.errors must be empty in a report");
  const archive = object(top.archive, "$.archive", [
    "path",
    "compression",
    "streamed",
    "directory",
    "tarBytes",
  ]);
  string(archive.path, "$.archive.path");
  oneOf(archive.compression, ["none", "gzip", "zstd", "xz"], "$.archive.compression");
  check(typeof archive.streamed === "boolean", "$.archive.streamed must be a boolean");
  check(typeof archive.directory === "boolean", "$.archive.directory must be a boolean");
  check(!(archive.directory && archive.streamed), "$.archive: a directory is never streamed");
  count(archive.tarBytes, "$.archive.tarBytes");
  oneOf(top.format, KINDS, "$.format");
  const images = array(top.images, "$.images");
  check(images.length > 0, "$.images must not be empty");
  images.forEach((item, i) => image(item, `$.images[${i}]`));
  array(top.notes, "$.notes").forEach((n, i) => string(n, `$.notes[${i}]`));
  const totals = object(top.totals, "$.totals", [
    "images",
    "platforms",
    "referrers",
    "blobs",
    "bytes",
  ]);
  for (const key of ["images", "platforms", "referrers", "blobs", "bytes"]) {
    count(totals[key], `$.totals.${key}`);
  }
  check(totals.images === images.length, "$.totals.images must count $.images");
  const referrers = images.reduce(
    (n: number, item) => n + ((item as { referrers: unknown[] }).referrers.length),
    0,
  );
  check(totals.referrers === referrers, "$.totals.referrers must count every image's referrers");
  return value as ArchiveReport;
}

function image(value: unknown, where: string): void {
  const obj = object(value, where, [
    "names",
    "manifestJsonNames",
    "manifestDigest",
    "mediaType",
    "platforms",
    "configDigest",
    "layers",
    "notes",
    "referrers",
  ]);
  array(obj.names, `${where}.names`).forEach((n, i) => string(n, `${where}.names[${i}]`));
  array(obj.manifestJsonNames, `${where}.manifestJsonNames`).forEach((n, i) =>
    string(n, `${where}.manifestJsonNames[${i}]`)
  );
  digest(obj.manifestDigest, `${where}.manifestDigest`);
  string(obj.mediaType, `${where}.mediaType`);
  const platforms = array(obj.platforms, `${where}.platforms`);
  check(platforms.length > 0, `${where}.platforms must not be empty`);
  platforms.forEach((p, i) => platform(p, `${where}.platforms[${i}]`));
  if (obj.configDigest !== null) {
    digest(obj.configDigest, `${where}.configDigest`);
    check(platforms.length === 1, `${where}: a configDigest means a single platform`);
  }
  array(obj.layers, `${where}.layers`).forEach((l, i) => layer(l, `${where}.layers[${i}]`));
  array(obj.notes, `${where}.notes`).forEach((n, i) => string(n, `${where}.notes[${i}]`));
  array(obj.referrers, `${where}.referrers`).forEach((r, i) =>
    referrer(r, `${where}.referrers[${i}]`)
  );
}

function referrer(value: unknown, where: string): void {
  const obj = object(value, where, [
    "kind",
    "artifactType",
    "digest",
    "mediaType",
    "subject",
    "attachedBy",
    "tag",
    "size",
    "totalBytes",
    "predicateTypes",
  ]);
  oneOf(obj.kind, ["signature", "sbom", "attestation", "artifact"], `${where}.kind`);
  string(obj.artifactType, `${where}.artifactType`);
  digest(obj.digest, `${where}.digest`);
  string(obj.mediaType, `${where}.mediaType`);
  digest(obj.subject, `${where}.subject`);
  oneOf(obj.attachedBy, ["subject", "tag", "index"], `${where}.attachedBy`);
  if (obj.attachedBy === "tag") string(obj.tag, `${where}.tag`);
  else check(obj.tag === null, `${where}.tag must be null unless attachedBy is tag`);
  count(obj.size, `${where}.size`);
  count(obj.totalBytes, `${where}.totalBytes`);
  array(obj.predicateTypes, `${where}.predicateTypes`).forEach((p, i) =>
    string(p, `${where}.predicateTypes[${i}]`)
  );
}

function platform(value: unknown, where: string): void {
  const obj = object(value, where, [
    "os",
    "architecture",
    "variant",
    "manifestDigest",
    "mediaType",
    "configDigest",
    "layers",
  ]);
  string(obj.os, `${where}.os`);
  string(obj.architecture, `${where}.architecture`);
  if (obj.variant !== null) string(obj.variant, `${where}.variant`);
  digest(obj.manifestDigest, `${where}.manifestDigest`);
  string(obj.mediaType, `${where}.mediaType`);
  digest(obj.configDigest, `${where}.configDigest`);
  array(obj.layers, `${where}.layers`).forEach((l, i) => layer(l, `${where}.layers[${i}]`));
}

function layer(value: unknown, where: string): void {
  const obj = object(value, where, ["digest", "size", "mediaType", "compression"]);
  digest(obj.digest, `${where}.digest`);
  count(obj.size, `${where}.size`);
  string(obj.mediaType, `${where}.mediaType`);
  oneOf(obj.compression, ["none", "gzip", "zstd"], `${where}.compression`);
}

function object(value: unknown, where: string, keys: string[]): Record<string, unknown> {
  check(
    typeof value === "object" && value !== null && !Array.isArray(value),
    `${where} must be an object`,
  );
  const obj = value as Record<string, unknown>;
  check(
    JSON.stringify(Object.keys(obj).sort()) === JSON.stringify([...keys].sort()),
    `${where} must have exactly the fields ${keys.join(", ")}; it has ${Object.keys(obj)}`,
  );
  return obj;
}

function array(value: unknown, where: string): unknown[] {
  check(Array.isArray(value), `${where} must be an array`);
  return value as unknown[];
}

function string(value: unknown, where: string): void {
  check(typeof value === "string" && value !== "", `${where} must be a non-empty string`);
}

function digest(value: unknown, where: string): void {
  check(typeof value === "string" && DIGEST.test(value), `${where} must be a sha256 digest`);
}

function count(value: unknown, where: string): void {
  check(Number.isSafeInteger(value) && (value as number) >= 0, `${where} must be a count`);
}

function oneOf(value: unknown, allowed: string[], where: string): void {
  check(allowed.includes(value as string), `${where} must be one of ${allowed.join(", ")}`);
}

function check(condition: boolean, message: string): void {
  if (!condition) throw new TypeError(`inspect JSON: ${message}`);
}

/**
 * OCI layouts with signatures, SBOMs and attestations, laid out as the shared contract says an
 * archive carries them: `index.json` entries named by the fallback tag (a referrers list) or a
 * cosign tag, or referrer manifests listed by themselves; every manifest and blob in `blobs/`.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { fallbackTag, referrersIndexBytes } from "../../src/image/referrer.ts";
import {
  buildCosignSignature,
  buildSbomReferrer,
  buildSignatureReferrer,
  buildSmallImage,
  type BuiltManifest,
  FixtureType,
  makeSigningKey,
} from "../helpers/signed_fixtures.ts";

const REF_NAME = "org.opencontainers.image.ref.name";

export interface LayoutEntry {
  manifest: { mediaType: string; digest: string; size: number };
  refName?: string;
  /** More annotations of the entry (containerd's `org.opencontainers.image.referrer.subject`). */
  annotations?: Record<string, string>;
}

/** Writes an OCI layout: `index.json` listing `entries`, every manifest and blob in `blobs/`. */
export async function writeLayout(
  dir: string,
  entries: LayoutEntry[],
  stored: BuiltManifest[],
  extra: { bytes: Uint8Array }[] = [],
): Promise<void> {
  await Deno.mkdir(`${dir}/blobs/sha256`, { recursive: true });
  await Deno.writeTextFile(`${dir}/oci-layout`, '{"imageLayoutVersion":"1.0.0"}');
  const write = (bytes: Uint8Array) =>
    Deno.writeFile(`${dir}/blobs/sha256/${sha256Hex(bytes)}`, bytes);
  const visit = async (m: BuiltManifest): Promise<void> => {
    await write(m.bytes);
    for (const blob of m.blobs) await write(blob.bytes);
    for (const child of m.children ?? []) await visit(child);
  };
  for (const m of stored) await visit(m);
  for (const blob of extra) await write(blob.bytes);
  const manifests = entries.map(({ manifest, refName, annotations }) => {
    const all = { ...annotations, ...(refName !== undefined ? { [REF_NAME]: refName } : {}) };
    return {
      mediaType: manifest.mediaType,
      digest: manifest.digest,
      size: manifest.size,
      ...(Object.keys(all).length > 0 ? { annotations: all } : {}),
    };
  });
  await Deno.writeTextFile(
    `${dir}/index.json`,
    JSON.stringify({ schemaVersion: 2, mediaType: FixtureType.ociIndex, manifests }),
  );
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** An image signed the three ways an archive carries it, with a signature of its SBOM. */
export interface SignedSet {
  image: BuiltManifest;
  /** cosign's `.sig` tag. */
  sig: Awaited<ReturnType<typeof buildCosignSignature>>;
  /** An SPDX SBOM, an OCI 1.1 referrer of the image. */
  sbom: ReturnType<typeof buildSbomReferrer>;
  /** A signature of the SBOM, an OCI 1.1 referrer of it. */
  sbomSig: Awaited<ReturnType<typeof buildSignatureReferrer>>;
  /** The fallback tag's list of the image's referrers, and of the SBOM's. */
  imageList: Uint8Array;
  sbomList: Uint8Array;
}

/** {@linkcode SignedSet}, its signing key made in `dir`. */
export async function signedSet(dir: string): Promise<SignedSet> {
  const image = await buildSmallImage("signed");
  const key = await makeSigningKey(dir);
  const sig = await buildCosignSignature("app", image, key);
  const sbom = buildSbomReferrer("app", image);
  const sbomSig = await buildSignatureReferrer("app", sbom.manifest, key);
  const imageList = referrersIndexBytes([sbom.descriptor]);
  const sbomList = referrersIndexBytes([sbomSig.descriptor]);
  return { image, sig, sbom, sbomSig, imageList, sbomList };
}

export function listEntry(bytes: Uint8Array, subject: string): LayoutEntry {
  return {
    manifest: {
      mediaType: FixtureType.ociIndex,
      digest: `sha256:${sha256Hex(bytes)}`,
      size: bytes.length,
    },
    refName: fallbackTag(subject),
  };
}

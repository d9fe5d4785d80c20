/**
 * Referrers put into a registry over plain HTTP for the pull tests: a cosign-style signature
 * under `sha256-<hex>.sig`, an SPDX SBOM as an OCI 1.1 referrer, a signature of that SBOM,
 * and a buildx-style index whose platforms have attestation manifests. The fallback indexes
 * are written as a client does against a registry without the referrers API; through the
 * referrers double (`tests/helpers/referrers_registry.ts`) the API lists them instead.
 */
import { createHash } from "node:crypto";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const EMPTY_TYPE = "application/vnd.oci.empty.v1+json";
const encoder = new TextEncoder();

/** A descriptor as the fixtures write them. */
export interface Described {
  mediaType: string;
  digest: string;
  size: number;
}

export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

const json = (value: unknown) => encoder.encode(JSON.stringify(value));

/** Uploads `bytes` as a blob of `repo` (POST, then one PUT). */
export async function putBlob(
  base: string,
  repo: string,
  bytes: Uint8Array<ArrayBuffer>,
): Promise<string> {
  const digest = sha256(bytes);
  const post = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: "POST" });
  await post.body?.cancel();
  if (post.status !== 202) throw new Error(`POST upload to ${repo}: ${post.status}`);
  const location = new URL(post.headers.get("location")!, base);
  location.searchParams.set("digest", digest);
  const put = await fetch(location, { method: "PUT", body: bytes });
  await put.body?.cancel();
  if (put.status !== 201) throw new Error(`PUT blob ${digest}: ${put.status}`);
  return digest;
}

/** Puts `manifest` under `reference` (a tag, or its digest); returns its descriptor. */
export async function putManifest(
  base: string,
  repo: string,
  reference: string | undefined,
  manifest: Record<string, unknown>,
): Promise<Described> {
  const bytes = json(manifest);
  const digest = sha256(bytes);
  const mediaType = manifest["mediaType"] as string;
  const response = await fetch(`${base}/v2/${repo}/manifests/${reference ?? digest}`, {
    method: "PUT",
    body: bytes,
    headers: { "Content-Type": mediaType },
  });
  await response.body?.cancel();
  if (response.status !== 201) throw new Error(`PUT manifest ${digest}: ${response.status}`);
  return { mediaType, digest, size: bytes.length };
}

/** The served descriptor of `repo:reference`. */
export async function describeManifest(
  base: string,
  repo: string,
  reference: string,
): Promise<Described> {
  const response = await fetch(`${base}/v2/${repo}/manifests/${reference}`, {
    headers: { Accept: [OCI_INDEX, OCI_MANIFEST].join(", ") },
  });
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (response.status !== 200) throw new Error(`GET ${repo}:${reference}: ${response.status}`);
  return {
    mediaType: response.headers.get("content-type")!.split(";")[0]!,
    digest: sha256(bytes),
    size: bytes.length,
  };
}

/** An OCI 1.1 artifact manifest: the empty config, `layers`, and a subject when given. */
async function artifact(
  base: string,
  repo: string,
  artifactType: string,
  layers: {
    mediaType: string;
    bytes: Uint8Array<ArrayBuffer>;
    annotations?: Record<string, string>;
  }[],
  subject: Described | undefined,
  tag?: string,
): Promise<Described & { artifactType: string }> {
  const empty = encoder.encode("{}");
  await putBlob(base, repo, empty);
  const described = [];
  for (const layer of layers) {
    described.push({
      mediaType: layer.mediaType,
      digest: await putBlob(base, repo, layer.bytes),
      size: layer.bytes.length,
      ...(layer.annotations ? { annotations: layer.annotations } : {}),
    });
  }
  const manifest = await putManifest(base, repo, tag, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType,
    config: { mediaType: EMPTY_TYPE, digest: sha256(empty), size: 2 },
    layers: described,
    ...(subject ? { subject } : {}),
  });
  return { ...manifest, artifactType };
}

/**
 * Adds `referrers` to `subject`'s fallback tag (`sha256-<hex>`), keeping what is there: what a
 * client does on a registry without the referrers API.
 */
export async function addToFallbackTag(
  base: string,
  repo: string,
  subject: string,
  referrers: (Described & { artifactType: string })[],
): Promise<void> {
  const tag = subject.replace(":", "-");
  const response = await fetch(`${base}/v2/${repo}/manifests/${tag}`, {
    headers: { Accept: OCI_INDEX },
  });
  const listed = response.status === 200
    ? ((await response.json()) as { manifests: unknown[] }).manifests
    : (await response.body?.cancel(), []);
  await putManifest(base, repo, tag, {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [...listed, ...referrers],
  });
}

/** What {@linkcode signImage} put in the registry. */
export interface SignedImage {
  /** The cosign-style signature under `sha256-<hex>.sig`. */
  signature: Described;
  /** The SPDX SBOM referring to the image. */
  sbom: Described & { artifactType: string };
  /** The signature (a sigstore bundle) referring to the SBOM. */
  sbomSignature: Described & { artifactType: string };
}

/**
 * Signs `repo@image` cosign's old way, attaches an SPDX SBOM to it and signs the SBOM (OCI 1.1
 * referrers). `fallback`: also record the referrers at the fallback tags (a registry without
 * the API; the double lists them from their `subject` instead).
 */
export async function signImage(
  base: string,
  repo: string,
  image: Described,
  fallback: boolean,
): Promise<SignedImage> {
  const payload = json({
    critical: {
      identity: { "docker-reference": repo },
      image: { "docker-manifest-digest": image.digest },
      type: "cosign container image signature",
    },
    optional: null,
  });
  const signature = await artifact(
    base,
    repo,
    "application/vnd.dev.cosign.simplesigning.v1+json",
    [{
      mediaType: "application/vnd.dev.cosign.simplesigning.v1+json",
      bytes: payload,
      annotations: { "dev.cosignproject.cosign/signature": "MEUCIQDfixture" },
    }],
    undefined,
    `${image.digest.replace(":", "-")}.sig`,
  );
  const sbom = await artifact(base, repo, "application/spdx+json", [{
    mediaType: "application/spdx+json",
    bytes: json({ spdxVersion: "SPDX-2.3", name: repo, packages: [{ name: "busybox" }] }),
  }], image);
  const sbomSignature = await artifact(
    base,
    repo,
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    [{
      mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
      bytes: json({ mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json", of: sbom.digest }),
    }],
    sbom,
  );
  if (fallback) {
    await addToFallbackTag(base, repo, image.digest, [sbom]);
    await addToFallbackTag(base, repo, sbom.digest, [sbomSignature]);
  }
  return { signature, sbom, sbomSignature };
}

/** What {@linkcode putBuildxIndex} put in the registry. */
export interface BuildxIndex {
  index: Described;
  /** linux/amd64 and linux/arm64, in that order. */
  platforms: Described[];
  /** Each platform's attestation manifest, in the same order. */
  attestations: Described[];
}

/**
 * A buildx-style index under `repo:tag`: two platforms (one uncompressed layer each) and, for
 * each, an attestation manifest (platform unknown/unknown, an in-toto layer) annotated with
 * `vnd.docker.reference.type: attestation-manifest` and the platform manifest's digest.
 */
export async function putBuildxIndex(
  base: string,
  repo: string,
  tag: string,
  seed: string,
): Promise<BuildxIndex> {
  const platforms: Described[] = [];
  const attestations: Described[] = [];
  const entries: Record<string, unknown>[] = [];
  for (const architecture of ["amd64", "arm64"]) {
    const layer = json({ seed, architecture });
    const config = json({
      architecture,
      os: "linux",
      rootfs: { type: "layers", diff_ids: [sha256(layer)] },
    });
    const platform = await putManifest(base, repo, undefined, {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: await putBlob(base, repo, config),
        size: config.length,
      },
      layers: [{
        mediaType: "application/vnd.oci.image.layer.v1.tar",
        digest: await putBlob(base, repo, layer),
        size: layer.length,
      }],
    });
    const statement = json({ _type: "https://in-toto.io/Statement/v0.1", of: platform.digest });
    const attestationConfig = json({ architecture: "unknown", os: "unknown", rootfs: {} });
    const attestation = await putManifest(base, repo, undefined, {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: await putBlob(base, repo, attestationConfig),
        size: attestationConfig.length,
      },
      layers: [{
        mediaType: "application/vnd.in-toto+json",
        digest: await putBlob(base, repo, statement),
        size: statement.length,
        annotations: { "in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2" },
      }],
    });
    platforms.push(platform);
    attestations.push(attestation);
    entries.push({ ...platform, platform: { architecture, os: "linux" } });
    entries.push({
      ...attestation,
      platform: { architecture: "unknown", os: "unknown" },
      annotations: {
        "vnd.docker.reference.digest": platform.digest,
        "vnd.docker.reference.type": "attestation-manifest",
      },
    });
  }
  const index = await putManifest(base, repo, tag, {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: entries,
  });
  return { index, platforms, attestations };
}

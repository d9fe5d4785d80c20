/**
 * Signed images for tests, put into a real registry (or the referrers double in front of
 * one) through our own {@linkcode RegistryClient}:
 *
 * - {@linkcode pushSmallImage}: an OCI image of one or two tiny layers;
 * - {@linkcode pushCosignSignature}: a cosign-style signature under `sha256-<hex>.sig`, its
 *   simplesigning payload signed with an `openssl`-made EC key ({@linkcode makeSigningKey}),
 *   checked with `openssl dgst -verify` by {@linkcode verifyCosignSignature};
 * - {@linkcode pushSbomReferrer}: an SPDX SBOM as an OCI 1.1 referrer of the image (empty
 *   config, one SPDX layer, `subject`), listed by the referrers API on the double, or recorded
 *   in the fallback index on plain distribution;
 * - {@linkcode pushSignatureReferrer}: a signature of a manifest (the SBOM) as a referrer;
 * - {@linkcode pushBuildxIndex}: a buildx-style index, two platforms with uncompressed layers
 *   and an attestation manifest for each.
 *
 * Every builder also returns the bytes it pushed ({@linkcode FixtureContent}), so the same
 * objects can be laid into an archive.
 *
 * @example
 * ```ts
 * await using registry = await startRegistry();
 * using opened = openClient(registry.url, "app");
 * const image = await pushSmallImage(opened.client, "1");
 * const key = await makeSigningKey(dir);
 * const sig = await pushCosignSignature(opened.client, image, key);
 * const sbom = await pushSbomReferrer(opened.client, image);
 * ```
 *
 * @module
 */
import { EMPTY_DESCRIPTOR, type ReferrerDescriptor } from "../../src/image/referrer.ts";
import { silentSink } from "../../src/progress/events.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { resolveLocation, withDigest } from "../../src/registry/location.ts";
import { putManifestAnswer } from "../../src/registry/manifests.ts";
import { recordReferrer, type ReferrersSupport } from "../../src/registry/referrers.ts";
import { createTransport } from "../../src/registry/transport.ts";
import { run } from "./command.ts";
import { buildLayerTar } from "./image_fixtures.ts";
import { sha256Digest } from "./random.ts";

/** Media types of the fixtures. */
export const FixtureType = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  simpleSigning: "application/vnd.dev.cosign.simplesigning.v1+json",
  spdx: "application/spdx+json",
  inToto: "application/vnd.in-toto+json",
  /** cosign's artifact type for a signature attached as an OCI 1.1 referrer. */
  cosignArtifactSignature: "application/vnd.dev.cosign.artifact.sig.v1+json",
} as const;

/** The annotation holding a cosign signature (base64) on the payload layer. */
export const COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature";

/** A manifest or blob's bytes, for laying into an archive. */
export interface FixtureContent {
  digest: string;
  mediaType: string;
  bytes: Uint8Array;
}

/** A manifest pushed, with every blob and manifest it brought along. */
export interface PushedManifest {
  digest: string;
  mediaType: string;
  size: number;
  bytes: Uint8Array;
  /** Its blobs (config, layers), each once. */
  blobs: FixtureContent[];
}

/** A client for a test registry, closed with `using`. */
export interface OpenedClient extends Disposable {
  client: RegistryClient;
}

/** Options of {@linkcode openClient}. */
export interface OpenClientOptions {
  /** Credentials for the registry. Default: none (anonymous). */
  credentials?: { username: string; password: string };
  /** Scope of the token asked for. Default: `push` (push and pull). */
  access?: "push" | "pull";
}

/**
 * A {@linkcode RegistryClient} for `repository` of the registry at `url` (a test registry or
 * the double), with no retries, an auth session of its own, and no credentials unless given.
 */
export function openClient(
  url: string,
  repository: string,
  options: OpenClientOptions = {},
): OpenedClient {
  const transport = createTransport({ inactivityTimeoutMs: 10_000 });
  const client = new RegistryClient({
    baseUrl: new URL(`${url}/`),
    registryName: new URL(url).host,
    repository,
    transport,
    retries: 0,
    sink: silentSink,
    ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
    ...(options.access !== undefined ? { access: options.access } : {}),
  });
  return { client, [Symbol.dispose]: () => transport.close() };
}

/** Uploads `bytes` as a blob (one POST, one monolithic PUT); returns its digest. */
export async function pushBlob(client: RegistryClient, bytes: Uint8Array): Promise<string> {
  const digest = sha256Digest(bytes);
  const start = await client.request({
    method: "POST",
    url: client.url("blobs/uploads/"),
    expect: [202],
    action: `start upload of ${digest}`,
  });
  await start.discard();
  const location = resolveLocation(
    start.headers.get("location"),
    client.url("blobs/uploads/"),
    "upload",
  );
  const put = await client.request({
    method: "PUT",
    url: withDigest(location, digest),
    headers: { "Content-Type": "application/octet-stream" },
    body: bytes,
    expect: [201, 204],
    action: `upload ${digest}`,
  });
  await put.discard();
  return digest;
}

/** Pushes a manifest's blobs, then the manifest under `reference` (its digest by default). */
async function pushManifest(
  client: RegistryClient,
  manifest: Record<string, unknown>,
  blobs: FixtureContent[],
  reference?: string,
): Promise<{ pushed: PushedManifest; ociSubject: string | undefined }> {
  for (const blob of blobs) await pushBlob(client, blob.bytes);
  const bytes = json(manifest);
  const digest = sha256Digest(bytes);
  const mediaType = String(manifest["mediaType"]);
  const answer = await putManifestAnswer(client, reference ?? digest, mediaType, bytes);
  return {
    pushed: { digest, mediaType, size: bytes.length, bytes, blobs },
    ociSubject: answer.ociSubject,
  };
}

/** Options of {@linkcode pushSmallImage}. */
export interface SmallImageOptions {
  /** Payload bytes of each layer (one layer per entry). Default: one layer of 64 bytes. */
  layerSizes?: number[];
  /** Seed of the layers' content (images with different seeds differ). Default: the tag. */
  seed?: string;
}

/** An OCI image of one or two tiny uncompressed layers, pushed under `tag`. */
export async function pushSmallImage(
  client: RegistryClient,
  tag: string,
  options: SmallImageOptions = {},
): Promise<PushedManifest> {
  const seed = options.seed ?? tag;
  const layers: FixtureContent[] = [];
  for (const [i, size] of (options.layerSizes ?? [64]).entries()) {
    const bytes = await buildLayerTar(`${seed}-layer-${i}`, size);
    layers.push({ digest: sha256Digest(bytes), mediaType: FixtureType.ociLayer, bytes });
  }
  const config = content(FixtureType.ociConfig, {
    architecture: "amd64",
    os: "linux",
    config: {},
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
  });
  const manifest = {
    schemaVersion: 2,
    mediaType: FixtureType.ociManifest,
    config: descriptorOf(config),
    layers: layers.map(descriptorOf),
  };
  return (await pushManifest(client, manifest, [config, ...layers], tag)).pushed;
}

/** An EC (P-256) key pair made with `openssl`, as PEM files. */
export interface SigningKey {
  privateKeyPath: string;
  publicKeyPath: string;
}

/** Makes an EC P-256 key pair in `dir` with `openssl` (`key.pem`, `key.pub`). */
export async function makeSigningKey(dir: string, name = "cosign"): Promise<SigningKey> {
  const privateKeyPath = `${dir}/${name}.key.pem`;
  const publicKeyPath = `${dir}/${name}.pub.pem`;
  await run("openssl", [
    "ecparam",
    "-name",
    "prime256v1",
    "-genkey",
    "-noout",
    "-out",
    privateKeyPath,
  ]);
  await run("openssl", ["ec", "-in", privateKeyPath, "-pubout", "-out", publicKeyPath]);
  return { privateKeyPath, publicKeyPath };
}

/**
 * cosign's simplesigning payload for `digest` in `repository`: the signed claim that names
 * `critical.image.docker-manifest-digest`.
 */
export function simpleSigningPayload(repository: string, digest: string): Uint8Array {
  return json({
    critical: {
      identity: { "docker-reference": repository },
      image: { "docker-manifest-digest": digest },
      type: "cosign container image signature",
    },
    optional: null,
  });
}

/** Signs `payload` (ECDSA over its SHA-256) with `openssl dgst`; the signature in base64. */
export async function signPayload(key: SigningKey, payload: Uint8Array): Promise<string> {
  const { stdoutBytes } = await run(
    "openssl",
    ["dgst", "-sha256", "-sign", key.privateKeyPath],
    { stdin: payload },
  );
  return btoa(String.fromCharCode(...stdoutBytes));
}

/** Whether `openssl dgst -verify` accepts `signature` (base64) of `payload` under the key. */
export async function verifyPayload(
  publicKeyPath: string,
  payload: Uint8Array,
  signature: string,
): Promise<boolean> {
  const dir = await Deno.makeTempDir({ prefix: "dip-verify-" });
  try {
    let raw: Uint8Array;
    try {
      raw = Uint8Array.from(atob(signature), (c) => c.charCodeAt(0));
    } catch {
      return false;
    }
    await Deno.writeFile(`${dir}/sig`, raw);
    await Deno.writeFile(`${dir}/payload`, payload);
    const output = await new Deno.Command("openssl", {
      args: [
        "dgst",
        "-sha256",
        "-verify",
        publicKeyPath,
        "-signature",
        `${dir}/sig`,
        `${dir}/payload`,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    // "Verified OK" and 0, or "Verification failure" and 1; anything else is the test's fault.
    const said = new TextDecoder().decode(output.stdout);
    if (output.code === 0 && said.includes("Verified OK")) return true;
    if (output.code === 1 && said.includes("Verification failure")) return false;
    throw new Error(
      `openssl dgst -verify failed (${output.code}): ${said}${
        new TextDecoder().decode(output.stderr)
      }`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A cosign-style signature as pushed. */
export interface CosignSignature {
  /** `sha256-<hex>.sig` (or where it was pushed). */
  tag: string;
  manifest: PushedManifest;
  /** The simplesigning payload (the signature manifest's one layer). */
  payload: Uint8Array;
  /** Base64 of the ECDSA signature of `payload`. */
  signature: string;
}

/** The signature manifest of `payload`, signed `signature`, as cosign writes it. */
function signatureManifest(
  payload: FixtureContent,
  signature: string,
  extra: Record<string, unknown> = {},
): { manifest: Record<string, unknown>; blobs: FixtureContent[] } {
  const config = content(FixtureType.ociConfig, {
    architecture: "",
    config: {},
    created: "0001-01-01T00:00:00Z",
    history: [{ created: "0001-01-01T00:00:00Z" }],
    os: "",
    rootfs: { type: "layers", diff_ids: [payload.digest] },
  });
  return {
    manifest: {
      schemaVersion: 2,
      mediaType: FixtureType.ociManifest,
      ...extra,
      config: extra["artifactType"] !== undefined ? EMPTY_DESCRIPTOR : descriptorOf(config),
      layers: [{
        ...descriptorOf(payload),
        annotations: { [COSIGN_SIGNATURE_ANNOTATION]: signature },
      }],
    },
    blobs: [extra["artifactType"] !== undefined ? emptyConfig() : config, payload],
  };
}

/**
 * Signs `subject` cosign's older way: a manifest under `sha256-<hex>.sig` whose one layer is
 * the simplesigning payload naming the subject's digest, the signature in the layer's
 * `dev.cosignproject.cosign/signature` annotation.
 */
export async function pushCosignSignature(
  client: RegistryClient,
  subject: { digest: string },
  key: SigningKey,
): Promise<CosignSignature> {
  const payloadBytes = simpleSigningPayload(client.repository, subject.digest);
  const payload = {
    digest: sha256Digest(payloadBytes),
    mediaType: FixtureType.simpleSigning,
    bytes: payloadBytes,
  };
  const signature = await signPayload(key, payloadBytes);
  const tag = `${subject.digest.replace(":", "-")}.sig`;
  const { manifest, blobs } = signatureManifest(payload, signature);
  const { pushed } = await pushManifest(client, manifest, blobs, tag);
  return { tag, manifest: pushed, payload: payloadBytes, signature };
}

/**
 * Checks a cosign-style signature as it came back: the manifest's first layer is `payload`
 * (by digest), the payload names `subjectDigest`, and `openssl dgst -verify` accepts the
 * layer's signature annotation under the public key. False for any of these that fails.
 */
export async function verifyCosignSignature(
  manifestBytes: Uint8Array,
  payload: Uint8Array,
  subjectDigest: string,
  publicKeyPath: string,
): Promise<boolean> {
  let layer: { digest?: string; annotations?: Record<string, string> } | undefined;
  let named: unknown;
  try {
    const manifest = JSON.parse(new TextDecoder().decode(manifestBytes)) as {
      layers?: { digest?: string; annotations?: Record<string, string> }[];
    };
    layer = manifest.layers?.[0];
    named = (JSON.parse(new TextDecoder().decode(payload)) as {
      critical?: { image?: { "docker-manifest-digest"?: unknown } };
    }).critical?.image?.["docker-manifest-digest"];
  } catch {
    return false;
  }
  const signature = layer?.annotations?.[COSIGN_SIGNATURE_ANNOTATION];
  if (layer?.digest !== sha256Digest(payload) || named !== subjectDigest || !signature) {
    return false;
  }
  return await verifyPayload(publicKeyPath, payload, signature);
}

/** A referrer as pushed, and how its registry lists it. */
export interface PushedReferrer {
  manifest: PushedManifest;
  /** Its entry in the subject's referrers list. */
  descriptor: ReferrerDescriptor;
  /** `api`: the registry answered `OCI-Subject`; `fallback-tag`: we added it to the tag. */
  recordedBy: "api" | "fallback-tag";
}

/** Options of the referrer builders. */
export interface ReferrerOptions {
  /** Annotations of the referrer manifest. Default: a fixed creation time. */
  annotations?: Record<string, string>;
  /** Where {@linkcode recordReferrer} notes the registry's API. Default: the process-wide one. */
  support?: ReferrersSupport;
}

/** A minimal SPDX 2.3 document describing `name`. */
export function spdxDocument(name: string): Uint8Array {
  return json({
    spdxVersion: "SPDX-2.3",
    dataLicense: "CC0-1.0",
    SPDXID: "SPDXRef-DOCUMENT",
    name,
    documentNamespace: `https://example.invalid/spdx/${encodeURIComponent(name)}`,
    creationInfo: {
      created: "2026-01-01T00:00:00Z",
      creators: ["Tool: docker-image-pusher-tests"],
    },
    packages: [{
      SPDXID: "SPDXRef-Package-busybox",
      name: "busybox",
      versionInfo: "1.36.1",
      downloadLocation: "NOASSERTION",
    }],
  });
}

/**
 * An SPDX SBOM as an OCI 1.1 referrer of `subject`: artifactType `application/spdx+json`,
 * the empty config, one SPDX JSON layer, pushed by digest. On a registry with the referrers
 * API (it answers `OCI-Subject`) that lists it; otherwise it is added to the fallback index.
 */
export async function pushSbomReferrer(
  client: RegistryClient,
  subject: PushedManifest,
  options: ReferrerOptions = {},
): Promise<PushedReferrer> {
  const spdx = {
    digest: "",
    mediaType: FixtureType.spdx,
    bytes: spdxDocument(`${client.repository}@${subject.digest}`),
  };
  spdx.digest = sha256Digest(spdx.bytes);
  const manifest = {
    schemaVersion: 2,
    mediaType: FixtureType.ociManifest,
    artifactType: FixtureType.spdx,
    config: EMPTY_DESCRIPTOR,
    layers: [descriptorOf(spdx)],
    subject: subjectDescriptor(subject),
    annotations: options.annotations ??
      { "org.opencontainers.image.created": "2026-01-01T00:00:00Z" },
  };
  return await pushReferrer(client, subject, manifest, [emptyConfig(), spdx], options);
}

/**
 * A signature of `subject` (an SBOM, say) as an OCI 1.1 referrer: cosign's signature
 * artifact type, the empty config, the simplesigning payload naming the subject as its layer
 * with the signature annotation. Verify it with {@linkcode verifyCosignSignature}.
 */
export async function pushSignatureReferrer(
  client: RegistryClient,
  subject: PushedManifest,
  key: SigningKey,
  options: ReferrerOptions = {},
): Promise<PushedReferrer & { payload: Uint8Array; signature: string }> {
  const payloadBytes = simpleSigningPayload(client.repository, subject.digest);
  const payload = {
    digest: sha256Digest(payloadBytes),
    mediaType: FixtureType.simpleSigning,
    bytes: payloadBytes,
  };
  const signature = await signPayload(key, payloadBytes);
  const { manifest, blobs } = signatureManifest(payload, signature, {
    artifactType: FixtureType.cosignArtifactSignature,
  });
  manifest["subject"] = subjectDescriptor(subject);
  manifest["annotations"] = options.annotations ??
    { "org.opencontainers.image.created": "2026-01-01T00:00:01Z" };
  const pushed = await pushReferrer(client, subject, manifest, blobs, options);
  return { ...pushed, payload: payloadBytes, signature };
}

async function pushReferrer(
  client: RegistryClient,
  subject: PushedManifest,
  manifest: Record<string, unknown>,
  blobs: FixtureContent[],
  options: ReferrerOptions,
): Promise<PushedReferrer> {
  for (const blob of blobs) await pushBlob(client, blob.bytes);
  const bytes = json(manifest);
  const digest = sha256Digest(bytes);
  const answer = await putManifestAnswer(client, digest, FixtureType.ociManifest, bytes);
  const descriptor: ReferrerDescriptor = {
    mediaType: FixtureType.ociManifest,
    digest,
    size: bytes.length,
    artifactType: String(manifest["artifactType"]),
    ...(manifest["annotations"] !== undefined
      ? { annotations: manifest["annotations"] as Record<string, string> }
      : {}),
  };
  const recordedBy = await recordReferrer(
    client,
    subject.digest,
    descriptor,
    answer,
    options.support,
  );
  return {
    manifest: { digest, mediaType: FixtureType.ociManifest, size: bytes.length, bytes, blobs },
    descriptor,
    recordedBy,
  };
}

/** A buildx-style multi-platform index as pushed. */
export interface BuildxIndex {
  index: PushedManifest;
  /** linux/amd64 and linux/arm64, in the index's order. */
  platforms: PushedManifest[];
  /** One attestation manifest per platform, in the same order. */
  attestations: PushedManifest[];
}

/**
 * A buildx-style image index under `tag`: linux/amd64 and linux/arm64 images whose layers are
 * uncompressed tars, and for each an attestation manifest (platform `unknown/unknown`,
 * `vnd.docker.reference.type: attestation-manifest`, `vnd.docker.reference.digest: <the
 * platform's manifest>`) holding an in-toto statement layer.
 */
export async function pushBuildxIndex(client: RegistryClient, tag: string): Promise<BuildxIndex> {
  const platforms: PushedManifest[] = [];
  const attestations: PushedManifest[] = [];
  const entries: Record<string, unknown>[] = [];
  const attestationEntries: Record<string, unknown>[] = [];
  for (const architecture of ["amd64", "arm64"]) {
    const layer = await buildLayerTar(`${tag}-${architecture}`, 48);
    const layerContent = {
      digest: sha256Digest(layer),
      mediaType: FixtureType.ociLayer,
      bytes: layer,
    };
    const config = content(FixtureType.ociConfig, {
      architecture,
      os: "linux",
      config: {},
      rootfs: { type: "layers", diff_ids: [layerContent.digest] },
    });
    const image = await pushManifest(client, {
      schemaVersion: 2,
      mediaType: FixtureType.ociManifest,
      config: descriptorOf(config),
      layers: [descriptorOf(layerContent)],
    }, [config, layerContent]);
    platforms.push(image.pushed);
    entries.push({ ...subjectDescriptor(image.pushed), platform: { architecture, os: "linux" } });

    const statement = content(FixtureType.inToto, {
      _type: "https://in-toto.io/Statement/v0.1",
      predicateType: "https://slsa.dev/provenance/v0.2",
      subject: [{
        name: `pkg:docker/${client.repository}@${tag}?platform=linux%2F${architecture}`,
        digest: { sha256: image.pushed.digest.slice(7) },
      }],
      predicate: { builder: { id: "https://example.invalid/buildx" } },
    });
    const attestationConfig = content(FixtureType.ociConfig, {
      architecture: "unknown",
      os: "unknown",
      config: {},
      rootfs: { type: "layers", diff_ids: [statement.digest] },
    });
    const attestation = await pushManifest(client, {
      schemaVersion: 2,
      mediaType: FixtureType.ociManifest,
      config: descriptorOf(attestationConfig),
      layers: [{
        ...descriptorOf(statement),
        annotations: { "in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2" },
      }],
    }, [attestationConfig, statement]);
    attestations.push(attestation.pushed);
    attestationEntries.push({
      ...subjectDescriptor(attestation.pushed),
      annotations: {
        "vnd.docker.reference.digest": image.pushed.digest,
        "vnd.docker.reference.type": "attestation-manifest",
      },
      platform: { architecture: "unknown", os: "unknown" },
    });
  }
  const index = await pushManifest(
    client,
    {
      schemaVersion: 2,
      mediaType: FixtureType.ociIndex,
      manifests: [...entries, ...attestationEntries],
    },
    [],
    tag,
  );
  return { index: index.pushed, platforms, attestations };
}

/** `{mediaType, digest, size}` of a manifest, as a `subject` or an index entry names it. */
export function subjectDescriptor(manifest: { mediaType: string; digest: string; size: number }): {
  mediaType: string;
  digest: string;
  size: number;
} {
  return { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size };
}

function descriptorOf(blob: FixtureContent): { mediaType: string; digest: string; size: number } {
  return { mediaType: blob.mediaType, digest: blob.digest, size: blob.bytes.length };
}

function content(mediaType: string, value: unknown): FixtureContent {
  const bytes = json(value);
  return { digest: sha256Digest(bytes), mediaType, bytes };
}

function emptyConfig(): FixtureContent {
  return {
    digest: EMPTY_DESCRIPTOR.digest,
    mediaType: EMPTY_DESCRIPTOR.mediaType,
    bytes: new TextEncoder().encode("{}"),
  };
}

function json(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

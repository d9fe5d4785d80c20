/**
 * Signed images for tests: built in memory, then put into a real registry (or the referrers
 * double in front of one) through our own {@linkcode RegistryClient}, or laid into an OCI
 * layout directory as our pull writes one ({@linkcode writeOciLayout}):
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
 * Each `pushX` has a `buildX` that only builds (no registry), and
 * {@linkcode writeSignedLayout} lays a whole signed set (image, `.sig`, SBOM, the SBOM's
 * signature) into a directory the way the shared contract says an archive carries them.
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
import {
  cosignTag,
  EMPTY_DESCRIPTOR,
  fallbackTag,
  type ReferrerDescriptor,
  referrersIndexBytes,
} from "../../src/image/referrer.ts";
import { silentSink } from "../../src/progress/events.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { resolveLocation, withDigest } from "../../src/registry/location.ts";
import { type ManifestPutAnswer, putManifestAnswer } from "../../src/registry/manifests.ts";
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

/** A manifest built (and perhaps pushed), with every blob and manifest it brings along. */
export interface BuiltManifest {
  digest: string;
  mediaType: string;
  size: number;
  bytes: Uint8Array;
  /** Its blobs (config, layers), each once. */
  blobs: FixtureContent[];
  /** The manifests an index names (pushed by digest before it). */
  children?: BuiltManifest[];
}

/** A manifest as pushed: the same as built. */
export type PushedManifest = BuiltManifest;

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

/** A manifest built from its JSON, with the blobs (and children) it needs. */
function built(
  manifest: Record<string, unknown>,
  blobs: FixtureContent[],
  children?: BuiltManifest[],
): BuiltManifest {
  const bytes = json(manifest);
  return {
    digest: sha256Digest(bytes),
    mediaType: String(manifest["mediaType"]),
    size: bytes.length,
    bytes,
    blobs,
    ...(children !== undefined ? { children } : {}),
  };
}

/**
 * Pushes a built manifest: its blobs, its children (by digest), then itself under
 * `reference` (its digest by default).
 */
export async function pushBuilt(
  client: RegistryClient,
  manifest: BuiltManifest,
  reference?: string,
): Promise<ManifestPutAnswer> {
  for (const blob of manifest.blobs) await pushBlob(client, blob.bytes);
  for (const child of manifest.children ?? []) await pushBuilt(client, child);
  return await putManifestAnswer(
    client,
    reference ?? manifest.digest,
    manifest.mediaType,
    manifest.bytes,
  );
}

/** Options of {@linkcode pushSmallImage}. */
export interface SmallImageOptions {
  /** Payload bytes of each layer (one layer per entry). Default: one layer of 64 bytes. */
  layerSizes?: number[];
  /** Seed of the layers' content (images with different seeds differ). Default: the tag. */
  seed?: string;
}

/** An OCI image of one or two tiny uncompressed layers whose content follows `seed`. */
export async function buildSmallImage(
  seed: string,
  options: Omit<SmallImageOptions, "seed"> = {},
): Promise<BuiltManifest> {
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
  return built({
    schemaVersion: 2,
    mediaType: FixtureType.ociManifest,
    config: descriptorOf(config),
    layers: layers.map(descriptorOf),
  }, [config, ...layers]);
}

/** {@linkcode buildSmallImage}, pushed under `tag`. */
export async function pushSmallImage(
  client: RegistryClient,
  tag: string,
  options: SmallImageOptions = {},
): Promise<PushedManifest> {
  const image = await buildSmallImage(options.seed ?? tag, options);
  await pushBuilt(client, image, tag);
  return image;
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
 * Signs `subject` cosign's older way: a manifest for the tag `sha256-<hex>.sig` whose one
 * layer is the simplesigning payload naming the subject's digest (and `repository`), the
 * signature in the layer's `dev.cosignproject.cosign/signature` annotation.
 */
export async function buildCosignSignature(
  repository: string,
  subject: { digest: string },
  key: SigningKey,
): Promise<CosignSignature> {
  const payload = content(
    FixtureType.simpleSigning,
    undefined,
    simpleSigningPayload(repository, subject.digest),
  );
  const signature = await signPayload(key, payload.bytes);
  const { manifest, blobs } = signatureManifest(payload, signature);
  return {
    tag: cosignTag(subject.digest, "sig"),
    manifest: built(manifest, blobs),
    payload: payload.bytes,
    signature,
  };
}

/** {@linkcode buildCosignSignature}, pushed under its tag. */
export async function pushCosignSignature(
  client: RegistryClient,
  subject: { digest: string },
  key: SigningKey,
): Promise<CosignSignature> {
  const signature = await buildCosignSignature(client.repository, subject, key);
  await pushBuilt(client, signature.manifest, signature.tag);
  return signature;
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

/** A referrer as built: its manifest, and its entry in its subject's referrers list. */
export interface BuiltReferrer {
  manifest: BuiltManifest;
  /** Its entry in the subject's referrers list. */
  descriptor: ReferrerDescriptor;
  /** The digest its `subject` names. */
  subject: string;
}

/** A referrer as pushed, and how its registry lists it. */
export interface PushedReferrer extends BuiltReferrer {
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
 * the empty config, one SPDX JSON layer describing `name`.
 */
export function buildSbomReferrer(
  name: string,
  subject: BuiltManifest,
  options: Pick<ReferrerOptions, "annotations"> = {},
): BuiltReferrer {
  const spdx = content(FixtureType.spdx, undefined, spdxDocument(name));
  return referrer({
    schemaVersion: 2,
    mediaType: FixtureType.ociManifest,
    artifactType: FixtureType.spdx,
    config: EMPTY_DESCRIPTOR,
    layers: [descriptorOf(spdx)],
    subject: subjectDescriptor(subject),
    annotations: options.annotations ??
      { "org.opencontainers.image.created": "2026-01-01T00:00:00Z" },
  }, [emptyConfig(), spdx]);
}

/**
 * {@linkcode buildSbomReferrer}, pushed by digest. On a registry with the referrers API (it
 * answers `OCI-Subject`) that lists it; otherwise it is added to the fallback index.
 */
export async function pushSbomReferrer(
  client: RegistryClient,
  subject: PushedManifest,
  options: ReferrerOptions = {},
): Promise<PushedReferrer> {
  const sbom = buildSbomReferrer(`${client.repository}@${subject.digest}`, subject, options);
  return await pushReferrer(client, sbom, options);
}

/**
 * A signature of `subject` (an SBOM, say) as an OCI 1.1 referrer: cosign's signature
 * artifact type, the empty config, the simplesigning payload naming the subject as its layer
 * with the signature annotation. Verify it with {@linkcode verifyCosignSignature}.
 */
export async function buildSignatureReferrer(
  repository: string,
  subject: BuiltManifest,
  key: SigningKey,
  options: Pick<ReferrerOptions, "annotations"> = {},
): Promise<BuiltReferrer & { payload: Uint8Array; signature: string }> {
  const payload = content(
    FixtureType.simpleSigning,
    undefined,
    simpleSigningPayload(repository, subject.digest),
  );
  const signature = await signPayload(key, payload.bytes);
  const { manifest, blobs } = signatureManifest(payload, signature, {
    artifactType: FixtureType.cosignArtifactSignature,
  });
  manifest["subject"] = subjectDescriptor(subject);
  manifest["annotations"] = options.annotations ??
    { "org.opencontainers.image.created": "2026-01-01T00:00:01Z" };
  return { ...referrer(manifest, blobs), payload: payload.bytes, signature };
}

/** {@linkcode buildSignatureReferrer}, pushed by digest and recorded as the SBOM's is. */
export async function pushSignatureReferrer(
  client: RegistryClient,
  subject: PushedManifest,
  key: SigningKey,
  options: ReferrerOptions = {},
): Promise<PushedReferrer & { payload: Uint8Array; signature: string }> {
  const signature = await buildSignatureReferrer(client.repository, subject, key, options);
  return { ...signature, ...await pushReferrer(client, signature, options) };
}

/** A referrer manifest built, with its descriptor as a referrers list gives it. */
function referrer(manifest: Record<string, unknown>, blobs: FixtureContent[]): BuiltReferrer {
  const made = built(manifest, blobs);
  const descriptor: ReferrerDescriptor = {
    mediaType: made.mediaType,
    digest: made.digest,
    size: made.size,
    artifactType: String(manifest["artifactType"]),
    ...(manifest["annotations"] !== undefined
      ? { annotations: manifest["annotations"] as Record<string, string> }
      : {}),
  };
  return {
    manifest: made,
    descriptor,
    subject: (manifest["subject"] as { digest: string }).digest,
  };
}

/** Pushes a referrer by digest, then lists it the way the registry wants (API or tag). */
async function pushReferrer(
  client: RegistryClient,
  built: BuiltReferrer,
  options: ReferrerOptions,
): Promise<PushedReferrer> {
  const answer = await pushBuilt(client, built.manifest);
  const recordedBy = await recordReferrer(
    client,
    built.subject,
    built.descriptor,
    answer,
    options.support,
  );
  return { ...built, recordedBy };
}

/** A buildx-style multi-platform index. */
export interface BuildxIndex {
  /** The index; its `children` are the platforms and attestations. */
  index: BuiltManifest;
  /** linux/amd64 and linux/arm64, in the index's order. */
  platforms: BuiltManifest[];
  /** One attestation manifest per platform, in the same order. */
  attestations: BuiltManifest[];
}

/**
 * A buildx-style image index for `name`: linux/amd64 and linux/arm64 images whose layers are
 * uncompressed tars, and for each an attestation manifest (platform `unknown/unknown`,
 * `vnd.docker.reference.type: attestation-manifest`, `vnd.docker.reference.digest: <the
 * platform's manifest>`) holding an in-toto statement layer.
 */
export async function buildBuildxIndex(name: string): Promise<BuildxIndex> {
  const platforms: BuiltManifest[] = [];
  const attestations: BuiltManifest[] = [];
  const entries: Record<string, unknown>[] = [];
  const attestationEntries: Record<string, unknown>[] = [];
  for (const architecture of ["amd64", "arm64"]) {
    const layer = await buildLayerTar(`${name}-${architecture}`, 48);
    const layerContent = content(FixtureType.ociLayer, undefined, layer);
    const config = content(FixtureType.ociConfig, {
      architecture,
      os: "linux",
      config: {},
      rootfs: { type: "layers", diff_ids: [layerContent.digest] },
    });
    const image = built({
      schemaVersion: 2,
      mediaType: FixtureType.ociManifest,
      config: descriptorOf(config),
      layers: [descriptorOf(layerContent)],
    }, [config, layerContent]);
    platforms.push(image);
    entries.push({ ...subjectDescriptor(image), platform: { architecture, os: "linux" } });

    const statement = content(FixtureType.inToto, {
      _type: "https://in-toto.io/Statement/v0.1",
      predicateType: "https://slsa.dev/provenance/v0.2",
      subject: [{
        name: `pkg:docker/${name}?platform=linux%2F${architecture}`,
        digest: { sha256: image.digest.slice("sha256:".length) },
      }],
      predicate: { builder: { id: "https://example.invalid/buildx" } },
    });
    const attestationConfig = content(FixtureType.ociConfig, {
      architecture: "unknown",
      os: "unknown",
      config: {},
      rootfs: { type: "layers", diff_ids: [statement.digest] },
    });
    const attestation = built({
      schemaVersion: 2,
      mediaType: FixtureType.ociManifest,
      config: descriptorOf(attestationConfig),
      layers: [{
        ...descriptorOf(statement),
        annotations: { "in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2" },
      }],
    }, [attestationConfig, statement]);
    attestations.push(attestation);
    attestationEntries.push({
      ...subjectDescriptor(attestation),
      annotations: {
        "vnd.docker.reference.digest": image.digest,
        "vnd.docker.reference.type": "attestation-manifest",
      },
      platform: { architecture: "unknown", os: "unknown" },
    });
  }
  const index = built(
    {
      schemaVersion: 2,
      mediaType: FixtureType.ociIndex,
      manifests: [...entries, ...attestationEntries],
    },
    [],
    [...platforms, ...attestations],
  );
  return { index, platforms, attestations };
}

/** {@linkcode buildBuildxIndex}, pushed under `tag` (children first, by digest). */
export async function pushBuildxIndex(client: RegistryClient, tag: string): Promise<BuildxIndex> {
  const index = await buildBuildxIndex(`${client.repository}:${tag}`);
  await pushBuilt(client, index.index, tag);
  return index;
}

/** A manifest named in a layout's `index.json`. */
export interface LayoutEntry {
  manifest: BuiltManifest;
  /** Its `org.opencontainers.image.ref.name`, if any. */
  refName?: string;
  /** More annotations of the entry (`io.containerd.image.name`, …). */
  annotations?: Record<string, string>;
}

/**
 * The index of `descriptors` (a subject's referrers) as our pull stores it from a fallback
 * tag or the API: an OCI image index, each entry with artifactType and annotations.
 */
export function referrersIndex(descriptors: readonly ReferrerDescriptor[]): BuiltManifest {
  const bytes = referrersIndexBytes(descriptors);
  return {
    digest: sha256Digest(bytes),
    mediaType: FixtureType.ociIndex,
    size: bytes.length,
    bytes,
    blobs: [],
  };
}

/**
 * Writes an OCI image layout into `dir` (made if absent): `oci-layout`, `index.json` listing
 * `entries`, and under `blobs/sha256/` every blob and manifest of the entries, of their
 * children and of `stored` (manifests that only live in blobs, such as referrers).
 */
export async function writeOciLayout(
  dir: string,
  entries: readonly LayoutEntry[],
  stored: readonly BuiltManifest[] = [],
): Promise<void> {
  await Deno.mkdir(`${dir}/blobs/sha256`, { recursive: true });
  const written = new Set<string>();
  const write = async (digest: string, bytes: Uint8Array) => {
    if (written.has(digest)) return;
    written.add(digest);
    await Deno.writeFile(`${dir}/blobs/sha256/${digest.slice("sha256:".length)}`, bytes);
  };
  const writeManifest = async (manifest: BuiltManifest): Promise<void> => {
    await write(manifest.digest, manifest.bytes);
    for (const blob of manifest.blobs) await write(blob.digest, blob.bytes);
    for (const child of manifest.children ?? []) await writeManifest(child);
  };
  for (const entry of entries) await writeManifest(entry.manifest);
  for (const manifest of stored) await writeManifest(manifest);
  await Deno.writeTextFile(`${dir}/oci-layout`, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const index = {
    schemaVersion: 2,
    mediaType: FixtureType.ociIndex,
    manifests: entries.map((entry) => {
      const annotations = {
        ...entry.annotations,
        ...(entry.refName !== undefined
          ? { "org.opencontainers.image.ref.name": entry.refName }
          : {}),
      };
      return {
        ...subjectDescriptor(entry.manifest),
        ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
      };
    }),
  };
  await Deno.writeTextFile(`${dir}/index.json`, JSON.stringify(index));
}

/** An image with a cosign `.sig`, an SBOM referrer and a signature of the SBOM. */
export interface SignedSet {
  image: BuiltManifest;
  /** cosign's older scheme: under `sha256-<hex of image>.sig`. */
  cosignSignature: CosignSignature;
  /** An OCI 1.1 referrer of the image. */
  sbom: BuiltReferrer;
  /** An OCI 1.1 referrer of the SBOM. */
  sbomSignature: BuiltReferrer & { payload: Uint8Array; signature: string };
}

/** Builds a {@linkcode SignedSet} for `repository`, signed with `key`. */
export async function buildSignedSet(
  repository: string,
  key: SigningKey,
  options: SmallImageOptions = {},
): Promise<SignedSet> {
  const image = await buildSmallImage(options.seed ?? repository, options);
  const cosignSignature = await buildCosignSignature(repository, image, key);
  const sbom = buildSbomReferrer(`${repository}@${image.digest}`, image);
  const sbomSignature = await buildSignatureReferrer(repository, sbom.manifest, key);
  return { image, cosignSignature, sbom, sbomSignature };
}

/**
 * Lays `set` into `dir` the way the shared contract says an archive carries referrers:
 * `index.json` names the image (`io.containerd.image.name` `name`, ref name its tag), the
 * `.sig` manifest (ref name `sha256-<hex>.sig`), and for the image and the SBOM each an index
 * of its referrers (ref name `sha256-<hex>` of the subject); every referrer manifest and
 * blob is in `blobs/sha256/`.
 */
export async function writeSignedLayout(
  dir: string,
  set: SignedSet,
  name = "docker.io/library/app:1",
): Promise<void> {
  await writeOciLayout(dir, [
    {
      manifest: set.image,
      refName: name.slice(name.lastIndexOf(":") + 1),
      annotations: { "io.containerd.image.name": name },
    },
    { manifest: set.cosignSignature.manifest, refName: set.cosignSignature.tag },
    { manifest: referrersIndex([set.sbom.descriptor]), refName: fallbackTag(set.image.digest) },
    {
      manifest: referrersIndex([set.sbomSignature.descriptor]),
      refName: fallbackTag(set.sbom.manifest.digest),
    },
  ], [set.sbom.manifest, set.sbomSignature.manifest]);
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

/** A blob of `mediaType`: `value` as JSON, or `raw` bytes as they are. */
function content(mediaType: string, value: unknown, raw?: Uint8Array): FixtureContent {
  const bytes = raw ?? json(value);
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

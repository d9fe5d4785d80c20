/**
 * What push tests against the real registry share: a client for a repository of a test
 * registry, the options of a default push (gzip, as the library's default), and in-memory
 * images whose layers are stored uncompressed (so a default push compresses them, and their
 * manifests' digests change).
 */
import type { ArchiveBlob } from "../../src/archive/image.ts";
import type { ManifestNode, ReferrerNode } from "../../src/image/graph.ts";
import { cosignTag, EMPTY_DESCRIPTOR, referrerKind } from "../../src/image/referrer.ts";
import { sha256Digest } from "../../src/digest.ts";
import { MEDIA_TYPES } from "../../src/image/media_types.ts";
import { type ProgressEvent, silentSink } from "../../src/progress/events.ts";
import { BlobInfoCache } from "../../src/push/blob_info_cache.ts";
import type { PushOptions } from "../../src/push/push_image.ts";
import type { RunOptions } from "../../src/push/push_run.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { createTransport, type Transport } from "../../src/registry/transport.ts";
import { fakeBlob } from "./_multi_arch_fixtures.ts";

const encoder = new TextEncoder();
let made = 0;

/** A client for `repository` of the registry at `host`, with its transport (close it). */
export function clientFor(
  host: string,
  repository: string,
  sink: (event: ProgressEvent) => void = silentSink,
): { client: RegistryClient; transport: Transport } {
  const transport = createTransport({ inactivityTimeoutMs: 30_000 });
  return { client: clientOn(transport, host, repository, sink), transport };
}

/** A client for `repository` of the registry at `host`, over a transport the caller owns. */
export function clientOn(
  transport: Transport,
  host: string,
  repository: string,
  sink: (event: ProgressEvent) => void = silentSink,
): RegistryClient {
  return new RegistryClient({
    baseUrl: new URL(`http://${host}/`),
    registryName: host,
    repository,
    transport,
    retries: 1,
    sink,
  });
}

/**
 * The push options of a default run (`runJobs`): layers stored uncompressed go up
 * gzip-compressed; no cache of its own, no sink (a run's pushes use their client's).
 */
export function defaultRunPush(overrides: Partial<RunOptions["push"]> = {}): RunOptions["push"] {
  return {
    forceUpload: false,
    largeLayerThreshold: 1024 ** 3,
    chunkSize: 64 * 1024 ** 2,
    chunked: "auto",
    maxConcurrent: 3,
    dryRun: false,
    compression: { codec: "gzip", level: "auto" },
    ...overrides,
  };
}

/** The options of a default push: layers stored uncompressed go up gzip-compressed. */
export function defaultPush(overrides: Partial<PushOptions> = {}): PushOptions {
  return {
    ...defaultRunPush(),
    cache: BlobInfoCache.inMemory(),
    workers: 1,
    sink: silentSink,
    ...overrides,
  };
}

/** An OCI image manifest for `platform` whose one layer is stored uncompressed. */
export function uncompressedImage(platform: { os: string; architecture: string }): ManifestNode {
  const config = fakeBlob(
    encoder.encode(JSON.stringify({ ...platform, rootfs: { type: "layers", diff_ids: [] } })),
    MEDIA_TYPES.ociConfig,
  );
  const layer = fakeBlob(
    encoder.encode(`uncompressed layer ${++made} ${"x".repeat(4096)}`),
    MEDIA_TYPES.ociLayer,
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
  };
  const bytes = encoder.encode(JSON.stringify(manifest));
  return {
    mediaType: MEDIA_TYPES.ociManifest,
    digest: sha256Digest(bytes),
    bytes,
    blobs: [config, layer],
    children: [],
  };
}

/** An image manifest whose layer is already gzip-compressed (a push leaves it as it is). */
export function compressedImage(): ManifestNode {
  const config = fakeBlob(
    encoder.encode(`{"os":"linux","architecture":"amd64","n":${++made}}`),
    MEDIA_TYPES.ociConfig,
  );
  const layer = fakeBlob(encoder.encode(`gzip layer ${made}`), MEDIA_TYPES.ociLayerGzip);
  return manifestNode(config, [layer]);
}

/** An OCI manifest over `config` and `layers`, with `extra` fields (subject, artifactType). */
export function manifestNode(
  config: ArchiveBlob,
  layers: ArchiveBlob[],
  extra: Record<string, unknown> = {},
): ManifestNode {
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    ...(extra.artifactType !== undefined ? { artifactType: extra.artifactType } : {}),
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    ...(extra.subject !== undefined ? { subject: extra.subject } : {}),
    ...(extra.annotations !== undefined ? { annotations: extra.annotations } : {}),
  };
  const bytes = encoder.encode(JSON.stringify(manifest));
  return {
    mediaType: MEDIA_TYPES.ociManifest,
    digest: sha256Digest(bytes),
    bytes,
    blobs: [config, ...layers],
    children: [],
  };
}

/** The empty config `{}` artifacts use. */
export function emptyConfig(): ArchiveBlob {
  return fakeBlob(encoder.encode("{}"), EMPTY_DESCRIPTOR.mediaType);
}

/**
 * An OCI 1.1 referrer of `subject`: an artifact of `artifactType` with one layer of
 * `payload`, its `subject` naming `subject`.
 */
export function ociReferrer(
  subject: ManifestNode,
  artifactType: string,
  payload: string,
): ReferrerNode {
  const layer = fakeBlob(encoder.encode(payload), artifactType);
  const node = manifestNode(emptyConfig(), [layer], {
    artifactType,
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.bytes.length },
    annotations: { "org.opencontainers.image.created": "2026-12-07T00:00:00Z" },
  });
  return { node, attached: { by: "subject" }, kind: referrerKind(artifactType), artifactType };
}

/** A cosign `.sig` of `subject`, under its tag `sha256-<hex>.sig`. */
export function cosignSignature(subject: ManifestNode): ReferrerNode {
  const type = "application/vnd.dev.cosign.simplesigning.v1+json";
  const payload = JSON.stringify({
    critical: {
      image: { "docker-manifest-digest": subject.digest },
      type: "cosign container image signature",
    },
  });
  const layer = fakeBlob(encoder.encode(payload), type);
  const config = fakeBlob(
    encoder.encode(`{"rootfs":{"type":"layers","diff_ids":[]}}`),
    MEDIA_TYPES.ociConfig,
  );
  const node = manifestNode(config, [layer]);
  return {
    node,
    attached: { by: "tag", tag: cosignTag(subject.digest, "sig") },
    kind: "signature",
    artifactType: MEDIA_TYPES.ociConfig,
  };
}

/** `node` with `referrers` hanging off it. */
export function withReferrers(node: ManifestNode, referrers: ReferrerNode[]): ManifestNode {
  return { ...node, referrers };
}

/** A sink that keeps every event. */
export function recordingSink(): { sink: (event: ProgressEvent) => void; events: ProgressEvent[] } {
  const events: ProgressEvent[] = [];
  return { sink: (event) => events.push(event), events };
}

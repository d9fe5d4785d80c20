/**
 * In-memory manifest trees for multi-platform tests: image manifests whose config blob says a
 * platform, indexes over them, and buildx-style attestation manifests.
 */
import type { ArchiveBlob } from "../../src/archive/image.ts";
import type { ManifestNode } from "../../src/image/graph.ts";
import { MEDIA_TYPES } from "../../src/image/media_types.ts";
import { sha256Digest } from "../../src/digest.ts";

type Json = Record<string, unknown>;

const encoder = new TextEncoder();
let layers = 0;

/** Options for {@linkcode fakeBlob}. */
export interface FakeBlobOptions {
  /** Split reads into chunks of this many bytes (default: one chunk). */
  chunkSize?: number;
  /** The digest to claim (default: the bytes' sha256). */
  digest?: string;
  /** The size to claim (default: the bytes' length). */
  size?: number;
  /** Counts calls to `read`. */
  reads?: { count: number };
}

/** A blob whose `read` yields `bytes`, honouring `signal`. */
export function fakeBlob(
  bytes: Uint8Array,
  mediaType: string,
  options: FakeBlobOptions = {},
): ArchiveBlob {
  const digest = options.digest ?? sha256Digest(bytes);
  const chunkSize = options.chunkSize ?? Math.max(bytes.length, 1);
  return {
    digest,
    size: options.size ?? bytes.length,
    mediaType,
    describe: `fake.tar:blobs/${digest.replace(":", "/")}`,
    async *read(offset: number, length: number, signal?: AbortSignal) {
      if (options.reads) options.reads.count++;
      const end = Math.min(offset + length, bytes.length);
      for (let at = offset; at < end; at += chunkSize) {
        signal?.throwIfAborted();
        await Promise.resolve();
        yield bytes.slice(at, Math.min(at + chunkSize, end));
      }
    },
  };
}

/** Options for {@linkcode imageNode}. */
export interface ImageNodeOptions {
  /** The manifest's media type (default: Docker schema 2). */
  mediaType?: string;
  /** Options for the config blob (a wrong digest, a short read). */
  config?: FakeBlobOptions;
  /** Raw config bytes instead of `JSON.stringify(config)`. */
  configBytes?: Uint8Array;
  /** Leave the config blob out of `blobs`. */
  withoutConfigBlob?: boolean;
}

/** An image manifest whose config is `config` (`{os, architecture, …}`), with one layer. */
export function imageNode(config: Json, options: ImageNodeOptions = {}): ManifestNode {
  const mediaType = options.mediaType ?? MEDIA_TYPES.dockerManifest;
  const docker = mediaType === MEDIA_TYPES.dockerManifest;
  const configBytes = options.configBytes ??
    encoder.encode(JSON.stringify({ ...config, rootfs: { type: "layers", diff_ids: [] } }));
  const configBlob = fakeBlob(
    configBytes,
    docker ? MEDIA_TYPES.dockerConfig : MEDIA_TYPES.ociConfig,
    options.config,
  );
  // Each image gets its own layer, so two images with equal configs still differ.
  const layer = fakeBlob(
    encoder.encode(`layer ${++layers} of ${JSON.stringify(config)}`),
    docker ? MEDIA_TYPES.dockerLayerGzip : MEDIA_TYPES.ociLayerGzip,
  );
  const manifest = {
    schemaVersion: 2,
    mediaType,
    config: { mediaType: configBlob.mediaType, size: configBlob.size, digest: configBlob.digest },
    layers: [{ mediaType: layer.mediaType, size: layer.size, digest: layer.digest }],
  };
  const bytes = encoder.encode(JSON.stringify(manifest, null, 3));
  return {
    mediaType,
    digest: sha256Digest(bytes),
    bytes,
    blobs: options.withoutConfigBlob ? [layer] : [configBlob, layer],
    children: [],
  };
}

/** A manifest an index lists, with what the index says of it. */
export interface IndexItem {
  node: ManifestNode;
  platform?: Json;
  annotations?: Record<string, string>;
}

/** An index over `items`, as buildx or an OCI layout would hold it. */
export function indexNode(
  items: IndexItem[],
  mediaType: string = MEDIA_TYPES.ociIndex,
): ManifestNode {
  const index = {
    schemaVersion: 2,
    mediaType,
    manifests: items.map(({ node, platform, annotations }) => ({
      mediaType: node.mediaType,
      digest: node.digest,
      size: node.bytes.length,
      ...(platform ? { platform } : {}),
      ...(annotations ? { annotations } : {}),
    })),
  };
  const bytes = encoder.encode(JSON.stringify(index));
  return {
    mediaType,
    digest: sha256Digest(bytes),
    bytes,
    blobs: [],
    children: items.map((i) => i.node),
  };
}

/** A buildx attestation manifest for `subject`, as its index lists it. */
export function attestationItem(subject: ManifestNode): IndexItem {
  return {
    node: imageNode({ architecture: "unknown", os: "unknown" }, {
      mediaType: MEDIA_TYPES.ociManifest,
    }),
    platform: { architecture: "unknown", os: "unknown" },
    annotations: {
      "vnd.docker.reference.type": "attestation-manifest",
      "vnd.docker.reference.digest": subject.digest,
    },
  };
}

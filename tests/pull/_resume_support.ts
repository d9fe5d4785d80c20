/**
 * For resume tests and measurements (scripts/bench_resume.ts): an image with one large
 * uncompressed layer, put in the registry in seconds and in constant memory, and the bytes each
 * `GET` of a blob carried, from the registry's access log.
 *
 * The layer (a tar of one file) is generated twice, once to hash it and once streamed into a
 * monolithic `PUT`. Its content repeats one pseudo-random MiB, each copy stamped with its
 * index, so a byte written at the wrong offset changes the digest while no more than one MiB
 * is ever held.
 */
import { createHash } from "node:crypto";
import { MediaType } from "../helpers/image_fixtures.ts";
import { seededBytes, sha256Digest } from "../helpers/random.ts";
import type { TestRegistry } from "../helpers/registry.ts";
import { tarStream } from "../helpers/tar_writer.ts";

const MiB = 1024 * 1024;

/** What {@linkcode seedBigLayer} put in the registry. */
export interface BigLayerImage {
  /** The layer's digest. */
  layer: string;
  /** The layer's size in bytes (the tar: header, file, padding, end marker). */
  layerSize: number;
  /** The manifest's digest. */
  manifest: string;
}

/**
 * Pushes `repo:tag`: one layer, a tar of one `fileBytes`-byte file, stored as is
 * (`application/vnd.oci.image.layer.v1.tar`), and its config.
 */
export async function seedBigLayer(
  registry: TestRegistry,
  repo: string,
  tag: string,
  fileBytes: number,
): Promise<BigLayerImage> {
  const layerTar = () =>
    tarStream(async (tar) => {
      await tar.addFile("big.bin", { size: fileBytes, stream: stampedBlocks(fileBytes) });
    });
  const hash = createHash("sha256");
  let layerSize = 0;
  for await (const chunk of layerTar()) {
    hash.update(chunk);
    layerSize += chunk.byteLength;
  }
  const layer = `sha256:${hash.digest("hex")}`;
  // The tar writer's chunks are plain (not shared) memory, as a request body must be.
  await putBlob(registry, repo, layer, layerTar() as ReadableStream<Uint8Array<ArrayBuffer>>);

  const config = json({
    architecture: "amd64",
    os: "linux",
    config: { Cmd: ["/bin/sh"] },
    rootfs: { type: "layers", diff_ids: [layer] },
  });
  const configDigest = sha256Digest(config);
  await putBlob(registry, repo, configDigest, config);
  const manifest = json({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: configDigest, size: config.byteLength },
    layers: [{ mediaType: MediaType.ociLayer, digest: layer, size: layerSize }],
  });
  const put = await registry.fetch(`${registry.url}/v2/${repo}/manifests/${tag}`, {
    method: "PUT",
    headers: { "Content-Type": MediaType.ociManifest },
    body: manifest,
  });
  await put.body?.cancel();
  if (put.status !== 201) {
    throw new Error(`Failed to push the manifest of ${repo}:${tag}: ${put.status}`);
  }
  return { layer, layerSize, manifest: sha256Digest(manifest) };
}

/** `size` bytes: one pseudo-random MiB again and again, each copy's first 8 bytes its index. */
async function* stampedBlocks(size: number): AsyncGenerator<Uint8Array> {
  const block = seededBytes("big-layer", MiB);
  for (let at = 0, index = 0; at < size; at += MiB, index++) {
    // A copy of its own (`seededBytes` may answer a Node Buffer, whose `slice` is a view).
    const chunk = new Uint8Array(Math.min(MiB, size - at));
    chunk.set(block.subarray(0, chunk.length));
    if (chunk.length >= 8) new DataView(chunk.buffer).setBigUint64(0, BigInt(index));
    yield chunk;
    // Let timers run (a proxy counting bytes, a test's deadline) while 1 GiB goes by.
    await Promise.resolve();
  }
}

/** A monolithic upload: `POST`, then `PUT ?digest=` with the whole body. */
async function putBlob(
  registry: TestRegistry,
  repo: string,
  digest: string,
  body: BodyInit,
): Promise<void> {
  const started = await registry.fetch(`${registry.url}/v2/${repo}/blobs/uploads/`, {
    method: "POST",
  });
  await started.body?.cancel();
  const location = started.headers.get("location");
  if (started.status !== 202 || location === null) {
    throw new Error(`Failed to start an upload of ${digest} to ${repo}: ${started.status}`);
  }
  const url = new URL(location, registry.url);
  url.searchParams.set("digest", digest);
  const put = await registry.fetch(url, {
    method: "PUT",
    headers: { "Content-Type": "application/octet-stream" },
    body,
  });
  const text = await put.text();
  if (put.status !== 201) {
    throw new Error(`Failed to upload ${digest} to ${repo}: ${put.status} ${text}`);
  }
}

function json(value: unknown): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(JSON.stringify(value));
}

/** Status and bytes sent of each `GET` of `digest`'s blob so far, from the access log. */
export async function blobGets(
  registry: TestRegistry,
  digest: string,
): Promise<{ status: number; bytes: number }[]> {
  const line = /"GET (\S+) [^"]*" (\d{3}) (\d+)/;
  return (await registry.requestLog()).split("\n").flatMap((l) => {
    const m = line.exec(l);
    return m && m[1]!.endsWith(`/blobs/${digest}`)
      ? [{ status: Number(m[2]), bytes: Number(m[3]) }]
      : [];
  });
}

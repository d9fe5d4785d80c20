/**
 * skopeo and umoci for tests: copy images into and out of the test registry,
 * and build archives the way those tools write them. Everything runs offline:
 * `--insecure-policy` avoids looking for a signature policy file, `--tmpdir`
 * keeps skopeo's temporary files in a directory we remove.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { createGunzip, createZstdDecompress } from "node:zlib";
import { run } from "./command.ts";
import { sha256Digest } from "./random.ts";
import type { Credentials, TestRegistry } from "./registry.ts";

/** Options for {@linkcode skopeoCopy}. */
export interface SkopeoCopyOptions {
  /** `--src-creds`. */
  srcCreds?: Credentials;
  /** `--dest-creds`. */
  destCreds?: Credentials;
  /** More `skopeo copy` arguments, e.g. `["--all"]` or `["--format", "v2s2"]`. */
  args?: string[];
}

/** Options for {@linkcode pullBack}. */
export interface PullBackOptions {
  /** Credentials for skopeo. Default: the registry's own `credentials`. */
  creds?: Credentials;
}

/** An image as pulled back from the registry by {@linkcode pullBack}. */
export interface PulledImage {
  /** sha256 of the manifest bytes the registry serves (what the push stored). */
  manifestDigest: string;
  /** The manifest's `Content-Type` as served. */
  mediaType: string;
  /** The parsed manifest. */
  manifest: Record<string, unknown>;
  /** `config.digest` from the manifest (the config blob was checked against it). */
  configDigest: string;
  /** The parsed config. */
  config: Record<string, unknown>;
  /** Layer digests from the manifest, in order (each blob was checked against it). */
  layerDigests: string[];
  /** Layer media types from the manifest, in order. */
  layerMediaTypes: string[];
  /** sha256 of each layer after decompressing gzip or zstd (detected by magic bytes). */
  layerDiffIds: string[];
}

/** Result of {@linkcode umociImage}. */
export interface UmociImage {
  /** Digest of the tag's manifest in the layout. */
  manifestDigest: string;
  /** Digest of the config. */
  configDigest: string;
  /** Digests of the (gzip) layer blobs. */
  layerDigests: string[];
  /** The config's `rootfs.diff_ids`. */
  layerDiffIds: string[];
}

/**
 * `skopeo copy SRC DEST`, offline and with TLS verification off for
 * `docker://` (the test registry is plain HTTP on 127.0.0.1).
 *
 * @example
 * ```ts
 * await skopeoCopy(`docker-archive:${archive}`, `docker://${registry.host}/app:1`);
 * ```
 */
export async function skopeoCopy(
  src: string,
  dest: string,
  options: SkopeoCopyOptions = {},
): Promise<void> {
  const args = ["copy", "--src-tls-verify=false", "--dest-tls-verify=false"];
  if (options.srcCreds !== undefined) args.push("--src-creds", creds(options.srcCreds));
  if (options.destCreds !== undefined) args.push("--dest-creds", creds(options.destCreds));
  args.push(...(options.args ?? []), src, dest);
  await skopeo(args);
}

/**
 * Runs any skopeo command with `--insecure-policy`, a private `--tmpdir` and
 * an empty auth file, so nothing outside the test is read or written.
 */
export async function skopeo(args: string[]): Promise<string> {
  const tmp = await Deno.makeTempDir({ prefix: "dip-skopeo-" });
  try {
    const { stdout } = await run(
      "skopeo",
      ["--insecure-policy", "--tmpdir", tmp, ...args],
      { env: { REGISTRY_AUTH_FILE: `${tmp}/auth.json` } },
    );
    return stdout;
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

/**
 * Pulls `repo:ref` (or `repo@sha256:…`) back from the test registry with
 * `skopeo copy … dir:` and checks every blob against its digest.
 *
 * The manifest and its digest come straight from the registry (`GET` with
 * every manifest type accepted), not from skopeo's copy, so `manifestDigest`
 * is what the registry stored. Images only: for an image index, use
 * `registry.fetchManifest` and pull each child by digest.
 */
export async function pullBack(
  registry: TestRegistry,
  repo: string,
  ref: string,
  options: PullBackOptions = {},
): Promise<PulledImage> {
  const served = await registry.fetchManifest(repo, ref);
  const manifest = served.json;
  if (Array.isArray(manifest.manifests)) {
    throw new TypeError(
      `Cannot pull back ${repo}:${ref}: it is an image index (${served.mediaType}); pull a child by digest`,
    );
  }
  const config = manifest.config as { digest?: unknown } | undefined;
  const layers = manifest.layers as { digest?: unknown; mediaType?: unknown }[] | undefined;
  if (typeof config?.digest !== "string" || !Array.isArray(layers)) {
    throw new TypeError(
      `Cannot pull back ${repo}:${ref}: unexpected manifest ${JSON.stringify(manifest)}`,
    );
  }
  const configDigest = config.digest;
  const layerDigests = layers.map((l) => String(l.digest));
  const layerMediaTypes = layers.map((l) => String(l.mediaType));

  const dir = await Deno.makeTempDir({ prefix: "dip-pullback-" });
  try {
    const source = ref.startsWith("sha256:")
      ? `docker://${registry.host}/${repo}@${ref}`
      : `docker://${registry.host}/${repo}:${ref}`;
    const creds = options.creds ?? registry.credentials;
    await skopeoCopy(source, `dir:${dir}/image`, creds === undefined ? {} : { srcCreds: creds });
    // By pinning the pulled manifest we know skopeo did not rewrite it or its blobs.
    const pulledManifest = await Deno.readFile(`${dir}/image/manifest.json`);
    if (sha256Digest(pulledManifest) !== served.digest) {
      throw new Error(
        `skopeo's copy of ${repo}:${ref} has manifest ${sha256Digest(pulledManifest)}, ` +
          `the registry serves ${served.digest}`,
      );
    }
    const configBytes = await Deno.readFile(blobFile(dir, configDigest));
    if (sha256Digest(configBytes) !== configDigest) {
      throw new Error(`Config blob of ${repo}:${ref} does not match ${configDigest}`);
    }
    const layerDiffIds: string[] = [];
    for (const digest of layerDigests) {
      const { digest: stored, diffId } = await hashLayer(blobFile(dir, digest));
      if (stored !== digest) {
        throw new Error(`Layer blob of ${repo}:${ref} hashes to ${stored}, expected ${digest}`);
      }
      layerDiffIds.push(diffId);
    }
    return {
      manifestDigest: served.digest,
      mediaType: served.mediaType,
      manifest,
      configDigest,
      config: JSON.parse(new TextDecoder().decode(configBytes)) as Record<string, unknown>,
      layerDigests,
      layerMediaTypes,
      layerDiffIds,
    };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Converts the image tagged `tag` in the OCI layout `ociLayoutDir` (e.g. from
 * {@linkcode umociImage}) into an archive written by skopeo itself.
 * docker-archive gets the repo tag `docker.io/library/<name>:<tag>`
 * (`name` defaults to "test"); oci-archive gets `ref.name` = `tag`.
 */
export async function skopeoArchive(
  kind: "docker-archive" | "oci-archive",
  ociLayoutDir: string,
  tag: string,
  out: string,
  options: { name?: string } = {},
): Promise<void> {
  // skopeo refuses to overwrite an existing docker-archive; start from scratch for both.
  await Deno.remove(out).catch(() => {});
  const dest = kind === "docker-archive"
    ? `docker-archive:${out}:${options.name ?? "test"}:${tag}`
    : `oci-archive:${out}:${tag}`;
  await skopeoCopy(`oci:${ociLayoutDir}:${tag}`, dest);
}

/**
 * Builds an OCI layout image with umoci: `umoci init` (unless `dir` already
 * is a layout), `umoci new`, then one layer per directory in `layerDirs`
 * (its contents land at the image root), then `umoci gc`.
 *
 * Layers are made by `umoci unpack --rootless` + copy + `umoci repack`:
 * `umoci insert` in umoci 0.4.7 writes truncated layer tars (data not
 * padded, no end-of-archive blocks).
 */
export async function umociImage(
  dir: string,
  tag: string,
  layerDirs: string[],
): Promise<UmociImage> {
  const image = `${dir}:${tag}`;
  const isLayout = await Deno.stat(`${dir}/oci-layout`).then(() => true, () => false);
  if (!isLayout) await run("umoci", ["init", "--layout", dir]);
  await run("umoci", ["new", "--image", image]);
  const work = await Deno.makeTempDir({ prefix: "dip-umoci-" });
  try {
    for (const [i, layerDir] of layerDirs.entries()) {
      const bundle = `${work}/bundle-${i}`;
      await run("umoci", ["unpack", "--rootless", "--image", image, bundle]);
      await run("cp", ["-a", `${layerDir}/.`, `${bundle}/rootfs/`]);
      await run("umoci", ["repack", "--image", image, bundle]);
    }
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  await run("umoci", ["gc", "--layout", dir]);

  const index = JSON.parse(await Deno.readTextFile(`${dir}/index.json`)) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const descriptor = index.manifests.find((m) =>
    m.annotations?.["org.opencontainers.image.ref.name"] === tag
  );
  if (descriptor === undefined) throw new Error(`umoci layout ${dir} has no tag ${tag}`);
  const manifest = JSON.parse(
    await Deno.readTextFile(blobFileInLayout(dir, descriptor.digest)),
  ) as {
    config: { digest: string };
    layers: { digest: string }[];
  };
  const config = JSON.parse(
    await Deno.readTextFile(blobFileInLayout(dir, manifest.config.digest)),
  ) as { rootfs: { diff_ids: string[] } };
  return {
    manifestDigest: descriptor.digest,
    configDigest: manifest.config.digest,
    layerDigests: manifest.layers.map((l) => l.digest),
    layerDiffIds: config.rootfs.diff_ids,
  };
}

/**
 * sha256 of a layer file as stored, and of its content after decompressing
 * gzip (1f 8b) or zstd (28 b5 2f fd), streamed.
 */
export async function hashLayer(path: string): Promise<{ digest: string; diffId: string }> {
  const stored = createHash("sha256");
  const plain = createHash("sha256");
  const magic = new Uint8Array(4);
  {
    using file = await Deno.open(path);
    const n = await file.read(magic);
    if (n === null) magic.fill(0);
  }
  const isGzip = magic[0] === 0x1f && magic[1] === 0x8b;
  const isZstd = magic[0] === 0x28 && magic[1] === 0xb5 && magic[2] === 0x2f && magic[3] === 0xfd;
  const file = await Deno.open(path);
  const input = file.readable.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        stored.update(chunk);
        controller.enqueue(chunk);
      },
    }),
  );
  if (isGzip || isZstd) {
    const stream = Readable.fromWeb(input).pipe(isGzip ? createGunzip() : createZstdDecompress());
    for await (const chunk of stream) plain.update(chunk as Uint8Array);
  } else {
    for await (const chunk of input) plain.update(chunk);
  }
  return { digest: `sha256:${stored.digest("hex")}`, diffId: `sha256:${plain.digest("hex")}` };
}

function blobFile(dir: string, digest: string): string {
  // skopeo's dir: transport names blobs by their hex digest.
  return `${dir}/image/${digest.replace(/^sha256:/, "")}`;
}

function blobFileInLayout(dir: string, digest: string): string {
  return `${dir}/blobs/${digest.replace(":", "/")}`;
}

function creds(c: Credentials): string {
  return `${c.username}:${c.password}`;
}

/**
 * The sha256 of each layer of `ref` as skopeo (Go) pulls and decompresses it
 * (`--dest-decompress`), in manifest order: the image's diff_ids as an
 * independent client sees them. Handles multi-member gzip and multi-frame zstd.
 */
export async function goDiffIds(registry: TestRegistry, ref: string): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "dip-decompressed-" });
  try {
    await skopeoCopy(`docker://${registry.host}/${ref}`, `dir:${dir}/image`, {
      args: ["--dest-decompress"],
    });
    const manifest = JSON.parse(await Deno.readTextFile(`${dir}/image/manifest.json`)) as {
      layers: { digest: string }[];
    };
    return await Promise.all(
      manifest.layers.map(async (l) => sha256Digest(await Deno.readFile(blobFile(dir, l.digest)))),
    );
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * A matrix of malformed inputs pushed through the CLI into one real registry: truncated and
 * corrupted tars, unsafe paths, broken links, bad `manifest.json` / `index.json`, blobs that
 * don't match their digests or sizes, compressed archives, and files that are not archives.
 *
 * Every case must fail the way a user can act on: exit 1 (2 for a usage problem), stderr one
 * `Error:` line naming the archive (and perhaps a `Hint:` line), no stack trace, nothing on
 * stdout. Afterwards the registry holds no tag in any repository the matrix used and never
 * received a manifest. Each input is generated here, a few KiB each.
 *
 * `tests/cli/push_errors_test.ts` covers the same contract for a few inputs with more
 * variations of flags; this file covers breadth.
 */
import { gzipSync } from "node:zlib";
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { type CliResult, lines, runCli } from "../helpers/cli.ts";
import { run } from "../helpers/command.ts";
import { buildLayerTar } from "../helpers/image_fixtures.ts";
import { sha256Digest, sha256Hex } from "../helpers/random.ts";
import { integrationTest, startRegistry, toolOnPath } from "../helpers/registry.ts";
import { tarBytes } from "../helpers/tar_writer.ts";

const encoder = new TextEncoder();
const BLOCK = 512;

// ---------------------------------------------------------------------------------------------
// Writing archives entry by entry, remembering where each header and its data start

type Entry =
  | { name: string; kind: "file"; data: Uint8Array }
  | { name: string; kind: "dir" }
  | { name: string; kind: "symlink" | "hardlink"; target: string };

interface Placed {
  header: number;
  data: number;
  size: number;
}

interface BuiltTar {
  bytes: Uint8Array;
  /** Where the entry named `name` sits in `bytes`. */
  at(name: string): Placed;
}

async function buildTar(entries: Entry[]): Promise<BuiltTar> {
  const placed = new Map<string, Placed>();
  const bytes = await tarBytes(async (tar) => {
    for (const entry of entries) {
      let size = 0;
      if (entry.kind === "file") {
        await tar.addFile(entry.name, entry.data);
        size = entry.data.length;
      } else if (entry.kind === "dir") await tar.addDirectory(entry.name);
      else if (entry.kind === "symlink") await tar.addSymlink(entry.name, entry.target);
      else await tar.addHardlink(entry.name, entry.target);
      const data = tar.bytesWritten - Math.ceil(size / BLOCK) * BLOCK;
      placed.set(entry.name, { header: data - BLOCK, data, size });
    }
  });
  return {
    bytes,
    at(name) {
      const where = placed.get(name) ?? placed.get(`${name}/`);
      assert(where !== undefined, `no entry ${name} in the fixture`);
      return where;
    },
  };
}

function file(name: string, data: Uint8Array | string | unknown): Entry {
  const bytes = data instanceof Uint8Array
    ? data
    : encoder.encode(typeof data === "string" ? data : JSON.stringify(data));
  return { name, kind: "file", data: bytes };
}

/** `entries` with the entry `name` replaced by `by` (an entry, or new file content) or dropped. */
function replace(entries: Entry[], name: string, by: Entry | string | Uint8Array | null): Entry[] {
  assert(entries.some((e) => e.name === name), `no entry ${name} to replace`);
  return entries.flatMap((entry) => {
    if (entry.name !== name) return [entry];
    if (by === null) return [];
    return [typeof by === "string" || by instanceof Uint8Array ? file(name, by) : by];
  });
}

/** `entries` with `extra` inserted before the entry `name`. */
function insertBefore(entries: Entry[], name: string, ...extra: Entry[]): Entry[] {
  const at = entries.findIndex((e) => e.name === name);
  assert(at !== -1, `no entry ${name} to insert before`);
  return [...entries.slice(0, at), ...extra, ...entries.slice(at)];
}

/** A copy of `bytes` with the byte at `offset` inverted. */
function flipByte(bytes: Uint8Array, offset: number): Uint8Array {
  const copy = bytes.slice();
  copy[offset] = copy[offset]! ^ 0xff;
  return copy;
}

/** A copy of `bytes` whose header at `header` declares `size`, with its checksum fixed. */
function patchSize(bytes: Uint8Array, header: number, size: number): Uint8Array {
  const copy = bytes.slice();
  const block = copy.subarray(header, header + BLOCK);
  block.set(encoder.encode(`${size.toString(8).padStart(11, "0")}\0`), 124);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.set(encoder.encode(`${sum.toString(8).padStart(6, "0")}\0 `), 148);
  return copy;
}

const blobName = (digest: string) => `blobs/${digest.replace(":", "/")}`;

// ---------------------------------------------------------------------------------------------
// The valid images the cases break

/** A `docker save` (before Docker 25) of a two-layer image, in the order Docker writes it. */
interface DockerSave {
  layers: { id: string; path: string; tar: Uint8Array; diffId: string }[];
  configName: string;
  config: { rootfs: { type: string; diff_ids: string[] } } & Record<string, unknown>;
  manifest: { Config: string; RepoTags: string[]; Layers: string[] }[];
}

async function makeDockerSave(): Promise<DockerSave> {
  const layers = [];
  for (const [i, size] of [1500, 2500].entries()) {
    const tar = await buildLayerTar(`matrix-save#${i}`, size);
    const id = sha256Hex(`matrix v1 id ${i}`);
    layers.push({ id, path: `${id}/layer.tar`, tar, diffId: sha256Digest(tar) });
  }
  const config = {
    architecture: "amd64",
    os: "linux",
    config: { Cmd: ["/bin/sh"] },
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
  };
  const configName = `${sha256Hex(JSON.stringify(config))}.json`;
  const manifest = [{
    Config: configName,
    RepoTags: ["matrix:1"],
    Layers: layers.map((l) => l.path),
  }];
  return { layers, configName, config, manifest };
}

function saveEntries(save: DockerSave): Entry[] {
  return [
    ...save.layers.flatMap((l): Entry[] => [
      { name: `${l.id}/`, kind: "dir" },
      file(`${l.id}/VERSION`, "1.0"),
      file(l.path, l.tar),
    ]),
    file(save.configName, save.config),
    file("manifest.json", save.manifest),
    file("repositories", { matrix: { "1": save.layers[1]!.id } }),
  ];
}

/** An OCI image: config and gzip-compressed layers, and the manifest naming them. */
interface OciImage {
  config: Uint8Array;
  configDigest: string;
  layers: { blob: Uint8Array; digest: string }[];
  manifest: Record<string, unknown> & { layers: { size: number }[] };
}

async function makeOciImage(seed: string): Promise<OciImage> {
  const tars = [await buildLayerTar(`${seed}#0`, 1200), await buildLayerTar(`${seed}#1`, 2200)];
  const config = encoder.encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: tars.map((t) => sha256Digest(t)) },
  }));
  const configDigest = sha256Digest(config);
  const layers = tars.map((tar) => {
    const blob = new Uint8Array(gzipSync(tar));
    return { blob, digest: sha256Digest(blob) };
  });
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: configDigest,
      size: config.length,
    },
    layers: layers.map((l) => ({
      mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
      digest: l.digest,
      size: l.blob.length,
    })),
  };
  return { config, configDigest, layers, manifest };
}

interface OciLayoutOptions {
  /** Changes a copy of each image's manifest before it is stored; its digest follows. */
  manifest?: (manifest: OciImage["manifest"]) => void;
  /** Ref name of each image in index.json. Default "1" for the first, "2" for the second… */
  refNames?: string[];
  /** What to store as index.json, given its manifest descriptors. */
  index?: (manifests: Record<string, unknown>[]) => unknown;
}

/** An OCI image-layout tar's entries (as `skopeo copy … oci-archive:` writes them). */
function ociEntries(images: OciImage[], options: OciLayoutOptions = {}): Entry[] {
  const blobs = new Map<string, Uint8Array>();
  const descriptors = images.map((image, i) => {
    const manifest = structuredClone(image.manifest);
    options.manifest?.(manifest);
    const bytes = encoder.encode(JSON.stringify(manifest));
    blobs.set(image.configDigest, image.config);
    for (const layer of image.layers) blobs.set(layer.digest, layer.blob);
    blobs.set(sha256Digest(bytes), bytes);
    return {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: sha256Digest(bytes),
      size: bytes.length,
      annotations: { "org.opencontainers.image.ref.name": options.refNames?.[i] ?? `${i + 1}` },
    };
  });
  const index = options.index?.(descriptors) ?? { schemaVersion: 2, manifests: descriptors };
  return [
    { name: "blobs/", kind: "dir" },
    { name: "blobs/sha256/", kind: "dir" },
    ...[...blobs.entries()].sort(([a], [b]) => a < b ? -1 : 1).map(([digest, data]) =>
      file(blobName(digest), data)
    ),
    file("index.json", index),
    file("oci-layout", { imageLayoutVersion: "1.0.0" }),
  ];
}

const SAVE = await makeDockerSave();
const OCI = await makeOciImage("matrix-oci");
const OCI_OTHER = await makeOciImage("matrix-oci-other");
const [LAYER0, LAYER1] = [SAVE.layers[0]!, SAVE.layers[1]!];
const OCI_LAYER = OCI.layers[1]!;
/** The digest index.json gives the manifest of `OCI`. */
const OCI_MANIFEST = sha256Digest(JSON.stringify(OCI.manifest));

// ---------------------------------------------------------------------------------------------
// The matrix

interface Input {
  /** What `-f` gets. */
  path: string;
  /** Key words only known once the input is written (offsets). */
  says?: (string | RegExp)[];
  /** Waits for whatever the input left running (a FIFO's writer) once the CLI is done. */
  after?: () => Promise<void>;
}

interface Case {
  /** Also the repository pushed to: lowercase words joined by "-". */
  name: string;
  /** Creates the input; `path` is a fresh path for it (the input may be put elsewhere). */
  input(path: string): Promise<Input>;
  /** Extra flags. */
  args?: string[];
  /** Exit code. Default 1. */
  code?: 1 | 2;
  /** Must occur in the `Error:` line (strings case-insensitively). The path is added. */
  says: (string | RegExp)[];
  /** Blob uploads to the case's repository are allowed (a digest only the upload checks). */
  uploads?: boolean;
  /** A reason the case cannot run here. */
  skip?: string | undefined;
  /** A command the CLI runs under (see `CliOptions.under`). */
  under?: string[] | undefined;
}

/** Writes `entries` as a tar at `path`. */
function tarOf(entries: Entry[]): (path: string) => Promise<Input> {
  return async (path) => {
    await Deno.writeFile(path, (await buildTar(entries)).bytes);
    return { path };
  };
}

/** Writes the tar of `entries`, changed by `change`, at `path`. */
function bytesOf(
  entries: Entry[],
  change: (tar: BuiltTar) => { bytes: Uint8Array; says?: (string | RegExp)[] },
): (path: string) => Promise<Input> {
  return async (path) => {
    const { bytes, says } = change(await buildTar(entries));
    await Deno.writeFile(path, bytes);
    return { path, ...(says === undefined ? {} : { says }) };
  };
}

const MISMATCH = /does(?: not|n't) match its digest/;
const save = saveEntries(SAVE);
const oci = ociEntries([OCI]);
/** A docker save with manifest.json and the config first, as `tar -cf x.tar manifest.json …`. */
const manifestFirst = [
  ...save.filter((e) => e.name === "manifest.json" || e.name === SAVE.configName),
  ...save.filter((e) => e.name !== "manifest.json" && e.name !== SAVE.configName),
];

const CASES: Case[] = [
  // --- Truncated and corrupted tars -------------------------------------------------------
  {
    name: "cut-at-header-boundary",
    input: bytesOf(oci, (tar) => ({ bytes: tar.bytes.subarray(0, tar.at("index.json").header) })),
    says: ["manifest.json", "index.json", "truncated"],
  },
  {
    // The cut loses a layer, not the manifest: the message should still point at truncation
    // (the index knows the end-of-archive marker is missing).
    name: "cut-at-header-boundary-before-a-layer",
    input: bytesOf(manifestFirst, (tar) => ({
      bytes: tar.bytes.subarray(0, tar.at(`${LAYER1.id}/`).header),
    })),
    says: [LAYER1.path, "truncated"],
  },
  {
    name: "cut-inside-a-header",
    input: bytesOf(save, (tar) => {
      const at = tar.at(SAVE.configName).header;
      return {
        bytes: tar.bytes.subarray(0, at + 300),
        says: [`incomplete header at offset ${at}`],
      };
    }),
    says: ["truncated"],
  },
  {
    name: "cut-inside-layer-data",
    input: bytesOf(
      save,
      (tar) => ({ bytes: tar.bytes.subarray(0, tar.at(LAYER0.path).data + 700) }),
    ),
    says: [LAYER0.path, "truncated"],
  },
  {
    name: "cut-inside-manifest-json",
    input: bytesOf(save, (tar) => ({
      bytes: tar.bytes.subarray(0, tar.at("manifest.json").data + 20),
    })),
    says: ["manifest.json", "truncated"],
  },
  {
    name: "bad-header-checksum",
    input: bytesOf(save, (tar) => {
      const at = tar.at(SAVE.configName).header;
      return { bytes: flipByte(tar.bytes, at + 10), says: [`offset ${at}`] };
    }),
    says: ["bad header checksum"],
  },
  {
    name: "size-past-end-of-file",
    input: bytesOf(save, (tar) => ({
      bytes: patchSize(tar.bytes, tar.at(LAYER1.path).header, 10 * 1024 * 1024),
    })),
    says: [LAYER1.path, "declares 10485760 bytes", "truncated"],
  },
  {
    name: "absolute-path-entry",
    input: tarOf(insertBefore(save, "manifest.json", file("/etc/cron.d/evil", "* * * * * x"))),
    says: ["unsafe path", "/etc/cron.d/evil", "absolute"],
  },
  {
    name: "dotdot-path-entry",
    input: tarOf(insertBefore(save, "manifest.json", file("blobs/../../escape", "x"))),
    says: ["unsafe path", "blobs/../../escape", '".."'],
  },
  {
    name: "duplicate-entries",
    input: tarOf([...save, file("manifest.json", SAVE.manifest)]),
    says: ["duplicate entry", "manifest.json"],
  },
  {
    name: "empty-file",
    input: async (path) => {
      await Deno.writeFile(path, new Uint8Array());
      return { path };
    },
    says: ["empty"],
  },
  {
    name: "gzip-cut-in-half",
    input: async (path) => {
      const gz = gzipSync((await buildTar(save)).bytes);
      await Deno.writeFile(path, gz.subarray(0, Math.floor(gz.length / 2)));
      return { path };
    },
    says: ["gzip", "ends early"],
  },
  {
    name: "zstd-cut-short",
    skip: toolOnPath("zstd") ? undefined : "zstd is not installed",
    input: async (path) => {
      const plain = `${path}.plain`;
      await Deno.writeFile(plain, (await buildTar(save)).bytes);
      await run("zstd", ["-q", "-f", "-o", `${path}.zst`, plain]);
      const whole = await Deno.readFile(`${path}.zst`);
      await Deno.writeFile(path, whole.subarray(0, whole.length - 100));
      return { path };
    },
    says: ["zstd", /ends early|truncated/],
  },

  // --- docker save: manifest.json, config and layers -----------------------------------------
  {
    name: "manifest-json-missing",
    input: tarOf(replace(save, "manifest.json", null)),
    says: ["not an image archive", "manifest.json", "index.json"],
  },
  {
    name: "manifest-json-not-json",
    input: tarOf(replace(save, "manifest.json", '[{"Config": "abc.json", "Layers": [')),
    says: ["manifest.json", "not valid JSON"],
  },
  {
    name: "manifest-json-object",
    input: tarOf(replace(save, "manifest.json", JSON.stringify(SAVE.manifest[0]))),
    says: ["manifest.json", "must be an array"],
  },
  {
    name: "manifest-json-numbers",
    input: tarOf(replace(save, "manifest.json", "[1, 2, 3]")),
    says: ["manifest.json", "entry 0 must be an object"],
  },
  {
    name: "manifest-json-no-config",
    input: tarOf(
      replace(save, "manifest.json", JSON.stringify([{ ...SAVE.manifest[0], Config: undefined }])),
    ),
    says: ["manifest.json", "entry 0.Config"],
  },
  {
    name: "manifest-json-no-layers",
    input: tarOf(
      replace(save, "manifest.json", JSON.stringify([{ ...SAVE.manifest[0], Layers: undefined }])),
    ),
    says: ["manifest.json", "entry 0.Layers must be an array"],
  },
  {
    name: "manifest-json-empty-array",
    input: tarOf(replace(save, "manifest.json", "[]")),
    says: ["manifest.json", "no images"],
  },
  {
    name: "config-missing",
    input: tarOf(replace(save, SAVE.configName, null)),
    says: [SAVE.configName, "not found"],
  },
  {
    name: "config-not-json",
    input: tarOf(replace(save, SAVE.configName, '{"rootfs": {"diff_ids": [')),
    says: [SAVE.configName, "not valid JSON"],
  },
  {
    name: "config-is-a-directory",
    input: tarOf(replace(save, SAVE.configName, { name: SAVE.configName, kind: "dir" })),
    says: [SAVE.configName, "is a directory"],
  },
  {
    name: "layer-missing",
    input: tarOf(replace(save, LAYER1.path, null)),
    says: [LAYER1.path, "not found"],
  },
  {
    name: "layer-not-a-tar",
    input: tarOf(replace(save, LAYER0.path, "just some text, not a tar".repeat(40))),
    says: [LAYER0.path, "neither a tar nor gzip"],
  },
  {
    name: "diff-ids-count-differs",
    input: tarOf(replace(
      save,
      SAVE.configName,
      JSON.stringify({ ...SAVE.config, rootfs: { type: "layers", diff_ids: [LAYER0.diffId] } }),
    )),
    says: [SAVE.configName, "lists 1 layers", "lists 2"],
  },
  {
    name: "symlink-loop",
    input: tarOf(
      replace(
        replace(save, LAYER0.path, {
          name: LAYER0.path,
          kind: "symlink",
          target: `../${LAYER1.path}`,
        }),
        LAYER1.path,
        { name: LAYER1.path, kind: "symlink", target: `../${LAYER0.path}` },
      ),
    ),
    says: ["symlink loop", LAYER0.path],
  },
  {
    name: "hard-link-loop",
    input: tarOf(
      replace(
        replace(save, LAYER0.path, { name: LAYER0.path, kind: "hardlink", target: LAYER1.path }),
        LAYER1.path,
        { name: LAYER1.path, kind: "hardlink", target: LAYER0.path },
      ),
    ),
    says: ["hard link loop", LAYER0.path],
  },
  {
    name: "link-to-missing-entry",
    input: tarOf(
      replace(save, LAYER1.path, {
        name: LAYER1.path,
        kind: "symlink",
        target: "../gone/layer.tar",
      }),
    ),
    says: [LAYER1.path, 'links to "gone/layer.tar"', "not in the archive"],
  },
  {
    // Past the layer's first tar header, so it still looks like a tar: only hashing tells.
    name: "diff-id-mismatch-verify",
    input: bytesOf(save, (tar) => ({
      bytes: flipByte(tar.bytes, tar.at(LAYER1.path).data + 1024),
    })),
    args: ["--verify", "-q"],
    says: [LAYER1.path, MISMATCH, LAYER1.diffId],
  },

  // --- OCI layout: index.json, manifests and blobs --------------------------------------------
  {
    name: "index-json-without-blobs",
    input: tarOf(oci.filter((e) => !e.name.startsWith("blobs/"))),
    says: [`manifest ${OCI_MANIFEST} is missing from the archive`],
  },
  {
    name: "index-json-not-json",
    input: tarOf(replace(oci, "index.json", '{"schemaVersion": 2, "manifests": [')),
    says: ["index.json", "not valid JSON"],
  },
  {
    name: "index-json-no-manifests",
    input: tarOf(ociEntries([OCI], { index: () => ({ schemaVersion: 2 }) })),
    says: ["index.json", "manifests must be an array"],
  },
  {
    name: "index-json-empty-manifests",
    input: tarOf(ociEntries([OCI], { index: () => ({ schemaVersion: 2, manifests: [] }) })),
    says: ["index.json lists no images"],
  },
  {
    name: "index-json-bad-digest",
    input: tarOf(ociEntries([OCI], {
      index: ([d]) => ({ schemaVersion: 2, manifests: [{ ...d, digest: "md5-0123abc" }] }),
    })),
    says: ["index.json", "manifests[0].digest is not a digest", "md5-0123abc"],
  },
  {
    // sha256 is supported; what is wrong is the hex. The message must not blame the algorithm.
    name: "index-json-digest-not-hex",
    input: tarOf(ociEntries([OCI], {
      index: ([d]) => ({ schemaVersion: 2, manifests: [{ ...d, digest: "sha256:not-hex" }] }),
    })),
    says: ["index.json", "manifests[0].digest", "sha256:not-hex", /not a (?:valid )?digest/i],
  },
  {
    name: "index-json-negative-size",
    input: tarOf(ociEntries([OCI], {
      index: ([d]) => ({ schemaVersion: 2, manifests: [{ ...d, size: -1 }] }),
    })),
    says: ["index.json", "manifests[0].size must be a non-negative integer"],
  },
  {
    name: "index-json-manifest-size-differs",
    input: tarOf(ociEntries([OCI], {
      index: ([d]) => ({
        schemaVersion: 2,
        manifests: [{ ...d, size: (d!["size"] as number) + 7 }],
      }),
    })),
    says: [`manifest ${OCI_MANIFEST}`, "bytes in the archive but its descriptor says"],
  },
  {
    name: "oci-config-missing",
    input: tarOf(replace(oci, blobName(OCI.configDigest), null)),
    says: [`config ${OCI.configDigest} is missing from the archive`],
  },
  {
    name: "oci-layer-size-differs",
    input: tarOf(ociEntries([OCI], { manifest: (m) => void (m.layers[1]!.size += 1) })),
    says: [
      `layer ${OCI_LAYER.digest} is ${OCI_LAYER.blob.length} bytes in the archive`,
      `descriptor says ${OCI_LAYER.blob.length + 1}`,
    ],
  },
  {
    name: "oci-manifest-changed",
    input: bytesOf(oci, (tar) => ({
      bytes: flipByte(tar.bytes, tar.at(blobName(OCI_MANIFEST)).data + 30),
    })),
    says: ["manifest", blobName(OCI_MANIFEST), MISMATCH],
  },
  {
    name: "oci-config-changed",
    input: bytesOf(oci, (tar) => ({
      bytes: flipByte(tar.bytes, tar.at(blobName(OCI.configDigest)).data + 5),
    })),
    says: ["config", blobName(OCI.configDigest), MISMATCH],
  },
  {
    // Only hashing the layer tells: without --verify that happens while it uploads.
    name: "oci-layer-changed",
    input: bytesOf(oci, (tar) => {
      const at = tar.at(blobName(OCI_LAYER.digest));
      return { bytes: flipByte(tar.bytes, at.data + Math.floor(at.size / 2)) };
    }),
    args: ["-q", "--retry-attempts", "0"],
    uploads: true,
    says: [blobName(OCI_LAYER.digest), MISMATCH, OCI_LAYER.digest],
  },
  {
    name: "oci-layer-changed-verify",
    input: bytesOf(oci, (tar) => {
      const at = tar.at(blobName(OCI_LAYER.digest));
      return { bytes: flipByte(tar.bytes, at.data + Math.floor(at.size / 2)) };
    }),
    args: ["--verify", "-q"],
    says: [blobName(OCI_LAYER.digest), MISMATCH, OCI_LAYER.digest],
  },
  {
    name: "two-images-without-image-flag",
    input: tarOf(ociEntries([OCI, OCI_OTHER])),
    code: 2,
    says: ["holds 2 images", "--image"],
  },
  {
    name: "two-images-with-one-ref-name",
    input: tarOf(ociEntries([OCI, OCI_OTHER], { refNames: ["1", "1"] })),
    args: ["--image", "1"],
    code: 2,
    says: ['"1" names 2 images'],
  },

  // --- Not a file one can read ------------------------------------------------------------------
  {
    name: "missing-file",
    input: (path) => Promise.resolve({ path }),
    says: ["no such file"],
  },
  {
    name: "directory-instead-of-file",
    input: async (path) => {
      await Deno.mkdir(path);
      return { path };
    },
    says: ["is a directory"],
  },
  {
    // Root reads a file whatever its mode bits, so as root the CLI runs in a user namespace
    // where the file's owner is not mapped: there root's override does not reach it, as for
    // any user but the owner.
    name: "unreadable-file",
    input: async (path) => {
      await Deno.writeFile(path, (await buildTar(save)).bytes, { mode: 0o000 });
      await Deno.chmod(path, 0o000);
      if (Deno.uid() === 0) await Deno.chown(path, 12345, 12345);
      return { path };
    },
    under: Deno.uid() === 0 ? ["unshare", "--user", "--map-root-user"] : undefined,
    says: ["permission denied"],
  },
  {
    // A FIFO cannot be indexed (and opening one without a writer would block).
    name: "fifo-instead-of-file",
    skip: toolOnPath("mkfifo") ? undefined : "mkfifo is not installed",
    // A FIFO is read as a stream (as `-f <(docker save app)` needs); here it carries garbage.
    input: async (path) => {
      await run("mkfifo", [path]);
      const writer = new Deno.Command("sh", {
        args: ["-c", `printf 'this is not an image archive at all' > '${path}'`],
      }).spawn();
      return { path, after: async () => void await writer.status };
    },
    says: ["not a tar archive"],
  },
  {
    name: "dangling-symlink",
    input: async (path) => {
      await Deno.symlink(`${path}.gone`, path);
      return { path };
    },
    says: ["no such file"],
  },
];

// ---------------------------------------------------------------------------------------------
// Running it

/** Asserts a clean failure: the exit code, one `Error:` line with the key words, no trace. */
function assertFailure(
  result: CliResult,
  code: number,
  path: string,
  says: (string | RegExp)[],
): void {
  const context = `exit ${result.code}, stderr:\n${result.stderr}`;
  assertEquals(result.code, code, context);
  assertEquals(result.stdout, "", `stdout must be empty; ${context}`);
  assert(!/^\s+at /m.test(result.stderr), `a stack trace; ${context}`);
  assert(!/uncaught/i.test(result.stderr), `an uncaught error; ${context}`);
  const all = lines(result.stderr);
  assert(all.length >= 1 && all[0]!.startsWith("Error: "), `no "Error:" line first; ${context}`);
  assert(all.length <= 2, `more than an error and a hint; ${context}`);
  if (all.length === 2) assert(all[1]!.startsWith("Hint: "), `not a hint; ${context}`);
  const error = all[0]!;
  assertStringIncludes(error, path, `the error does not name ${path}; ${context}`);
  for (const word of says) {
    if (typeof word === "string") {
      assertStringIncludes(error.toLowerCase(), word.toLowerCase(), context);
    } else {
      assert(word.test(error), `the error does not match ${word}; ${context}`);
    }
  }
}

const WRITES = new Set(["POST", "PATCH", "PUT", "DELETE"]);

integrationTest("malformed inputs: each fails cleanly and nothing is pushed", async (t) => {
  assert(CASES.length >= 25, `only ${CASES.length} cases`);
  assertEquals(new Set(CASES.map((c) => c.name)).size, CASES.length, "case names are unique");
  const dir = await Deno.makeTempDir({ prefix: "dip-malformed-" });
  try {
    await using registry = await startRegistry();
    for (const c of CASES) {
      await t.step({
        name: c.skip === undefined ? c.name : `${c.name} (${c.skip})`,
        ignore: c.skip !== undefined,
        fn: async () => {
          const input = await c.input(`${dir}/${c.name}.tar`);
          const result = await runCli([
            "-r",
            `http://${registry.host}/${c.name}:1`,
            "-f",
            input.path,
            ...c.args ?? [],
          ], c.under === undefined ? {} : { under: c.under });
          await input.after?.();
          assertFailure(result, c.code ?? 1, input.path, [...c.says, ...input.says ?? []]);
          if (!c.uploads) {
            const writes = (await registry.requests()).filter((r) =>
              WRITES.has(r.method) && r.path.startsWith(`/v2/${c.name}/`)
            );
            assertEquals(writes, [], "the registry was written to");
          }
        },
      });
    }

    await t.step("the registry holds nothing from the matrix", async () => {
      for (const c of CASES) assertEquals(await registry.listTags(c.name), [], c.name);
      const manifestPuts = (await registry.requests()).filter((r) =>
        r.method === "PUT" && r.path.includes("/manifests/")
      );
      assertEquals(manifestPuts, []);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { tools: ["docker-registry"] });

/**
 * Images for the link-speed benchmark (`bench_links.ts`), built with GNU tar from this machine's
 * files or from generated text, and written as a `docker save`-style archive (uncompressed
 * layers named `<hex>.tar`, as skopeo's docker-archive writes them):
 *
 * - `usr`: three layers cut from /usr/lib, /usr/share and /usr/bin (binaries, libraries, text);
 * - `text`: a layer of base64 data (what zlib-ng's level 1 hardly compresses) and one of `seq`
 *   output (where it keeps 1.7× `gzip -1`'s bytes).
 *
 * Each layer's GNU `gzip -1` size is measured once, for the floor check. An image is built once
 * per directory and size and found again by later runs (the file `image.json` says it is done).
 */
import { sha256Digest } from "../src/digest.ts";
import { run } from "../tests/helpers/command.ts";

/** One uncompressed layer of a benchmark image. */
export interface BenchLayer {
  /** The layer tar on disk (also inside the archive). */
  path: string;
  /** What the layer holds, for tables ("/usr/lib", "base64"). */
  label: string;
  /** sha256 of the tar. */
  diffId: string;
  size: number;
  /** Bytes GNU `gzip -1` makes of it. */
  gzip1: number;
}

/** A built image. */
export interface BenchImage {
  name: "usr" | "text";
  /** The docker-archive. */
  archive: string;
  layers: BenchLayer[];
}

/** Shares of the usr image's size per tree. */
const TREES = [["/usr/lib", 0.5], ["/usr/share", 0.3], ["/usr/bin", 0.2]] as const;

/** The usr image of about `bytes` bytes, in `dir` (built unless there). */
export async function usrImage(dir: string, bytes: number): Promise<BenchImage> {
  return await cachedImage(`${dir}/usr-${Math.round(bytes / 1e6)}mb`, "usr", async (at) => {
    const layers: [string, string][] = [];
    for (const [tree, share] of TREES) {
      const name = tree.split("/").at(-1)!;
      const list = `${at}/${name}.list`;
      // Regular readable files in path order until the share is full (NUL-separated: names
      // with spaces).
      const script = `find "$0" -type f -readable -print0 2>/dev/null | sort -z | ` +
        `xargs -0 stat --printf '%s %n\\0' | awk -v RS='\\0' -v ORS='\\0' -v cap="$1" ` +
        `'{ size = $1; sub(/^[0-9]+ /, ""); if (t + size > cap) exit; t += size; print }' > "$2"`;
      await run("sh", ["-c", script, tree, String(Math.round(bytes * share)), list]);
      const tar = `${at}/${name}.layer`;
      await run("tar", ["--create", "--file", tar, "--null", "--files-from", list]);
      layers.push([tar, tree]);
    }
    return layers;
  });
}

/** The text image: base64 and `seq` layers of `bytes` each, in `dir` (built unless there). */
export async function textImage(dir: string, bytes: number): Promise<BenchImage> {
  return await cachedImage(`${dir}/text-${Math.round(bytes / 1e6)}mb`, "text", async (at) => {
    // Reproducible noise (AES-CTR over zeros), then base64 in 76-column lines as `base64` writes.
    const b64 =
      `openssl enc -aes-256-ctr -nosalt -pbkdf2 -pass pass:bench < /dev/zero 2>/dev/null` +
      ` | head -c ${Math.floor(bytes * 0.74)} | base64 | head -c ${bytes} > "$0/data.b64"`;
    await run("sh", ["-c", b64, at]);
    await run("sh", [
      "-c",
      `seq 1 ${Math.ceil(bytes / 7)} | head -c ${bytes} > "$0/numbers.txt"`,
      at,
    ]);
    for (const name of ["data.b64", "numbers.txt"]) {
      await run("tar", ["--create", "--file", `${at}/${name}.layer`, "-C", at, name]);
      await Deno.remove(`${at}/${name}`);
    }
    return [[`${at}/data.b64.layer`, "base64"], [`${at}/numbers.txt.layer`, "seq output"]];
  });
}

/**
 * Builds an image in `at` unless `image.json` says it is there: `make` writes the layer tars
 * and names them; this writes the config, `manifest.json` and the archive, and measures
 * `gzip -1` of each layer.
 */
async function cachedImage(
  at: string,
  name: BenchImage["name"],
  make: (at: string) => Promise<[string, string][]>,
): Promise<BenchImage> {
  const done = `${at}/image.json`;
  const found = await Deno.readTextFile(done).catch(() => undefined);
  if (found !== undefined) return JSON.parse(found) as BenchImage;
  await Deno.remove(at, { recursive: true }).catch(() => {});
  await Deno.mkdir(at, { recursive: true });
  const layers: BenchLayer[] = [];
  for (const [path, label] of await make(at)) {
    const [sum, gzip1] = await Promise.all([
      run("sha256sum", [path]),
      run("sh", ["-c", 'gzip -1 < "$0" | wc -c', path]),
    ]);
    layers.push({
      path,
      label,
      diffId: `sha256:${sum.stdout.split(" ")[0]}`,
      size: (await Deno.stat(path)).size,
      gzip1: Number(gzip1.stdout.trim()),
    });
  }
  const stage = `${at}/archive`;
  await Deno.mkdir(stage);
  const config = JSON.stringify({
    architecture: "amd64",
    os: "linux",
    config: {},
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
  });
  const configHex = sha256Digest(new TextEncoder().encode(config)).slice("sha256:".length);
  await Deno.writeTextFile(`${stage}/${configHex}.json`, config);
  const names = layers.map((l) => `${l.diffId.slice(7)}.tar`);
  for (const [i, layer] of layers.entries()) await Deno.link(layer.path, `${stage}/${names[i]}`);
  await Deno.writeTextFile(
    `${stage}/manifest.json`,
    JSON.stringify([{
      Config: `${configHex}.json`,
      RepoTags: [`bench/${name}:latest`],
      Layers: names,
    }]),
  );
  const archive = `${at}/${name}.tar`;
  await run("tar", [
    "--create",
    "--file",
    archive,
    "-C",
    stage,
    ...names,
    `${configHex}.json`,
    "manifest.json",
  ]);
  await Deno.remove(stage, { recursive: true });
  const image: BenchImage = { name, archive, layers };
  await Deno.writeTextFile(done, JSON.stringify(image, null, 2));
  return image;
}

/**
 * npm package tarballs fetched with `npm pack` (so the user's npm settings apply: registry
 * mirror, proxy, CA), checked against a pinned `sha512-…` integrity before anything in them is
 * used, and kept in a cache directory so a second release fetches nothing.
 */
import { createHash } from "node:crypto";
import { BLOCK_SIZE, isZeroBlock, parseHeader } from "../../src/archive/tar_header.ts";

/** A package at an exact version with the integrity npm's registry publishes for it. */
export interface PinnedPackage {
  name: string;
  version: string;
  /** `sha512-<base64>`, as `npm view <name>@<version> dist.integrity` prints it. */
  integrity: string;
}

/** Options for {@linkcode fetchPinnedTarball}. */
export interface FetchOptions {
  /** The npm command. Default: `npm`. */
  npm?: string;
  /** Where progress lines go. Default: nowhere. */
  say?: (line: string) => void;
}

/** The npm integrity string (`sha512-<base64>`) of `bytes`. */
export function integrityOf(bytes: Uint8Array): string {
  return `sha512-${createHash("sha512").update(bytes).digest("base64")}`;
}

/** Where a package's tarball is cached: one file per name and version. */
export function cachedTarballPath(cacheDir: string, pkg: PinnedPackage): string {
  return `${cacheDir}/${pkg.name.replace(/^@/, "").replace("/", "-")}-${pkg.version}.tgz`;
}

/**
 * The bytes of `pkg`'s tarball: from the cache when the cached file matches the pin, else from
 * `npm pack` into the cache. A download that does not match the pin is removed and refused.
 *
 * @throws {Error} when npm cannot be run or fails, or the tarball does not match the pin.
 */
export async function fetchPinnedTarball(
  pkg: PinnedPackage,
  cacheDir: string,
  options: FetchOptions = {},
): Promise<Uint8Array> {
  const spec = `${pkg.name}@${pkg.version}`;
  const path = cachedTarballPath(cacheDir, pkg);
  const cached = await Deno.readFile(path).catch(() => undefined);
  if (cached !== undefined && integrityOf(cached) === pkg.integrity) return cached;
  await Deno.mkdir(cacheDir, { recursive: true });
  // A download directory of its own: npm names the file itself, and a half-written file must
  // never sit where the cache looks.
  const dir = await Deno.makeTempDir({ dir: cacheDir, prefix: ".npm-pack-" });
  try {
    options.say?.(`npm pack ${spec}`);
    const npm = options.npm ?? "npm";
    let output: Deno.CommandOutput;
    try {
      // A missing npm throws from output() itself, not through the promise.
      output = await new Deno.Command(npm, {
        args: ["pack", spec, "--json", "--pack-destination", dir],
        cwd: dir,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch (error) {
      throw new Error(`Failed to run ${npm} to fetch ${spec} (is npm installed?)`, {
        cause: error,
      });
    }
    if (!output.success) {
      const stderr = new TextDecoder().decode(output.stderr).trim().split("\n").slice(-3);
      throw new Error(`npm pack ${spec} failed (exit ${output.code}): ${stderr.join(" / ")}`);
    }
    const files = [...Deno.readDirSync(dir)].filter((e) => e.isFile && e.name.endsWith(".tgz"));
    if (files.length !== 1) {
      throw new Error(`npm pack ${spec} left ${files.length} tarballs in ${dir}, expected one`);
    }
    const bytes = await Deno.readFile(`${dir}/${files[0]!.name}`);
    const got = integrityOf(bytes);
    if (got !== pkg.integrity) {
      throw new Error(
        `npm served ${spec} with integrity ${got}, but the pin says ${pkg.integrity}: ` +
          `refusing it (a changed package, or a mirror serving something else)`,
      );
    }
    await Deno.rename(`${dir}/${files[0]!.name}`, path);
    return bytes;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * The files named `names` (paths inside the tarball, e.g. `package/deno`) of a gzip-compressed
 * tar, with their modes.
 *
 * @throws {Error} when one is missing, naming the tarball (`label`) and the file.
 */
export async function readTarballFiles(
  tgz: Uint8Array,
  names: readonly string[],
  label: string,
): Promise<Map<string, { data: Uint8Array; mode: number }>> {
  const tar = new Uint8Array(
    await new Response(
      new Blob([tgz as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
        new DecompressionStream("gzip"),
      ),
    ).arrayBuffer(),
  );
  const found = new Map<string, { data: Uint8Array; mode: number }>();
  let at = 0;
  while (at + BLOCK_SIZE <= tar.length) {
    const block = tar.subarray(at, at + BLOCK_SIZE);
    if (isZeroBlock(block)) break;
    const header = parseHeader(block, at, label);
    const start = at + BLOCK_SIZE;
    if (header.kind === "file" && names.includes(header.name)) {
      // The mode field (octal at 100) is not among what parseHeader returns.
      const mode = parseInt(new TextDecoder().decode(block.subarray(100, 107)), 8);
      found.set(header.name, { data: tar.subarray(start, start + header.size), mode });
    }
    at = start + Math.ceil(header.size / BLOCK_SIZE) * BLOCK_SIZE;
  }
  const missing = names.filter((name) => !found.has(name));
  if (missing.length > 0) throw new Error(`${label} holds no ${missing.join(", ")}`);
  return found;
}

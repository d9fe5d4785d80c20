/**
 * The platforms a release is built for: `deno compile --target` names, and for each the npm
 * package that carries Deno's runtime for it (`@deno/<platform>`, published by Deno with every
 * release) and the kind of kit its users unpack.
 */

/** One platform of a release. */
export interface Target {
  /** `deno compile --target` name, also the kit's name suffix. */
  name: string;
  /** The npm package holding the `deno` executable for this platform. */
  runtimePackage: string;
  /** Operating system: decides the launcher (sh or .cmd) and the archive (tar.gz or zip). */
  os: "linux" | "darwin" | "windows";
}

/** Every target `deno compile --target` knows (Deno 2.9.3 and later), in release order. */
export const TARGETS: readonly Target[] = [
  { name: "x86_64-unknown-linux-gnu", runtimePackage: "@deno/linux-x64-glibc", os: "linux" },
  { name: "aarch64-unknown-linux-gnu", runtimePackage: "@deno/linux-arm64-glibc", os: "linux" },
  { name: "x86_64-apple-darwin", runtimePackage: "@deno/darwin-x64", os: "darwin" },
  { name: "aarch64-apple-darwin", runtimePackage: "@deno/darwin-arm64", os: "darwin" },
  { name: "x86_64-pc-windows-msvc", runtimePackage: "@deno/win32-x64", os: "windows" },
  { name: "aarch64-pc-windows-msvc", runtimePackage: "@deno/win32-arm64", os: "windows" },
];

/** The runtime's file name inside its npm package, and inside the kit's `lib/`. */
export function runtimeFile(target: Target): string {
  return target.os === "windows" ? "deno.exe" : "deno";
}

/** `docker-image-pusher-<version>-<target>`: the kit's top-level folder, and its file name. */
export function kitName(version: string, target: Target): string {
  return `docker-image-pusher-${version}-${target.name}`;
}

/** The kit's archive file name: `.zip` for Windows (Explorer opens it), `.tar.gz` elsewhere. */
export function kitFile(version: string, target: Target): string {
  return `${kitName(version, target)}${target.os === "windows" ? ".zip" : ".tar.gz"}`;
}

/**
 * The targets named (in the order of {@linkcode TARGETS}, each once); all of them when none is.
 *
 * @throws {RangeError} naming the unknown target and listing the known ones.
 */
export function selectTargets(names: readonly string[]): Target[] {
  for (const name of names) {
    if (!TARGETS.some((target) => target.name === name)) {
      throw new RangeError(
        `Unknown target "${name}"; known: ${TARGETS.map((target) => target.name).join(", ")}`,
      );
    }
  }
  return names.length === 0 ? [...TARGETS] : TARGETS.filter((t) => names.includes(t.name));
}

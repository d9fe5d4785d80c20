/**
 * Platforms as OCI names them (`linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`): what
 * `--platform` asks for, the host's own (the default, as `docker pull` does), and matching
 * against an image index's entries.
 */

import { asArray, asObject, type JsonObject, JsonShapeError } from "./json_guards.ts";

/** An OCI platform. `variant` is absent when the index does not give one. */
export interface Platform {
  /** The operating system: `linux`, `windows`. */
  os: string;
  /** The CPU architecture, as Go names it: `amd64`, `arm64`, `arm`. */
  architecture: string;
  /** The CPU variant: `v7`, `v8`. */
  variant?: string;
  /** The OS version, set for Windows images (`10.0.20348.2113`). */
  "os.version"?: string;
  /** Required OS features (`win32k`). */
  "os.features"?: string[];
}

/** Which manifests of an index to keep: one platform, or every one. */
export type PlatformChoice = { kind: "one"; platform: Platform } | { kind: "all" };

/** Deno's `Deno.build.arch` to OCI's architecture names (Go's GOARCH). */
const ARCH: Record<string, string> = {
  x86_64: "amd64",
  aarch64: "arm64",
};

/**
 * The platform this program runs on, as OCI names it.
 *
 * @example
 * ```ts
 * hostPlatform(); // { os: "linux", architecture: "amd64" } on an x86-64 Linux machine
 * ```
 */
export function hostPlatform(
  build: { os: string; arch: string } = Deno.build,
): Platform {
  // Images for macOS and Windows hosts are Linux images run in a VM, as docker pulls them.
  const os = build.os === "windows" ? "windows" : "linux";
  return { os, architecture: ARCH[build.arch] ?? build.arch };
}

/**
 * Parses `os/arch[/variant]` (`linux/amd64`, `linux/arm/v7`), or `all`; throws a
 * `SyntaxError` for anything else.
 */
export function parsePlatform(text: string): PlatformChoice {
  const trimmed = text.trim().toLowerCase();
  if (trimmed === "all") return { kind: "all" };
  const parts = trimmed.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))) {
    throw new SyntaxError(`Invalid platform "${text}": expected os/arch[/variant] or all`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return {
    kind: "one",
    platform: {
      os,
      architecture: ARCH[architecture] ?? architecture,
      ...(variant ? { variant } : {}),
    },
  };
}

/** `linux/arm64/v8`, for messages and names. */
export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter((p) => p).join("/");
}

/**
 * The variant an architecture has when none is named, as containerd's platform matcher
 * assumes (`arm64` is `v8`, `arm` is `v7`).
 */
function defaultVariant(architecture: string): string | undefined {
  if (architecture === "arm64") return "v8";
  if (architecture === "arm") return "v7";
  return undefined;
}

/**
 * Whether an index entry's platform serves `wanted`. A wanted platform without a variant
 * takes the architecture's default variant, or the entry's only one; with one, the entry's
 * variant (or its architecture's default) must be equal.
 */
export function platformMatches(wanted: Platform, entry: Platform): boolean {
  if (wanted.os !== entry.os || wanted.architecture !== entry.architecture) return false;
  const want = wanted.variant ?? defaultVariant(wanted.architecture);
  const have = entry.variant ?? defaultVariant(entry.architecture);
  if (wanted.variant === undefined && (entry.variant === undefined || want === undefined)) {
    return true;
  }
  return want === have;
}

/**
 * Validates the platform of an index entry (or the platform fields of an image config):
 * undefined when `os` or `architecture` is absent, a `JsonShapeError` naming `where` when a
 * field has the wrong type. Absent, null and "" are all "not given" (Go writes them with
 * omitempty).
 *
 * @example
 * ```ts
 * import { asPlatform } from "./platform.ts";
 *
 * asPlatform({ os: "linux", architecture: "arm", variant: "v7" }, "platform");
 * // { os: "linux", architecture: "arm", variant: "v7" }
 * ```
 */
export function asPlatform(value: unknown, where: string): Platform | undefined {
  const obj = asObject(value, where);
  const os = optionalText(obj, "os", where);
  const architecture = optionalText(obj, "architecture", where);
  const variant = optionalText(obj, "variant", where);
  const osVersion = optionalText(obj, "os.version", where);
  const features = obj["os.features"];
  let osFeatures: string[] | undefined;
  if (features !== undefined && features !== null) {
    osFeatures = asArray(features, `${where}["os.features"]`).map((f, i) => {
      if (typeof f !== "string") {
        throw new JsonShapeError(`${where}["os.features"][${i}] must be a string`);
      }
      return f;
    });
  }
  if (os === undefined || architecture === undefined) return undefined;
  return {
    os,
    architecture,
    ...(variant !== undefined ? { variant } : {}),
    ...(osVersion !== undefined ? { "os.version": osVersion } : {}),
    ...(osFeatures !== undefined && osFeatures.length > 0 ? { "os.features": osFeatures } : {}),
  };
}

function optionalText(obj: JsonObject, key: string, where: string): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw new JsonShapeError(`${where}.${key} must be a string`);
  return value;
}

/**
 * Single-file executables from `deno compile`, beside the kits, where it can get what it needs:
 * it downloads a runtime base (`denort`) per target from dl.deno.land, which npm does not carry
 * and which many build machines (this project's among them) cannot reach. Where the download
 * fails, the kits are the release; that is said in one line, not raised as an error.
 */
import { PERMISSIONS } from "./run_flags.ts";
import type { Target } from "./targets.ts";

/** What {@linkcode compileExecutables} did. */
export type CompileOutcome =
  | { built: string[] }
  /** `deno compile` could not download its runtime base: `unreachable` is its error line. */
  | { built: string[]; unreachable: string };

/** Options for {@linkcode compileExecutables}. */
export interface CompileOptions {
  /** Where progress lines go. Default: nowhere. */
  say?: (line: string) => void;
}

/** The executable's file name for `target`. */
export function executableFile(version: string, target: Target): string {
  const name = `docker-image-pusher-${version}-${target.name}`;
  return target.os === "windows" ? `${name}.exe` : name;
}

/**
 * Compiles `bundle` for each of `targets` into `outDir`, with the kits' permissions. Stops at
 * the first target whose runtime base cannot be downloaded (the others would fail alike).
 *
 * @throws {Error} when `deno compile` fails for another reason, with its output.
 */
export async function compileExecutables(
  bundle: string,
  version: string,
  targets: readonly Target[],
  outDir: string,
  options: CompileOptions = {},
): Promise<CompileOutcome> {
  const built: string[] = [];
  for (const target of targets) {
    const output = `${outDir}/${executableFile(version, target)}`;
    options.say?.(`deno compile --target ${target.name}`);
    const result = await new Deno.Command(Deno.execPath(), {
      args: [
        "compile",
        "--quiet",
        "--no-config",
        "--no-lock",
        "--no-remote",
        "--no-npm",
        ...PERMISSIONS,
        "--target",
        target.name,
        "--output",
        output,
        bundle,
      ],
      // Plain text: its error is matched below and quoted in one line.
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (result.success) {
      built.push(output);
      continue;
    }
    const stderr = new TextDecoder().decode(result.stderr);
    // Deno 2.9: "Setting up base binary." then "error sending request for url
    // (https://dl.deno.land/release/v…/denort-<target>.zip)" with the network's reason below.
    if (
      /Setting up base binary/.test(stderr) && /error sending request|dl\.deno\.land/.test(stderr)
    ) {
      const lines = stderr.split("\n").map((l) => l.trim());
      const cause = lines.find((l) => /error sending request/.test(l)) ?? "download failed";
      return { built, unreachable: cause.replace(/^\d+:\s*/, "") };
    }
    throw new Error(
      `deno compile --target ${target.name} failed (exit ${result.code}): ${stderr.trim()}`,
    );
  }
  return { built };
}

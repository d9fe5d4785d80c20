/**
 * Installing the tools the tests and the demo run, from Debian packages, when apt-get can be used
 * without asking anyone: as root, or through sudo. Also starting a Docker daemon when the
 * machine has none (a container or CI runner without systemd starts nothing by itself).
 *
 * @module
 */
import { missingTools, toolOnPath } from "./tools.ts";

/** Options for {@linkcode installMissingTools} and {@linkcode aptInstall}. */
export interface AptOptions {
  /** Where progress lines go. Default: nowhere. */
  say?: (line: string) => void;
  /**
   * Whether sudo may ask for a password (the demo, run by a person at a terminal). Default:
   * false: `sudo -n`, so a test run never stops at a prompt.
   */
  sudoMayPrompt?: boolean;
}

/**
 * The command prefix that runs apt-get as root here: `[]` as root, `["sudo"]` (or
 * `["sudo", "-n"]`) when sudo is on PATH, undefined when apt-get cannot be used.
 */
export function rootPrefix(options: AptOptions = {}): string[] | undefined {
  if (!toolOnPath("apt-get")) return undefined;
  if (Deno.uid() === 0) return [];
  if (!toolOnPath("sudo")) return undefined;
  return options.sudoMayPrompt ? ["sudo"] : ["sudo", "-n"];
}

/**
 * `apt-get update`, then `apt-get install` of `packages` (without recommended packages),
 * non-interactively. False when apt-get cannot be used or a step failed (its output is shown).
 */
export async function aptInstall(
  packages: readonly string[],
  options: AptOptions = {},
): Promise<boolean> {
  const prefix = rootPrefix(options);
  if (prefix === undefined || packages.length === 0) return false;
  // A package of another architecture (libc6:arm64) needs that architecture added to dpkg
  // before apt-get update reads its package lists.
  const foreign = [...new Set(packages.flatMap((p) => /:([a-z0-9]+)$/.exec(p)?.[1] ?? []))];
  for (
    const args of [
      ...foreign.map((arch) => ["dpkg", "--add-architecture", arch]),
      ["apt-get", "update", "-qq"],
      ["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...packages],
    ]
  ) {
    options.say?.([...prefix, ...args].join(" "));
    // sudo does not pass the caller's environment on: DEBIAN_FRONTEND goes through env(1).
    const [cmd, ...rest] = prefix.length === 0
      ? args
      : [...prefix, "/usr/bin/env", "DEBIAN_FRONTEND=noninteractive", ...args];
    const status = await new Deno.Command(cmd!, {
      args: rest,
      env: { DEBIAN_FRONTEND: "noninteractive" },
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).output().catch(() => undefined);
    if (!status?.success) return false;
  }
  return true;
}

/** What {@linkcode installMissingTools} did. */
export interface InstallReport {
  /** Tools that were missing and are there now. */
  installed: string[];
  /** Tools still missing (apt-get unusable, a package failed, or it holds no such tool). */
  missing: string[];
}

/**
 * Installs the Debian packages of those `tools` that are missing (`packages` maps a tool to its
 * package), each package once, and looks again.
 *
 * @example
 * ```ts ignore
 * const { missing } = await installMissingTools(["skopeo"], { skopeo: "skopeo" });
 * ```
 */
export async function installMissingTools(
  tools: readonly string[],
  packages: Readonly<Record<string, string>>,
  options: AptOptions = {},
): Promise<InstallReport> {
  const before = missingTools(tools);
  if (before.length === 0) return { installed: [], missing: [] };
  const wanted = [...new Set(before.map((tool) => packages[tool]).filter((p) => p !== undefined))]
    .sort();
  options.say?.(`Missing: ${before.join(", ")}; Debian packages: ${wanted.join(" ")}`);
  await aptInstall(wanted, options);
  const missing = missingTools(before);
  return { installed: before.filter((tool) => !missing.includes(tool)), missing };
}

/** Options for {@linkcode ensureDockerDaemon}. */
export interface DockerDaemonOptions extends AptOptions {
  /** The client. Default: `/usr/bin/docker` (Debian's; another `docker` may come first on PATH). */
  docker?: string;
  /** The daemon. Default: `/usr/sbin/dockerd`. */
  dockerd?: string;
  /** Where the daemon's output goes. Default: `$TMPDIR/dip-dockerd.log`. */
  logFile?: string;
  /** How long to wait for it to answer. Default: 60 s. */
  timeoutMs?: number;
}

/** Whether `docker info` answers (a daemon is up and this user may talk to it). */
export async function dockerAnswers(docker = "/usr/bin/docker"): Promise<boolean> {
  const status = await new Deno.Command(docker, {
    args: ["info", "--format", "{{.ServerVersion}}"],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output().catch(() => undefined);
  return status?.success ?? false;
}

/**
 * Starts `dockerd` in the background unless a daemon already answers, with the settings that
 * work in a container (vfs storage, no iptables, no bridge: tests only load, pull and push), and
 * waits until it answers. The daemon outlives this process, as a system service would. False
 * when none answers in the end.
 */
export async function ensureDockerDaemon(options: DockerDaemonOptions = {}): Promise<boolean> {
  const docker = options.docker ?? "/usr/bin/docker";
  const dockerd = options.dockerd ?? "/usr/sbin/dockerd";
  if (await dockerAnswers(docker)) return true;
  if (!toolOnPath(docker) || !toolOnPath(dockerd)) return false;
  const prefix = Deno.uid() === 0 ? [] : toolOnPath("sudo") ? ["sudo", "-n"] : undefined;
  if (prefix === undefined) return false;
  const log = options.logFile ?? `${Deno.env.get("TMPDIR") ?? "/tmp"}/dip-dockerd.log`;
  const daemon = [
    dockerd,
    "--storage-driver=vfs",
    "--iptables=false",
    "--ip-masq=false",
    "--bridge=none",
  ].join(" ");
  options.say?.(`No Docker daemon answers: starting ${daemon} (log: ${log})`);
  // setsid and nohup: the daemon must not die with this process or its terminal.
  const started = await new Deno.Command("sh", {
    args: ["-c", `${prefix.join(" ")} setsid nohup ${daemon} >'${log}' 2>&1 </dev/null &`],
    stdin: "null",
  }).output().catch(() => undefined);
  if (!started?.success) return false;
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  while (Date.now() < deadline) {
    if (await dockerAnswers(docker)) return true;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return false;
}

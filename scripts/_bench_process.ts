/**
 * What the benchmark scripts share about running and observing processes: timing a command
 * under GNU time, giving skopeo a blob-info cache of its own, finding the registry's process,
 * and the curl push every benchmark measures against.
 */
import type { TestRegistry } from "../tests/helpers/registry.ts";

/** One timed command. */
export interface TimedRun {
  /** Wall time, from `performance.now()` around the command. */
  seconds: number;
  /** Peak RSS, from GNU time's `%M`. */
  rssMb: number;
  /** User plus system CPU seconds. */
  cpu: number;
  /** What the command wrote to stdout (empty unless asked for). */
  stdout: string;
}

/** Runs `cmd` under GNU time; throws with its stderr if it fails. */
export async function timed(
  cmd: string[],
  env: Record<string, string> = {},
  options: { stdout?: boolean } = {},
): Promise<TimedRun> {
  const t = performance.now();
  const out = await new Deno.Command("/usr/bin/time", {
    args: ["-f", "BENCH %M %U %S", ...cmd],
    env,
    stdin: "null",
    stdout: options.stdout ? "piped" : "null",
    stderr: "piped",
  }).output();
  const seconds = (performance.now() - t) / 1000;
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`Failed to run ${cmd.join(" ")}:\n${stderr}`);
  const [, rssKb, user, sys] = /BENCH (\d+) ([\d.]+) ([\d.]+)\s*$/.exec(stderr) ?? [];
  return {
    seconds,
    rssMb: Number(rssKb) / 1024,
    cpu: Number(user) + Number(sys),
    stdout: options.stdout ? new TextDecoder().decode(out.stdout) : "",
  };
}

/**
 * skopeo keeps a blob-info cache (compressed ↔ uncompressed digests, where blobs were pushed)
 * that lets a later copy mount a layer instead of sending it. Non-root it lives under
 * `XDG_DATA_HOME`; as root it is always /var/lib/containers/cache, so bind-mount `dir` there in
 * a private namespace, so that no run learns from another.
 */
export function withBlobInfoCache(dir: string, cmd: string[]): string[] {
  if (Deno.uid() !== 0) return cmd;
  // The mount point may not exist yet on a machine where skopeo never ran as root.
  const script =
    'mkdir -p /var/lib/containers/cache && mount --bind "$0" /var/lib/containers/cache && exec "$@"';
  return ["unshare", "--mount", "sh", "-c", script, dir, ...cmd];
}

/** The registry's process id (to tell its CPU from others'), found by its config file. */
export async function findRegistryPid(registry: TestRegistry): Promise<number> {
  const config = registry.storageDir.replace(/\/storage$/, "/config.yml");
  for await (const entry of Deno.readDir("/proc")) {
    const cmdline = await Deno.readTextFile(`/proc/${entry.name}/cmdline`).catch(() => "");
    if (cmdline.includes(config)) return Number(entry.name);
  }
  throw new Error(`Failed to find the registry process serving ${config}`);
}

/**
 * The command line as `--name value` pairs; a flag followed by another flag (or nothing) has
 * the value "" (`--small`).
 */
export function parseArgs(argv: readonly string[]): Map<string, string> {
  const args = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    const flag = value === undefined || value.startsWith("--");
    args.set(argv[i]!, flag ? "" : value);
    if (!flag) i++;
  }
  return args;
}

/**
 * The link limit: one POST per layer for a session, then every layer PUT at once by curl,
 * `path` sent as the blob `digest`. Wall time for the whole; peak RSS and CPU summed over the
 * curls.
 */
export async function curlPush(
  registry: TestRegistry,
  repo: string,
  layers: readonly { path: string; digest: string }[],
): Promise<{ seconds: number; rssMb: number; cpu: number }> {
  const t = performance.now();
  const each = await Promise.all(layers.map(async (layer) => {
    const response = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/`, { method: "POST" });
    await response.body?.cancel();
    if (response.status !== 202) throw new Error(`Failed to start an upload: ${response.status}`);
    const location = new URL(response.headers.get("Location")!, registry.url);
    location.searchParams.set("digest", layer.digest);
    // "Expect:" drops curl's 100-continue round trip.
    const curl = ["curl", "-sSf", "-o", "/dev/null", "-H", "Expect:", "-X", "PUT", "-T"];
    return await timed([...curl, layer.path, location.href]);
  }));
  return {
    seconds: (performance.now() - t) / 1000,
    rssMb: Math.max(...each.map((s) => s.rssMb)),
    cpu: each.reduce((sum, s) => sum + s.cpu, 0),
  };
}

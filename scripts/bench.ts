/**
 * Benchmark against the link limit and skopeo: a ~1.5 GB 3-layer image built with umoci from this
 * machine's /usr/lib, /usr/share and /usr/bin (a skopeo `docker-archive`, uncompressed layers like
 * `docker save`), and a 4 GiB single-layer archive of incompressible data, pushed to a local
 * registry by this tool, by skopeo and by curl PUTs of the bare layer blobs. Prints a markdown
 * table of medians over `--runs` repetitions: wall time, peak RSS (GNU time), client CPU, bytes.
 *
 *   deno run -A scripts/bench.ts [--runs 3] [--skip-4g] [--keep DIR] [--throttled-runs 1]
 *
 * Our modes: as stored (`--compression none`, monolithic and chunked), gzip and zstd with the
 * level following the link (the default), gzip at a fixed level 6 (docker's), and re-pushes with
 * our blob-info cache kept. A second table pushes the same image through a proxy limiting the
 * link to 100 Mbit/s (`scripts/throttle_proxy.ts`), `--throttled-runs` times (0 skips it), to
 * choose the default compression where it matters.
 *
 * `--keep DIR` keeps the built archives (and extracted layers) there so reruns skip the build;
 * the default is a temporary directory removed at the end. Needs docker-registry, umoci, skopeo,
 * curl, GNU tar and /usr/bin/time; as root also unshare and mount (see withBlobInfoCache).
 * Only 127.0.0.1 traffic.
 */
// deno-lint-ignore-file no-console -- a benchmark reports to the terminal
import { run } from "../tests/helpers/command.ts";
import { makeBigLayerArchive } from "../tests/helpers/image_fixtures.ts";
import { startRegistry, type TestRegistry } from "../tests/helpers/registry.ts";
import { startThrottleProxy } from "./throttle_proxy.ts";
import { curlPush, findRegistryPid, timed, withBlobInfoCache } from "./_bench_process.ts";

const argv = Deno.args;
const option = (name: string) => argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined;
const runs = Number(option("--runs") ?? 3);
if (!(Number.isInteger(runs) && runs >= 1)) throw new TypeError("--runs takes a whole number ≥ 1");
const keepDir = option("--keep");
const throttledRuns = Number(option("--throttled-runs") ?? 1);
if (!(Number.isInteger(throttledRuns) && throttledRuns >= 0)) {
  throw new TypeError("--throttled-runs takes a whole number ≥ 0");
}
const THROTTLE_MBIT = 100;
const denoDir = Deno.env.get("DENO_DIR") ??
  `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`}/deno`;
const main = new URL("../main.ts", import.meta.url).pathname;
/** One layer per tree of this machine, capped so the image is ~1.5 GB. */
const TREES = [["/usr/lib", 800e6], ["/usr/share", 420e6], ["/usr/bin", 300e6]] as const;
const NONE = ["--compression", "none"];
const MONO = [...NONE, "--no-chunked"];
const CHUNKED = [...NONE, "--large-layer-threshold", "1", "--chunk-size", "64MiB"];
const CHUNKED_NAME = `ours, chunked (${CHUNKED.join(" ")})`;
const SKOPEO = "skopeo copy (gzip)";
const SKOPEO_AGAIN = "skopeo re-push (cache kept)";
/** Other processes used more CPU than kernel writeback alone does: measure again (3 tries). */
const disturbed = (s: Sample) => s.otherCpu! > 0.5 + 0.1 * s.seconds;

/** One way of pushing, measured against skopeo's push (or, with `again`, its re-push). */
interface Mode {
  name: string;
  image: "usr" | "big" | "slow";
  push: (repo: string, run: number) => Promise<Sample>;
  /** Push into the repository the row before just filled; otherwise into a fresh one. */
  again?: boolean;
}
/**
 * One measurement. CPU seconds: `cpu` of the client process(es) (GNU time), `registryCpu` of the
 * registry, `otherCpu` of everything else on the machine (kernel writeback, and interference).
 */
interface Sample {
  seconds: number;
  rssMb: number;
  cpu: number;
  registryCpu?: number;
  otherCpu?: number;
  bytes?: number;
}
type Layer = { path: string; digest: string; size: number };

const started = performance.now();
const work = keepDir ?? await Deno.makeTempDir({ prefix: "dip-bench-" });
await Deno.mkdir(work, { recursive: true });
try {
  const usrTar = await cached(`${work}/usr-image.tar`, (out) => buildUsrImage(out, work));
  const makeBig = (out: string) => makeBigLayerArchive(out, 4 * 1024 ** 3, "docker-legacy");
  const bigTar = argv.includes("--skip-4g")
    ? undefined
    : await cached(`${work}/big-4g.tar`, makeBig);
  const buildSeconds = (performance.now() - started) / 1000;
  const usrLayers = await extractLayers(usrTar);
  const bigLayers = bigTar === undefined ? [] : await extractLayers(bigTar);
  await using registry = await startRegistry();
  const registryPid = await findRegistryPid(registry);
  const cli = [Deno.execPath(), "run", "-A", main];
  // Our blob-info cache, like skopeo's: emptied before each run's first push of a mode, kept for
  // its re-push.
  const ours =
    (archive: string, flags: string[], fresh = true, host = registry.host) =>
    async (repo: string, run: number) => {
      const cache = `${work}/our-caches/${run}`;
      if (fresh) await Deno.remove(cache, { recursive: true }).catch(() => {});
      // Our cache only: Deno's own lives under XDG_CACHE_HOME too unless DENO_DIR says where.
      const env = { XDG_CACHE_HOME: cache, DENO_DIR: denoDir };
      return await timed(
        [...cli, "-r", `http://${host}/${repo}:latest`, "-f", archive, ...flags],
        env,
      );
    };
  const curl = (layers: Layer[]) => (repo: string) => curlPush(registry, repo, layers);
  // skopeo's blob-info cache: emptied before each run's first push, kept for its re-push.
  const skopeo = (fresh: boolean, host = registry.host) => async (repo: string, run: number) => {
    const dir = `${work}/skopeo-caches/${run}`;
    if (fresh) await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.mkdir(dir, { recursive: true });
    const copy = ["skopeo", "copy", "--dest-tls-verify=false", `docker-archive:${usrTar}`];
    const env = { HOME: dir, XDG_DATA_HOME: dir };
    return await timed(withBlobInfoCache(dir, [...copy, `docker://${host}/${repo}:latest`]), env);
  };
  const GZIP = ["--compression", "gzip"];
  const ZSTD = ["--compression", "zstd"];
  const GZIP6 = [...GZIP, "--compression-level", "6"];

  const modes: Mode[] = [
    { image: "usr", name: "curl, parallel PUTs (link limit)", push: curl(usrLayers) },
    { image: "usr", name: `ours, as stored (${NONE.join(" ")})`, push: ours(usrTar, NONE) },
    {
      image: "usr",
      name: "ours, as stored, re-push",
      push: ours(usrTar, NONE, false),
      again: true,
    },
    { image: "usr", name: CHUNKED_NAME, push: ours(usrTar, CHUNKED) },
    { image: "usr", name: "ours, gzip, level auto (default flags)", push: ours(usrTar, []) },
    { image: "usr", name: "ours, gzip re-push", push: ours(usrTar, [], false), again: true },
    { image: "usr", name: `ours, ${GZIP6.join(" ")}`, push: ours(usrTar, GZIP6) },
    { image: "usr", name: `ours, ${ZSTD.join(" ")} (level auto)`, push: ours(usrTar, ZSTD) },
    { image: "usr", name: "ours, zstd re-push", push: ours(usrTar, ZSTD, false), again: true },
    { image: "usr", name: SKOPEO, push: skopeo(true) },
    { image: "usr", name: SKOPEO_AGAIN, push: skopeo(false), again: true },
  ];
  if (bigTar !== undefined) {
    modes.push(
      { image: "big", name: "curl, one PUT (link limit)", push: curl(bigLayers) },
      { image: "big", name: `ours, monolithic (${MONO.join(" ")})`, push: ours(bigTar, MONO) },
      { image: "big", name: CHUNKED_NAME, push: ours(bigTar, CHUNKED) },
      { image: "big", name: "ours, gzip, level auto (default flags)", push: ours(bigTar, []) },
      { image: "big", name: `ours, ${ZSTD.join(" ")} (level auto)`, push: ours(bigTar, ZSTD) },
    );
  }
  await using throttle = await startThrottleProxy({
    target: { hostname: "127.0.0.1", port: Number(registry.host.split(":")[1]) },
    bitsPerSecond: THROTTLE_MBIT * 1e6,
  });
  const slowHost = `127.0.0.1:${throttle.port}`;
  const slowModes: Mode[] = [
    {
      image: "slow",
      name: `ours, as stored (${NONE.join(" ")})`,
      push: ours(usrTar, NONE, true, slowHost),
    },
    {
      image: "slow",
      name: "ours, gzip, level auto (default flags)",
      push: ours(usrTar, [], true, slowHost),
    },
    { image: "slow", name: `ours, ${GZIP6.join(" ")}`, push: ours(usrTar, GZIP6, true, slowHost) },
    {
      image: "slow",
      name: `ours, ${GZIP.join(" ")} --compression-level 9`,
      push: ours(usrTar, [...GZIP, "--compression-level", "9"], true, slowHost),
    },
    {
      image: "slow",
      name: `ours, ${ZSTD.join(" ")} (level auto)`,
      push: ours(usrTar, ZSTD, true, slowHost),
    },
    { image: "slow", name: SKOPEO, push: skopeo(true, slowHost) },
  ];

  // Not measured: fill Deno's module cache, and read the archives into the page cache.
  await run(Deno.execPath(), ["run", "-A", main, "--version"]);
  const warm = [...usrLayers, ...bigLayers].map((l) => l.path).concat(usrTar, bigTar ?? []);
  await run("sh", ["-c", 'cat "$@" > /dev/null', "sh", ...warm]);
  let repeated = 0;
  const measure = async (modes: Mode[], runs: number) => {
    const samples = new Map<Mode, Sample[]>(modes.map((m) => [m, []]));
    for (let r = 1; r <= runs; r++) {
      let repo = "";
      for (const [i, mode] of modes.entries()) {
        const tries: Sample[] = [];
        do {
          if (!mode.again) repo = `${mode.image}${i}-run${r}-try${tries.length + 1}`;
          // Flush the last push's writes first, so that their writeback does not slow this one.
          await run("sync", []);
          const before = (await registry.requests()).length;
          const cpuBefore = cpuTimes(registryPid);
          const sample = await mode.push(repo, r);
          const cpuAfter = cpuTimes(registryPid);
          sample.registryCpu = cpuAfter.registry - cpuBefore.registry;
          const ourCpu = sample.registryCpu + cpuAfter.bench - cpuBefore.bench;
          sample.otherCpu = Math.max(0, cpuAfter.busy - cpuBefore.busy - ourCpu);
          sample.bytes = await uploadedBytes(registry, before);
          tries.push(sample);
          console.error(
            `run ${r}, ${mode.image}, ${mode.name}: ${sample.seconds.toFixed(2)} s, ` +
              `${sample.rssMb.toFixed(0)} MB, CPU ${sample.cpu.toFixed(1)} s, registry's ` +
              `${sample.registryCpu.toFixed(1)} s, others' ${sample.otherCpu.toFixed(1)} s, ` +
              `${sample.bytes} bytes${disturbed(sample) ? " (disturbed)" : ""}`,
          );
        } while (disturbed(tries.at(-1)!) && tries.length < 3 && mode.image !== "slow");
        repeated += tries.length - 1;
        samples.get(mode)!.push(tries.reduce((a, b) => a.otherCpu! <= b.otherCpu! ? a : b));
      }
    }
    return samples;
  };
  const samples = await measure(modes, runs);
  const slowSamples = throttledRuns > 0 ? await measure(slowModes, throttledRuns) : undefined;
  await Deno.remove(`${work}/skopeo-caches`, { recursive: true }).catch(() => {});
  await Deno.remove(`${work}/our-caches`, { recursive: true }).catch(() => {});
  const archives: [string, string, Layer[]][] = [["1.5 GB", usrTar, usrLayers]];
  if (bigTar !== undefined) archives.push(["4 GiB", bigTar, bigLayers]);
  console.log(await header(archives, buildSeconds));
  console.log(`Measurements repeated because other processes were busy: ${repeated}\n`);
  console.log(table(modes, samples));
  if (slowSamples !== undefined) {
    console.log(
      `\n### Through a ${THROTTLE_MBIT} Mbit/s link (${throttledRuns} run(s))\n\n` +
        slowTable(slowModes, slowSamples),
    );
  }
} finally {
  if (keepDir === undefined) await Deno.remove(work, { recursive: true });
}
console.error(`Benchmark took ${((performance.now() - started) / 1000).toFixed(0)} s`);

/** Builds `path` with `make` unless it exists; writes to a temporary name first. */
async function cached(path: string, make: (out: string) => Promise<unknown>): Promise<string> {
  if (await Deno.stat(path).catch(() => null)) return path;
  const t = performance.now();
  await Deno.remove(`${path}.partial`).catch(() => {});
  await make(`${path}.partial`);
  await Deno.rename(`${path}.partial`, path);
  console.error(`Built ${path} in ${((performance.now() - t) / 1000).toFixed(0)} s`);
  return path;
}

/**
 * An umoci layout with one layer per tree of {@linkcode TREES}, then `skopeo copy` to a
 * docker-archive (which stores layers uncompressed). Layers come from `umoci unpack --rootless`
 * and `umoci repack`: `umoci insert` in umoci 0.4.7 writes broken tars.
 */
async function buildUsrImage(out: string, work: string): Promise<void> {
  const [layout, bundle] = [`${work}/umoci-layout`, `${work}/umoci-bundle`];
  const clean = () =>
    Promise.all([layout, bundle].map((d) => Deno.remove(d, { recursive: true }).catch(() => {})));
  await clean();
  try {
    await run("umoci", ["init", "--layout", layout]);
    await run("umoci", ["new", "--image", `${layout}:bench`]);
    await run("umoci", ["unpack", "--rootless", "--image", `${layout}:bench`, bundle]);
    for (const [tree, cap] of TREES) {
      const left = { bytes: cap, full: false };
      await linkTree(tree, `${bundle}/rootfs${tree}`, left);
      console.error(`${tree}: ${((cap - left.bytes) / 1e6).toFixed(0)} MB of files`);
      // --refresh-bundle: the next repack diffs against this layer, not against the empty image.
      await run("umoci", ["repack", "--refresh-bundle", "--image", `${layout}:bench`, bundle]);
    }
    await run("umoci", ["gc", "--layout", layout]);
    await run("skopeo", ["copy", `oci:${layout}:bench`, `docker-archive:${out}:bench/usr:latest`]);
  } finally {
    await clean();
  }
}

/**
 * Hard-links (or copies, across file systems) `src` into `dst` in sorted order until the next
 * file would exceed `left.bytes` (then `left.full`); symlinks are recreated, unreadable and
 * special files skipped.
 */
async function linkTree(src: string, dst: string, left: { bytes: number; full: boolean }) {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(src)) names.push(entry.name);
  } catch {
    return; // Unreadable directory.
  }
  await Deno.mkdir(dst, { recursive: true });
  for (const name of names.sort()) {
    if (left.full) return;
    const [from, to] = [`${src}/${name}`, `${dst}/${name}`];
    const info = await Deno.lstat(from).catch(() => undefined);
    if (info?.isSymlink) await Deno.symlink(await Deno.readLink(from), to);
    else if (info?.isDirectory) await linkTree(from, to, left);
    else if (info?.isFile) {
      if (info.size > left.bytes) {
        left.full = true;
        return;
      }
      const readable = await Deno.open(from).then((f) => (f.close(), true), () => false);
      if (!readable) continue;
      await Deno.link(from, to).catch(() => Deno.copyFile(from, to));
      left.bytes -= info.size;
    }
  }
}

/** Extracts a docker-archive once (cached beside it) and lists its layer blobs; not timed. */
async function extractLayers(archive: string): Promise<Layer[]> {
  const dir = `${archive}.layers`;
  if (!await Deno.stat(`${dir}/.done`).catch(() => null)) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.mkdir(dir);
    await run("tar", ["-xf", archive, "-C", dir]);
    await Deno.writeTextFile(`${dir}/.done`, "");
  }
  const readJson = async (name: string) => JSON.parse(await Deno.readTextFile(`${dir}/${name}`));
  const [{ Config, Layers }] = await readJson("manifest.json") as [
    { Config: string; Layers: string[] },
  ];
  const { rootfs } = await readJson(Config) as { rootfs: { diff_ids: string[] } };
  // Uncompressed layers: the blob digest is the diff ID (and the registry checks it).
  return await Promise.all(Layers.map(async (layer, i) => ({
    path: `${dir}/${layer}`,
    digest: rootfs.diff_ids[i]!,
    size: (await Deno.stat(`${dir}/${layer}`)).size,
  })));
}

/**
 * CPU seconds so far of the whole machine (busy, without idle and iowait), and of this
 * benchmark, its finished children (GNU time and the clients) and the registry.
 */
function cpuTimes(registryPid: number): { busy: number; bench: number; registry: number } {
  const ticks = (fields: string[]) => fields.reduce((sum, f) => sum + Number(f), 0) / 100;
  const [user, nice, system, , , irq, softirq, steal] = Deno.readTextFileSync("/proc/stat")
    .split("\n")[0]!.trim().split(/\s+/).slice(1);
  // Fields 14–17 of /proc/PID/stat: utime stime cutime cstime (after the "(comm)" field).
  const process = (pid: number) =>
    ticks(Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ").slice(11, 15));
  return {
    busy: ticks([user!, nice!, system!, irq!, softirq!, steal!]),
    bench: process(Deno.pid),
    registry: process(registryPid),
  };
}

/** Sum of the stored sizes of the blobs whose uploads completed since request number `before`. */
async function uploadedBytes(registry: TestRegistry, before: number): Promise<number> {
  let total = 0;
  for (const request of (await registry.requests()).slice(before)) {
    const match = /^\/v2\/(.+)\/blobs\/uploads\//.exec(request.path);
    if (request.method !== "PUT" || request.status !== 201 || match === null) continue;
    const digest = new URLSearchParams(request.uri.split("?")[1] ?? "").get("digest");
    const head = await fetch(`${registry.url}/v2/${match[1]}/blobs/${digest}`, { method: "HEAD" });
    await head.body?.cancel();
    total += Number(head.headers.get("Content-Length"));
  }
  return total;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** One row per mode: medians over the runs, and the ratios to curl and skopeo. */
function table(modes: Mode[], samples: Map<Mode, Sample[]>): string {
  const of = (m: Mode, key: "seconds" | "cpu" | "registryCpu" | "otherCpu" | "bytes") =>
    samples.get(m)!.map((s) => s[key] ?? 0);
  const wall = (m: Mode | undefined) => m && median(of(m, "seconds"));
  const ratio = (a: number, b: number | undefined) => b === undefined ? "–" : (a / b).toFixed(2);
  const rows = modes.map((m) => {
    const seconds = wall(m)!;
    const curl = wall(modes.find((c) => c.image === m.image && c.name.startsWith("curl")));
    const skopeo = m.image === "usr"
      ? wall(modes.find((c) => c.name === (m.again ? SKOPEO_AGAIN : SKOPEO)))
      : undefined;
    return [
      m.image === "big" ? "4 GiB, 1 layer" : "1.5 GB, 3 layers",
      m.name,
      seconds.toFixed(2),
      `${Math.min(...of(m, "seconds")).toFixed(2)}–${Math.max(...of(m, "seconds")).toFixed(2)}`,
      ratio(seconds, curl),
      ratio(seconds, skopeo),
      median(of(m, "bytes")).toLocaleString("en-US"),
      Math.max(...samples.get(m)!.map((s) => s.rssMb)).toFixed(0),
      median(of(m, "cpu")).toFixed(1),
      median(of(m, "registryCpu")).toFixed(1),
      Math.max(...of(m, "otherCpu")).toFixed(1),
    ];
  });
  const head = "image|tool / mode|median wall s|min–max s|× curl limit|× skopeo|bytes sent|" +
    "peak RSS MB|client CPU s|registry CPU s|others' CPU s (max)";
  return [head.split("|"), Array(11).fill("---"), ...rows]
    .map((cells) => `| ${cells.join(" | ")} |`).join("\n");
}

/** The throttled rows: wall time and bytes, and each mode against the fastest. */
function slowTable(modes: Mode[], samples: Map<Mode, Sample[]>): string {
  const wall = (m: Mode) => median(samples.get(m)!.map((s) => s.seconds));
  const best = Math.min(...modes.map(wall));
  const rows = modes.map((m) => [
    m.name,
    wall(m).toFixed(1),
    (wall(m) / best).toFixed(2),
    median(samples.get(m)!.map((s) => s.bytes ?? 0)).toLocaleString("en-US"),
    Math.max(...samples.get(m)!.map((s) => s.rssMb)).toFixed(0),
    median(samples.get(m)!.map((s) => s.cpu)).toFixed(1),
  ]);
  const head = "tool / mode|median wall s|× fastest|bytes sent|peak RSS MB|client CPU s";
  return [head.split("|"), Array(6).fill("---"), ...rows]
    .map((cells) => `| ${cells.join(" | ")} |`).join("\n");
}

/** The machine, the tools, the archives and the command, as markdown. */
async function header(archives: [string, string, Layer[]][], buildSeconds: number) {
  const sh = async (cmd: string) => (await run("sh", ["-c", cmd])).stdout.trimEnd();
  const bytes = (n: number) => n.toLocaleString("en-US");
  const [nproc, model, free, kernel, curl, ...tools] = await Promise.all([
    "nproc",
    "grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'",
    "free -g",
    "uname -r",
    "curl --version | head -1 | cut -d' ' -f1-2",
    "skopeo --version",
    "docker-registry --version",
    "umoci --version",
  ].map(sh));
  const lines = [
    `Command: \`deno run -A scripts/bench.ts ${argv.join(" ")}\` (${runs} runs)\n`,
    `- CPU: ${nproc} × ${model}`,
    `- Memory (\`free -g\`):\n\n\`\`\`\n${free}\n\`\`\`\n`,
    `- Linux ${kernel}; Deno ${Deno.version.deno}; ${tools.join("; ")}; ${curl}`,
  ];
  for (const [label, path, layers] of archives) {
    const sizes = layers.map((l) => bytes(l.size)).join(" + ");
    lines.push(`- ${label} archive: ${bytes((await Deno.stat(path)).size)} bytes, layers ${sizes}`);
  }
  lines.push(`- Archives built (or found) in ${buildSeconds.toFixed(0)} s\n`);
  return lines.join("\n");
}

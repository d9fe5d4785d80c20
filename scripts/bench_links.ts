/**
 * The default push against every alternative, at several link speeds: our default (gzip, level
 * auto), fixed gzip levels 1, 2, 6 and 9, `--compression zstd` and skopeo, each pushing the
 * same images to a local registry through `throttle_proxy.ts` at 1000, 300, 100 and 30 Mbit/s,
 * and over loopback with no proxy. Records wall time, client CPU (user + system of the client's
 * process tree, from GNU time), bytes sent through the proxy and bytes stored, and each layer's
 * stored size against GNU `gzip -1`'s (the automatic level's floor: at most `gzip -1` + 3 %).
 *
 *   deno run -A scripts/bench_links.ts [--rates loopback,1000,300,100,30] [--modes default,9]
 *     [--images usr,text] [--usr-mb 300] [--text-mb 48] [--work DIR] [--fresh] [--main PATH]
 *     [--no-docs]
 *
 * Resumable: each measurement is saved in `DIR/links-results.json` as it is taken, and a later
 * run skips what is there (`--fresh` starts over), so the rates can be run one at a time. The
 * images are built once in DIR (default /tmp/dip-bench-links). At the end, the table of every
 * saved result replaces the section between the `bench_links` markers in docs/benchmarks.md, and
 * docs/bench_links.svg is drawn again (`--no-docs` prints the table instead).
 *
 * The default sizes (a 300 MB /usr image, two 48 MB text layers) take about 10 minutes on two
 * quiet cores: the 30 Mbit/s rate is most of it. `--main` pushes with another checkout's
 * `main.ts` (say, the commit before, for a side-by-side run). Needs docker-registry, skopeo,
 * GNU tar, gzip, openssl and /usr/bin/time. Only 127.0.0.1 traffic.
 */
// deno-lint-ignore-file no-console -- a benchmark reports to the terminal
import { run } from "../tests/helpers/command.ts";
import { startRegistry, type TestRegistry } from "../tests/helpers/registry.ts";
import { type BenchImage, textImage, usrImage } from "./_bench_images.ts";
import { parseArgs, timed, withBlobInfoCache } from "./_bench_process.ts";
import {
  type LinkResult,
  linksSvg,
  type Mode,
  RATES,
  renderTable,
  worstLayer,
  writeSection,
} from "./_bench_links_report.ts";
import { startThrottleProxy } from "./throttle_proxy.ts";

const args = parseArgs(Deno.args);
const list = (name: string, all: string) => (args.get(name) || all).split(",");
const rates = list("--rates", RATES.join(","));
for (const rate of rates) {
  if (!RATES.includes(rate)) throw new TypeError(`--rates: ${rate} is not one of ${RATES}`);
}
const work = args.get("--work") || "/tmp/dip-bench-links";
const main = args.get("--main") || new URL("../main.ts", import.meta.url).pathname;
const usrMb = Number(args.get("--usr-mb") || 300);
const textMb = Number(args.get("--text-mb") || 48);
const docs = new URL("../docs/", import.meta.url).pathname;
const denoDir = Deno.env.get("DENO_DIR") ??
  `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`}/deno`;

const ALL_MODES: Mode[] = [
  { key: "default", name: "ours, default (gzip, level auto)", flags: [] },
  ...[1, 2, 6, 9].map((level) => ({
    key: String(level),
    name: `ours, gzip level ${level}`,
    flags: ["--compression", "gzip", "--compression-level", String(level)],
  })),
  { key: "zstd", name: "ours, --compression zstd", flags: ["--compression", "zstd"] },
  { key: "skopeo", name: "skopeo copy (gzip)" },
];
const modeKeys = list("--modes", ALL_MODES.map((m) => m.key).join(","));
const modes = ALL_MODES.filter((m) => modeKeys.includes(m.key));

await Deno.mkdir(work, { recursive: true });
const resultsPath = `${work}/links-results.json`;
const results: LinkResult[] = args.has("--fresh")
  ? []
  : JSON.parse(await Deno.readTextFile(resultsPath).catch(() => "[]"));
const keyOf = (r: { image: string; rate: string; mode: string }) =>
  `${r.image}|${r.rate}|${r.mode}`;
const done = new Set(results.map(keyOf));

const started = performance.now();
const imageNames = list("--images", "usr,text");
const images: BenchImage[] = [];
if (imageNames.includes("usr")) images.push(await usrImage(work, usrMb * 1e6));
if (imageNames.includes("text")) images.push(await textImage(work, textMb * 1e6));
console.error(`Images ready in ${((performance.now() - started) / 1000).toFixed(0)} s`);
const commit = (await run("git", [
  "-C",
  new URL("..", import.meta.url).pathname,
  "rev-parse",
  "--short",
  "HEAD",
]))
  .stdout.trim();

{
  await using registry = await startRegistry();
  // Not measured: fill Deno's module cache, and read the archives into the page cache.
  await run(Deno.execPath(), ["run", "-A", main, "--version"], { env: { DENO_DIR: denoDir } });
  await run("sh", ["-c", 'cat "$@" > /dev/null', "sh", ...images.map((i) => i.archive)]);
  let n = 0;
  for (const rate of rates) {
    const proxy = rate === "loopback" ? undefined : await startThrottleProxy({
      target: { hostname: "127.0.0.1", port: Number(registry.host.split(":")[1]) },
      bitsPerSecond: Number(rate) * 1e6,
    });
    try {
      const host = proxy === undefined ? registry.host : `127.0.0.1:${proxy.port}`;
      for (const image of images) {
        for (const mode of modes) {
          const key = { image: image.name, rate, mode: mode.key };
          if (done.has(keyOf(key))) continue;
          const repo = `${image.name}-${rate}-${mode.key}-${Date.now()}-${n++}`;
          await run("sync", []);
          const sentBefore = proxy?.bytesUp ?? 0;
          const sample = await push(mode, image, host, repo);
          const result: LinkResult = {
            ...key,
            seconds: sample.seconds,
            cpu: sample.cpu,
            ...(proxy === undefined ? {} : { sent: proxy.bytesUp - sentBefore }),
            stored: await storedLayers(registry, repo),
            gzip1: image.layers.map((l) => l.gzip1),
            input: image.layers.map((l) => l.size),
            at: new Date().toISOString(),
            commit,
          };
          results.push(result);
          done.add(keyOf(key));
          await Deno.writeTextFile(resultsPath, JSON.stringify(results, null, 1));
          const stored = result.stored.reduce((a, b) => a + b, 0);
          console.error(
            `${rate}, ${image.name}, ${mode.name}: ${result.seconds.toFixed(2)} s, ` +
              `CPU ${result.cpu.toFixed(1)} s, stored ${stored} bytes, ` +
              `worst layer ${worstLayer(result).toFixed(3)}× gzip -1`,
          );
        }
      }
    } finally {
      await proxy?.close();
    }
  }
}

const table = renderTable(results, ALL_MODES);
if (args.has("--no-docs")) console.log(table);
else {
  await writeSection(`${docs}benchmarks.md`, table);
  // The generated table in the repository's own format, so `deno fmt --check` stays green.
  await Deno.writeTextFile(`${docs}bench_links.svg`, linksSvg(results, ALL_MODES));
  await run(Deno.execPath(), ["fmt", `${docs}benchmarks.md`, `${docs}bench_links.svg`]);
  console.error(`Wrote docs/benchmarks.md (section bench_links) and docs/bench_links.svg`);
}
console.error(`Took ${((performance.now() - started) / 1000).toFixed(0)} s`);

/** Pushes `image` with `mode` into a fresh repository, with fresh blob-info caches. */
async function push(mode: Mode, image: BenchImage, host: string, repo: string) {
  const cache = await Deno.makeTempDir({ dir: work, prefix: "cache-" });
  try {
    if (mode.flags === undefined) {
      const copy = ["skopeo", "copy", "--dest-tls-verify=false", `docker-archive:${image.archive}`];
      const env = { HOME: cache, XDG_DATA_HOME: cache };
      return await timed(
        withBlobInfoCache(cache, [...copy, `docker://${host}/${repo}:latest`]),
        env,
      );
    }
    const cli = [Deno.execPath(), "run", "-A", main, "-r", `http://${host}/${repo}:latest`];
    // Our cache only: Deno's own lives under XDG_CACHE_HOME too unless DENO_DIR says where.
    const env = { XDG_CACHE_HOME: cache, DENO_DIR: denoDir };
    return await timed([...cli, "-f", image.archive, ...mode.flags], env);
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
}

/** The stored size of each layer the pushed manifest lists. */
async function storedLayers(registry: TestRegistry, repo: string): Promise<number[]> {
  const { json } = await registry.fetchManifest(repo, "latest");
  const layers = json.layers as { size: number }[];
  return layers.map((l) => l.size);
}

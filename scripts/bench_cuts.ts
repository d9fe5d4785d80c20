/**
 * What gets a large layer through a front end that cuts request bodies, and how surely: the CLI
 * pushes a single-layer archive of incompressible data (1 GiB by default) through the fault
 * proxy in front of a local registry, once per seed and upload strategy, and reports the wall
 * time, the blob restarts and chunk retries, and the body bytes sent. With `--check`, skopeo
 * pulls each pushed image back (decompressing its layer) and its diff IDs must match.
 *
 *   deno run -A scripts/bench_cuts.ts [--size BYTES] [--seeds 1,2,3,4,5]
 *     [--mode pass-through|buffering] [--rate503 0.1] [--rate429 0] [--rate-cut 0.05]
 *     [--rate-lost-answer 0] [--strategies auto,chunked,chunked256,one-request]
 *     [--compression none|gzip|zstd] [--check] [--archive PATH]
 *
 * Every push runs with `--large-layer-threshold 1MiB --retry-attempts 10` (the 1 MiB threshold
 * makes even the small config blob go in chunks). Needs docker-registry (and skopeo with
 * `--check`). Not a test: it prints a markdown table.
 */
// deno-lint-ignore-file no-console -- a benchmark reports to the terminal
import { startFaultProxy } from "../tests/helpers/fault_proxy.ts";
import { type FixtureImageInfo, makeBigLayerArchive } from "../tests/helpers/image_fixtures.ts";
import { startRegistry } from "../tests/helpers/registry.ts";
import { goDiffIds } from "../tests/helpers/skopeo.ts";

const args = new Map<string, string>();
for (let i = 0; i < Deno.args.length; i++) {
  const name = Deno.args[i]!;
  const value = Deno.args[i + 1];
  if (value === undefined || value.startsWith("--")) args.set(name, "");
  else {
    args.set(name, value);
    i++;
  }
}
const size = Number(args.get("--size") ?? 1024 ** 3);
const seeds = (args.get("--seeds") ?? "1,2,3,4,5").split(",").map(Number);
const mode = (args.get("--mode") ?? "pass-through") as "pass-through" | "buffering";
const rates = {
  rate503: Number(args.get("--rate503") ?? 0.1),
  rate429: Number(args.get("--rate429") ?? 0),
  rateCut: Number(args.get("--rate-cut") ?? 0.05),
  rateLostAnswer: Number(args.get("--rate-lost-answer") ?? 0),
};
const compression = args.get("--compression") ?? "none";
const check = args.has("--check");

/** Upload strategies: the flags each adds. */
const STRATEGIES: Record<string, { label: string; flags: string[] }> = {
  "auto": {
    label: "auto (default): 64 MiB chunks, one request after a lost session",
    flags: [],
  },
  "chunked": { label: "--chunked: 64 MiB chunks always", flags: ["--chunked"] },
  "chunked256": {
    label: "--chunked --chunk-size 256MiB",
    flags: ["--chunked", "--chunk-size", "256MiB"],
  },
  "chunked16": {
    label: "--chunked --chunk-size 16MiB",
    flags: ["--chunked", "--chunk-size", "16MiB"],
  },
  "one-request": { label: "--no-chunked: one request from the start", flags: ["--no-chunked"] },
};
const chosen = (args.get("--strategies") ?? "auto,chunked,one-request").split(",");

const main = new URL("../main.ts", import.meta.url).pathname;
const work = await Deno.makeTempDir({ prefix: "dip-bench-cuts-" });
const archive = args.get("--archive") ?? `${work}/big.tar`;
let image: FixtureImageInfo | undefined;
if (args.get("--archive") === undefined) {
  console.error(`Writing a ${size}-byte single-layer archive to ${archive}`);
  image = (await makeBigLayerArchive(archive, size, "docker-legacy")).images[0];
}

interface Row {
  strategy: string;
  seed: number;
  ok: boolean;
  seconds: number;
  restarts: number;
  chunkRetries: number;
  sent: number;
  forwarded: number;
  faults: string;
  check: string;
  error: string;
}
const rows: Row[] = [];

try {
  await using registry = await startRegistry();
  for (const name of chosen) {
    const strategy = STRATEGIES[name];
    if (strategy === undefined) throw new Error(`Unknown strategy ${name}`);
    for (const seed of seeds) {
      await using proxy = startFaultProxy({ upstream: registry.url, seed, mode, ...rates });
      const repo = `cuts/${name}-${seed}`;
      const started = performance.now();
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          main,
          "-r",
          `http://${proxy.host}/${repo}:1`,
          "-f",
          archive,
          "--large-layer-threshold",
          "1MiB",
          "--retry-attempts",
          "10",
          "--compression",
          compression,
          ...strategy.flags,
        ],
        env: {
          // Fresh cache and state per push: nothing is mounted or resumed from another run.
          XDG_CACHE_HOME: `${work}/cache-${name}-${seed}`,
          XDG_STATE_HOME: `${work}/state-${name}-${seed}`,
          NO_COLOR: "1",
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const seconds = (performance.now() - started) / 1000;
      const stderr = new TextDecoder().decode(out.stderr);
      let verdict = "";
      if (check && out.success && image !== undefined) {
        const diffIds = await goDiffIds(registry, `${repo}:1`);
        verdict = JSON.stringify(diffIds) === JSON.stringify(image.layerDiffIds)
          ? "same diff IDs"
          : `DIFFERENT: ${diffIds.join(",")}`;
      }
      const counts = proxy.faultCounts();
      const row: Row = {
        strategy: strategy.label,
        seed,
        ok: out.success,
        seconds,
        restarts: (stderr.match(/Retrying blob sha256:/g) ?? []).length,
        chunkRetries: (stderr.match(/Retrying (chunk|.* from byte)/g) ?? []).length,
        sent: proxy.bytesReceived(),
        forwarded: proxy.forwardedBytes(),
        faults: Object.entries(counts).filter(([, n]) => n > 0).map(([k, n]) => `${k}×${n}`)
          .join(" "),
        check: verdict,
        error: out.success ? "" : (stderr.trim().split("\n").at(-1) ?? ""),
      };
      rows.push(row);
      console.error(JSON.stringify(row));
    }
  }
} finally {
  await Deno.remove(work, { recursive: true });
}

const mb = (n: number) => (n / 1e6).toFixed(0);
console.log(
  `\n${mode} proxy, ${JSON.stringify(rates)}, ${size} bytes, --compression ${compression}\n`,
);
console.log(
  "| strategy | seed | result | wall s | blob restarts | chunk retries | MB sent | MB forwarded | faults |" +
    (check ? " pulled back |" : ""),
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |" + (check ? " --- |" : ""));
for (const r of rows) {
  console.log(
    `| ${r.strategy} | ${r.seed} | ${r.ok ? "ok" : `FAILED: ${r.error}`} | ${
      r.seconds.toFixed(1)
    } | ${r.restarts} | ${r.chunkRetries} | ${mb(r.sent)} | ${mb(r.forwarded)} | ${r.faults} |` +
      (check ? ` ${r.check} |` : ""),
  );
}
console.log("\n| strategy | succeeded | median wall s | mean MB sent |");
console.log("| --- | --- | --- | --- |");
for (const name of chosen) {
  const label = STRATEGIES[name]!.label;
  const mine = rows.filter((r) => r.strategy === label);
  const times = mine.filter((r) => r.ok).map((r) => r.seconds).sort((a, b) => a - b);
  const median = times.length === 0 ? NaN : times[Math.floor((times.length - 1) / 2)]!;
  const meanSent = mine.reduce((s, r) => s + r.sent, 0) / Math.max(1, mine.length);
  console.log(
    `| ${label} | ${mine.filter((r) => r.ok).length}/${mine.length} | ${median.toFixed(1)} | ${
      mb(meanSent)
    } |`,
  );
}

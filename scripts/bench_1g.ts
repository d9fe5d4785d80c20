/**
 * Benchmark for the core push paths: a single-layer archive of incompressible data (1 GiB by
 * default) pushed to a local registry on the monolithic and the chunked path, then pushed
 * again. Reports wall time, peak RSS (GNU time) and the blob upload requests the registry saw.
 *
 *   deno task bench:1g [--size BYTES] [--chunk-size BYTES] [--runs N]
 *
 * Needs docker-registry and /usr/bin/time. Not a test: it prints a markdown table.
 */
// deno-lint-ignore-file no-console -- a benchmark reports to the terminal
import { makeBigLayerArchive } from "../tests/helpers/image_fixtures.ts";
import { startRegistry, type TestRegistry } from "../tests/helpers/registry.ts";

const args = new Map<string, string>();
for (let i = 0; i < Deno.args.length; i += 2) args.set(Deno.args[i]!, Deno.args[i + 1] ?? "");
const size = Number(args.get("--size") ?? 1024 ** 3);
const chunkSize = Number(args.get("--chunk-size") ?? 64 * 1024 ** 2);
const runs = Number(args.get("--runs") ?? 1);
const main = new URL("../main.ts", import.meta.url).pathname;
const denoDir = Deno.env.get("DENO_DIR") ??
  `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`}/deno`;
let cacheHome = "";

interface Measured {
  seconds: number;
  peakRssMb: number;
  uploadRequests: number;
}

async function push(registry: TestRegistry, repo: string, archive: string, extra: string[]) {
  const before = (await registry.requests()).length;
  const out = await new Deno.Command("/usr/bin/time", {
    args: [
      "-f",
      "TIME %e %M",
      Deno.execPath(),
      "run",
      "-A",
      main,
      "-r",
      `http://${registry.host}/${repo}:1`,
      "-f",
      archive,
      ...extra,
    ],
    // A blob-info cache of this benchmark's own, or the chunked push would just mount the blob
    // from the monolithic one's repository; Deno's module cache stays where it is.
    env: { XDG_CACHE_HOME: cacheHome, DENO_DIR: denoDir },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`push failed: ${stderr}`);
  const [, seconds, rssKb] = /TIME ([\d.]+) (\d+)/.exec(stderr) ?? [];
  const requests = (await registry.requests()).slice(before);
  return {
    seconds: Number(seconds),
    peakRssMb: Number(rssKb) / 1024,
    uploadRequests:
      requests.filter((r) =>
        r.path.includes("/blobs/uploads/") && ["POST", "PATCH", "PUT"].includes(r.method)
      ).length,
  } satisfies Measured;
}

const work = await Deno.makeTempDir({ prefix: "dip-bench-" });
try {
  const archive = `${work}/big.tar`;
  const made = performance.now();
  await makeBigLayerArchive(archive, size, "docker-legacy");
  console.error(
    `Archive of ${size} bytes written in ${((performance.now() - made) / 1000).toFixed(1)} s`,
  );
  const rows: string[] = [];
  for (let run = 1; run <= runs; run++) {
    await using registry = await startRegistry();
    const modes: [string, string[]][] = [
      // The core paths for blobs sent as stored (compression has its own rows in bench.ts).
      ["monolithic", [
        "--compression",
        "none",
        "--large-layer-threshold",
        String(2 * size + 1024 ** 2),
      ]],
      ["chunked", [
        "--compression",
        "none",
        "--large-layer-threshold",
        "1",
        "--chunk-size",
        String(chunkSize),
      ]],
    ];
    for (const [mode, flags] of modes) {
      cacheHome = await Deno.makeTempDir({ prefix: "dip-bench-cache-" });
      const first = await push(registry, `bench/${mode}`, archive, flags);
      const second = await push(registry, `bench/${mode}`, archive, flags);
      await Deno.remove(cacheHome, { recursive: true });
      for (const [label, m] of [["first push", first], ["re-push", second]] as const) {
        rows.push(
          `| ${run} | ${mode} | ${label} | ${m.seconds.toFixed(2)} | ${m.peakRssMb.toFixed(0)} | ` +
            `${m.uploadRequests} |`,
        );
      }
      rows.push(
        `| ${run} | ${mode} | re-push / first | ${
          (second.seconds / first.seconds).toFixed(3)
        } | | |`,
      );
    }
  }
  console.log(
    `Layer: ${size} bytes of random data; chunk size ${chunkSize}; ${Deno.build.target}, ${navigator.hardwareConcurrency} cores.\n`,
  );
  console.log("| run | path | push | wall s | peak RSS MB | blob upload requests |");
  console.log("|---|---|---|---|---|---|");
  for (const row of rows) console.log(row);
} finally {
  await Deno.remove(work, { recursive: true });
}

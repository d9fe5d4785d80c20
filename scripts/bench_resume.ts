/**
 * What a killed pull keeps. One image with a single uncompressed layer (1 GiB by default) is
 * pulled through the throttle proxy and killed with SIGKILL once the proxy has passed a given
 * share of the layer; the state file is watched while it runs. Each kill is followed by a rerun
 * straight from the registry, under GNU time. For each kill point it prints:
 *
 * - received: layer bytes the proxy had passed to the pull when it was killed;
 * - saved: what the state file claimed then; the largest gap between the two while it ran, and
 *   the longest time between two state updates;
 * - fetched: what the rerun's `GET`s of the layer carried (the registry's access log), and the
 *   waste: fetched − (layer − received), the bytes received twice;
 * - the rerun's wall time and peak RSS (`/usr/bin/time -f %M`), and before the kills, those of
 *   a whole pull for comparison.
 *
 *   deno run -A scripts/bench_resume.ts [--size BYTES] [--mbit 1600] [--kill-at 0.25,0.5,0.9]
 *
 * Needs docker-registry and /usr/bin/time. Only 127.0.0.1 traffic. Not a test: it prints a
 * markdown table (tests/cli/pull_kill_points_test.ts holds the same bound as a test).
 */
// deno-lint-ignore-file no-console -- a benchmark reports to the terminal
import { blobGets, seedBigLayer } from "../tests/pull/_resume_support.ts";
import { startRegistry } from "../tests/helpers/registry.ts";
import { parseArgs, timed } from "./_bench_process.ts";
import { startThrottleProxy } from "./throttle_proxy.ts";

const MiB = 1024 * 1024;
const args = parseArgs(Deno.args);
const fileBytes = Number(args.get("--size") ?? 1024 * MiB);
const mbit = Number(args.get("--mbit") ?? 1600);
const killAt = (args.get("--kill-at") ?? "0.25,0.5,0.9").split(",").map(Number);
if (!(fileBytes > 0 && mbit > 0 && killAt.every((f) => f > 0 && f < 1))) {
  console.error("Usage: bench_resume.ts [--size BYTES] [--mbit N] [--kill-at F,F,…] (0 < F < 1)");
  Deno.exit(2);
}
const main = new URL("../main.ts", import.meta.url).pathname;
const denoDir = Deno.env.get("DENO_DIR") ??
  `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`}/deno`;

async function savedDone(path: string, digest: string): Promise<number> {
  try {
    const state = JSON.parse(await Deno.readTextFile(path));
    return state.blobs?.[digest]?.done ?? 0;
  } catch {
    return 0;
  }
}

const work = await Deno.makeTempDir({ prefix: "dip-bench-resume-" });
try {
  await using registry = await startRegistry();
  const seeded = performance.now();
  const { layer, layerSize } = await seedBigLayer(registry, "big/app", "1", fileBytes);
  console.error(
    `Seeded a ${layerSize}-byte layer in ${((performance.now() - seeded) / 1000).toFixed(1)} s`,
  );
  const [hostname, port] = registry.host.split(":") as [string, string];
  await using proxy = await startThrottleProxy({
    target: { hostname, port: Number(port) },
    bitsPerSecond: mbit * 1e6,
  });
  const env = { DENO_DIR: denoDir, XDG_STATE_HOME: work, XDG_CACHE_HOME: `${work}/cache` };
  // A whole pull for comparison: the rerun's extra work is the re-hash of the kept prefix.
  const fresh = await timed(
    [
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      main,
      "pull",
      `${registry.url}/big/app:1`,
      "-o",
      `${work}/fresh.tar`,
    ],
    env,
  );
  await Deno.remove(`${work}/fresh.tar`);
  const rows = [
    "| kill at | received MiB | saved MiB | max gap MiB | max save interval ms | rerun fetched MiB | waste MiB | rerun s | rerun peak RSS MB |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const [i, fraction] of killAt.entries()) {
    const out = `${work}/pull-${i}.tar`;
    const state = `${out}.partial.json`;
    const logged = (await blobGets(registry, layer)).length;
    const startBytes = proxy.bytesDown;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        main,
        "pull",
        `http://127.0.0.1:${proxy.port}/big/app:1`,
        "-o",
        out,
      ],
      env,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const ended = child.output();
    let maxGap = 0;
    let lastSaved = 0;
    let lastChange = performance.now();
    let maxInterval = 0;
    for (;;) {
      const received = proxy.bytesDown - startBytes;
      const saved = await savedDone(state, layer);
      if (saved !== lastSaved) {
        const now = performance.now();
        if (lastSaved > 0) maxInterval = Math.max(maxInterval, now - lastChange);
        lastChange = now;
        lastSaved = saved;
      }
      maxGap = Math.max(maxGap, received - saved);
      if (received >= fraction * layerSize) break;
      const early = await Promise.race([ended, new Promise((r) => setTimeout(r, 5))]);
      if (early !== undefined) {
        const { stderr } = early as Deno.CommandOutput;
        throw new Error(`The pull ended before the kill:\n${new TextDecoder().decode(stderr)}`);
      }
    }
    child.kill("SIGKILL");
    const received = proxy.bytesDown - startBytes;
    await ended;
    const saved = await savedDone(state, layer);
    // The registry logs the killed GET once it notices the closed connection.
    const deadline = Date.now() + 10_000;
    while ((await blobGets(registry, layer)).length === logged && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const mark = (await blobGets(registry, layer)).length;
    const rerun = await timed(
      [
        Deno.execPath(),
        "run",
        "-A",
        "--quiet",
        main,
        "pull",
        `${registry.url}/big/app:1`,
        "-o",
        out,
      ],
      env,
    );
    const fetched = (await blobGets(registry, layer)).slice(mark).reduce(
      (sum, g) => sum + g.bytes,
      0,
    );
    const waste = fetched - (layerSize - received);
    const mib = (n: number) => (n / MiB).toFixed(0);
    rows.push(
      `| ${fraction} | ${mib(received)} | ${mib(saved)} | ${mib(maxGap)} | ${
        maxInterval.toFixed(0)
      } | ${mib(fetched)} | ${mib(waste)} | ${rerun.seconds.toFixed(2)} | ${
        rerun.rssMb.toFixed(0)
      } |`,
    );
    await Deno.remove(out);
  }
  console.log(`Layer ${layerSize} bytes, pulled at ${mbit} Mbit/s, rerun unthrottled`);
  console.log(
    `A whole pull, unthrottled: ${fresh.seconds.toFixed(2)} s, peak RSS ${
      fresh.rssMb.toFixed(0)
    } MB\n`,
  );
  console.log(rows.join("\n"));
} finally {
  await Deno.remove(work, { recursive: true });
}

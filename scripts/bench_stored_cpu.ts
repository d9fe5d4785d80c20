/**
 * The as-stored push's CPU, side by side: parallel curl PUTs of the layer files (the floor: a
 * client that only reads and sends), and `--compression none` pushes by one or more checkouts
 * of this repository (say, the commit before a change and after it), runs interleaved so that
 * a busy moment hurts every contender alike. Client CPU is user + system of the client's
 * process tree (GNU time).
 *
 *   deno run -A scripts/bench_stored_cpu.ts [--mb 1500] [--runs 3] [--work DIR] \
 *     [--checkouts /path/to/before,/path/to/after]      # default: this checkout only
 *
 * A checkout of another commit: `git archive <commit> | tar -x -C /tmp/before`. The image is
 * the /usr image of `bench_links.ts` (`_bench_images.ts`), built once in DIR. Only 127.0.0.1
 * traffic.
 */
// deno-lint-ignore-file no-console -- a benchmark reports to the terminal
import { run } from "../tests/helpers/command.ts";
import { startRegistry } from "../tests/helpers/registry.ts";
import { usrImage } from "./_bench_images.ts";
import { curlPush, parseArgs, timed } from "./_bench_process.ts";

const args = parseArgs(Deno.args);
const mb = Number(args.get("--mb") || 1500);
const runs = Number(args.get("--runs") || 3);
const work = args.get("--work") || "/tmp/dip-bench-links";
const here = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const checkouts = (args.get("--checkouts") || here).split(",");
const denoDir = Deno.env.get("DENO_DIR") ??
  `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`}/deno`;

const image = await usrImage(work, mb * 1e6);
const curlLayers = image.layers.map((l) => ({ path: l.path, digest: l.diffId }));
await using registry = await startRegistry();
await run("sh", ["-c", 'cat "$0" > /dev/null', image.archive]);
for (const dir of checkouts) {
  await run(Deno.execPath(), ["run", "-A", `${dir}/main.ts`, "--version"], {
    env: { DENO_DIR: denoDir },
  });
}
const samples = new Map<string, { seconds: number; cpu: number }[]>();
const add = (name: string, sample: { seconds: number; cpu: number }) =>
  samples.set(name, [...(samples.get(name) ?? []), sample]);
for (let r = 1; r <= runs; r++) {
  await run("sync", []);
  add("curl, parallel PUTs", await curlPush(registry, `curl-${r}`, curlLayers));
  for (const [i, dir] of checkouts.entries()) {
    await run("sync", []);
    const cache = await Deno.makeTempDir({ dir: work, prefix: "cache-" });
    try {
      const cli = [Deno.execPath(), "run", "-A", `${dir}/main.ts`];
      const target = `http://${registry.host}/ours-${i}-${r}:latest`;
      const sample = await timed(
        [...cli, "-r", target, "-f", image.archive, "--compression", "none"],
        { XDG_CACHE_HOME: cache, DENO_DIR: denoDir },
      );
      add(`ours, ${dir}`, sample);
    } finally {
      await Deno.remove(cache, { recursive: true });
    }
  }
}
const total = image.layers.reduce((sum, l) => sum + l.size, 0);
console.log(`${(total / 1e6).toFixed(0)} MB in ${image.layers.length} layers, ${runs} runs\n`);
console.log("| client | wall s | client CPU s | best CPU ÷ curl's |\n|---|---|---|---|");
const best = (name: string) => Math.min(...samples.get(name)!.map((s) => s.cpu));
for (const [name, list] of samples) {
  const cells = [list.map((s) => s.seconds.toFixed(2)), list.map((s) => s.cpu.toFixed(2))];
  const ratio = (best(name) / best("curl, parallel PUTs")).toFixed(2);
  console.log(`| ${name} | ${cells[0]!.join(", ")} | ${cells[1]!.join(", ")} | ${ratio} |`);
}

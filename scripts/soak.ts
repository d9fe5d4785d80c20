/**
 * Soak test: several images with many layers pushed at once, from several processes, into one
 * real registry. Every push must succeed and round-trip its manifest; each process's peak RSS
 * is reported. Not a test in the suite: run it and read the table.
 *
 *   deno run -A scripts/soak.ts [--images 8] [--layers 14] [--layer-kb 256] [--concurrency 4]
 */
// deno-lint-ignore-file no-console -- a soak run reports to the terminal
import { writeDockerSaveLegacy, writeOciArchive } from "../tests/helpers/image_fixtures.ts";
import { startRegistry } from "../tests/helpers/registry.ts";

const args = new Map<string, string>();
for (let i = 0; i < Deno.args.length; i += 2) args.set(Deno.args[i]!, Deno.args[i + 1] ?? "");
const images = Number(args.get("--images") ?? 8);
const layers = Number(args.get("--layers") ?? 14);
const layerKb = Number(args.get("--layer-kb") ?? 256);
const concurrency = args.get("--concurrency") ?? "4";
const main = new URL("../main.ts", import.meta.url).pathname;

const work = await Deno.makeTempDir({ prefix: "dip-soak-" });
try {
  await using registry = await startRegistry();
  const archives: { path: string; repo: string }[] = [];
  for (let i = 0; i < images; i++) {
    const path = `${work}/image${i}.tar`;
    // Images share their first two layers, as images built on one base do.
    const seeds = Array.from({ length: layers }, (_, l) => l < 2 ? `base#${l}` : `img${i}#${l}`);
    const image = [{
      name: `soak${i}:1`,
      layerSizes: seeds.map(() => layerKb * 1024),
      layerSeeds: seeds,
    }];
    if (i % 2 === 0) await writeDockerSaveLegacy(path, image);
    else await writeOciArchive(path, image);
    archives.push({ path, repo: `soak/image${i}` });
  }
  console.error(
    `${images} images × ${layers} layers of ${layerKb} KiB written; pushing all at once`,
  );
  const started = performance.now();
  const results = await Promise.all(archives.map(async ({ path, repo }) => {
    const out = await new Deno.Command("/usr/bin/time", {
      args: [
        "-f",
        "TIME %e %M",
        Deno.execPath(),
        "run",
        "-A",
        main,
        "-q",
        "--max-concurrent",
        concurrency,
        "--large-layer-threshold",
        `${layerKb * 2}KiB`,
        "-r",
        `http://${registry.host}/${repo}:1`,
        "-f",
        path,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    const [, seconds, rssKb] = /TIME ([\d.]+) (\d+)/.exec(stderr) ?? [];
    const digest = new TextDecoder().decode(out.stdout).trim().split("@")[1];
    const served = digest ? await registry.fetchManifest(repo, "1") : undefined;
    return {
      repo,
      ok: out.code === 0 && served?.digest === digest,
      seconds: Number(seconds),
      rssMb: Number(rssKb) / 1024,
      error: out.code === 0 ? "" : stderr.split("\n").find((l) => l.startsWith("Error")) ?? "",
    };
  }));
  const wall = (performance.now() - started) / 1000;
  console.log(`| image | result | wall s | peak RSS MB |\n|---|---|---|---|`);
  for (const r of results) {
    console.log(
      `| ${r.repo} | ${r.ok ? "ok" : `FAILED ${r.error}`} | ${r.seconds} | ${r.rssMb.toFixed(0)} |`,
    );
  }
  const failed = results.filter((r) => !r.ok).length;
  console.log(
    `\n${images} processes, ${images * layers} layers (${images * (layers - 2) + 2} distinct), ` +
      `${failed} failed, ${wall.toFixed(1)} s in all, max peak RSS ` +
      `${Math.max(...results.map((r) => r.rssMb)).toFixed(0)} MB`,
  );
  if (failed > 0) Deno.exitCode = 1;
} finally {
  await Deno.remove(work, { recursive: true });
}

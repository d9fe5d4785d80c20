/**
 * Startup and indexing: how long `--help` and `--version` take from the single-file bundle (the
 * way a downloaded tool starts), and how long reading a large archive's index takes (headers are
 * read and data is skipped with seeks, so a 4 GiB archive indexes in milliseconds).
 *
 *   deno run -A scripts/bench_startup.ts [--archive PATH] [--runs 15]
 *
 * Without `--archive` it writes a 4 GiB single-layer archive to a temporary directory first.
 * Prints a markdown table of medians (and min–max). Not a test.
 */
// deno-lint-ignore-file no-console -- a benchmark reports to the terminal
import { openImageArchive } from "../src/archive/image_archive.ts";
import { run } from "../tests/helpers/command.ts";
import { makeBigLayerArchive } from "../tests/helpers/image_fixtures.ts";

const argv = Deno.args;
const option = (name: string) => argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined;
const runs = Number(option("--runs") ?? 15);
const root = new URL("..", import.meta.url).pathname;
const work = await Deno.makeTempDir({ prefix: "dip-startup-" });
try {
  const bundle = `${work}/docker-image-pusher.js`;
  await run("bash", [`${root}/scripts/bundle.sh`, bundle]);
  const archive = option("--archive") ??
    (await makeBigLayerArchive(`${work}/big.tar`, 4 * 1024 ** 3, "docker-legacy"),
      `${work}/big.tar`);
  const size = (await Deno.stat(archive)).size;

  const rows: string[][] = [];
  const measure = async (name: string, once: () => Promise<unknown>) => {
    await once(); // warm: Deno's code cache, the page cache
    const ms: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      await once();
      ms.push(performance.now() - t);
    }
    ms.sort((a, b) => a - b);
    const median = ms[Math.floor(ms.length / 2)]!;
    rows.push([name, median.toFixed(1), `${ms[0]!.toFixed(1)}–${ms.at(-1)!.toFixed(1)}`]);
  };
  const cli = (flag: string) => () =>
    new Deno.Command(Deno.execPath(), { args: ["run", "-A", bundle, flag], stdout: "null" })
      .output();
  await measure("`--help` from the bundle (`deno run -A bundle.js --help`)", cli("--help"));
  await measure("`--version` from the bundle", cli("--version"));
  await measure(
    `index and read a ${(size / 1024 ** 3).toFixed(1)} GiB archive (in-process)`,
    () => openImageArchive(archive),
  );
  console.log(
    `Command: \`deno run -A scripts/bench_startup.ts ${argv.join(" ")}\`, ${runs} runs\n`,
  );
  console.log("| what | median ms | min–max ms |\n| --- | --- | --- |");
  for (const row of rows) console.log(`| ${row.join(" | ")} |`);
} finally {
  await Deno.remove(work, { recursive: true });
}

/**
 * Pushing archives that can be read only once: a 1 GiB single-layer archive of incompressible
 * data pushed from the file itself, through a pipe (`cat … | docker-image-pusher -f -`), and as a
 * `.tar.zst` and a `.tar.gz` file, with `--compression none` and fresh caches, to a local
 * registry. Reports wall time (and the ratio to the file push), peak RSS, and the bytes the
 * piped push wrote under TMPDIR and its cache and state directories.
 *
 *   deno run -A scripts/bench_stream.ts [--size BYTES] [--runs N] [--keep DIR]
 *
 * With `--skopeo-image PATH` (a docker-archive tar, e.g. the 1.5 GB three-layer image of
 * `scripts/bench.ts`), it also compares a default-flags push of `PATH.gz` with what a skopeo user
 * must do: `gzip -dc PATH.gz > tmp.tar && skopeo copy docker-archive:tmp.tar docker://…` (skopeo
 * 1.9 reads no compressed docker-archive). `--skip-1g` leaves out the 1 GiB rows.
 *
 * Needs docker-registry, /usr/bin/time, zstd and gzip (pigz if present). Not a test: it prints a
 * markdown table.
 */
// deno-lint-ignore-file no-console -- a benchmark reports to the terminal
import { makeBigLayerArchive } from "../tests/helpers/image_fixtures.ts";
import { startRegistry, type TestRegistry } from "../tests/helpers/registry.ts";
import { parseArgs } from "./_bench_process.ts";

const args = parseArgs(Deno.args);
const size = Number(args.get("--size") ?? 1024 ** 3);
const runs = Number(args.get("--runs") ?? 3);
const skopeoImage = args.get("--skopeo-image");
const main = new URL("../main.ts", import.meta.url).pathname;
const denoDir = Deno.env.get("DENO_DIR") ??
  `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`}/deno`;
const work = args.get("--keep") ?? await Deno.makeTempDir({ prefix: "dip-bench-stream-" });
await Deno.mkdir(work, { recursive: true });

async function sh(command: string): Promise<string> {
  const out = await new Deno.Command("sh", { args: ["-c", command], stderr: "piped" }).output();
  if (!out.success) throw new Error(`${command}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout ?? new Uint8Array());
}

const archive = `${work}/big.tar`;
if (!(await Deno.stat(archive).then(() => true, () => false))) {
  console.error(`Writing ${archive}`);
  await makeBigLayerArchive(archive, size, "docker-legacy");
}
const gzip = await sh("command -v pigz || command -v gzip").then((s) => s.trim());
for (const [suffix, command] of [[".zst", "zstd -q -T0 -c"], [".gz", `${gzip} -c`]] as const) {
  if (!(await Deno.stat(`${archive}${suffix}`).then(() => true, () => false))) {
    console.error(`Writing ${archive}${suffix}`);
    await sh(`${command} '${archive}' > '${archive}${suffix}'`);
  }
}

interface Measured {
  seconds: number;
  rssMb: number;
  writtenBytes: number;
}

let run = 0;
/** One push; `input` is `-f`'s value, `pipeFrom` a file to `cat` into it. */
async function push(
  registry: TestRegistry,
  input: string,
  extra: string[],
  pipeFrom?: string,
): Promise<Measured> {
  const home = `${work}/home-${++run}`;
  for (const d of ["tmp", "cache", "state"]) await Deno.mkdir(`${home}/${d}`, { recursive: true });
  const pusher = [
    "/usr/bin/time",
    "-f",
    "TIME %e %M",
    Deno.execPath(),
    "run",
    "-A",
    main,
    "-r",
    `http://${registry.host}/bench/stream-${run}:1`,
    "-f",
    input,
    ...extra,
  ].map((a) => `'${a}'`).join(" ");
  const command = pipeFrom === undefined ? pusher : `cat '${pipeFrom}' | ${pusher}`;
  const started = performance.now();
  const out = await new Deno.Command("sh", {
    args: ["-c", command],
    env: {
      TMPDIR: `${home}/tmp`,
      XDG_CACHE_HOME: `${home}/cache`,
      XDG_STATE_HOME: `${home}/state`,
      DENO_DIR: denoDir,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const seconds = (performance.now() - started) / 1000;
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`push of ${input} failed: ${stderr}`);
  const [, , rssKb] = /TIME ([\d.]+) (\d+)/.exec(stderr) ?? [];
  const written = Number((await sh(`du -sb '${home}' | cut -f1`)).trim());
  await Deno.remove(home, { recursive: true });
  return { seconds, rssMb: Number(rssKb) / 1024, writtenBytes: written };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

const rows: { label: string; runs: Measured[] }[] = [];
try {
  await using registry = await startRegistry();
  const modes: [string, string, string[], string | undefined][] = args.has("--skip-1g") ? [] : [
    ["file (.tar, indexed in place)", archive, ["--compression", "none"], undefined],
    ["pipe (cat .tar | -f -)", "-", ["--compression", "none"], archive],
    [".tar.zst file", `${archive}.zst`, ["--compression", "none"], undefined],
    [
      `.tar.gz file (${gzip.split("/").at(-1)})`,
      `${archive}.gz`,
      ["--compression", "none"],
      undefined,
    ],
  ];
  for (const [label] of modes) rows.push({ label, runs: [] });
  for (let r = 0; r < runs; r++) {
    for (const [i, [, input, extra, pipeFrom]] of modes.entries()) {
      const measured = await push(registry, input, extra, pipeFrom);
      rows[i]!.runs.push(measured);
      console.error(`${modes[i]![0]} run ${r + 1}: ${JSON.stringify(measured)}`);
    }
  }
  const base = rows.length === 0 ? NaN : median(rows[0]!.runs.map((m) => m.seconds));
  if (rows.length > 0) {
    console.log(`\n${size} bytes, one layer of random data, --compression none, ${runs} run(s)\n`);
    console.log(
      "| source | median wall s | min–max s | × file | peak RSS MB (max) | bytes written |",
    );
    console.log("| --- | --- | --- | --- | --- | --- |");
  }
  for (const row of rows) {
    const secs = row.runs.map((m) => m.seconds);
    console.log(
      `| ${row.label} | ${median(secs).toFixed(2)} | ${Math.min(...secs).toFixed(2)}–${
        Math.max(...secs).toFixed(2)
      } | ${(median(secs) / base).toFixed(2)} | ${
        Math.max(...row.runs.map((m) => m.rssMb)).toFixed(0)
      } | ${Math.max(...row.runs.map((m) => m.writtenBytes))} |`,
    );
  }

  if (skopeoImage !== undefined) {
    const gz = `${skopeoImage}.gz`;
    if (!(await Deno.stat(gz).then(() => true, () => false))) {
      await sh(`${gzip} -c '${skopeoImage}' > '${gz}'`);
    }
    const ours: number[] = [];
    const theirs: number[] = [];
    // A registry of their own for each push: skopeo's blob-info cache (and ours) would otherwise
    // find the layers of the previous run there and mount them.
    for (let r = 0; r < runs; r++) {
      {
        await using fresh = await startRegistry();
        ours.push((await push(fresh, gz, [])).seconds);
      }
      await using fresh = await startRegistry();
      // skopeo 1.9 reads no compressed docker-archive ("invalid tar header"): its users
      // decompress to a file first, which is timed with it.
      const started = performance.now();
      await sh(
        `gzip -dc '${gz}' > '${work}/skopeo-input.tar' && ` +
          `skopeo copy --quiet --dest-tls-verify=false docker-archive:'${work}/skopeo-input.tar' ` +
          `docker://${fresh.host}/bench/skopeo-${r}:1`,
      );
      theirs.push((performance.now() - started) / 1000);
      await Deno.remove(`${work}/skopeo-input.tar`);
    }
    console.log(`\n${skopeoImage}.gz, default flags, ${runs} run(s)\n`);
    console.log("| tool | median wall s | min–max s | × skopeo |");
    console.log("| --- | --- | --- | --- |");
    for (const [label, secs] of [["ours", ours], ["skopeo copy", theirs]] as const) {
      console.log(
        `| ${label} | ${median(secs).toFixed(2)} | ${Math.min(...secs).toFixed(2)}–${
          Math.max(...secs).toFixed(2)
        } | ${(median(secs) / median(theirs)).toFixed(2)} |`,
      );
    }
  }
} finally {
  if (!args.has("--keep")) await Deno.remove(work, { recursive: true });
}

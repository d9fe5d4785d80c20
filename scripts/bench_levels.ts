/**
 * The compression curve: for each file given (a layer tar, or any data), the bytes each gzip
 * level stores when the file is cut into our 2 MiB blocks (one gzip member each, as a push
 * makes them), against GNU `gzip -1` and `gzip -6` over the whole file, and the CPU each level
 * spends per MiB on one core. This settles the automatic level's floor (`LEVELS.gzip.autoMin`,
 * the lowest level that stores at most `gzip -1` + 3 %) and compares other deflate encoders.
 *
 *   deno run -A scripts/bench_levels.ts [--levels 1,2,3,6,9] [--repeat 3] [--mib N] \
 *     [--npm fflate,@hazae41/foras] FILE...
 *
 * Byte counts are exact. Throughput is CPU time of this thread (`process.cpuUsage()` moves with
 * the whole process, so the blocks run on the main thread alone), the best of `--repeat` passes:
 * other processes on the machine still slow it down (shared caches, SMT siblings), never speed
 * it up. `--mib N` takes the first N MiB of each file (default: all of it).
 */
// deno-lint-ignore-file no-console -- a benchmark reports to the terminal
import zlib from "node:zlib";
import process from "node:process";
import { BLOCK_SIZE } from "../src/compress/compress_blob.ts";
import { parseArgs } from "./_bench_process.ts";

const args = parseArgs(Deno.args.filter((a) => !a.startsWith("/") && !a.startsWith(".")));
const files = Deno.args.filter((a) => a.startsWith("/") || a.startsWith("."));
const levels = (args.get("--levels") ?? "1,2,3,4,6,9").split(",").map(Number);
const repeat = Number(args.get("--repeat") ?? 1);
const mib = args.has("--mib") ? Number(args.get("--mib")) : Infinity;
const npm = (args.get("--npm") ?? "").split(",").filter((n) => n !== "");

/** One encoder: a name and a function from a block to its gzip member's size. */
interface Encoder {
  name: string;
  gzip: (block: Uint8Array) => number;
}

const encoders: Encoder[] = levels.map((level) => ({
  name: `node:zlib ${level}`,
  gzip: (block) => zlib.gzipSync(block, { level, chunkSize: BLOCK_SIZE * 2 }).length,
}));
for (const name of npm) encoders.push(...await npmEncoders(name));

/** The encoders of npm packages we know how to call, at their levels 1, 2 and 6. */
async function npmEncoders(name: string): Promise<Encoder[]> {
  if (name === "fflate") {
    // Not pinned in deno.json: only this comparison uses it (run with --no-lock).
    const specifier = "npm:fflate@0.8.2";
    const fflate: { gzipSync(data: Uint8Array, options: { level: number }): Uint8Array } =
      await import(specifier);
    return [1, 2, 6].map((level) => ({
      name: `fflate ${level}`,
      gzip: (block) => fflate.gzipSync(block, { level }).length,
    }));
  }
  throw new TypeError(`No encoder known for npm package ${name}`);
}

function cpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** gzip -N over the whole input, as a pull of `docker push`'s or skopeo's layer compares. */
async function gnuGzip(path: string, level: number, limit: number): Promise<number> {
  const cmd = Number.isFinite(limit)
    ? `head -c ${limit} "$0" | gzip -${level} | wc -c`
    : `gzip -${level} < "$0" | wc -c`;
  const out = await new Deno.Command("sh", { args: ["-c", cmd, path], stdout: "piped" }).output();
  return Number(new TextDecoder().decode(out.stdout).trim());
}

function* blocksOf(bytes: Uint8Array): Generator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += BLOCK_SIZE) {
    yield bytes.subarray(at, Math.min(bytes.length, at + BLOCK_SIZE));
  }
}

console.log(
  "| file | MiB | gzip -1 | gzip -6 | encoder | bytes | × gzip -1 | of input | MiB/CPU-s |",
);
console.log("|---|---|---|---|---|---|---|---|---|");
for (const path of files) {
  const file = await Deno.readFile(path);
  const bytes = file.subarray(0, Math.min(file.length, mib * 1024 * 1024));
  const gzip1 = await gnuGzip(path, 1, bytes.length);
  const gzip6 = await gnuGzip(path, 6, bytes.length);
  for (const encoder of encoders) {
    let size = 0;
    let best = Infinity;
    for (let r = 0; r < repeat; r++) {
      size = 0;
      const before = cpuSeconds();
      for (const block of blocksOf(bytes)) size += encoder.gzip(block);
      best = Math.min(best, cpuSeconds() - before);
    }
    const mibs = bytes.length / 1024 / 1024;
    console.log(
      `| ${path.split("/").at(-1)} | ${
        mibs.toFixed(0)
      } | ${gzip1} | ${gzip6} | ${encoder.name} | ` +
        `${size} | ${(size / gzip1).toFixed(3)} | ${(size / bytes.length).toFixed(3)} | ` +
        `${(mibs / best).toFixed(0)} |`,
    );
  }
}

/**
 * Pull against skopeo and the link limit: the ~1.5 GB three-layer image of `scripts/bench.ts`
 * (a skopeo docker-archive, uncompressed layers) pushed into local registries twice, stored as
 * is (our push `--compression none`) and gzip'd by skopeo (`skopeo copy docker-archive:…
 * docker://…`), then pulled back from each by:
 *
 * - ours: `docker-image-pusher pull … -o FILE` (a fresh output file each run);
 * - skopeo: `skopeo copy docker://… docker-archive:FILE` (a fresh output file each run);
 * - curl: one `curl -s -o /dev/null URL &` per blob, then `wait` (the link limit: no disk);
 *   and the same GETs doing a pull's work, `curl | tee FILE | sha256sum`, then `sync`.
 *
 * Prints a markdown table of medians over `--runs` (wall time, ratios to skopeo and to curl,
 * peak RSS from GNU time's `%M`) and the issue's targets: stored as is, ours ≤ 0.5 × skopeo and
 * ≤ 1.3 × curl; gzip'd, ours ≤ 0.5 × skopeo; our peak RSS ≤ 150 MB.
 *
 *   deno run -A scripts/bench_pull.ts [--runs 3] [--image PATH] [--keep DIR]
 *
 * `--image` defaults to /work/benchdata/usr-image.tar; when it is missing it is built as
 * `scripts/bench.ts` builds it (by running that script with `--keep`, which also runs its push
 * benchmark once). Needs docker-registry, skopeo, curl and /usr/bin/time. Only 127.0.0.1
 * traffic. Not a test.
 */
// deno-lint-ignore-file no-console -- a benchmark reports to the terminal
import { startRegistry, type TestRegistry } from "../tests/helpers/registry.ts";
import { timed, withBlobInfoCache } from "./_bench_process.ts";
import { run } from "../tests/helpers/command.ts";

const argv = Deno.args;
const option = (name: string) => argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined;
const runs = Number(option("--runs") ?? 3);
if (!(Number.isInteger(runs) && runs >= 1)) throw new TypeError("--runs takes a whole number ≥ 1");
const keepDir = option("--keep");
const main = new URL("../main.ts", import.meta.url).pathname;
const denoDir = Deno.env.get("DENO_DIR") ??
  `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`}/deno`;
const TARGETS = { skopeo: 0.5, curl: 1.3, rssMb: 150 };

interface Sample {
  seconds: number;
  rssMb: number;
  cpu: number;
}

const work = keepDir ?? await Deno.makeTempDir({ prefix: "dip-bench-pull-" });
await Deno.mkdir(work, { recursive: true });
try {
  const image = option("--image") ?? "/work/benchdata/usr-image.tar";
  if (!(await exists(image))) {
    console.error(`${image} is missing: building it as scripts/bench.ts does (into ${work})`);
    const bench = new URL("./bench.ts", import.meta.url).pathname;
    const args = ["run", "-A", bench, "--runs", "1", "--skip-4g", "--throttled-runs", "0"];
    const built = await new Deno.Command(Deno.execPath(), {
      args: [...args, "--keep", work],
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!built.success) throw new Error("Failed to build the image with scripts/bench.ts");
    await Deno.copyFile(`${work}/usr-image.tar`, image).catch(() => {});
  }
  const source = (await exists(image)) ? image : `${work}/usr-image.tar`;

  // A registry for each form, so no tool finds the other form's blobs and mounts them.
  await using stored = await startRegistry();
  await using gzipped = await startRegistry();
  console.error("Pushing the image as stored (ours, --compression none)");
  await timed([Deno.execPath(), "run", "-A", main, ...[
    "-r",
    `${stored.url}/bench/usr:1`,
    "-f",
    source,
    "--compression",
    "none",
    "--quiet",
  ]], { DENO_DIR: denoDir, XDG_CACHE_HOME: `${work}/push-cache` });
  console.error("Pushing the image gzip'd (skopeo copy)");
  const skopeoHome = `${work}/skopeo-home`;
  await Deno.mkdir(skopeoHome, { recursive: true });
  await timed(
    withBlobInfoCache(skopeoHome, [
      "skopeo",
      "copy",
      "--quiet",
      "--dest-tls-verify=false",
      `docker-archive:${source}`,
      `docker://${gzipped.host}/bench/usr:1`,
    ]),
    { HOME: skopeoHome, XDG_DATA_HOME: skopeoHome },
  );

  const forms: { name: string; registry: TestRegistry }[] = [
    { name: "stored as is", registry: stored },
    { name: "gzip'd by skopeo", registry: gzipped },
  ];
  const rows: string[] = [];
  const verdicts: string[] = [];
  for (const { name, registry } of forms) {
    const blobs = await blobsOf(registry, "bench/usr", "1");
    const bytes = blobs.reduce((sum, b) => sum + b.size, 0);
    const samples: Record<"ours" | "skopeo" | "curl" | "curl+sha256+file", Sample[]> = {
      ours: [],
      skopeo: [],
      curl: [],
      "curl+sha256+file": [],
    };
    /**
     * Every contender starts with the registry's blobs in the page cache and no dirty pages
     * left by the one before: this machine's memory reclaim (DAMON) evicts cold page cache
     * between runs, and whoever came first would pay for reading the registry's disk.
     */
    const settle = async () => {
      await run("sh", [
        "-c",
        `sync; cat '${registry.storageDir}'/docker/registry/v2/blobs/sha256/*/*/data > /dev/null`,
      ]);
    };
    for (let r = 0; r < runs; r++) {
      const out = `${work}/pulled.tar`;
      await Deno.remove(out).catch(() => {});
      await Deno.remove(`${out}.partial`).catch(() => {});
      await Deno.remove(`${out}.partial.json`).catch(() => {});
      await settle();
      samples.ours.push(
        await timed(
          [Deno.execPath(), "run", "-A", main, "pull", `${registry.url}/bench/usr:1`, "-o", out],
          { DENO_DIR: denoDir, XDG_CACHE_HOME: `${work}/pull-cache`, HOME: work },
        ),
      );
      await Deno.remove(out);
      const home = `${work}/skopeo-pull-${r}`;
      await Deno.mkdir(home, { recursive: true });
      await settle();
      samples.skopeo.push(
        await timed(
          withBlobInfoCache(home, [
            "skopeo",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            `docker://${registry.host}/bench/usr:1`,
            `docker-archive:${out}`,
          ]),
          { HOME: home, XDG_DATA_HOME: home },
        ),
      );
      await Deno.remove(out);
      await Deno.remove(home, { recursive: true });
      const gets = blobs.map((b) =>
        `curl -s -o /dev/null '${registry.url}/v2/bench/usr/blobs/${b.digest}' &`
      );
      await settle();
      samples.curl.push(await timed(["sh", "-c", `${gets.join("\n")}\nwait`]));
      // The same GETs doing a pull's work: each blob written to a file and its sha256 taken.
      const checked = blobs.map((b, i) =>
        `curl -s '${registry.url}/v2/bench/usr/blobs/${b.digest}' | tee '${work}/blob-${i}' | ` +
        `sha256sum > '${work}/blob-${i}.sha256' &`
      );
      await settle();
      samples["curl+sha256+file"].push(
        await timed(["sh", "-c", `${checked.join("\n")}\nwait; sync -f '${work}'`]),
      );
      for (const [i] of blobs.entries()) {
        await Deno.remove(`${work}/blob-${i}`);
        await Deno.remove(`${work}/blob-${i}.sha256`);
      }
      console.error(
        `${name} run ${r + 1}: ` +
          Object.entries(samples).map(([tool, s]) =>
            `${tool} ${s.at(-1)!.seconds.toFixed(2)} s ${s.at(-1)!.rssMb.toFixed(0)} MB`
          ).join(", "),
      );
    }
    const [ours, skopeo, curl] = [samples.ours, samples.skopeo, samples.curl].map((s) =>
      median(s.map((x) => x.seconds))
    ) as [number, number, number];
    const rss = Math.max(...samples.ours.map((s) => s.rssMb));
    for (const [tool, list] of Object.entries(samples)) {
      const secs = list.map((s) => s.seconds);
      const m = median(secs);
      rows.push(
        `| ${name} (${(bytes / 1e9).toFixed(2)} GB) | ${tool} | ${m.toFixed(2)} | ` +
          `${Math.min(...secs).toFixed(2)}–${Math.max(...secs).toFixed(2)} | ` +
          `${(m / skopeo).toFixed(2)} | ${(m / curl).toFixed(2)} | ` +
          `${Math.max(...list.map((s) => s.rssMb)).toFixed(0)} | ` +
          `${median(list.map((s) => s.cpu)).toFixed(1)} |`,
      );
    }
    const check = (what: string, value: number, limit: number) =>
      verdicts.push(
        `- ${name}: ${what} ${value.toFixed(2)} (target ≤ ${limit}): ${
          value <= limit ? "met" : "MISSED"
        }`,
      );
    check("ours/skopeo", ours / skopeo, TARGETS.skopeo);
    if (registry === stored) {
      check("ours/curl", ours / curl, TARGETS.curl);
      const doing = median(samples["curl+sha256+file"].map((x) => x.seconds));
      check("ours/(curl doing a pull's work: file + sha256)", ours / doing, TARGETS.curl);
    }
    check("our peak RSS MB", rss, TARGETS.rssMb);
  }
  console.log(`\n${source}, ${runs} run(s), medians; ${Deno.build.target}\n`);
  console.log(
    "| image in the registry | tool | wall s | min–max s | × skopeo | × curl | " +
      "peak RSS MB (max) | CPU s |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const row of rows) console.log(row);
  console.log(`\n${verdicts.join("\n")}`);
} finally {
  if (keepDir === undefined) await Deno.remove(work, { recursive: true });
}

/** The config and layers of `repo:ref`, by digest and size. */
async function blobsOf(registry: TestRegistry, repo: string, ref: string) {
  const manifest = (await registry.fetchManifest(repo, ref)).json as {
    config: { digest: string; size: number };
    layers: { digest: string; size: number }[];
  };
  return [manifest.config, ...manifest.layers];
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

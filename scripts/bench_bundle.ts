/**
 * Issue 11's benchmark: one multi-image `docker save` archive (10 images sharing a 500 MB base
 * layer, each with its own 100 MB layer) pushed into a local registry
 *
 * - a. by skopeo, one `skopeo copy docker-archive:…:NAME:TAG docker://…` per image;
 * - b. by this tool, one `-r …/REPO:TAG --image NAME:TAG` command per image;
 * - c. by this tool in one `--all` run,
 *
 * each run of each contender into a registry of its own, with blob-info caches of its own (kept
 * across one contender's commands, as a user's would be). Prints a markdown table of medians over
 * `--runs` (wall time, ratios, uploads and mounts of the shared layer from the registry's access
 * log, bytes, peak RSS and CPU) and PASS/FAIL lines for the issue's limits: c ≤ 0.5 × a,
 * c ≤ 0.8 × b, and the shared layer sent once; then the checks that every tag is there and that
 * b and c pushed the same manifests.
 *
 *   deno run -A scripts/bench_bundle.ts [--images 10] [--base-mb 500] [--own-mb 100] [--runs 1]
 *     [--compression gzip,none] [--keep /work/benchdata/bundle] [--small] [--skopeo-no-cache]
 *
 * `--compression` lists our codecs: b and c run once per codec (the default, gzip at level auto,
 * is what the limits are about; `none` sends layers as stored, and only there must b and c push
 * byte-identical manifests). `--small` means 3 images, a 4 MB base and 1 MB own layers (for a
 * quick check and the test). `--skopeo-no-cache` adds a row of skopeo with a fresh cache for each
 * copy (a CI job that keeps none), which cannot know the base layer is already pushed.
 *
 * MB are 10⁶ bytes of layer payload. Layers hold files of synthetic, partly compressible data
 * (the header reports gzip's ratio on a sample). The archive is written once into the `--keep`
 * directory and reused; per-run caches go below it and are removed. Needs docker-registry, skopeo
 * and /usr/bin/time; as root also unshare and mount (skopeo's cache, see withBlobInfoCache).
 * Only 127.0.0.1 traffic. Run it on a quiet machine: nothing here detects other load.
 */
// deno-lint-ignore-file no-console -- a benchmark reports to the terminal
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { run } from "../tests/helpers/command.ts";
import { hashing, SeededRandom, sha256Digest, sha256Hex } from "../tests/helpers/random.ts";
import { type LoggedRequest, startRegistry } from "../tests/helpers/registry.ts";
import { tarStream, TarWriter } from "../tests/helpers/tar_writer.ts";
import { findRegistryPid, parseArgs, timed, withBlobInfoCache } from "./_bench_process.ts";

const args = parseArgs(Deno.args);
const small = args.has("--small");
const count = (name: string, fallback: number, min: number) => {
  const value = Number(args.get(name) ?? fallback);
  if (!(Number.isInteger(value) && value >= min)) {
    throw new TypeError(`${name} takes a whole number ≥ ${min}`);
  }
  return value;
};
const megabytes = (name: string, fallback: number) => {
  const value = Number(args.get(name) ?? fallback);
  if (!(value > 0 && Number.isInteger(value * 1e6))) {
    throw new TypeError(`${name} takes a positive number of MB`);
  }
  return value;
};
const imageCount = count("--images", small ? 3 : 10, 2);
const baseMb = megabytes("--base-mb", small ? 4 : 500);
const ownMb = megabytes("--own-mb", small ? 1 : 100);
const runs = count("--runs", 1, 1);
const codecs = (args.get("--compression") ?? "gzip,none").split(",");
for (const codec of codecs) {
  if (!["gzip", "zstd", "none"].includes(codec)) {
    throw new TypeError(`--compression takes gzip, zstd or none (comma-separated), not ${codec}`);
  }
}
const work = args.get("--keep") || "/work/benchdata/bundle";
const main = new URL("../main.ts", import.meta.url).pathname;
const denoDir = Deno.env.get("DENO_DIR") ??
  `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`}/deno`;
const LIMITS = { skopeo: 0.5, perImage: 0.8 };
const PREFIX = "pushed";
const names = Array.from({ length: imageCount }, (_, i) => `bench/img${i}:1`);
const repoOf = (name: string) => `${PREFIX}/${name.split(":")[0]}`;

/** Bytes per file inside a layer; real layers hold many files. */
const FILE_BYTES = 8 * 1024 * 1024;
/** Content comes in pieces of this size, each either random or text. */
const PIECE = 4096;
/**
 * Share of random (incompressible) pieces; the rest is text. With 0.1, gzip -6 keeps about 0.40
 * of the content: near the 0.37 it keeps of /usr (`scripts/bench.ts`'s image).
 */
const RANDOM_SHARE = 0.1;
const MTIME = 1700000000;
const CREATED = "2024-01-01T00:00:00Z";
const encoder = new TextEncoder();

/**
 * Synthetic layer content, reproducible from a seed: 4 KiB pieces, each either pseudo-random or
 * a slice of a text of words from a 4096-word vocabulary, so gzip does real work and shrinks it
 * about as much as it shrinks binaries and libraries. The pseudo-random stream is AES-CTR
 * (`tests/helpers/random.ts`), so writing 1.5 GB takes seconds.
 */
class Content {
  static #text: Uint8Array | undefined;
  #random: SeededRandom;

  constructor(seed: string) {
    this.#random = new SeededRandom(seed);
  }

  /** The next `size` bytes (at most 1 MiB), in a new array. */
  next(size: number): Uint8Array {
    const text = Content.#text ??= buildText();
    const random = this.#random.bytes(size);
    const out = new Uint8Array(size);
    for (let offset = 0; offset < size; offset += PIECE) {
      const n = Math.min(PIECE, size - offset);
      if (random[offset]! < RANDOM_SHARE * 256) {
        out.set(random.subarray(offset, offset + n), offset);
      } else {
        const at = ((random[offset + 1] ?? 0) << 16 | (random[offset + 2] ?? 0) << 8 |
          (random[offset + 3] ?? 0)) % (text.byteLength - PIECE);
        out.set(text.subarray(at, at + n), offset);
      }
    }
    return out;
  }
}

/** One way of pushing the whole archive. */
interface Contender {
  label: string;
  /** Our codec; skopeo has none of its own (it gzips). */
  codec?: string;
  kind: "skopeo" | "per-image" | "all";
  /** skopeo only: a fresh blob-info cache for each copy. */
  noCache?: boolean;
}

/** One run of a contender, against a registry of its own. */
interface Result {
  seconds: number;
  /** Wall seconds of each command. */
  each: number[];
  /** Largest peak RSS of its commands (GNU time's `%M`). */
  rssMb: number;
  /** User + system CPU of its commands. */
  cpu: number;
  registryCpu: number;
  /** What the registry process wrote (`wchar` of /proc/PID/io): upload bodies land on disk. */
  registryWrote: number;
  traffic: Traffic;
  /** Our tool's own `--output json` counts, summed over its commands. */
  report?: BlobCounts;
  /** Manifest digest per image name; missing images have none. */
  digests: Map<string, string>;
}

/** What the registry's access log says about blob uploads. */
interface Traffic {
  /** Completed uploads (`PUT …/blobs/uploads/…?digest=` answered 201), all blobs. */
  uploads: number;
  /** Completed uploads of the shared base layer (as stored in the registry). */
  baseUploads: number;
  /** Sum of the sizes of the blobs whose uploads completed. */
  uploadedBytes: number;
  /** Cross-repository mounts answered 201, all blobs / the base layer. */
  mounts: number;
  baseMounts: number;
  /** Upload sessions opened (POST answered 202), some of them after a refused mount. */
  sessions: number;
}

type BlobCounts = Record<"uploaded" | "mounted" | "skipped", number>;

const started = performance.now();
await Deno.mkdir(work, { recursive: true });
const archive = `${work}/bundle-v3-${imageCount}x${ownMb}MB-base${baseMb}MB.tar`;
if (!(await exists(archive))) {
  console.error(`Writing ${archive}`);
  await Deno.remove(`${archive}.partial`).catch(() => {});
  await writeBundle(`${archive}.partial`);
  await Deno.rename(`${archive}.partial`, archive);
}
console.error(`Archive ready after ${((performance.now() - started) / 1000).toFixed(0)} s`);
// Not measured: fill Deno's module cache, and read the archive into the page cache.
await run(Deno.execPath(), ["run", "-A", main, "--version"], { env: { DENO_DIR: denoDir } });
await run("sh", ["-c", 'cat "$0" > /dev/null', archive]);

const contenders: Contender[] = [{ label: "skopeo copy, one per image (gzip)", kind: "skopeo" }];
if (args.has("--skopeo-no-cache")) {
  contenders.push({
    label: "skopeo copy, one per image, no cache kept",
    kind: "skopeo",
    noCache: true,
  });
}
for (const codec of codecs) {
  contenders.push(
    { label: `ours, one command per image (${codec})`, codec, kind: "per-image" },
    { label: `ours, --all in one run (${codec})`, codec, kind: "all" },
  );
}
const results = new Map<Contender, Result[]>(contenders.map((c) => [c, []]));
const runsDir = `${work}/runs`;
try {
  for (let r = 1; r <= runs; r++) {
    for (const contender of contenders) {
      const result = await measure(contender, `${runsDir}/${r}-${contenders.indexOf(contender)}`);
      results.get(contender)!.push(result);
      const t = result.traffic;
      console.error(
        `run ${r}, ${contender.label}: ${result.seconds.toFixed(2)} s ` +
          `(${result.each.map((s) => s.toFixed(2)).join(" + ")}), ` +
          `${result.rssMb.toFixed(0)} MB RSS, uploads ${t.uploads} (base ${t.baseUploads}), ` +
          `mounts ${t.mounts} (base ${t.baseMounts}), sessions ${t.sessions}, ` +
          `${t.uploadedBytes} bytes uploaded, registry wrote ${result.registryWrote}` +
          (result.report === undefined ? "" : `; our report: ${JSON.stringify(result.report)}`),
      );
    }
  }
} finally {
  await Deno.remove(runsDir, { recursive: true }).catch(() => {});
}
console.log(await header());
console.log(table());
console.log(`\n${verdicts().join("\n")}`);
console.error(`Benchmark took ${((performance.now() - started) / 1000).toFixed(0)} s`);

/** Runs one contender against a fresh registry, with fresh caches under `home`. */
async function measure(contender: Contender, home: string): Promise<Result> {
  for (const d of ["cache", "state", "tmp", "skopeo"]) {
    await Deno.mkdir(`${home}/${d}`, { recursive: true });
  }
  try {
    await using registry = await startRegistry();
    const pid = await findRegistryPid(registry);
    const ours = (flags: string[]) => [Deno.execPath(), "run", "-A", main, ...flags];
    const oursFlags = ["-f", archive, "--compression", contender.codec ?? "", "--quiet"];
    const oursEnv = {
      XDG_CACHE_HOME: `${home}/cache`,
      XDG_STATE_HOME: `${home}/state`,
      TMPDIR: `${home}/tmp`,
      DENO_DIR: denoDir,
    };
    const commands: { cmd: string[]; env: Record<string, string> }[] = [];
    if (contender.kind === "skopeo") {
      for (const [i, name] of names.entries()) {
        const cache = contender.noCache ? `${home}/skopeo/${i}` : `${home}/skopeo`;
        await Deno.mkdir(cache, { recursive: true });
        const copy = ["skopeo", "copy", "--quiet", "--insecure-policy", "--dest-tls-verify=false"];
        const from = `docker-archive:${archive}:${name}`;
        const to = `docker://${registry.host}/${repoOf(name)}:1`;
        commands.push({
          cmd: withBlobInfoCache(cache, [...copy, from, to]),
          env: { HOME: cache, XDG_DATA_HOME: cache },
        });
      }
    } else if (contender.kind === "per-image") {
      for (const name of names) {
        const target = `${registry.url}/${repoOf(name)}:1`;
        const flags = ["-r", target, ...oursFlags, "--image", name, "--output", "json"];
        commands.push({ cmd: ours(flags), env: oursEnv });
      }
    } else {
      const flags = ["--all", "-r", `${registry.url}/${PREFIX}`, ...oursFlags, "--output", "json"];
      commands.push({ cmd: ours(flags), env: oursEnv });
    }
    // Flush earlier writes first, so that their writeback does not slow this run.
    await run("sync", []);
    const before = registryProcess(pid);
    const t = performance.now();
    const samples = [];
    for (const { cmd, env } of commands) samples.push(await timed(cmd, env, { stdout: true }));
    const seconds = (performance.now() - t) / 1000;
    const after = registryProcess(pid);

    const manifests = new Map<string, Manifest>();
    const digests = new Map<string, string>();
    for (const name of names) {
      const fetched = await registry.fetchManifest(repoOf(name), "1").catch(() => undefined);
      if (fetched === undefined) continue;
      manifests.set(name, fetched.json as unknown as Manifest);
      digests.set(name, fetched.digest);
    }
    const reports = contender.kind === "skopeo"
      ? undefined
      : samples.map((s) => blobCounts(s.stdout));
    return {
      seconds,
      each: samples.map((s) => s.seconds),
      rssMb: Math.max(...samples.map((s) => s.rssMb)),
      cpu: samples.reduce((sum, s) => sum + s.cpu, 0),
      registryCpu: after.cpu - before.cpu,
      registryWrote: after.wrote - before.wrote,
      traffic: blobTraffic(await registry.requests(), [...manifests.values()]),
      ...(reports === undefined ? {} : {
        report: reports.reduce((a, b) => ({
          uploaded: a.uploaded + b.uploaded,
          mounted: a.mounted + b.mounted,
          skipped: a.skipped + b.skipped,
        })),
      }),
      digests,
    };
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

/** The parts of a pushed manifest this benchmark reads. */
interface Manifest {
  config: { digest: string; size: number };
  layers: { digest: string; size: number }[];
}

/**
 * Counts completed uploads and mounts in the access log. The log (Apache combined format) has
 * no request sizes, so bytes are the sizes of the blobs whose uploads completed. The base layer
 * is every manifest's first layer.
 */
function blobTraffic(requests: LoggedRequest[], manifests: Manifest[]): Traffic {
  const sizes = new Map<string, number>();
  for (const m of manifests) {
    for (const blob of [m.config, ...m.layers]) sizes.set(blob.digest, blob.size);
  }
  const base = new Set(manifests.map((m) => m.layers[0]?.digest));
  const traffic: Traffic = {
    uploads: 0,
    baseUploads: 0,
    uploadedBytes: 0,
    mounts: 0,
    baseMounts: 0,
    sessions: 0,
  };
  for (const request of requests) {
    const params = new URLSearchParams(request.uri.split("?")[1] ?? "");
    const upload = /^\/v2\/.+\/blobs\/uploads\/([^/]*)$/.exec(request.path);
    if (upload === null) continue;
    if (request.method === "PUT" && request.status === 201) {
      const digest = params.get("digest") ?? "";
      traffic.uploads++;
      if (base.has(digest)) traffic.baseUploads++;
      traffic.uploadedBytes += sizes.get(digest) ?? 0;
    } else if (request.method === "POST" && request.status === 201 && params.has("mount")) {
      traffic.mounts++;
      if (base.has(params.get("mount") ?? "")) traffic.baseMounts++;
    } else if (request.method === "POST" && request.status === 202) {
      traffic.sessions++;
    }
  }
  return traffic;
}

/** The `images[].blobs` counts of our `--output json` report, summed. */
function blobCounts(stdout: string): BlobCounts {
  const counts: BlobCounts = { uploaded: 0, mounted: 0, skipped: 0 };
  const report: unknown = JSON.parse(stdout);
  const images = (report as { images?: unknown }).images;
  if (!Array.isArray(images)) throw new SyntaxError("Failed to read our JSON report: no images");
  for (const image of images as { blobs?: Record<string, { count?: unknown }> }[]) {
    for (const key of ["uploaded", "mounted", "skipped"] as const) {
      const value = image.blobs?.[key]?.count;
      if (typeof value !== "number") {
        throw new SyntaxError(`Failed to read our JSON report: no blobs.${key}.count`);
      }
      counts[key] += value;
    }
  }
  return counts;
}

/** CPU seconds (utime + stime) and bytes written so far by process `pid`. */
function registryProcess(pid: number): { cpu: number; wrote: number } {
  // Fields 14–15 of /proc/PID/stat, counted after the "(comm)" field.
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
  const io = Deno.readTextFileSync(`/proc/${pid}/io`);
  return {
    cpu: (Number(stat[11]) + Number(stat[12])) / 100,
    wrote: Number(/^wchar: (\d+)$/m.exec(io)?.[1]),
  };
}

// --- The archive -------------------------------------------------------------------------------

/**
 * 4 MiB of lines of pseudo-words, the text {@linkcode Content} slices. Words are drawn as u⁸ of
 * a uniform u, so a few are frequent and most rare, as in real text.
 */
function buildText(): Uint8Array {
  const random = new SeededRandom("bench-bundle-vocabulary");
  const letters = random.bytes(4096 * 16);
  const words = Array.from({ length: 4096 }, (_, i) => {
    const length = 2 + (letters[i * 16]! % 9);
    let word = "";
    for (let j = 1; j <= length; j++) word += String.fromCharCode(97 + letters[i * 16 + j]! % 26);
    return word;
  });
  const size = 4 * 1024 * 1024;
  const picks = random.bytes(size / 2);
  const parts: string[] = [];
  let length = 0;
  for (let i = 0; length < size; i += 2) {
    const u = ((picks[i % picks.length]! << 8) | picks[(i + 1) % picks.length]!) / 65536;
    const word = words[Math.floor(u ** 8 * 4096)]!;
    const separator = i % 22 === 20 ? "\n" : i % 10 === 4 ? "=" : " ";
    parts.push(word, separator);
    length += word.length + 1;
  }
  return encoder.encode(parts.join("")).subarray(0, size);
}

/** The layer tar: a directory and files of {@linkcode Content}, `payload` bytes in all. */
function layerTar(seed: string, payload: number): { size: number; stream: ReadableStream } {
  const files: number[] = [];
  for (let left = payload; left > 0; left -= FILE_BYTES) files.push(Math.min(FILE_BYTES, left));
  const size = 512 + files.reduce((sum, n) => sum + 512 + Math.ceil(n / 512) * 512, 0) + 1024;
  const dir = `layer-${sha256Hex(seed).slice(0, 12)}`;
  const stream = tarStream(async (tar) => {
    await tar.addDirectory(`${dir}/`, { mtime: MTIME });
    const content = new Content(seed);
    for (const [i, bytes] of files.entries()) {
      await tar.addFile(`${dir}/file-${String(i).padStart(4, "0")}.bin`, {
        size: bytes,
        stream: (async function* () {
          for (let left = bytes; left > 0; left -= 1024 * 1024) {
            yield content.next(Math.min(1024 * 1024, left));
          }
        })(),
      }, { mtime: MTIME });
    }
  });
  return { size, stream };
}

/**
 * Writes the archive as `docker save` before Docker 25 does, streaming every layer: `<id>/`
 * with `VERSION`, `json` and `layer.tar` per layer, the shared base layer once (every image's
 * chain starts with the same id), `<config hex>.json` per image, then `manifest.json` and
 * `repositories`.
 */
async function writeBundle(path: string): Promise<void> {
  await using tar = await TarWriter.create(path);
  const addLayer = async (seed: string, parent: string, payload: number) => {
    const id = sha256Hex(`bench-bundle:${parent}:${seed}`);
    await tar.addDirectory(`${id}/`);
    await tar.addFile(`${id}/VERSION`, encoder.encode("1.0"));
    const v1 = { id, ...(parent === "" ? {} : { parent }), created: CREATED, os: "linux" };
    await tar.addFile(`${id}/json`, encoder.encode(JSON.stringify(v1)));
    const hash = createHash("sha256");
    const layer = layerTar(seed, payload);
    await tar.addFile(`${id}/layer.tar`, { size: layer.size, stream: hashing(layer.stream, hash) });
    return { id, diffId: `sha256:${hash.digest("hex")}` };
  };
  const base = await addLayer("bench-bundle-base", "", baseMb * 1e6);
  const manifest = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const name of names) {
    const own = await addLayer(`bench-bundle-own:${name}`, base.id, ownMb * 1e6);
    const config = encoder.encode(JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Env: ["PATH=/usr/bin:/bin"], Cmd: ["/bin/sh"], Labels: { image: name } },
      created: CREATED,
      history: [{ created: CREATED, created_by: "base" }, { created: CREATED, created_by: name }],
      rootfs: { type: "layers", diff_ids: [base.diffId, own.diffId] },
    }));
    const configHex = sha256Digest(config).slice("sha256:".length);
    await tar.addFile(`${configHex}.json`, config);
    manifest.push({
      Config: `${configHex}.json`,
      RepoTags: [name],
      Layers: [`${base.id}/layer.tar`, `${own.id}/layer.tar`],
    });
    const [repository = "", tag = ""] = name.split(":");
    (repositories[repository] ??= {})[tag] = own.id;
  }
  await tar.addFile("manifest.json", encoder.encode(JSON.stringify(manifest)));
  await tar.addFile("repositories", encoder.encode(JSON.stringify(repositories)));
  await tar.close();
}

// --- The report --------------------------------------------------------------------------------

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function wall(c: Contender | undefined): number {
  return c === undefined ? NaN : median(results.get(c)!.map((r) => r.seconds));
}

function skopeoRow(): Contender | undefined {
  return contenders.find((c) => c.kind === "skopeo" && !c.noCache);
}

function perImageRow(codec: string | undefined): Contender | undefined {
  return contenders.find((c) => c.kind === "per-image" && c.codec === codec);
}

/** One row per contender: medians over the runs (peak RSS: the largest). */
function table(): string {
  const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
  const rows = contenders.map((c) => {
    const list = results.get(c)!;
    const of = (f: (r: Result) => number) => median(list.map(f));
    const secs = list.map((r) => r.seconds);
    const ratio = (other: Contender | undefined) =>
      other === undefined || other === c ? "–" : (wall(c) / wall(other)).toFixed(2);
    return [
      c.label,
      wall(c).toFixed(2),
      `${Math.min(...secs).toFixed(2)}–${Math.max(...secs).toFixed(2)}`,
      ratio(skopeoRow()),
      ratio(c.kind === "all" ? perImageRow(c.codec) : undefined),
      String(of((r) => r.traffic.baseUploads)),
      `${of((r) => r.traffic.baseMounts)} / ${of((r) => r.traffic.mounts)}`,
      String(of((r) => r.traffic.uploads)),
      mb(of((r) => r.traffic.uploadedBytes)),
      mb(of((r) => r.registryWrote)),
      Math.max(...list.map((r) => r.rssMb)).toFixed(0),
      of((r) => r.cpu).toFixed(1),
      of((r) => r.registryCpu).toFixed(1),
    ];
  });
  const head = "contender|median wall s|min–max s|× skopeo|× ours per image|base layer uploads|" +
    "mounts (base / all)|blob uploads|MB uploaded|MB registry wrote|peak RSS MB|client CPU s|" +
    "registry CPU s";
  return [head.split("|"), Array(13).fill("---"), ...rows]
    .map((cells) => `| ${cells.join(" | ")} |`).join("\n");
}

/** PASS/FAIL for the issue's three limits (per codec of ours) and for correctness. */
function verdicts(): string[] {
  const lines: string[] = [];
  const verdict = (ok: boolean, text: string) => lines.push(`${ok ? "PASS" : "FAIL"}: ${text}`);
  const skopeo = wall(skopeoRow());
  for (const codec of codecs) {
    const all = contenders.find((c) => c.kind === "all" && c.codec === codec)!;
    const perImage = wall(perImageRow(codec));
    const seconds = wall(all);
    const note = codec === codecs[0] ? "" : " (not the default flags)";
    verdict(
      seconds <= LIMITS.skopeo * skopeo,
      `--all (${codec}) ${seconds.toFixed(2)} s ≤ ${LIMITS.skopeo} × skopeo per image ` +
        `${skopeo.toFixed(2)} s: ratio ${(seconds / skopeo).toFixed(2)}${note}`,
    );
    verdict(
      seconds <= LIMITS.perImage * perImage,
      `--all (${codec}) ${seconds.toFixed(2)} s ≤ ${LIMITS.perImage} × ours per image ` +
        `${perImage.toFixed(2)} s: ratio ${(seconds / perImage).toFixed(2)}${note}`,
    );
    const sent = results.get(all)!.map((r) => r.traffic.baseUploads);
    verdict(
      sent.every((n) => n === 1),
      `--all (${codec}) sent the shared layer once: uploads per run ${sent.join(", ")}`,
    );
    const noCache = contenders.find((c) => c.noCache);
    if (noCache !== undefined) {
      lines.push(
        `INFO: --all (${codec}) ${seconds.toFixed(2)} s is ` +
          `${(seconds / wall(noCache)).toFixed(2)} × ${noCache.label} ${
            wall(noCache).toFixed(2)
          } s`,
      );
    }
  }
  if (small) {
    lines.push("NOTE: --small: process start-up dominates; the time limits are for the full size");
  }
  for (const c of contenders) {
    const missing = results.get(c)!.map((r) => names.filter((n) => !r.digests.has(n)).length);
    verdict(
      missing.every((n) => n === 0),
      `${c.label}: all ${names.length} tags in the registry` +
        (missing.some((n) => n > 0) ? ` (missing per run: ${missing.join(", ")})` : ""),
    );
  }
  for (const codec of codecs) {
    const perImage = results.get(perImageRow(codec)!)!;
    const all = results.get(contenders.find((c) => c.kind === "all" && c.codec === codec)!)!;
    const differing = names.filter((n) =>
      new Set([...perImage, ...all].map((r) => r.digests.get(n))).size !== 1
    );
    const text = `ours per image and --all (${codec}) pushed the same manifest digest for ` +
      `${names.length - differing.length} of ${names.length} tags over all runs`;
    // Level auto follows the link's speed, so a compressed layer's bytes (and the manifest)
    // may differ from push to push: only layers sent as stored must give identical digests.
    if (codec === "none") verdict(differing.length === 0, text);
    else lines.push(`INFO: ${text} (compressed at level auto, which may differ between pushes)`);
  }
  return lines;
}

/** The machine, the tools, the archive, the content's compressibility and the command. */
async function header(): Promise<string> {
  const sh = async (cmd: string) => (await run("sh", ["-c", cmd])).stdout.trim();
  const [nproc, model, kernel, skopeo, registry] = await Promise.all([
    "nproc",
    "grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'",
    "uname -r",
    "skopeo --version",
    "docker-registry --version",
  ].map(sh));
  const sample = new Content("bench-bundle-probe").next(1024 * 1024);
  const ratio = (level: number) =>
    (gzipSync(sample, { level }).byteLength / sample.byteLength).toFixed(2);
  const bytes = (await Deno.stat(archive)).size.toLocaleString("en-US");
  return [
    `Command: \`deno run -A scripts/bench_bundle.ts ${Deno.args.join(" ")}\` (${runs} run(s))\n`,
    `- CPU: ${nproc} × ${model}; Linux ${kernel}`,
    `- Deno ${Deno.version.deno}; ${skopeo}; ${registry}`,
    `- Archive: ${imageCount} images \`bench/imgN:1\`, a ${baseMb} MB base layer shared by all, ` +
    `a ${ownMb} MB layer of each image's own; ${bytes} bytes (\`docker save\` before 25)`,
    `- Layer content: gzip -1 keeps ${ratio(1)}, gzip -6 keeps ${ratio(6)} of its size`,
    "- Each run of each row: a registry of its own, caches of its own (kept across one row's " +
    "commands); base layer uploads and mounts from the registry's access log\n",
  ].join("\n");
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

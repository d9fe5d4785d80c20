/**
 * `deno task release`: the kits people carry to machines with no Deno, no Node and no network.
 *
 *   deno task release [--target TARGET]... [--out DIR] [--cache DIR]
 *
 * For each target (all six `deno compile` targets unless named), writes to DIR (default
 * dist/release) `docker-image-pusher-<version>-<target>.tar.gz` (`.zip` for Windows): a launcher,
 * Deno's runtime for the target from the pinned `@deno/<platform>` npm package
 * (scripts/release/runtime_pins.json, checked against its sha512 integrity), the bundle
 * (scripts/bundle.sh), README, and the licenses of the project, the runtime and the npm packages
 * the bundle inlines. Where `deno compile` can download its runtime base, also the single-file
 * executables; where it cannot, says so in one line. Then `SHA256SUMS` over every file built.
 * The npm tarballs are cached in the --cache DIR (default .tmp/deno-runtimes).
 */
// deno-lint-ignore-file no-console -- a build script talks to the terminal
import { VERSION } from "../src/version.ts";
import { type FileSum, fileSum, sha256sums } from "./release/checksums.ts";
import { compileExecutables } from "./release/compile.ts";
import { buildKit } from "./release/kit.ts";
import { fetchPinnedTarball, type PinnedPackage, readTarballFiles } from "./release/npm_tarball.ts";
import { inlinedPackages, thirdPartyNotices } from "./release/third_party.ts";
import { kitFile, runtimeFile, selectTargets, type Target, TARGETS } from "./release/targets.ts";
import pins from "./release/runtime_pins.json" with { type: "json" };

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const USAGE = "Usage: deno task release [--target TARGET]... [--out DIR] [--cache DIR]";

/** The command line, parsed. */
interface ReleaseArgs {
  targets: string[];
  out: string;
  cache: string;
}

/** A mistake on the command line: exit 2 with a hint. */
class UsageError extends Error {}

function parseArgs(args: readonly string[]): ReleaseArgs | "help" {
  const parsed: ReleaseArgs = {
    targets: [],
    out: `${ROOT}/dist/release`,
    cache: `${ROOT}/.tmp/deno-runtimes`,
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "-h" || arg === "--help") return "help";
    const match = /^--(target|out|cache)(?:=(.*))?$/.exec(arg);
    if (match === null) throw new UsageError(`Unknown argument "${arg}"`);
    const value = match[2] ?? args[++i];
    if (value === undefined || value === "") throw new UsageError(`--${match[1]} needs a value`);
    if (match[1] === "target") parsed.targets.push(value);
    else if (match[1] === "out") parsed.out = value;
    else parsed.cache = value;
  }
  return parsed;
}

function pinOf(name: string): PinnedPackage {
  const integrity = (pins.integrity as Record<string, string>)[name];
  if (integrity === undefined) {
    throw new Error(`scripts/release/runtime_pins.json has no integrity for ${name}`);
  }
  return { name, version: pins.version, integrity };
}

async function bundle(dir: string): Promise<string> {
  const out = `${dir}/docker-image-pusher.js`;
  const result = await new Deno.Command("bash", {
    args: [`${ROOT}/scripts/bundle.sh`, out],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!result.success) {
    throw new Error(
      `scripts/bundle.sh failed (exit ${result.code}): ${
        new TextDecoder().decode(result.stderr).trim()
      }`,
    );
  }
  return out;
}

function size(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

async function release(args: ReleaseArgs): Promise<void> {
  const say = (line: string) => console.error(`release: ${line}`);
  let targets: Target[];
  try {
    targets = selectTargets(args.targets);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  await Deno.mkdir(args.out, { recursive: true });
  const work = await Deno.makeTempDir({ prefix: "dip-release-" });
  try {
    say(`bundling ${VERSION}`);
    if (Deno.version.deno !== pins.version) {
      // Bundles are plain JavaScript and run on other 2.x releases, but what the tests prove is
      // the pinned runtime: say when the build's Deno is another one.
      say(
        `this is Deno ${Deno.version.deno}; the kits carry Deno ${pins.version} ` +
          `(scripts/release/runtime_pins.json)`,
      );
    }
    const bundlePath = await bundle(work);
    const read = (path: string) => Deno.readFile(path);
    const [bundleBytes, readme, license] = await Promise.all([
      read(bundlePath),
      read(`${ROOT}/README.md`),
      read(`${ROOT}/LICENSE`),
    ]);
    // The platform packages hold only the executable; Deno's license text is in the `deno`
    // package of the same version.
    const denoPackage = pinOf("deno");
    const runtimeLicense = (await readTarballFiles(
      await fetchPinnedTarball(denoPackage, args.cache, { say }),
      ["package/LICENSE"],
      `deno@${pins.version}`,
    )).get("package/LICENSE")!.data;
    // bundle.sh runs in the repository's root: the bundle's module paths are relative to it.
    const thirdPartyLicenses = new TextEncoder().encode(
      await thirdPartyNotices(inlinedPackages(new TextDecoder().decode(bundleBytes), ROOT)),
    );

    // Only each file's sum is kept: a kit is ~40 MiB, and it is on disk.
    const built: FileSum[] = [];
    for (const target of targets) {
      const pkg = pinOf(target.runtimePackage);
      const file = `package/${runtimeFile(target)}`;
      const runtime = (await readTarballFiles(
        await fetchPinnedTarball(pkg, args.cache, { say }),
        [file],
        `${pkg.name}@${pkg.version}`,
      )).get(file)!.data;
      const name = kitFile(VERSION, target);
      say(`writing ${name}`);
      const kit = await buildKit(target, {
        version: VERSION,
        runtime,
        bundle: bundleBytes,
        readme,
        license,
        runtimeLicense,
        thirdPartyLicenses,
      });
      await Deno.writeFile(`${args.out}/${name}`, kit);
      built.push(fileSum(name, kit));
    }

    const compiled = await compileExecutables(bundlePath, VERSION, targets, args.out, { say });
    if ("unreachable" in compiled) {
      say(
        `deno compile cannot download its runtime base here (${compiled.unreachable}): no single-file executables, the kits are the release`,
      );
    }
    for (const path of compiled.built) {
      built.push(fileSum(path.slice(path.lastIndexOf("/") + 1), await Deno.readFile(path)));
    }

    await Deno.writeTextFile(`${args.out}/SHA256SUMS`, sha256sums(built));
    for (const sum of built) console.log(`${args.out}/${sum.name}  ${size(sum.size)}`);
    console.log(`${args.out}/SHA256SUMS`);
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  try {
    const parsed = parseArgs(Deno.args);
    if (parsed === "help") {
      console.log(`${USAGE}\n\nTargets (default: all): ${TARGETS.map((t) => t.name).join(", ")}`);
    } else {
      await release(parsed);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`release: ${error.message}\n${USAGE} (--help lists the targets)`);
      Deno.exit(2);
    }
    console.error(`release: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(1);
  }
}

/**
 * Decide whether tests that need external tools (docker-registry, skopeo,
 * umoci…) run, are skipped, or fail.
 *
 * Locally a missing tool skips the test so a contributor without the tools can
 * still run `deno task test`. When the `CI` environment variable is set a
 * missing tool fails the test instead, so CI can never pass by skipping.
 *
 * @module
 */

/** Tools {@linkcode integrationTest} needs unless told otherwise. */
export const DEFAULT_TOOLS: readonly string[] = ["docker-registry", "skopeo"];

/**
 * Every tool a test runs, with the Debian package that holds it: what `deno task test` installs
 * before the tests start (scripts/install_test_tools.ts), and what `.ci/run` installs. A test
 * that declares a tool not listed here fails `tools_test.ts`. Docker's are named by path: the
 * tests use Debian's client and daemon, not another `docker` that may come first on PATH.
 */
export const TEST_TOOL_PACKAGES: Readonly<Record<string, string>> = {
  "docker-registry": "docker-registry",
  skopeo: "skopeo",
  umoci: "umoci",
  htpasswd: "apache2-utils",
  openssl: "openssl",
  tmux: "tmux",
  tar: "tar",
  gzip: "gzip",
  pigz: "pigz",
  zstd: "zstd",
  pzstd: "zstd",
  xz: "xz-utils",
  bzip2: "bzip2",
  python3: "python3",
  curl: "curl",
  // pull_output_test.ts makes a file immutable as root, where a read-only mode is no obstacle.
  chattr: "e2fsprogs",
  "/usr/bin/time": "time",
  "/usr/bin/docker": "docker.io",
  "/usr/sbin/dockerd": "docker.io",
  podman: "podman",
  // The release kits' tests (tests/scripts/release_test.ts): checksums, a private mount
  // namespace, and the linux-arm64 runtime under qemu user emulation, which needs the arm64
  // C library (its ELF interpreter; apt_install.ts adds the arm64 architecture first).
  sha256sum: "coreutils",
  unshare: "util-linux",
  "qemu-aarch64-static": "qemu-user-static",
  "/lib/ld-linux-aarch64.so.1": "libc6:arm64",
};

/** The client and daemon the real-client tests use (see {@linkcode TEST_TOOL_PACKAGES}). */
export const DOCKER_TOOLS: readonly string[] = ["/usr/bin/docker", "/usr/sbin/dockerd"];

/**
 * Tools found so far. Only finds are kept: a tool that is missing now may be installed a moment
 * later (the demo installs the registry and then looks again), so "missing" is never cached.
 */
const foundOnPath = new Set<string>();

/** Whether an executable called `name` is on `PATH` (or `name` is a path to one). */
export function toolOnPath(name: string): boolean {
  if (foundOnPath.has(name)) return true;
  const candidates = name.includes("/")
    ? [name]
    : (Deno.env.get("PATH") ?? "").split(":").filter((dir) => dir !== "").map((dir) =>
      `${dir}/${name}`
    );
  const found = candidates.some((path) => {
    try {
      const info = Deno.statSync(path);
      return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
    } catch {
      return false;
    }
  });
  if (found) foundOnPath.add(name);
  return found;
}

/** Whether the `CI` environment variable is set (to anything but "" or "false"). */
export function inCi(): boolean {
  const value = Deno.env.get("CI");
  return value !== undefined && value !== "" && value.toLowerCase() !== "false";
}

/**
 * Whether a test that needs the tool `name` should run.
 *
 * True when the tool is on `PATH`; also true when it is missing but `CI` is
 * set, so that the test runs and fails rather than being skipped. Use it as
 * `Deno.test({ ignore: !requireTool("skopeo"), … })`, and prefer
 * {@linkcode integrationTest}, which also explains the failure.
 */
export function requireTool(name: string): boolean {
  return toolOnPath(name) || inCi();
}

/** The tools among `names` that are not on `PATH`. */
export function missingTools(names: readonly string[]): string[] {
  return names.filter((name) => !toolOnPath(name));
}

/** Options for {@linkcode integrationTest}. */
export interface IntegrationTestOptions {
  /** Executables the test needs. Default: {@linkcode DEFAULT_TOOLS}. */
  tools?: readonly string[];
  /** Skip the test for another reason. Default: false. */
  ignore?: boolean;
  /** Run only this test (debugging). Default: false. */
  only?: boolean;
}

/**
 * Registers a test that needs external tools. It is skipped when one is
 * missing, unless `CI` is set, in which case it fails with a message naming
 * the missing tools. Resource and op sanitizers stay on.
 *
 * @example
 * ```ts
 * integrationTest("pushes a docker save archive", async () => {
 *   await using registry = await startRegistry();
 *   // …
 * });
 * ```
 */
export function integrationTest(
  name: string,
  fn: (t: Deno.TestContext) => Promise<void>,
  options: IntegrationTestOptions = {},
): void {
  const missing = missingTools(options.tools ?? DEFAULT_TOOLS);
  const ci = inCi();
  Deno.test({
    name: missing.length > 0 && !ci ? `${name} (needs ${missing.join(", ")})` : name,
    ignore: (options.ignore ?? false) || (missing.length > 0 && !ci),
    only: options.only ?? false,
    async fn(t) {
      if (missing.length > 0) {
        throw new Error(
          `Missing tools for an integration test: ${missing.join(", ")} ` +
            `(CI is set, so the test fails instead of being skipped)`,
        );
      }
      await fn(t);
    },
  });
}

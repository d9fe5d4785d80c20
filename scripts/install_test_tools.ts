/**
 * The first step of `deno task test`: install the Debian packages of every tool the tests run
 * that is missing here, and start a Docker daemon if none answers, so that a first test run on
 * a fresh machine runs every test instead of skipping a sixth of them.
 *
 *   deno run -A scripts/install_test_tools.ts
 *
 * Needs apt-get and root (or sudo without a password). Without them it lists what is missing
 * and how to install it, and exits 0: the tests that need a missing tool are then skipped, or,
 * with `CI` set, fail (so it exits 1 under CI).
 */
// deno-lint-ignore-file no-console -- a setup step talks to the terminal
import { ensureDockerDaemon, installMissingTools } from "../tests/helpers/apt_install.ts";
import { registerQemuAarch64 } from "../tests/helpers/binfmt.ts";
import { DOCKER_TOOLS, inCi, missingTools, TEST_TOOL_PACKAGES } from "../tests/helpers/tools.ts";

const say = (line: string) => console.error(`install_test_tools: ${line}`);
const tools = Object.keys(TEST_TOOL_PACKAGES);
const { installed, missing } = await installMissingTools(tools, TEST_TOOL_PACKAGES, { say });
if (installed.length > 0) say(`installed ${installed.join(", ")}`);
const problems: string[] = [];
if (missing.length > 0) {
  const packages = [...new Set(missing.map((tool) => TEST_TOOL_PACKAGES[tool]))].sort();
  problems.push(
    `missing ${missing.join(", ")}: install them (Debian/Ubuntu: sudo apt-get install ` +
      `${packages.join(" ")}); ${
        inCi() ? "their tests fail, as CI is set" : "their tests are skipped"
      }`,
  );
}
if (missingTools(DOCKER_TOOLS).length === 0 && !(await ensureDockerDaemon({ say }))) {
  problems.push(
    "no Docker daemon answers /usr/bin/docker info, and none could be started here " +
      "($TMPDIR/dip-dockerd.log has its output if one was): start one, e.g. sudo dockerd " +
      "--storage-driver=vfs --iptables=false --ip-masq=false --bridge=none &",
  );
}
if ((await registerQemuAarch64({ say })) === false) {
  problems.push(
    "arm64 executables are not registered with binfmt_misc (the arm64 release kit's test runs " +
      "one): as root, cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register",
  );
}
for (const problem of problems) say(problem);
if (problems.length > 0 && inCi()) Deno.exit(1);

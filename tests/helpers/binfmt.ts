/**
 * Registering qemu's user emulation for arm64 executables with the kernel (binfmt_misc), so the
 * linux-arm64 release kit runs here as it would on an arm64 machine: its launcher execs the
 * arm64 `deno` directly (tests/scripts/release_test.ts). Debian's qemu-user-static ships the
 * registration line in /usr/lib/binfmt.d but registers nothing without systemd-binfmt, which a
 * container or CI runner does not run.
 *
 * @module
 */

const BINFMT = "/proc/sys/fs/binfmt_misc";
const CONF = "/usr/lib/binfmt.d/qemu-aarch64.conf";

/** Options for {@linkcode registerQemuAarch64}. */
export interface BinfmtOptions {
  /** Where progress lines go. Default: nowhere. */
  say?: (line: string) => void;
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

/**
 * Registers qemu-aarch64 in binfmt_misc (mounting binfmt_misc first when it is not) unless it
 * is registered already. Needs root. Returns whether arm64 executables are registered now;
 * undefined when qemu-user-static's registration line is not installed (nothing to register).
 */
export async function registerQemuAarch64(
  options: BinfmtOptions = {},
): Promise<boolean | undefined> {
  if (await exists(`${BINFMT}/qemu-aarch64`)) return true;
  const line = await Deno.readTextFile(CONF).catch(() => undefined);
  if (line === undefined) return undefined;
  if (Deno.uid() !== 0) return false;
  if (!(await exists(`${BINFMT}/register`))) {
    options.say?.(`mount -t binfmt_misc binfmt_misc ${BINFMT}`);
    await new Deno.Command("mount", {
      args: ["-t", "binfmt_misc", "binfmt_misc", BINFMT],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output().catch(() => undefined);
  }
  options.say?.(`registering ${CONF} in ${BINFMT}/register`);
  // The file holds the one line the register file takes (":name:type:offset:magic:mask:…").
  await Deno.writeTextFile(`${BINFMT}/register`, line.trim()).catch(() => {});
  return await exists(`${BINFMT}/qemu-aarch64`);
}

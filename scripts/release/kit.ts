/**
 * One kit: a single archive holding one folder, `docker-image-pusher-<version>-<target>/`, with
 *
 *     bin/docker-image-pusher        the launcher (bin/docker-image-pusher.cmd on Windows)
 *     lib/deno                       Deno's runtime for the target (lib/deno.exe on Windows)
 *     lib/docker-image-pusher.js     the bundle: the program with every dependency inlined
 *     README.md, LICENSE             this project's
 *     LICENSE-deno                   the runtime's
 *     THIRD-PARTY-LICENSES           those of the npm packages the bundle inlines
 */
import type { KitEntry } from "./kit_entry.ts";
import { fillLauncher } from "./run_flags.ts";
import { kitName, runtimeFile, type Target } from "./targets.ts";
import { tarGz } from "./tar_gz.ts";
import { zip } from "./zip.ts";

/** What goes into a kit besides the launcher. */
export interface KitInputs {
  version: string;
  /** The `deno` executable for the kit's target. */
  runtime: Uint8Array;
  bundle: Uint8Array;
  readme: Uint8Array;
  license: Uint8Array;
  runtimeLicense: Uint8Array;
  /** The licenses of the npm packages the bundle inlines (third_party.ts). */
  thirdPartyLicenses: Uint8Array;
}

const LAUNCHER_SH = new URL("./launcher.sh", import.meta.url);
const LAUNCHER_CMD = new URL("./launcher.cmd", import.meta.url);

/** The entries of `target`'s kit, folders first, in a fixed order. */
export async function kitEntries(target: Target, inputs: KitInputs): Promise<KitEntry[]> {
  const root = kitName(inputs.version, target);
  const windows = target.os === "windows";
  const launcher = fillLauncher(
    await Deno.readTextFile(windows ? LAUNCHER_CMD : LAUNCHER_SH),
    windows,
  );
  const file = (name: string, data: Uint8Array, mode = 0o644): KitEntry => ({
    kind: "file",
    name: `${root}/${name}`,
    mode,
    data,
  });
  return [
    { kind: "dir", name: root, mode: 0o755 },
    { kind: "dir", name: `${root}/bin`, mode: 0o755 },
    { kind: "dir", name: `${root}/lib`, mode: 0o755 },
    file(
      windows ? "bin/docker-image-pusher.cmd" : "bin/docker-image-pusher",
      new TextEncoder().encode(launcher),
      0o755,
    ),
    file(`lib/${runtimeFile(target)}`, inputs.runtime, 0o755),
    file("lib/docker-image-pusher.js", inputs.bundle),
    file("README.md", inputs.readme),
    file("LICENSE", inputs.license),
    file("LICENSE-deno", inputs.runtimeLicense),
    file("THIRD-PARTY-LICENSES", inputs.thirdPartyLicenses),
  ];
}

/** The archive bytes of `target`'s kit: a zip for Windows, a tar.gz elsewhere. */
export async function buildKit(target: Target, inputs: KitInputs): Promise<Uint8Array> {
  const entries = await kitEntries(target, inputs);
  return target.os === "windows" ? await zip(entries) : await tarGz(entries);
}

/**
 * The main job, end to end, on this machine: make a sample `docker save` archive, start a
 * throwaway local registry, push the archive with docker-image-pusher, and show what the
 * registry now holds. Everything is removed afterwards.
 *
 *   deno task demo
 *
 * Needs the CNCF distribution registry (`docker-registry` on Debian/Ubuntu). When it is
 * missing and apt-get can be used (as root, or with sudo), it is installed; otherwise the
 * script says what to install.
 */
// deno-lint-ignore-file no-console -- a demo talks to the terminal
import { startRegistry } from "../tests/helpers/registry.ts";
import { writeDockerSaveLegacy } from "../tests/helpers/image_fixtures.ts";
import { toolOnPath } from "../tests/helpers/tools.ts";
import { aptInstall, rootPrefix } from "../tests/helpers/apt_install.ts";

const say = (line: string) =>
  console.error(Deno.noColor ? `==> ${line}` : `\x1b[1m==>\x1b[0m ${line}`);

async function ensureRegistry(): Promise<void> {
  if (toolOnPath("docker-registry")) return;
  if (rootPrefix({ sudoMayPrompt: true }) !== undefined) {
    say("docker-registry is missing: installing the Debian package");
    await aptInstall(["docker-registry"], { sudoMayPrompt: true });
    if (toolOnPath("docker-registry")) return;
  }
  console.error(
    "The demo needs a local registry binary, and none could be installed here.\n" +
      "Install one of:\n" +
      "  Debian/Ubuntu:  sudo apt-get install docker-registry\n" +
      "  Fedora:         sudo dnf install docker-distribution\n" +
      "  any Linux/macOS with Go: go install github.com/distribution/distribution/v3/cmd/registry@latest\n" +
      "    (then put `registry` on PATH as `docker-registry`)",
  );
  Deno.exit(1);
}

await ensureRegistry();
const work = await Deno.makeTempDir({ prefix: "dip-demo-" });
await using registry = await startRegistry();
try {
  const archive = `${work}/hello.tar`;
  say(`Writing a sample docker-save archive with two layers: ${archive}`);
  await writeDockerSaveLegacy(archive, [{ name: "hello:1.0", layerSizes: [200_000, 50_000] }]);

  const target = `http://${registry.host}/demo/hello:1.0`;
  say(`Started a throwaway registry at ${registry.url}`);
  say(`docker-image-pusher -r ${target} -f ${archive}`);
  const main = new URL("../main.ts", import.meta.url).pathname;
  const push = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, "-r", target, "-f", archive],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const result = new TextDecoder().decode(push.stdout).trim();
  if (!push.success) {
    say(`The push failed (exit ${push.code})`);
    Deno.exit(push.code);
  }
  console.log(result);

  say("The registry now serves:");
  console.error(`  tags of demo/hello: ${(await registry.listTags("demo/hello")).join(", ")}`);
  const manifest = await registry.fetchManifest("demo/hello", "1.0");
  console.error(`  manifest ${manifest.digest} (${manifest.mediaType}):`);
  console.error(new TextDecoder().decode(manifest.bytes).replace(/^/gm, "    "));

  say("Pushing again: every blob is already there, so nothing is uploaded");
  const again = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, "-r", target, "-f", archive],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!again.success) Deno.exit(again.code);
} finally {
  await Deno.remove(work, { recursive: true });
}

/**
 * The registry restarting mid-push: a registry process killed while a chunked upload is under
 * way and started again a moment later on the same port and storage. The push must ride it out
 * on its retries and leave the image intact.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { runCli } from "../helpers/cli.ts";
import { run } from "../helpers/command.ts";
import { makeBigLayerArchive } from "../helpers/image_fixtures.ts";
import { integrationTest } from "../helpers/tools.ts";

const LAYER = 256 * 1024 * 1024;

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** A registry process that can be killed and started again on the same port and storage. */
class RestartableRegistry {
  #child: Deno.ChildProcess | undefined;
  constructor(readonly config: string, readonly host: string) {}

  async start(): Promise<void> {
    this.#child = new Deno.Command("docker-registry", {
      args: ["serve", this.config],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    for (let i = 0; i < 200; i++) {
      try {
        const response = await fetch(`http://${this.host}/v2/`);
        await response.body?.cancel();
        if (response.ok) return;
      } catch {
        // Not listening yet.
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error("The registry did not start");
  }

  async kill(): Promise<void> {
    this.#child?.kill("SIGKILL");
    await this.#child?.status;
    this.#child = undefined;
  }
}

/** Bytes the registry holds in upload sessions (what has reached its disk so far). */
async function uploadedBytes(dir: string): Promise<number> {
  let total = 0;
  const walk = async (path: string): Promise<void> => {
    for await (const entry of Deno.readDir(path)) {
      const child = `${path}/${entry.name}`;
      if (entry.isDirectory) await walk(child);
      else if (entry.name === "data" && child.includes("/_uploads/")) {
        total += (await Deno.stat(child)).size;
      }
    }
  };
  try {
    await walk(dir);
  } catch {
    // The tree is changing under us; the next poll sees it.
  }
  return total;
}

integrationTest("a registry restarting mid-push: the push rides it out", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dip-restart-" });
  const port = freePort();
  const host = `127.0.0.1:${port}`;
  const config = `${dir}/config.yml`;
  // A fixed secret: upload sessions stay valid across the restart, as in any real deployment.
  await Deno.writeTextFile(
    config,
    [
      "version: 0.1",
      "log:",
      "  level: error",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${JSON.stringify(`${dir}/storage`)}`,
      "http:",
      `  addr: ${JSON.stringify(host)}`,
      "  secret: restart-test-secret",
    ].join("\n") + "\n",
  );
  const registry = new RestartableRegistry(config, host);
  try {
    const archive = await makeBigLayerArchive(`${dir}/big.tar`, LAYER, "docker-legacy");
    await registry.start();
    const push = runCli([
      "-r",
      `http://${host}/restart/app:1`,
      "-f",
      archive.path,
      "--large-layer-threshold",
      "1",
      "--chunk-size",
      "16MiB",
      "--retry-attempts",
      "10",
    ]);
    // Kill the registry once a third of the layer is on its disk, and bring it back shortly.
    const deadline = Date.now() + 60_000;
    while (await uploadedBytes(`${dir}/storage`) < LAYER / 3 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await registry.kill();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await registry.start();
    const result = await push;

    assertEquals(result.code, 0, result.stderr);
    assert(/retry|Retry|from the start/.test(result.stderr), "the outage was noticed");
    const digest = result.stdout.trim().split("@")[1];
    const { stdout } = await run("skopeo", [
      "inspect",
      "--tls-verify=false",
      "--raw",
      `docker://${host}/restart/app:1`,
    ]);
    const manifest = JSON.parse(stdout) as { layers: { digest: string }[] };
    assertEquals(manifest.layers.map((l) => l.digest), archive.images[0]!.layerDigests);
    const served = await fetch(`http://${host}/v2/restart/app/manifests/1`, {
      method: "HEAD",
      headers: { Accept: "application/vnd.docker.distribution.manifest.v2+json" },
    });
    await served.body?.cancel();
    assertEquals(served.headers.get("docker-content-digest"), digest);
  } finally {
    await registry.kill();
    await Deno.remove(dir, { recursive: true });
  }
}, { tools: ["docker-registry", "skopeo"] });

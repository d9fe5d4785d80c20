/**
 * A killed pull keeps what it had, wherever it is killed: a 1 GiB layer pulled through the
 * throttle proxy is killed with SIGKILL at about 25, 50 and 90 % of its bytes received (counted
 * by the proxy), and each rerun's `GET`s of it (the registry's access log) carry at most what
 * had not been received, plus 64 MiB. Each rerun checks the layer's digest as it goes; the last
 * archive's layer is also read back with GNU tar and hashed (once: reading 1 GiB back from disk
 * takes 7–11 s on the CI machine).
 */
import { startThrottleProxy } from "../../scripts/throttle_proxy.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { startCli } from "../helpers/cli.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import { blobGets, seedBigLayer } from "../pull/_resume_support.ts";
import { pull, tempDir } from "../pull/_support.ts";

const MiB = 1024 * 1024;
/** What a kill may cost: the rerun fetches at most this more than had not been received. */
const LOSS = 64 * MiB;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The sha256 of the archive's entry `name`, read with GNU tar. */
async function entryDigest(archive: string, name: string): Promise<string> {
  const out = await new Deno.Command("sh", {
    args: ["-c", 'tar -xOf "$0" "$1" | sha256sum', archive, name],
    stdout: "piped",
  }).output();
  return `sha256:${new TextDecoder().decode(out.stdout).split(" ")[0]}`;
}

integrationTest(
  "killed at 25, 50 and 90 % of a 1 GiB layer, each rerun fetches the rest plus at most 64 MiB",
  async () => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    const { layer, layerSize } = await seedBigLayer(registry, "big/app", "1", 1024 * MiB);
    const [hostname, port] = registry.host.split(":") as [string, string];
    // 1.6 Gbit/s: 90 % of the layer in under 5 s, and 320 MiB a second, so progress saved
    // only every second would lose far more than 64 MiB.
    await using slow = await startThrottleProxy({
      target: { hostname, port: Number(port) },
      bitsPerSecond: 1.6e9,
    });
    for (const [i, share] of [0.25, 0.5, 0.9].entries()) {
      const out = `${dir.path}/pull-${i}.tar`;
      const logged = (await blobGets(registry, layer)).length;
      const from = slow.bytesDown;
      const running = startCli(["pull", `http://127.0.0.1:${slow.port}/big/app:1`, "-o", out], {
        deadlineMs: 60_000,
      });
      let ended = false;
      running.done.then(() => ended = true);
      while (slow.bytesDown - from < share * layerSize) {
        assert(!ended, `the pull ended before ${share * 100} % of the layer came through`);
        await sleep(5);
      }
      running.child.kill("SIGKILL");
      const received = slow.bytesDown - from;
      assertEquals((await running.done).signal, "SIGKILL");
      // The registry logs the killed GET once it sees the connection closed; the rerun's GETs
      // are those logged after it.
      const deadline = Date.now() + 10_000;
      while ((await blobGets(registry, layer)).length === logged) {
        assert(Date.now() < deadline, "the registry never logged the killed GET");
        await sleep(20);
      }
      const mark = (await blobGets(registry, layer)).length;

      const rerun = await pull([`${registry.url}/big/app:1`, "-o", out]);
      assertEquals(rerun.code, 0, rerun.stderr);
      const gets = (await blobGets(registry, layer)).slice(mark);
      const fetched = gets.reduce((sum, g) => sum + g.bytes, 0);
      const rest = layerSize - received;
      assert(
        fetched <= rest + LOSS,
        `killed at ${(received / MiB).toFixed(0)} MiB received, the rerun fetched ${
          (fetched / MiB).toFixed(0)
        } MiB: ${((fetched - rest) / MiB).toFixed(0)} MiB more than the rest`,
      );
      if (share === 0.9) {
        assertEquals(await entryDigest(out, `blobs/sha256/${layer.slice(7)}`), layer);
      }
      await Deno.remove(out);
    }
  },
  { tools: ["docker-registry"] },
);

/**
 * A pull that writes zstd layers into an archive warns that Docker before 23.0 cannot load it,
 * with and without `-q`; a pull of gzip layers does not.
 */
import { assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { runCli } from "../helpers/cli.ts";
import { writeOciArchive } from "../helpers/image_fixtures.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import { pull, tempDir } from "../pull/_support.ts";

integrationTest(
  "pull of zstd layers warns that docker load needs Docker 23.0, -q too",
  async () => {
    await using registry = await startRegistry();
    await using dir = await tempDir();
    await writeOciArchive(`${dir.path}/src.tar`, [{ name: "z:1", layerSizes: [3000, 2000] }], {
      compression: "none",
    });
    for (const [repo, codec] of [["zstd/app", "zstd"], ["gzip/app", "gzip"]]) {
      const pushed = await runCli([
        "-r",
        `${registry.url}/${repo}:1`,
        "-f",
        `${dir.path}/src.tar`,
        "--compression",
        codec!,
      ]);
      assertEquals(pushed.code, 0, pushed.stderr);
    }
    const warning =
      `Warning: The archive holds 2 zstd-compressed layers (${registry.host}/zstd/app:1): ` +
      "docker load needs Docker Engine 23.0 or later to read them (podman and skopeo read them)\n";

    const loud = await pull([`${registry.url}/zstd/app:1`, "-o", `${dir.path}/a.tar`]);
    assertEquals(loud.code, 0, loud.stderr);
    assertStringIncludes(loud.stderr, warning);

    // -q prints only errors and warnings: this line and nothing else.
    const quiet = await pull([`${registry.url}/zstd/app:1`, "-o", `${dir.path}/b.tar`, "-q"]);
    assertEquals(quiet.code, 0, quiet.stderr);
    assertEquals(quiet.stderr, warning);

    const streamed = await pull([`${registry.url}/zstd/app:1`, "-o", "-", "-q"]);
    assertEquals(streamed.code, 0, streamed.stderr);
    assertEquals(streamed.stderr, warning);

    const gzip = await pull([`${registry.url}/gzip/app:1`, "-o", `${dir.path}/c.tar`]);
    assertEquals(gzip.code, 0, gzip.stderr);
    assertEquals(gzip.stderr.includes("zstd"), false, gzip.stderr);
  },
  { tools: ["docker-registry"] },
);

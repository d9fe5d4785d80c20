/**
 * Writing an archive file keeps its state file up with the bytes received: saved by bytes, not
 * only by time. A scripted registry sends a layer a MiB at a time and sends each MiB only once
 * the state file claims all but the last 4 MiB sent (or fails after 2 s). The state never
 * claims bytes that are not in the file.
 */
import { createHash } from "node:crypto";
import { silentSink } from "../../src/progress/events.ts";
import { partialPaths } from "../../src/pull/partial_state.ts";
import { layOut } from "../../src/pull/tar_layout.ts";
import { writeArchiveFile } from "../../src/pull/write_file.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { createFetchTransport } from "../../src/registry/fetch_transport.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { tempDir } from "./_support.ts";

const MiB = 1024 * 1024;
const SIZE = 24 * MiB;
const LAYER = new Uint8Array(SIZE).map((_, i) => (i * 7 + (i >> 20)) % 251);
const DIGEST = `sha256:${createHash("sha256").update(LAYER).digest("hex")}`;
/** How far the saved state may trail the bytes sent. */
const SLACK = 4 * MiB;

/** What the state file at `path` claims for the layer, and whether the file holds it. */
async function claimed(path: string, data: string): Promise<number> {
  let done = 0;
  try {
    const state = JSON.parse(await Deno.readTextFile(path));
    done = state.blobs?.[DIGEST]?.done ?? 0;
    const sha256 = state.blobs?.[DIGEST]?.sha256;
    if (done > 0) {
      // What it claims is in place: the file's bytes at the layer's offset hash to its sha256.
      using file = await Deno.open(data);
      await file.seek(512, Deno.SeekMode.Start);
      const bytes = new Uint8Array(done);
      for (let at = 0; at < done;) at += (await file.read(bytes.subarray(at))) ?? done;
      assertEquals(createHash("sha256").update(bytes).digest("hex"), sha256);
    }
  } catch (error) {
    if (!(error instanceof SyntaxError || error instanceof Deno.errors.NotFound)) throw error;
  }
  return done;
}

Deno.test("the state is saved every few MiB of a layer, not only every second", async () => {
  await using dir = await tempDir();
  const output = `${dir.path}/out.tar`;
  const paths = partialPaths(output);
  let lagging: string | undefined;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (request) => {
    if (!request.url.endsWith(`/v2/app/blobs/${DIGEST}`)) {
      return new Response(null, { status: 404 });
    }
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        for (let at = 0; at < SIZE; at += MiB) {
          const deadline = Date.now() + 2000;
          while (at - SLACK > await claimed(paths.state, paths.data)) {
            if (Date.now() > deadline) {
              lagging = `${at / MiB} MiB sent, ${
                (await claimed(paths.state, paths.data)) / MiB
              } MiB saved`;
              controller.error(new Error(lagging));
              return;
            }
            await new Promise((r) => setTimeout(r, 5));
          }
          controller.enqueue(LAYER.slice(at, at + MiB));
        }
        controller.close();
      },
    });
    return new Response(body, { headers: { "content-length": String(SIZE) } });
  });
  const transport = createFetchTransport({
    inactivityTimeoutMs: 10_000,
    processEnv: () => undefined,
  });
  try {
    const client = new RegistryClient({
      baseUrl: new URL(`http://127.0.0.1:${server.addr.port}/`),
      registryName: "test",
      repository: "app",
      access: "pull",
      transport,
      retries: 0,
      sink: silentSink,
    });
    const layout = layOut([{
      kind: "blob",
      name: `blobs/sha256/${DIGEST.slice(7)}`,
      digest: DIGEST,
      size: SIZE,
    }]);
    const written = await writeArchiveFile(output, layout, {
      clientFor: () => client,
      maxConcurrent: 1,
      sink: silentSink,
      // Never by time: only the bytes can make it save.
      saveIntervalMs: 3_600_000,
      saveEveryBytes: MiB,
    }).catch((error) => {
      throw new Error(lagging ?? "the pull failed", { cause: error });
    });
    assertEquals(written.downloaded, SIZE);
    assert(lagging === undefined, lagging);
  } finally {
    transport.close();
    await server.shutdown();
  }
});

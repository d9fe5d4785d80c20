/**
 * Resuming interrupted chunked pushes across runs. A 1 GiB layer goes up in 32 MiB chunks; the
 * CLI is killed (SIGKILL) or interrupted (SIGINT) part-way, then the same command runs again.
 *
 * Through the store-and-forward fault proxy (no faults here; it stands for nginx's request
 * buffering and counts the bytes each run sends), the chunk in flight when the CLI dies never
 * reaches the registry, so the upload session survives and the re-run continues from the
 * registry's offset. The CLI is stopped in the middle of a chunk on purpose: stopped just
 * after a chunk's last byte, the proxy would still forward that chunk, the registry would take
 * it without the client ever learning its new `_state`, and distribution would then refuse the
 * saved `_state` (BLOB_UPLOAD_INVALID) and the blob would start again.
 *
 * Against the bare registry, a PATCH cut off mid-body leaves distribution holding more bytes
 * than the saved `_state` says; it discards the session and the re-run starts the blob again.
 *
 * One 1 GiB archive serves every step and is removed at the end.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { type CliResult, lines, type RunningCli, startCli } from "../helpers/cli.ts";
import { type FaultProxy, startFaultProxy } from "../helpers/fault_proxy.ts";
import { type FixtureImageInfo, makeBigLayerArchive } from "../helpers/image_fixtures.ts";
import { integrationTest, startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { pullBack } from "../helpers/skopeo.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const CHUNK = 32 * MiB;
const CHUNK_ARGS = ["--large-layer-threshold", "1", "--chunk-size", "32MiB"];
const TOOLS = ["docker-registry", "skopeo"];
/** A run that takes longer than this has hung: it is killed and the step fails. */
const DEADLINE_MS = 90_000;

interface Fixture {
  dir: string;
  archive: string;
  image: FixtureImageInfo;
  /** The layer blob's digest and size (the tar around the 1 GiB file). */
  layerDigest: string;
  layerSize: number;
  configSize: number;
}

/** Starts the CLI as `runCli` does, with its resume state in `stateHome`. */
function startPush(args: string[], stateHome: string): RunningCli {
  return startCli(args, { env: { XDG_STATE_HOME: stateHome }, deadlineMs: DEADLINE_MS });
}

/** Runs the CLI to the end. */
function runToEnd(args: string[], stateHome: string): Promise<CliResult> {
  return startPush(args, stateHome).done;
}

/** Sends `signal` to the CLI once `moment` resolves; fails if the CLI ends first. */
async function stopAt(
  run: RunningCli,
  moment: Promise<void>,
  signal: Deno.Signal,
): Promise<CliResult> {
  const first = await Promise.race([
    moment.then(() => "moment" as const),
    run.done.then(() => "exited" as const),
  ]);
  if (first === "exited") {
    const result = await run.done;
    throw new Error(
      `The push ended (exit ${result.code}) before it could be stopped\n--- stderr ---\n` +
        result.stderr,
    );
  }
  run.child.kill(signal);
  return await run.done;
}

/** Waits until the proxy has settled every request (a killed client's last one included). */
async function settled(proxy: FaultProxy): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (proxy.requests.some((r) => r.outcome === "pending")) {
    if (Date.now() > deadline) throw new Error(`Requests still pending; ${proxy.summary()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const UPLOAD = /\/blobs\/uploads\//;

/** Blob body bytes (PATCH/PUT to upload sessions) the proxy received from request `from` on. */
function bytesSince(proxy: FaultProxy, from: number): number {
  return proxy.requests.slice(from)
    .filter((r) => UPLOAD.test(r.path))
    .reduce((sum, r) => sum + r.bodyBytesReceived, 0);
}

/** Blob body bytes the proxy forwarded to the registry. */
function blobBytesForwarded(proxy: FaultProxy): number {
  return proxy.requests
    .filter((r) => UPLOAD.test(r.path))
    .reduce((sum, r) => sum + r.forwardedBytes, 0);
}

interface SavedUpload {
  digest: string;
  location: string;
  offset: number;
}

/** The saved upload records under `stateHome` (what `src/push/resume_store.ts` writes). */
async function savedUploads(stateHome: string): Promise<SavedUpload[]> {
  const dir = `${stateHome}/docker-image-pusher/uploads`;
  const records: SavedUpload[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile || !entry.name.endsWith(".json")) continue;
      records.push(JSON.parse(await Deno.readTextFile(`${dir}/${entry.name}`)) as SavedUpload);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return records;
}

/** The one saved record, for the layer. */
async function savedLayerUpload(stateHome: string, fixture: Fixture): Promise<SavedUpload> {
  const saved = await savedUploads(stateHome);
  assertEquals(saved.length, 1, `one saved upload: ${JSON.stringify(saved)}`);
  const record = saved[0]!;
  assertEquals(record.digest, fixture.layerDigest);
  assert(
    record.offset > 0 && record.offset % CHUNK === 0 && record.offset < fixture.layerSize,
    `saved offset ${record.offset}`,
  );
  return record;
}

/** The registry's upload sessions directory for `repo` (distribution's filesystem layout). */
function uploadsDir(registry: TestRegistry, repo: string): string {
  return `${registry.storageDir}/docker/registry/v2/repositories/${repo}/_uploads`;
}

function pushArgs(host: string, repo: string, fixture: Fixture, extra: string[] = []): string[] {
  return ["-r", `http://${host}/${repo}:1`, "-f", fixture.archive, ...CHUNK_ARGS, ...extra];
}

/** Exit 0 with the one result line; no saved upload left behind. */
async function assertPushed(
  result: CliResult,
  host: string,
  repo: string,
  stateHome: string,
): Promise<void> {
  assert(!result.hung, `the push hung and was killed; stderr:\n${result.stderr}`);
  assertEquals(result.code, 0, `the push failed; stderr:\n${result.stderr}`);
  const out = lines(result.stdout);
  assertEquals(out.length, 1, `stdout: ${result.stdout}`);
  assert(out[0]!.startsWith(`${host}/${repo}:1@sha256:`), `stdout: ${result.stdout}`);
  assertEquals(await savedUploads(stateHome), [], "the saved upload is removed after success");
}

/** The registry serves the tag with the archive's config and layer (checked by digest). */
async function assertInRegistry(
  registry: TestRegistry,
  repo: string,
  fixture: Fixture,
): Promise<void> {
  const { json } = await registry.fetchManifest(repo, "1");
  const config = json.config as { digest: string };
  const layers = json.layers as { digest: string; size: number }[];
  assertEquals(config.digest, fixture.image.configDigest);
  assertEquals(layers.map((l) => [l.digest, l.size]), [[fixture.layerDigest, fixture.layerSize]]);
  assert(await registry.blobExists(repo, fixture.layerDigest));
}

const RESUMING = "Notice: Resuming the saved upload of";
const FROM_THE_START = "from the start: the registry discarded the saved upload session";

function log(text: string): void {
  // deno-lint-ignore no-console -- the measured figures go in a report
  console.log(text);
}

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

integrationTest(
  "resume: interrupted 1 GiB chunked pushes continue on the next run",
  async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "dip-resume-" });
    try {
      const archive = `${dir}/big.tar`;
      const { images } = await makeBigLayerArchive(archive, GiB, "docker-legacy");
      const image = images[0]!;
      const layerDigest = image.layerDigests[0]!;
      const layerSize = await tarEntrySize(archive, "/layer.tar");
      const configSize = await tarEntrySize(archive, `${image.configDigest.slice(7)}.json`);
      const fixture: Fixture = { dir, archive, image, layerDigest, layerSize, configSize };

      await t.step("SIGKILL half-way; the re-run sends only the rest", async () => {
        await using registry = await startRegistry();
        await using proxy = startFaultProxy({ upstream: registry.url, seed: 1 });
        const stateHome = `${dir}/state-kill`;
        const args = pushArgs(proxy.host, "resume/kill", fixture);

        const started = performance.now();
        // Half the layer, plus half a chunk: the CLI dies in the middle of a chunk.
        const killed = await stopAt(
          startPush(args, stateHome),
          proxy.whenReceived(fixture.layerSize / 2 + CHUNK / 2),
          "SIGKILL",
        );
        assertEquals(killed.signal, "SIGKILL", killed.stderr);
        await settled(proxy);
        const firstBytes = bytesSince(proxy, 0);
        const firstSeconds = (performance.now() - started) / 1000;
        const saved = await savedLayerUpload(stateHome, fixture);
        assert(
          proxy.requests.some((r) => r.method === "PATCH" && r.outcome === "client-closed"),
          `the killed run left a chunk unfinished; ${proxy.summary()}`,
        );

        const from = proxy.requests.length;
        const rerunStarted = performance.now();
        const rerun = await runToEnd(args, stateHome);
        const rerunSeconds = (performance.now() - rerunStarted) / 1000;
        await assertPushed(rerun, proxy.host, "resume/kill", stateHome);
        assertStringIncludes(
          rerun.stderr,
          `${RESUMING} ${fixture.layerDigest} (${saved.offset} of ${fixture.layerSize} bytes ` +
            "were confirmed)",
        );
        assert(!rerun.stderr.includes(FROM_THE_START), rerun.stderr);
        const rerunBytes = bytesSince(proxy, from);
        const fraction = rerunBytes / fixture.layerSize;
        log(
          `SIGKILL at half: first run received ${firstBytes} bytes (${mib(firstBytes)}) in ` +
            `${firstSeconds.toFixed(1)} s, saved offset ${saved.offset} (${mib(saved.offset)}); ` +
            `re-run received ${rerunBytes} bytes (${mib(rerunBytes)}) in ` +
            `${rerunSeconds.toFixed(1)} s = ${(fraction * 100).toFixed(1)}% of the ` +
            `${fixture.layerSize}-byte layer`,
        );
        assert(fraction <= 0.6, `the re-run sent ${(fraction * 100).toFixed(1)}% of the layer`);
        assert(
          rerunBytes >= fixture.layerSize - saved.offset,
          `the re-run sent at least what the registry lacked; ${proxy.summary()}`,
        );
        // The registry took every byte once: nothing of the killed chunk was forwarded.
        assertEquals(
          blobBytesForwarded(proxy),
          fixture.layerSize + fixture.configSize,
          proxy.summary(),
        );

        const pulled = await pullBack(registry, "resume/kill", "1");
        assertEquals(pulled.configDigest, image.configDigest);
        assertEquals(pulled.layerDiffIds, image.layerDiffIds);
        assertEquals(pulled.layerDigests, [fixture.layerDigest]);
      });

      await t.step("SIGINT: exit 130 with a hint; the re-run resumes", async () => {
        await using registry = await startRegistry();
        await using proxy = startFaultProxy({ upstream: registry.url, seed: 1 });
        const stateHome = `${dir}/state-int`;
        const args = pushArgs(proxy.host, "resume/int", fixture);

        const interrupted = await stopAt(
          startPush(args, stateHome),
          // Early in a chunk, so the interrupt lands mid-body even on a loaded machine.
          proxy.whenReceived(fixture.layerSize / 4 + CHUNK / 8),
          "SIGINT",
        );
        assert(!interrupted.hung, interrupted.stderr);
        assertEquals(interrupted.code, 130, interrupted.stderr);
        const last = lines(interrupted.stderr).at(-1) ?? "";
        assert(last.startsWith("Interrupted."), `last line of stderr: ${JSON.stringify(last)}`);
        assertStringIncludes(last, "same command again");
        assertEquals(interrupted.stdout, "");
        await settled(proxy);
        assert(
          proxy.requests.some((r) => r.method === "PATCH" && r.outcome === "client-closed"),
          `the interrupt stopped a chunk mid-body, and the proxy forwarded none of it; ${proxy.summary()}`,
        );
        const saved = await savedLayerUpload(stateHome, fixture);

        const from = proxy.requests.length;
        const rerun = await runToEnd(args, stateHome);
        await assertPushed(rerun, proxy.host, "resume/int", stateHome);
        assertStringIncludes(rerun.stderr, `${RESUMING} ${fixture.layerDigest} (${saved.offset} `);
        assert(!rerun.stderr.includes(FROM_THE_START), rerun.stderr);
        const rerunBytes = bytesSince(proxy, from);
        log(
          `SIGINT at a quarter: saved offset ${saved.offset} (${mib(saved.offset)}); re-run ` +
            `received ${rerunBytes} bytes = ${(rerunBytes / fixture.layerSize * 100).toFixed(1)}%`,
        );
        assertEquals(rerunBytes, fixture.layerSize - saved.offset, proxy.summary());
        await assertInRegistry(registry, "resume/int", fixture);
      });

      await t.step("--no-resume after a SIGKILL sends the whole layer again", async () => {
        await using registry = await startRegistry();
        await using proxy = startFaultProxy({ upstream: registry.url, seed: 1 });
        const stateHome = `${dir}/state-no-resume`;
        const args = pushArgs(proxy.host, "resume/none", fixture);

        const killed = await stopAt(
          startPush(args, stateHome),
          proxy.whenReceived(fixture.layerSize / 2 + CHUNK / 2),
          "SIGKILL",
        );
        assertEquals(killed.signal, "SIGKILL", killed.stderr);
        await settled(proxy);
        await savedLayerUpload(stateHome, fixture);
        const stateBefore = await savedUploads(stateHome);

        const from = proxy.requests.length;
        const rerun = await runToEnd([...args, "--no-resume"], stateHome);
        assert(!rerun.hung, rerun.stderr);
        assertEquals(rerun.code, 0, rerun.stderr);
        assert(!rerun.stderr.includes(RESUMING), rerun.stderr);
        const rerunBytes = bytesSince(proxy, from);
        log(
          `--no-resume after SIGKILL at half: re-run received ${rerunBytes} bytes = ` +
            `${(rerunBytes / fixture.layerSize * 100).toFixed(1)}% of the layer`,
        );
        assert(rerunBytes >= fixture.layerSize, `the re-run sent ${rerunBytes} bytes`);
        // --no-resume neither reads nor writes saved state: the killed run's record is as it was.
        assertEquals(await savedUploads(stateHome), stateBefore);
        await assertInRegistry(registry, "resume/none", fixture);
      });

      await t.step(
        "a saved session the registry no longer has: the blob starts again",
        async () => {
          await using registry = await startRegistry();
          await using proxy = startFaultProxy({ upstream: registry.url, seed: 1 });
          const stateHome = `${dir}/state-unknown`;
          const repo = "resume/unknown";
          const args = pushArgs(proxy.host, repo, fixture);

          const killed = await stopAt(
            startPush(args, stateHome),
            proxy.whenReceived(2 * CHUNK + CHUNK / 2),
            "SIGKILL",
          );
          assertEquals(killed.signal, "SIGKILL", killed.stderr);
          await settled(proxy);
          await savedLayerUpload(stateHome, fixture);
          // The registry forgets every upload session of the repository (as a purge would).
          await Deno.remove(uploadsDir(registry, repo), { recursive: true });

          const rerun = await runToEnd(args, stateHome);
          await assertPushed(rerun, proxy.host, repo, stateHome);
          assertStringIncludes(rerun.stderr, `${RESUMING} ${fixture.layerDigest}`);
          assertStringIncludes(
            rerun.stderr,
            `Notice: Uploading ${fixture.layerDigest} ${FROM_THE_START} (404 BLOB_UPLOAD_UNKNOWN)`,
          );
          await assertInRegistry(registry, repo, fixture);
        },
      );

      await t.step(
        "bare registry: SIGKILL mid-PATCH; the re-run starts the blob again",
        async () => {
          await using registry = await startRegistry();
          const stateHome = `${dir}/state-bare`;
          const repo = "resume/bare";
          const args = pushArgs(registry.host, repo, fixture);

          const killed = await stopAt(
            startPush(args, stateHome),
            midChunk(registry, repo, stateHome),
            "SIGKILL",
          );
          assertEquals(killed.signal, "SIGKILL", killed.stderr);

          const rerun = await runToEnd(args, stateHome);
          await assertPushed(rerun, registry.host, repo, stateHome);
          // distribution kept the cut PATCH's bytes, so the saved `_state` no longer matches.
          assertStringIncludes(rerun.stderr, `${RESUMING} ${fixture.layerDigest}`);
          assertStringIncludes(
            rerun.stderr,
            `Notice: Uploading ${fixture.layerDigest} ${FROM_THE_START} (404 BLOB_UPLOAD_INVALID)`,
          );
          await assertInRegistry(registry, repo, fixture);
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { tools: TOOLS },
);

/** Size of the first entry of the tar at `path` whose name ends with `suffix` (ustar headers). */
async function tarEntrySize(path: string, suffix: string): Promise<number> {
  using file = await Deno.open(path);
  const header = new Uint8Array(512);
  for (let offset = 0;;) {
    await file.seek(offset, Deno.SeekMode.Start);
    let got = 0;
    while (got < 512) {
      const n = await file.read(header.subarray(got));
      if (n === null) throw new Error(`No entry ending with ${suffix} in ${path}`);
      got += n;
    }
    const field = (start: number, length: number) =>
      new TextDecoder().decode(header.subarray(start, start + length)).replace(/\0.*$/s, "");
    const name = field(0, 100);
    if (name === "") throw new Error(`No entry ending with ${suffix} in ${path}`);
    const size = parseInt(field(124, 12).trim(), 8);
    if (name.endsWith(suffix)) return size;
    offset += 512 + Math.ceil(size / 512) * 512;
  }
}

/**
 * Resolves when the registry is in the middle of a chunk past the saved offset: the session's
 * data file (distribution writes a PATCH body as it arrives) holds between a quarter and three
 * quarters of a chunk more than the client has saved, and at least one chunk was saved.
 */
async function midChunk(registry: TestRegistry, repo: string, stateHome: string): Promise<void> {
  for (;;) {
    const [saved] = await savedUploads(stateHome);
    if (saved !== undefined && saved.offset >= CHUNK) {
      const id = new URL(saved.location).pathname.split("/").at(-1);
      const size = await Deno.stat(`${uploadsDir(registry, repo)}/${id}/data`)
        .then((info) => info.size, () => 0);
      const ahead = size - saved.offset;
      if (ahead >= CHUNK / 4 && ahead <= (3 * CHUNK) / 4) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

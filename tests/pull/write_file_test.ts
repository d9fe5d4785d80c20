/**
 * Writing an archive file keeps its state file up with the bytes received. A scripted registry
 * sends layers a MiB at a time and, before each MiB, asks the state file what it claims (the
 * claim checked against the partial file: the state never claims bytes not in place):
 *
 * - saved by bytes, not only by time: each MiB is sent only once the state claims all but the
 *   last 4 MiB sent;
 * - a prefix kept from an earlier run stays claimed while other layers download before it, and
 *   its layer's `blob-start` says where it starts (the rate counts only bytes moved);
 * - a kept prefix that turns out wrong stops being claimed when its layer starts over, and the
 *   new attempt is saved by bytes from its start;
 * - a first state save that fails removes the partial file this run made (never one an earlier
 *   run left).
 */
import { createHash } from "node:crypto";
import { type ProgressEvent, type ProgressSink, silentSink } from "../../src/progress/events.ts";
import { layoutFingerprint, partialPaths, savePartialState } from "../../src/pull/partial_state.ts";
import { StateWriteError } from "../../src/pull/pull_errors.ts";
import { layOut, type TarLayout } from "../../src/pull/tar_layout.ts";
import { writeArchiveFile, type WriteFileResult } from "../../src/pull/write_file.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { createFetchTransport } from "../../src/registry/fetch_transport.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { tempDir } from "./_support.ts";

const MiB = 1024 * 1024;

const exists = (path: string) => Deno.lstat(path).then(() => true, () => false);

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function layer(size: number, seed: number): { bytes: Uint8Array; digest: string } {
  const bytes = new Uint8Array(size).map((_, i) => (i * 7 + seed + (i >> 20)) % 251);
  return { bytes, digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}` };
}

/** The bytes the state file claims for `digest`, checked against the partial file. */
async function claimed(output: string, layout: TarLayout, digest: string): Promise<number> {
  const paths = partialPaths(output);
  let saved: { done?: number; sha256?: string } | undefined;
  try {
    saved = JSON.parse(await Deno.readTextFile(paths.state)).blobs?.[digest];
  } catch (error) {
    if (error instanceof SyntaxError || error instanceof Deno.errors.NotFound) return 0;
    throw error;
  }
  const done = saved?.done ?? 0;
  if (done > 0) {
    const entry = layout.entries.find((e) => e.kind === "blob" && e.digest === digest)!;
    using file = await Deno.open(paths.data);
    await file.seek(entry.dataOffset, Deno.SeekMode.Start);
    const bytes = new Uint8Array(done);
    for (let at = 0; at < done;) at += (await file.read(bytes.subarray(at))) ?? done;
    assertEquals(createHash("sha256").update(bytes).digest("hex"), saved?.sha256);
  }
  return done;
}

/**
 * Pulls `layers` into `output` from a scripted registry that, before each MiB of a layer it
 * sends from `at` (in a response from `from`), waits until `ready(digest, at, from)` answers
 * undefined; an answer that stays a complaint for 2 s fails the pull with it.
 */
async function pullWith(
  output: string,
  layers: { bytes: Uint8Array; digest: string }[],
  ready: (digest: string, at: number, from: number) => Promise<string | undefined>,
  sink: ProgressSink = silentSink,
): Promise<WriteFileResult> {
  let complaint: string | undefined;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (request) => {
    const found = layers.find((l) => request.url.endsWith(`/v2/app/blobs/${l.digest}`));
    if (found === undefined) return new Response(null, { status: 404 });
    const from = Number(/bytes=(\d+)-/.exec(request.headers.get("range") ?? "")?.[1] ?? 0);
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        for (let at = from; at < found.bytes.length; at += MiB) {
          const deadline = Date.now() + 2000;
          while ((complaint = await ready(found.digest, at, from)) !== undefined) {
            if (Date.now() > deadline) return controller.error(new Error(complaint));
            await new Promise((r) => setTimeout(r, 5));
          }
          controller.enqueue(found.bytes.slice(at, at + MiB));
        }
        controller.close();
      },
    });
    const size = found.bytes.length;
    return from === 0
      ? new Response(body, { headers: { "content-length": String(size) } })
      : new Response(body, {
        status: 206,
        headers: { "content-range": `bytes ${from}-${size - 1}/${size}` },
      });
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
    return await writeArchiveFile(output, layoutOf(layers), {
      clientFor: () => client,
      maxConcurrent: 1,
      sink,
      // Never by time: only the bytes can make it save.
      saveIntervalMs: 3_600_000,
      saveEveryBytes: MiB,
    }).catch((error) => {
      throw new Error(complaint ?? "the pull failed", { cause: error });
    });
  } finally {
    transport.close();
    await server.shutdown();
  }
}

function layoutOf(layers: { bytes: Uint8Array; digest: string }[]): TarLayout {
  return layOut(layers.map(({ bytes, digest }) => ({
    kind: "blob" as const,
    name: `blobs/sha256/${digest.slice(7)}`,
    digest,
    size: bytes.length,
  })));
}

Deno.test("the state is saved every few MiB of a layer, not only every second", async () => {
  await using dir = await tempDir();
  const output = `${dir.path}/out.tar`;
  const big = layer(24 * MiB, 0);
  const layout = layoutOf([big]);
  const written = await pullWith(output, [big], async (digest, at) => {
    const saved = await claimed(output, layout, digest);
    return at - 4 * MiB > saved ? `${at / MiB} MiB sent, ${saved / MiB} MiB saved` : undefined;
  });
  assertEquals(written.downloaded, big.bytes.length);
});

Deno.test("a prefix kept from an earlier run stays saved while layers before it download", async () => {
  await using dir = await tempDir();
  const output = `${dir.path}/out.tar`;
  const first = layer(8 * MiB, 1);
  const second = layer(8 * MiB, 2);
  const layout = layoutOf([first, second]);
  // An earlier run left the second layer's first 4 MiB in place, and said so.
  const paths = partialPaths(output);
  {
    using file = await Deno.open(paths.data, { write: true, create: true });
    await file.truncate(layout.totalSize);
    const entry = layout.entries[1]!;
    await file.seek(entry.dataOffset, Deno.SeekMode.Start);
    await file.write(second.bytes.subarray(0, 4 * MiB));
  }
  const sha256 = createHash("sha256").update(second.bytes.subarray(0, 4 * MiB)).digest("hex");
  await savePartialState(paths.state, {
    version: 1,
    layout: layoutFingerprint(layout),
    blobs: { [second.digest]: { done: 4 * MiB, sha256 } },
  });
  let checked = 0;
  const starts: ProgressEvent[] = [];
  const written = await pullWith(output, [first, second], async (digest, at) => {
    if (digest !== first.digest || at < 3 * MiB) return undefined;
    // The first layer has saved some of its bytes by now; the second's claim is still there.
    checked++;
    const kept = await claimed(output, layout, second.digest);
    return kept === 4 * MiB ? undefined : `the kept 4 MiB of the second layer: ${kept} claimed`;
  }, (event) => event.type === "blob-start" && starts.push(event));
  assert(checked > 0);
  assertEquals(written, { downloaded: 12 * MiB, reused: 4 * MiB, resumed: true });
  assertEquals(starts, [
    { type: "blob-start", digest: first.digest, size: 8 * MiB, attempt: 1 },
    { type: "blob-start", digest: second.digest, size: 8 * MiB, attempt: 1, from: 4 * MiB },
  ]);
});

Deno.test("a kept prefix that proves wrong is no longer claimed once its layer starts over", async () => {
  await using dir = await tempDir();
  const output = `${dir.path}/out.tar`;
  const big = layer(24 * MiB, 3);
  const layout = layoutOf([big]);
  // An earlier run left 20 MiB that are not the layer's (a disk that lost writes), with their
  // sha256: the re-hash matches, the digest at the end does not, and the layer starts over.
  const wrong = big.bytes.slice(0, 20 * MiB).map((b) => b ^ 0xff);
  const paths = partialPaths(output);
  {
    using file = await Deno.open(paths.data, { write: true, create: true });
    await file.truncate(layout.totalSize);
    await file.seek(layout.entries[0]!.dataOffset, Deno.SeekMode.Start);
    for (let at = 0; at < wrong.length;) at += await file.write(wrong.subarray(at));
  }
  await savePartialState(paths.state, {
    version: 1,
    layout: layoutFingerprint(layout),
    blobs: { [big.digest]: { done: wrong.length, sha256: sha256Hex(wrong) } },
  });
  const written = await pullWith(output, [big], async (digest, at, from) => {
    if (from > 0) return undefined; // the resumed attempt, before the digest check fails
    const saved = await claimed(output, layout, digest);
    if (at === 0) return saved === 0 ? undefined : `${saved / MiB} MiB still claimed`;
    return at - 4 * MiB > saved ? `${at / MiB} MiB sent, ${saved / MiB} MiB saved` : undefined;
  });
  assertEquals(written.resumed, true);
});

Deno.test("a first state save that fails removes the partial archive this run made, only that", async () => {
  await using dir = await tempDir();
  const big = layer(2 * MiB, 4);
  const layout = layoutOf([big]);
  const pullInto = (output: string) =>
    writeArchiveFile(output, layout, {
      clientFor: () => {
        throw new Error("nothing is downloaded when the state cannot be saved");
      },
      maxConcurrent: 1,
      sink: silentSink,
    });
  // A directory where the state goes: its rename over it fails (EISDIR), as root or not.
  const made = partialPaths(`${dir.path}/made.tar`);
  await Deno.mkdir(made.state);
  const first = await assertRejects(() => pullInto(`${dir.path}/made.tar`), StateWriteError);
  assertEquals(first.code, "EISDIR");
  assert(!(await exists(made.data)), "the partial archive this run made was left");
  // An earlier run's partial archive (its state lost) stays: this run did not make it.
  const earlier = partialPaths(`${dir.path}/earlier.tar`);
  await Deno.mkdir(earlier.state);
  await Deno.writeFile(earlier.data, new Uint8Array(1000).fill(7));
  await assertRejects(() => pullInto(`${dir.path}/earlier.tar`), StateWriteError);
  assert(await exists(earlier.data), "an earlier run's partial archive was removed");
});

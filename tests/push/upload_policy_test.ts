/**
 * UploadPolicy in process, against the scripted fake: sessions lost to bodies cut off mid-way
 * (the fake keeps the partial bytes, as distribution does, so the session's `_state` no longer
 * matches) start the blob again in a new session, as often as `--retry-attempts` allows, and
 * in `auto` mode the rest goes in one request. Against the real registry: an upload resumed
 * from a saved session announces the bytes the registry confirmed as already in place.
 */
import type { ArchiveBlob } from "../../src/archive/image.ts";
import type { ProgressEvent } from "../../src/progress/events.ts";
import { ResumeStore, type UploadRecord } from "../../src/push/resume_store.ts";
import { type ChunkedMode, UploadPolicy } from "../../src/push/upload_policy.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { createTransport } from "../../src/registry/transport.ts";
import { UploadSessionLostError } from "../../src/registry/upload_errors.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import {
  connectClient,
  FakeRegistry,
  type FaultRule,
  memoryBlob,
} from "../helpers/fake_registry.ts";
import { seededBytes } from "../helpers/random.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";

const KIB = 1024;
const CHUNK = 64 * KIB;

function layer(seed: string, size: number): { blob: ArchiveBlob; bytes: Uint8Array } {
  const bytes = new Uint8Array(seededBytes(seed, size));
  return {
    bytes,
    blob: { ...memoryBlob(bytes), mediaType: "application/vnd.oci.image.layer.v1.tar" },
  };
}

/** The PATCHes numbered `nth` are cut after 10 KiB of body; the fake keeps what it read. */
function cutPatches(nth: number[]): FaultRule {
  return {
    method: "PATCH",
    nth,
    action: { kind: "drop", afterBodyBytes: 10 * KIB, keepPartial: true },
  };
}

function policy(
  harness: ReturnType<typeof connectClient>,
  chunked: ChunkedMode,
): UploadPolicy {
  return new UploadPolicy(harness.client, {
    largeLayerThreshold: 1,
    chunkSize: CHUNK,
    chunked,
  });
}

Deno.test("UploadPolicy: a second lost session does not end the upload", async () => {
  await using fake = await FakeRegistry.start({
    server: "tcp",
    checkStateOffset: true,
    faults: [cutPatches([2, 4])],
  });
  using harness = connectClient(fake, { retries: 3 });
  const { blob, bytes } = layer("two-lost", 4 * CHUNK + 99);

  assertEquals(await policy(harness, "always").upload(blob), "uploaded");

  assertEquals(fake.blobs.get(blob.digest), bytes);
  const starts = harness.events.filter((e) => e.type === "blob-start").map((e) => e.attempt);
  assertEquals(starts, [1, 2, 3]);
  const reasons = harness.retryEvents.filter((e) => e.subject.kind === "blob").map((e) => e.reason);
  assertEquals(reasons.length, 2, reasons.join("\n"));
  for (const reason of reasons) {
    assert(reason.includes("discarded the upload session"), reason);
    assert(reason.includes("starting the blob again in a new session"), reason);
  }
  // --chunked keeps its chunks after a lost session.
  assertEquals(fake.requests.filter((r) => r.method === "PUT" && r.bodyLength > 0).length, 0);
});

Deno.test("UploadPolicy: after a lost session, auto mode sends blobs in one request", async () => {
  await using fake = await FakeRegistry.start({
    server: "tcp",
    checkStateOffset: true,
    faults: [cutPatches([2])],
  });
  using harness = connectClient(fake, { retries: 3 });
  const uploads = policy(harness, "auto");
  const first = layer("lost-once", 4 * CHUNK + 1);
  const second = layer("after-loss", 3 * CHUNK);

  assertEquals(await uploads.upload(first.blob), "uploaded");
  assertEquals(await uploads.upload(second.blob), "uploaded");

  assertEquals(fake.blobs.get(first.blob.digest), first.bytes);
  assertEquals(fake.blobs.get(second.blob.digest), second.bytes);
  // Two PATCHes (the second cut), then each blob in one PUT.
  const sent = fake.requests.filter((r) => r.method === "PATCH" || r.method === "PUT");
  assertEquals(sent.map((r) => r.method), ["PATCH", "PATCH", "PUT", "PUT"]);
  assertEquals(sent[1]?.outcome, "dropped");
  assertEquals(sent.slice(2).map((r) => r.bodyLength), [first.bytes.length, second.bytes.length]);
  const notices = harness.events.filter((e) => e.type === "notice").map((e) => e.message);
  assertEquals(notices.filter((m) => m.includes("sending each blob in one request")).length, 1);
});

Deno.test("UploadPolicy: lost sessions count against the retries", async () => {
  await using fake = await FakeRegistry.start({
    server: "tcp",
    checkStateOffset: true,
    faults: [cutPatches([1, 2, 3])],
  });
  using harness = connectClient(fake, { retries: 2 });
  const { blob } = layer("always-lost", 3 * CHUNK);

  const error = await assertRejects(
    () => policy(harness, "always").upload(blob),
    UploadSessionLostError,
  );
  assert(error.message.includes("BLOB_UPLOAD_INVALID"), error.message);
  assertEquals(harness.events.filter((e) => e.type === "blob-start").length, 3);
  assertEquals(fake.blobs.has(blob.digest), false);
});

/** A store that stops the push (aborts `stop`) once it has saved `offset` bytes of progress. */
class StoppingStore extends ResumeStore {
  constructor(dir: string, readonly stop: AbortController, readonly offset: number) {
    super(dir);
  }

  override async save(record: Omit<UploadRecord, "updatedAt">): Promise<void> {
    await super.save(record);
    // Between chunks: the next PATCH never starts, so the registry's session stays whole.
    if (record.offset >= this.offset) this.stop.abort(new Error("stopped by the test"));
  }
}

integrationTest(
  "UploadPolicy: a resumed upload's blob-start says what the registry confirmed (from)",
  async () => {
    await using registry = await startRegistry();
    const dir = await Deno.makeTempDir({ prefix: "dip-policy-resume-" });
    const transport = createTransport({ inactivityTimeoutMs: 30_000 });
    const events: ProgressEvent[] = [];
    const clientFor = (signal?: AbortSignal) =>
      new RegistryClient({
        baseUrl: new URL(`${registry.url}/`),
        registryName: registry.host,
        repository: "team/resumed",
        transport,
        retries: 1,
        sink: (event) => events.push(event),
        ...(signal ? { signal } : {}),
      });
    const settings = { largeLayerThreshold: 1, chunkSize: CHUNK, chunked: "always" } as const;
    try {
      const { blob, bytes } = layer("resumed", 5 * CHUNK + 99);
      const stop = new AbortController();
      const first = new UploadPolicy(clientFor(stop.signal), {
        ...settings,
        resume: new StoppingStore(dir, stop, 2 * CHUNK),
      });
      await assertRejects(() => first.upload(blob));
      const store = new ResumeStore(dir);
      const saved = await store.load(registry.host, "team/resumed", blob.digest);
      assertEquals(saved?.offset, 2 * CHUNK, "the first run saved two chunks");

      events.length = 0;
      const second = new UploadPolicy(clientFor(), { ...settings, resume: store });
      assertEquals(await second.upload(blob), "uploaded");

      assertEquals(await registry.fetchBlob("team/resumed", blob.digest), bytes);
      assert(
        events.some((e) => e.type === "notice" && e.kind === "upload-resumed"),
        JSON.stringify(events),
      );
      const starts = events.filter((e) => e.type === "blob-start");
      // The registry's offset is in place already: done, but not sent by this run.
      assertEquals(starts, [{
        type: "blob-start",
        digest: blob.digest,
        size: blob.size,
        attempt: 1,
        from: 2 * CHUNK,
      }]);
      const progress = events.filter((e) => e.type === "blob-progress").map((e) => e.done);
      assert(progress.every((done) => done >= 2 * CHUNK), progress.join(", "));
    } finally {
      transport.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
  { tools: ["docker-registry"] },
);

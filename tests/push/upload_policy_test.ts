/**
 * UploadPolicy in process, against the scripted fake: sessions lost to bodies cut off mid-way
 * (the fake keeps the partial bytes, as distribution does, so the session's `_state` no longer
 * matches) start the blob again in a new session, as often as `--retry-attempts` allows, and
 * in `auto` mode the rest goes in one request.
 */
import type { ArchiveBlob } from "../../src/archive/image.ts";
import { type ChunkedMode, UploadPolicy } from "../../src/push/upload_policy.ts";
import { UploadSessionLostError } from "../../src/registry/upload_errors.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import {
  connectClient,
  FakeRegistry,
  type FaultRule,
  memoryBlob,
} from "../helpers/fake_registry.ts";
import { seededBytes } from "../helpers/random.ts";

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

import type { ProgressEvent } from "../../../src/progress/events.ts";
import { ProgressState } from "../../../src/cli/progress/state.ts";
import { assert, assertEquals } from "../../helpers/assert.ts";
import { digest, FakeClock, GiB, MiB } from "./_support.ts";

const A = digest("a");
const B = digest("b");
const C = digest("c");

function feed(state: ProgressState, clock: FakeClock, events: [number, ProgressEvent][]): void {
  for (const [t, event] of events) {
    clock.at(t);
    state.apply(event);
  }
}

Deno.test("ProgressState tracks concurrent blobs and totals", () => {
  const clock = new FakeClock();
  const state = new ProgressState({ now: clock.now });
  feed(state, clock, [
    [0, { type: "plan", image: "app:1", blobs: 3, bytes: 160 * MiB }],
    [0, { type: "blob-start", digest: A, size: 64 * MiB, attempt: 1 }],
    [0, { type: "blob-start", digest: B, size: 64 * MiB, attempt: 1 }],
    [1000, { type: "blob-progress", digest: A, done: 16 * MiB, size: 64 * MiB }],
    [2000, { type: "blob-progress", digest: B, done: 32 * MiB, size: 64 * MiB }],
  ]);
  assertEquals(state.blob(A), {
    digest: A,
    size: 64 * MiB,
    done: 16 * MiB,
    status: "uploading",
    attempt: 1,
    startedAt: 0,
    kept: 0,
    finishedAt: undefined,
  });
  assertEquals(state.inFlight().map((b) => b.digest), [A, B]);
  assertEquals(state.totals(), {
    image: "app:1",
    planned: true,
    blobsTotal: 3,
    blobsFinished: 0,
    bytesTotal: 160 * MiB,
    bytesDone: 48 * MiB,
    bytesSkipped: 0,
    fraction: 0.3,
    rate: 24 * MiB,
    etaMs: 112 / 24 * 1000,
  });

  feed(state, clock, [[3000, {
    type: "blob-done",
    digest: A,
    size: 64 * MiB,
    outcome: "uploaded",
  }]]);
  assertEquals(state.blob(A)?.status, "uploaded");
  assertEquals(state.blob(A)?.finishedAt, 3000);
  assertEquals(state.inFlight().map((b) => b.digest), [B]);
  assertEquals(state.totals().bytesDone, 96 * MiB);
  assertEquals(state.totals().blobsFinished, 1);
});

Deno.test("ProgressState removes skipped and mounted blobs from the work to do", () => {
  const clock = new FakeClock();
  const state = new ProgressState({ now: clock.now });
  feed(state, clock, [
    [0, { type: "plan", image: "app:1", blobs: 3, bytes: 3 * GiB }],
    [0, { type: "blob-done", digest: A, size: GiB, outcome: "skipped" }],
    [0, { type: "blob-done", digest: B, size: 512 * MiB, outcome: "mounted" }],
  ]);
  const totals = state.totals();
  assertEquals(totals.bytesTotal, 1.5 * GiB);
  assertEquals(totals.bytesSkipped, 1.5 * GiB);
  assertEquals(totals.bytesDone, 0);
  assertEquals(totals.blobsFinished, 2);
  assertEquals(totals.fraction, 0);
  // A skipped blob never started, so it has no start time.
  assertEquals(state.blob(A)?.startedAt, undefined);

  feed(state, clock, [[5000, {
    type: "blob-done",
    digest: C,
    size: 1.5 * GiB,
    outcome: "uploaded",
  }]]);
  assertEquals(state.totals().fraction, 1);
  assertEquals(state.totals().etaMs, 0);
});

Deno.test("ProgressState marks a blob retrying, drops the failed attempt's bytes, restarts", () => {
  const clock = new FakeClock();
  const state = new ProgressState({ now: clock.now });
  feed(state, clock, [
    [0, { type: "plan", image: "app:1", blobs: 1, bytes: 10 * MiB }],
    [0, { type: "blob-start", digest: A, size: 10 * MiB, attempt: 1 }],
    [1000, { type: "blob-progress", digest: A, done: 4 * MiB, size: 10 * MiB }],
    [1500, {
      type: "retry",
      subject: { kind: "blob", digest: A },
      digest: A,
      attempt: 2,
      delayMs: 500,
      reason: "503 Service Unavailable",
    }],
  ]);
  assertEquals(state.blob(A)?.status, "retrying");
  assertEquals(state.blob(A)?.attempt, 2);
  assertEquals(state.totals().bytesDone, 0);
  assertEquals(state.inFlight().length, 1);

  feed(state, clock, [
    [2000, { type: "blob-start", digest: A, size: 10 * MiB, attempt: 2 }],
    [3000, { type: "blob-progress", digest: A, done: 2 * MiB, size: 10 * MiB }],
  ]);
  assertEquals(state.blob(A)?.status, "uploading");
  assertEquals(state.blob(A)?.startedAt, 0, "the first start counts for the blob's time");
  assertEquals(state.totals().bytesDone, 2 * MiB);
  // The rate counts what crossed the network, the lost attempt included: 6 MiB in 3 s.
  assertEquals(state.totals().rate, 2 * MiB);
});

Deno.test("ProgressState ignores retries that name no blob in flight", () => {
  const clock = new FakeClock();
  const state = new ProgressState({ now: clock.now });
  feed(state, clock, [
    [0, { type: "blob-start", digest: A, size: 10, attempt: 1 }],
    [0, {
      type: "retry",
      subject: { kind: "request", action: "PUT manifest app:1" },
      attempt: 2,
      delayMs: 500,
      reason: "503",
    }],
  ]);
  assertEquals(state.blob(A)?.status, "uploading");
});

Deno.test("ProgressState: ETA is unknown at the start and zero totals do not divide by zero", () => {
  const clock = new FakeClock();
  const state = new ProgressState({ now: clock.now });
  const empty = state.totals();
  assertEquals(empty.planned, false);
  assertEquals(empty.fraction, 0);
  assertEquals(empty.etaMs, undefined);
  assertEquals(empty.rate, undefined);

  state.apply({ type: "plan", image: "app:1", blobs: 2, bytes: GiB });
  state.apply({ type: "blob-start", digest: A, size: GiB, attempt: 1 });
  assertEquals(state.totals().etaMs, undefined);
  assertEquals(state.totals().rate, undefined);

  const zero = new ProgressState({ now: clock.now });
  zero.apply({ type: "plan", image: "empty:1", blobs: 1, bytes: 0 });
  zero.apply({ type: "blob-start", digest: A, size: 0, attempt: 1 });
  zero.apply({ type: "blob-progress", digest: A, done: 0, size: 0 });
  const before = zero.totals();
  assertEquals([before.fraction, before.bytesTotal, before.etaMs], [0, 0, 0]);
  zero.apply({ type: "blob-done", digest: A, size: 0, outcome: "uploaded" });
  assertEquals(zero.totals().fraction, 1);
});

Deno.test("ProgressState copes with events for blobs it was not told about", () => {
  const clock = new FakeClock();
  const state = new ProgressState({ now: clock.now });
  state.apply({ type: "blob-progress", digest: A, done: 5, size: 10 });
  assertEquals(state.blob(A)?.status, "uploading");
  // Without a plan the total is what has been seen, and a larger plan cannot shrink below it.
  assertEquals(state.totals().bytesTotal, 10);
  state.apply({ type: "plan", image: "app:1", blobs: 1, bytes: 4 });
  assertEquals(state.totals().bytesTotal, 10);
  assertEquals(state.totals().blobsTotal, 1);
});

Deno.test("ProgressState: a blob whose bytes are all sent is finishing, not done, until blob-done", () => {
  const clock = new FakeClock();
  const state = new ProgressState({ now: clock.now });
  feed(state, clock, [
    [0, { type: "plan", image: "app:1", blobs: 2, bytes: 20 * MiB }],
    [0, { type: "blob-start", digest: A, size: 10 * MiB, attempt: 1 }],
    [0, { type: "blob-start", digest: B, size: 10 * MiB, attempt: 1 }],
    // Both counters reach the end: the socket has taken every byte, the registry has not answered.
    [1000, { type: "blob-progress", digest: A, done: 10 * MiB, size: 10 * MiB }],
    [1000, { type: "blob-progress", digest: B, done: 10 * MiB, size: 10 * MiB }],
  ]);
  assertEquals(state.blob(A)?.status, "finishing");
  assertEquals(state.inFlight().length, 2);
  const sent = state.totals();
  assertEquals([sent.bytesDone, sent.blobsFinished], [20 * MiB, 0]);
  assert(sent.fraction < 1, `fraction ${sent.fraction} before any blob is in the registry`);

  feed(state, clock, [[6000, {
    type: "blob-done",
    digest: A,
    size: 10 * MiB,
    outcome: "uploaded",
  }]]);
  assert(state.totals().fraction < 1, "one blob is still finishing");
  feed(state, clock, [
    [6500, {
      type: "retry",
      subject: { kind: "blob", digest: B },
      digest: B,
      attempt: 2,
      delayMs: 100,
      reason: "503",
    }],
  ]);
  assertEquals(state.blob(B)?.status, "retrying");
  feed(state, clock, [
    [7000, { type: "blob-start", digest: B, size: 10 * MiB, attempt: 2 }],
    [7500, { type: "blob-progress", digest: B, done: 5 * MiB, size: 10 * MiB }],
  ]);
  assertEquals(state.blob(B)?.status, "uploading");
  feed(state, clock, [
    [8000, { type: "blob-progress", digest: B, done: 10 * MiB, size: 10 * MiB }],
    [9000, { type: "blob-done", digest: B, size: 10 * MiB, outcome: "uploaded" }],
  ]);
  assertEquals(state.totals().fraction, 1);
});

Deno.test("ProgressState: a blob uploaded once and mounted elsewhere counts as uploaded", () => {
  const clock = new FakeClock();
  const state = new ProgressState({ now: clock.now });
  feed(state, clock, [
    [0, { type: "plan", image: "2 image(s)", blobs: 1, bytes: 10 * MiB }],
    [0, { type: "blob-start", digest: A, size: 10 * MiB, attempt: 1 }],
    [1000, { type: "blob-done", digest: A, size: 10 * MiB, outcome: "uploaded" }],
    // A second image's repository mounts it.
    [1100, { type: "blob-done", digest: A, size: 10 * MiB, outcome: "mounted" }],
  ]);
  assertEquals(state.blob(A)?.status, "uploaded");
  const totals = state.totals();
  assertEquals([totals.bytesDone, totals.bytesTotal], [10 * MiB, 10 * MiB]);
});

Deno.test("ProgressState: one blob to two registries is two transfers", () => {
  const clock = new FakeClock();
  const state = new ProgressState({ now: clock.now });
  feed(state, clock, [
    [0, { type: "plan", image: "1 image(s)", blobs: 1, bytes: 10 * MiB }],
    [0, { type: "blob-start", digest: A, size: 10 * MiB, attempt: 1, target: "one" }],
    [0, { type: "blob-start", digest: A, size: 10 * MiB, attempt: 1, target: "two" }],
    [1000, { type: "blob-progress", digest: A, done: 10 * MiB, size: 10 * MiB, target: "one" }],
    [1000, { type: "blob-progress", digest: A, done: 5 * MiB, size: 10 * MiB, target: "two" }],
  ]);
  assertEquals([state.blob(A, "one")?.done, state.blob(A, "two")?.done], [10 * MiB, 5 * MiB]);
  assertEquals(state.blob(A), undefined);
  const totals = state.totals();
  assertEquals([totals.bytesDone, totals.bytesTotal], [15 * MiB, 20 * MiB]);
});

Deno.test("ProgressState: a retry towards one registry resets only that transfer", () => {
  const clock = new FakeClock();
  const state = new ProgressState({ now: clock.now });
  feed(state, clock, [
    [0, { type: "plan", image: "1 image(s)", blobs: 1, bytes: 10 * MiB }],
    [0, { type: "blob-start", digest: A, size: 10 * MiB, attempt: 1, target: "one" }],
    [0, { type: "blob-start", digest: A, size: 10 * MiB, attempt: 1, target: "two" }],
    [1000, { type: "blob-progress", digest: A, done: 4 * MiB, size: 10 * MiB, target: "one" }],
    [1000, { type: "blob-progress", digest: A, done: 5 * MiB, size: 10 * MiB, target: "two" }],
    [1500, {
      type: "retry",
      subject: { kind: "blob", digest: A },
      digest: A,
      target: "two",
      attempt: 2,
      delayMs: 100,
      reason: "503",
    }],
  ]);
  assertEquals(state.blob(A, "one")?.status, "uploading");
  assertEquals(state.blob(A, "one")?.done, 4 * MiB);
  assertEquals([state.blob(A, "two")?.status, state.blob(A, "two")?.done], ["retrying", 0]);
});

Deno.test("ProgressState: bytes kept from an earlier run are done, but not in the rate", () => {
  const clock = new FakeClock();
  const state = new ProgressState({ now: clock.now });
  feed(state, clock, [
    [0, { type: "plan", image: "app.tar", blobs: 1, bytes: GiB }],
    [0, { type: "blob-start", digest: A, size: GiB, attempt: 1, from: 512 * MiB }],
  ]);
  assertEquals(state.blob(A)?.done, 512 * MiB);
  feed(state, clock, [
    [1000, { type: "blob-progress", digest: A, done: 544 * MiB, size: GiB }],
    [2000, { type: "blob-progress", digest: A, done: 576 * MiB, size: GiB }],
  ]);
  const totals = state.totals();
  assertEquals(totals.bytesDone, 576 * MiB);
  // 64 MiB moved in 2 s; the 448 MiB left take 14 s at that rate.
  assertEquals(totals.rate, 32 * MiB);
  assertEquals(totals.etaMs, 14_000);
});

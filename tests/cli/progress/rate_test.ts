import { RateEstimator } from "../../../src/cli/progress/rate.ts";
import { assertEquals } from "../../helpers/assert.ts";
import { MiB } from "./_support.ts";

Deno.test("RateEstimator reports nothing until a second of history exists", () => {
  const rate = new RateEstimator();
  assertEquals(rate.rate(0), undefined);
  rate.record(0, 0);
  assertEquals(rate.rate(0), undefined);
  rate.record(500, MiB);
  assertEquals(rate.rate(500), undefined);
  rate.record(1000, 2 * MiB);
  assertEquals(rate.rate(1000), 2 * MiB);
});

Deno.test("RateEstimator averages over the last five seconds only", () => {
  const rate = new RateEstimator();
  // 1 MiB/s for ten seconds, then 10 MiB/s for ten seconds.
  let bytes = 0;
  for (let s = 0; s <= 20; s++) {
    rate.record(s * 1000, bytes);
    bytes += s < 10 ? MiB : 10 * MiB;
  }
  assertEquals(rate.rate(20_000), 10 * MiB);
  // Halfway through the change the window holds both speeds.
  const mixed = new RateEstimator();
  bytes = 0;
  for (let s = 0; s <= 12; s++) {
    mixed.record(s * 1000, bytes);
    bytes += s < 10 ? MiB : 10 * MiB;
  }
  // Window 7..12 s: 3 s at 1 MiB/s and 2 s at 10 MiB/s = 23 MiB in 5 s.
  assertEquals(mixed.rate(12_000), 23 * MiB / 5);
});

Deno.test("RateEstimator falls to zero during a stall", () => {
  const rate = new RateEstimator();
  rate.record(0, 0);
  rate.record(2000, 4 * MiB);
  assertEquals(rate.rate(2000), 2 * MiB);
  assertEquals(rate.rate(4000), MiB);
  assertEquals(rate.rate(10_000), 0);
});

Deno.test("RateEstimator merges samples closer than its resolution", () => {
  const rate = new RateEstimator({ windowMs: 1000, minElapsedMs: 0, resolutionMs: 100 });
  rate.record(0, 0);
  // 50 events within 50 ms keep memory bounded but still count their bytes.
  for (let i = 1; i <= 50; i++) rate.record(i, i * 1000);
  assertEquals(rate.rate(50), 50_000 * 1000 / 50);
});

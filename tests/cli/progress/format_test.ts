import { formatBytes } from "../../../src/byte_size.ts";
import {
  formatDuration,
  formatManifest,
  formatMillis,
  formatPercent,
  formatRate,
  formatSentSize,
  shortDigest,
} from "../../../src/cli/progress/format.ts";
import { assertEquals } from "../../helpers/assert.ts";
import { GiB, MiB } from "./_support.ts";

Deno.test("formatBytes uses binary units with one decimal below GiB and two from GiB", () => {
  const cases: [number, string][] = [
    [0, "0 B"],
    [1, "1 B"],
    [512, "512 B"],
    [1023, "1023 B"],
    [1024, "1.0 KiB"],
    [1536, "1.5 KiB"],
    [64 * MiB, "64.0 MiB"],
    [55.1 * MiB, "55.1 MiB"],
    [GiB, "1.00 GiB"],
    [1.2 * GiB, "1.20 GiB"],
    [3 * GiB, "3.00 GiB"],
    [1024 * GiB, "1.00 TiB"],
    [1024 ** 6, "1024.00 PiB"],
  ];
  for (const [n, expected] of cases) assertEquals(formatBytes(n), expected, `formatBytes(${n})`);
});

Deno.test("formatBytes promotes a unit when rounding reaches 1024", () => {
  assertEquals(formatBytes(1023.6), "1.0 KiB");
  assertEquals(formatBytes(1024 * 1024 - 1), "1.0 MiB");
  assertEquals(formatBytes(GiB - 1), "1.00 GiB");
});

Deno.test("formatBytes renders bad input as 0 B instead of throwing", () => {
  assertEquals(formatBytes(-5), "0 B");
  assertEquals(formatBytes(Number.NaN), "0 B");
  assertEquals(formatBytes(Number.POSITIVE_INFINITY), "0 B");
});

Deno.test("formatRate appends /s and shows an unknown rate as --", () => {
  assertEquals(formatRate(12.3 * MiB), "12.3 MiB/s");
  assertEquals(formatRate(100), "100 B/s");
  assertEquals(formatRate(0), "0 B/s");
  assertEquals(formatRate(undefined), "-- B/s");
  assertEquals(formatRate(Number.NaN), "-- B/s");
});

Deno.test("formatDuration is m:ss below an hour, h:mm:ss above, --:-- when unknown", () => {
  assertEquals(formatDuration(0), "0:00");
  assertEquals(formatDuration(5_000), "0:05");
  assertEquals(formatDuration(33_400), "0:33");
  assertEquals(formatDuration(62_000), "1:02");
  assertEquals(formatDuration(3_599_000), "59:59");
  assertEquals(formatDuration(3_723_000), "1:02:03");
  assertEquals(formatDuration(undefined), "--:--");
  assertEquals(formatDuration(Number.POSITIVE_INFINITY), "--:--");
  assertEquals(formatDuration(-1), "--:--");
});

Deno.test("formatMillis is ms below a second, seconds below a minute, then a clock", () => {
  assertEquals(formatMillis(0), "0 ms");
  assertEquals(formatMillis(850), "850 ms");
  assertEquals(formatMillis(2_500), "2.5 s");
  assertEquals(formatMillis(59_940), "59.9 s");
  assertEquals(formatMillis(59_960), "1:00");
  assertEquals(formatMillis(65_000), "1:05");
});

Deno.test("shortDigest keeps 12 hex characters after the algorithm", () => {
  assertEquals(shortDigest("sha256:abcdef0123456789abcdef"), "abcdef012345");
  assertEquals(shortDigest("abcdef0123456789"), "abcdef012345");
  assertEquals(shortDigest("sha256:abc"), "abc");
});

Deno.test("formatPercent rounds down and clamps", () => {
  assertEquals(formatPercent(0), "0%");
  assertEquals(formatPercent(0.999), "99%");
  assertEquals(formatPercent(1), "100%");
  assertEquals(formatPercent(1.5), "100%");
  assertEquals(formatPercent(Number.NaN), "0%");
});

Deno.test("formatManifest names the reference and digest once each", () => {
  assertEquals(formatManifest("r.example/app:1", "sha256:ab"), "r.example/app:1 (sha256:ab)");
  assertEquals(formatManifest("sha256:ab", "sha256:ab"), "sha256:ab");
  // A child manifest pushed by digest.
  assertEquals(formatManifest("r.example/app@sha256:ab", "sha256:ab"), "r.example/app@sha256:ab");
});

Deno.test("formatSentSize gives the size sent, then the archive's when compressed on the way", () => {
  assertEquals(formatSentSize(10 * 1024), "10.0 KiB");
  assertEquals(
    formatSentSize(10 * 1024 ** 2, { size: 3.1 * 1024 ** 2, codec: "gzip" }),
    "3.1 MiB, 10.0 MiB before gzip",
  );
});

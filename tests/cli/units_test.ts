import { UsageError } from "../../src/cli/usage_error.ts";
import { parseBoolean, parseBytes, parseDuration, parseInteger } from "../../src/cli/units.ts";
import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

Deno.test("parseBytes reads plain numbers and binary and decimal units", () => {
  const cases: [string, number][] = [
    ["1073741824", GiB],
    ["0", 0],
    ["512MiB", 512 * MiB],
    ["64M", 64 * MiB],
    ["64m", 64 * MiB],
    ["1GB", 1_000_000_000],
    ["1gb", 1_000_000_000],
    ["1.5GiB", 1.5 * GiB],
    ["1.5G", 1.5 * GiB],
    ["2k", 2 * KiB],
    ["2KB", 2000],
    ["2KiB", 2 * KiB],
    ["3MB", 3_000_000],
    ["1T", 1024 ** 4],
    ["1TB", 1000 ** 4],
    ["1TiB", 1024 ** 4],
    ["100B", 100],
    [" 64 MiB ", 64 * MiB],
    ["0.5K", 512],
  ];
  for (const [text, expected] of cases) {
    assertEquals(parseBytes(text, "--chunk-size"), expected, text);
  }
});

Deno.test("parseBytes rejects what is not a size, naming the flag", () => {
  for (
    const text of ["", "garbage", "MiB", "-1", "1e3", "1,5G", "1.G", ".5G", "10XB", "1 2", "0x10"]
  ) {
    const error = assertThrows(
      () => parseBytes(text, "--chunk-size"),
      UsageError,
      `--chunk-size expects a size in bytes, got "${text}"`,
    );
    assertEquals(typeof error.hint, "string", text);
  }
});

Deno.test("parseBytes rejects sizes beyond safe integers", () => {
  assertThrows(() => parseBytes("99999999TiB", "--large-layer-threshold"), UsageError, "too large");
});

Deno.test({
  name: "parseBytes treats Object.prototype keys as unknown units",
  fn() {
    assertThrows(() => parseBytes("1constructor", "--chunk-size"), UsageError, "expects a size");
  },
});

Deno.test("parseInteger accepts whole numbers within the range", () => {
  const cases: [string, number, number, number][] = [
    ["1", 1, 64, 1],
    ["64", 1, 64, 64],
    [" 3 ", 1, 64, 3],
    ["0", 0, 100, 0],
    ["007", 1, 64, 7],
  ];
  for (const [text, min, max, expected] of cases) {
    assertEquals(parseInteger(text, "--max-concurrent", min, max), expected, text);
  }
});

Deno.test("parseInteger rejects out-of-range and non-integer text", () => {
  for (
    const text of ["0", "65", "abc", "", "-1", "1.5", "3.0", "+3", "0x10", "1e1", "9".repeat(20)]
  ) {
    const error = assertThrows(
      () => parseInteger(text, "--max-concurrent", 1, 64),
      UsageError,
      `--max-concurrent expects a whole number from 1 to 64, got "${text}"`,
    );
    assertEquals(typeof error.hint, "string", text);
  }
});

Deno.test("parseBoolean reads the usual spellings in any case", () => {
  const cases: [string, boolean][] = [
    ["true", true],
    ["TRUE", true],
    ["1", true],
    ["yes", true],
    ["On", true],
    [" yes ", true],
    ["false", false],
    ["False", false],
    ["0", false],
    ["no", false],
    ["OFF", false],
  ];
  for (const [text, expected] of cases) {
    assertEquals(parseBoolean(text, "DOCKER_PUSHER_VERBOSE"), expected, text);
  }
});

Deno.test("parseBoolean rejects anything else, naming the variable", () => {
  for (const text of ["maybe", "2", "y", "t", "enable", "truee"]) {
    const error = assertThrows(
      () => parseBoolean(text, "DOCKER_PUSHER_VERBOSE"),
      UsageError,
      `DOCKER_PUSHER_VERBOSE expects true or false, got "${text}"`,
    );
    assertEquals(typeof error.hint, "string", text);
  }
});

Deno.test("parseDuration reads plain seconds and s, m, h units, alone or combined", () => {
  const WEEK = 7 * 24 * 3600;
  const cases: [string, number][] = [
    ["300", 300],
    ["1", 1],
    ["30s", 30],
    ["5m", 300],
    ["2h", 7200],
    ["1h30m", 5400],
    ["1h30m15s", 5415],
    ["1.5h", 5400],
    ["0.5m", 30],
    [" 5M ", 300],
    ["168h", WEEK],
    ["1.4s", 1],
  ];
  for (const [text, expected] of cases) {
    assertEquals(parseDuration(text, "--timeout", 1, WEEK), expected, text);
  }
});

Deno.test("parseDuration rejects what is not a duration in range, with a hint", () => {
  const WEEK = 7 * 24 * 3600;
  for (
    const text of [
      "",
      "abc",
      "0",
      "0s",
      "0.4s",
      "5",
      "-5m",
      "5 m",
      "m",
      "5d",
      "5ms",
      "1h 30m",
      "169h",
    ]
  ) {
    const error = assertThrows(
      () => parseDuration(text, "--timeout", text === "5" ? 10 : 1, WEEK),
      UsageError,
      `--timeout expects a duration from ${text === "5" ? "10s" : "1s"} to 168h, got "${text}"`,
    );
    assert(error.hint?.includes("5m"), text);
  }
});

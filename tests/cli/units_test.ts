import { UsageError } from "../../src/errors.ts";
import { parseBoolean, parseBytes, parseInteger } from "../../src/cli/units.ts";
import { assertEquals, assertThrows } from "../helpers/assert.ts";

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
    assertThrows(
      () => parseInteger(text, "--max-concurrent", 1, 64),
      UsageError,
      `--max-concurrent expects a whole number from 1 to 64, got "${text}"`,
    );
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
    assertThrows(
      () => parseBoolean(text, "DOCKER_PUSHER_VERBOSE"),
      UsageError,
      `DOCKER_PUSHER_VERBOSE expects true or false, got "${text}"`,
    );
  }
});

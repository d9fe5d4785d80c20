import { type Codec, LEVELS } from "../../src/compress/codec.ts";
import { LevelControl } from "../../src/compress/level_control.ts";
import { assert, assertEquals } from "../helpers/assert.ts";

const CODECS: Codec[] = ["gzip", "zstd"];
/** Blocks per decision, as level_control.ts takes them. */
const SAMPLE = 4;

/** `n` blocks for which the upload waited `waited` ms and sent for `sent` ms. */
function feed(control: LevelControl, n: number, waited: number, sent: number): void {
  for (let i = 0; i < n; i++) control.observe(waited, sent);
}

for (const codec of CODECS) {
  const { min, max, start, autoMax } = LEVELS[codec];

  Deno.test(`LevelControl ${codec}: a fixed level never moves`, () => {
    for (const fixed of [min, start, max]) {
      const control = new LevelControl(codec, fixed);
      assertEquals(control.codec, codec);
      assertEquals(control.adaptive, false);
      feed(control, 40, 0, 100);
      assertEquals(control.level, fixed);
      feed(control, 40, 100, 0);
      assertEquals(control.level, fixed);
    }
  });

  Deno.test(`LevelControl ${codec}: auto starts at ${start}, one level per ${SAMPLE} blocks`, () => {
    const control = new LevelControl(codec, "auto");
    assertEquals(control.adaptive, true);
    assertEquals(control.level, start);
    feed(control, SAMPLE - 1, 0, 50);
    assertEquals(control.level, start, "no decision before a full sample");
    feed(control, 1, 0, 50);
    assertEquals(control.level, start + 1, "hardly waiting: stronger");
    feed(control, 2 * SAMPLE, 50, 50);
    assertEquals(control.level, start - 1, "waiting half the time: faster");
    feed(control, SAMPLE, 1, 10);
    assertEquals(control.level, start - 1, "waiting 9 %: hold");
  });

  Deno.test(`LevelControl ${codec}: auto stays within ${min}..${autoMax}`, () => {
    const control = new LevelControl(codec, "auto");
    const seen: number[] = [];
    for (let i = 0; i < 30; i++) {
      feed(control, SAMPLE, 0, 10);
      seen.push(control.level);
    }
    assertEquals(control.level, autoMax);
    for (let i = 0; i < 30; i++) {
      feed(control, SAMPLE, 10, 0);
      seen.push(control.level);
    }
    assertEquals(control.level, min);
    feed(control, SAMPLE, 0, 10);
    assertEquals(control.level, min + 1, "back up from the floor");
    assert(seen.every((level) => level >= min && level <= autoMax), `out of range: ${seen}`);
  });
}

Deno.test("LEVELS: auto starts and stays inside each codec's range", () => {
  for (const codec of CODECS) {
    const { min, max, start, autoMax } = LEVELS[codec];
    assert(min <= start && start <= autoMax && autoMax <= max, codec);
  }
  assertEquals(LEVELS.gzip, { min: 1, max: 9, start: 6, autoMax: 9 });
  assertEquals(LEVELS.zstd, { min: 1, max: 19, start: 3, autoMax: 9 });
});

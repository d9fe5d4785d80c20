import { type Codec, LEVELS } from "../../src/compress/codec.ts";
import { LevelControl } from "../../src/compress/level_control.ts";
import { assert, assertEquals } from "../helpers/assert.ts";

const CODECS: Codec[] = ["gzip", "zstd"];

for (const codec of CODECS) {
  const { min, max, start } = LEVELS[codec];

  Deno.test(`LevelControl ${codec}: a fixed level never moves`, () => {
    for (const fixed of [min, start, max]) {
      const control = new LevelControl(codec, fixed);
      assertEquals(control.codec, codec);
      assertEquals(control.adaptive, false);
      for (let i = 0; i < 30; i++) control.backlogged();
      assertEquals(control.level, fixed);
      for (let i = 0; i < 30; i++) control.starved();
      assertEquals(control.level, fixed);
    }
  });

  Deno.test(`LevelControl ${codec}: auto starts at ${start} and moves one level per signal`, () => {
    const control = new LevelControl(codec, "auto");
    assertEquals(control.adaptive, true);
    assertEquals(control.level, start);
    control.backlogged();
    assertEquals(control.level, start + 1);
    control.starved();
    control.starved();
    assertEquals(control.level, start - 1);
  });

  Deno.test(`LevelControl ${codec}: auto stays within ${min}..${max}`, () => {
    const control = new LevelControl(codec, "auto");
    const seen: number[] = [];
    for (let i = 0; i < max + 5; i++) {
      control.backlogged();
      seen.push(control.level);
    }
    assertEquals(control.level, max);
    for (let i = 0; i < max + 5; i++) {
      control.starved();
      seen.push(control.level);
    }
    assertEquals(control.level, min);
    // Back up from the floor: the bound does not stick.
    control.backlogged();
    assertEquals(control.level, min + 1);
    assert(seen.every((level) => level >= min && level <= max), `out of range: ${seen}`);
  });
}

Deno.test("LEVELS start inside each codec's range", () => {
  for (const codec of CODECS) {
    const { min, max, start } = LEVELS[codec];
    assert(min <= start && start <= max, `${codec}: ${min} <= ${start} <= ${max}`);
  }
  assertEquals(LEVELS.gzip, { min: 1, max: 9, start: 6 });
  assertEquals(LEVELS.zstd, { min: 1, max: 19, start: 3 });
});

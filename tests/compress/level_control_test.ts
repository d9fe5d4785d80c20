import { type Codec, LEVELS } from "../../src/compress/codec.ts";
import { LevelControl } from "../../src/compress/level_control.ts";
import { assert, assertEquals } from "../helpers/assert.ts";

const CODECS: Codec[] = ["gzip", "zstd"];
/** Blocks per decision, as level_control.ts takes them. */
const SAMPLE = 4;

/** A machine with cores to spare, so the level follows the upload's waits alone. */
const IDLE = { idleCores: () => 8 };

/** `n` blocks for which the upload waited `waited` ms and sent for `sent` ms. */
function feed(control: LevelControl, n: number, waited: number, sent: number): void {
  for (let i = 0; i < n; i++) control.observe(waited, sent);
}

for (const codec of CODECS) {
  const { min, max, start, autoMin, autoMax } = LEVELS[codec];

  Deno.test(`LevelControl ${codec}: a fixed level never moves`, () => {
    for (const fixed of [min, start, max]) {
      const control = new LevelControl(codec, fixed, IDLE);
      assertEquals(control.codec, codec);
      assertEquals(control.adaptive, false);
      feed(control, 40, 0, 100);
      assertEquals(control.level, fixed);
      feed(control, 40, 100, 0);
      assertEquals(control.level, fixed);
    }
  });

  Deno.test(`LevelControl ${codec}: auto starts at ${start}, one level per ${SAMPLE} blocks`, () => {
    const control = new LevelControl(codec, "auto", IDLE);
    assertEquals(control.adaptive, true);
    assertEquals(control.level, start);
    feed(control, SAMPLE - 1, 0, 50);
    assertEquals(control.level, start, "no decision before a full sample");
    feed(control, 1, 0, 50);
    assertEquals(control.level, start + 1, "hardly waiting: stronger");
    feed(control, SAMPLE, 50, 50);
    assertEquals(control.level, start, "waiting half the time: faster");
    feed(control, SAMPLE, 1, 10);
    assertEquals(control.level, start, "waiting 9 %: hold");
  });

  Deno.test(`LevelControl ${codec}: auto stays within ${autoMin}..${autoMax}`, () => {
    const control = new LevelControl(codec, "auto", IDLE);
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
    assertEquals(control.level, autoMin, "however long compression holds the link back");
    feed(control, SAMPLE, 0, 10);
    assertEquals(control.level, autoMin + 1, "back up from the floor");
    assert(seen.every((level) => level >= autoMin && level <= autoMax), `out of range: ${seen}`);
  });
}

Deno.test("LevelControl gzip: auto never picks zlib-ng's level 1 (it stores more than gzip -1)", () => {
  // The floor is level 2 (see codec.ts): level 1 stores 1.2–1.7× GNU gzip -1's bytes.
  const control = new LevelControl("gzip", "auto", { idleCores: () => 0 });
  const seen = new Set<number>();
  for (let i = 0; i < 20; i++) {
    feed(control, SAMPLE, 100, 0);
    seen.add(control.level);
  }
  assertEquals(control.level, 2);
  assert(!seen.has(1), `levels ${[...seen]}`);
  // A fixed level 1 is still what the user asked for.
  assertEquals(new LevelControl("gzip", 1, IDLE).level, 1);
});

Deno.test("LEVELS: auto starts and stays inside each codec's range", () => {
  for (const codec of CODECS) {
    const { min, max, start, autoMin, autoMax } = LEVELS[codec];
    assert(min <= autoMin && autoMin <= start && start <= autoMax && autoMax <= max, codec);
  }
  assertEquals(LEVELS.gzip, { min: 1, max: 9, start: 2, autoMin: 2, autoMax: 9 });
  assertEquals(LEVELS.zstd, { min: 1, max: 19, start: 3, autoMin: 1, autoMax: 9 });
});

for (const codec of CODECS) {
  const { start } = LEVELS[codec];
  Deno.test(`LevelControl ${codec}: no stronger level unless a core is idle`, () => {
    let idle = 0.4;
    const control = new LevelControl(codec, "auto", { idleCores: () => idle });
    feed(control, 3 * SAMPLE, 0, 50);
    assertEquals(control.level, start, "hardly waiting, but no core to spare: hold");
    idle = 1.2;
    feed(control, SAMPLE, 0, 50);
    assertEquals(control.level, start + 1, "a core to spare: stronger");
    idle = 0.4;
    feed(control, SAMPLE, 50, 50);
    assertEquals(control.level, start, "waiting half the time: faster, busy or not");
  });
}

Deno.test("processIdleCores measures this process's CPU over the wall clock", async () => {
  const { processIdleCores } = await import("../../src/compress/level_control.ts");
  const idleCores = processIdleCores(2);
  const until = performance.now() + 200;
  while (performance.now() < until) Math.sqrt(Math.random()); // one of two cores busy
  const idle = idleCores();
  assert(idle >= 0.5 && idle < 1.5, `idle cores ${idle}`);
  await new Promise((resolve) => setTimeout(resolve, 200)); // both idle
  assert(idleCores() > 1.5, "idle");
});

import { createLiveArea, fitLine } from "../../../src/cli/progress/live_area.ts";
import { assertEquals } from "../../helpers/assert.ts";

const SYNC_ON = "\x1b[?2026h";
const SYNC_OFF = "\x1b[?2026l";
const CLEAR_ROW = "\x1b[2K";
const ERASE_BELOW = "\x1b[J";
const ERASE_TO_END = "\x1b[K";
const up = (rows: number) => `\r\x1b[${rows}A`;

function setup(columns: number) {
  const writes: string[] = [];
  const terminal = { columns };
  const area = createLiveArea({
    write: (text) => writes.push(text),
    columns: () => terminal.columns,
  });
  return { area, terminal, writes };
}

Deno.test("live area draws a block, then redraws it in place row by row", () => {
  const { area, writes } = setup(80);
  area.update("one\ntwo");
  area.update("three\nfour\nfive");
  area.update("six");
  assertEquals(writes, [
    `${SYNC_ON}${CLEAR_ROW}one\n${CLEAR_ROW}two\n${SYNC_OFF}`,
    `${SYNC_ON}${
      up(2)
    }${CLEAR_ROW}three\n${CLEAR_ROW}four\n${CLEAR_ROW}five\n${ERASE_BELOW}${SYNC_OFF}`,
    // A shorter block erases the old one's rows below it.
    `${SYNC_ON}${up(3)}${CLEAR_ROW}six\n${ERASE_BELOW}${SYNC_OFF}`,
  ]);
});

Deno.test("live area cuts lines one column short of the width, keeping colour codes", () => {
  const { area, writes } = setup(10);
  area.update(`\x1b[1m${"x".repeat(20)}\x1b[22m`);
  assertEquals(writes, [`${SYNC_ON}${CLEAR_ROW}\x1b[1m${"x".repeat(9)}\x1b[22m\n${SYNC_OFF}`]);
  assertEquals(fitLine("ab█░cd", 4), { text: "ab█░", columns: 4 });
  assertEquals(fitLine("\x1b[36m██\x1b[39m", 80), { text: "\x1b[36m██\x1b[39m", columns: 2 });
});

Deno.test("live area climbs the rows the old block wrapped onto after the terminal narrowed", () => {
  const { area, terminal, writes } = setup(100);
  // 75, 58 and 10 columns at 100 columns: one row each.
  area.update(["a".repeat(75), "b".repeat(58), "c".repeat(10)].join("\n"));
  terminal.columns = 40;
  area.update("d");
  // At 40 columns a reflowing terminal holds them on 2 + 2 + 1 rows.
  assertEquals(writes[1], `${SYNC_ON}${up(5)}${CLEAR_ROW}d\n${ERASE_BELOW}${SYNC_OFF}`);
  // Widening again: the block drawn at 40 columns still takes one row per line.
  area.update("e".repeat(39));
  terminal.columns = 100;
  area.update("f");
  assertEquals(writes[3], `${SYNC_ON}${up(1)}${CLEAR_ROW}f\n${ERASE_BELOW}${SYNC_OFF}`);
});

Deno.test("live area prints permanent lines in place of the block and draws anew below them", () => {
  const { area, writes } = setup(20);
  area.update("bar 1\ntotal 1");
  // Permanent text is never cut: it may wrap, since it is never redrawn.
  area.persist(`✓ ${"x".repeat(30)}\n✓ second`);
  area.update("bar 2");
  area.done();
  area.update("after done");
  assertEquals(writes, [
    `${SYNC_ON}${CLEAR_ROW}bar 1\n${CLEAR_ROW}total 1\n${SYNC_OFF}`,
    // The wrapped line's last row is erased to its end: the old block's text was there.
    `${SYNC_ON}${up(2)}${CLEAR_ROW}✓ ${
      "x".repeat(30)
    }${ERASE_TO_END}\n${CLEAR_ROW}✓ second\n${ERASE_BELOW}${SYNC_OFF}`,
    `${SYNC_ON}${CLEAR_ROW}bar 2\n${SYNC_OFF}`,
    // After done() the block is left alone: the next one starts below it.
    `${SYNC_ON}${CLEAR_ROW}after done\n${SYNC_OFF}`,
  ]);
});

Deno.test("live area treats a width below 1 as 1 rather than dividing by zero", () => {
  const { area, terminal, writes } = setup(10);
  area.update("abc");
  terminal.columns = 0;
  area.update("x");
  assertEquals(writes[1], `${SYNC_ON}${up(3)}${CLEAR_ROW}\n${ERASE_BELOW}${SYNC_OFF}`);
});

Deno.test("live area: a permanent line exactly as wide as the terminal keeps its last character", () => {
  const { area, writes } = setup(10);
  area.update("bar");
  area.persist("x".repeat(20));
  assertEquals(
    writes[1],
    `${SYNC_ON}${up(1)}${CLEAR_ROW}${"x".repeat(20)}\n${ERASE_BELOW}${SYNC_OFF}`,
  );
});

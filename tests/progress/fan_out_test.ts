import type { ProgressEvent, ProgressSink } from "../../src/progress/events.ts";
import { silentSink } from "../../src/progress/events.ts";
import { combineSinks } from "../../src/progress/fan_out.ts";
import { assertEquals, assertThrows } from "../helpers/assert.ts";

const notice: ProgressEvent = { type: "notice", kind: "verifying", message: "hello" };

Deno.test("combineSinks sends each event to every sink in order", () => {
  const seen: string[] = [];
  const sink = combineSinks(
    (e) => seen.push(`first ${e.type}`),
    (e) => seen.push(`second ${e.type}`),
  );
  sink(notice);
  assertEquals(seen, ["first notice", "second notice"]);
});

Deno.test("combineSinks of none is silent and of one is that sink", () => {
  assertEquals(combineSinks(), silentSink);
  const only: ProgressSink = () => {};
  assertEquals(combineSinks(only), only);
});

Deno.test("combineSinks still feeds later sinks when one throws, then rethrows", () => {
  const seen: string[] = [];
  const sink = combineSinks(
    () => {
      throw new Error("renderer bug");
    },
    (e) => seen.push(e.type),
  );
  assertThrows(() => sink(notice));
  assertEquals(seen, ["notice"]);
});

/**
 * The state saver writes one save at a time: requests made while a save runs make one more
 * save, of the progress of when it starts; a save that fails rejects nothing and leaves `saved`
 * as it was.
 */
import { loadPartialState, StateSaver } from "../../src/pull/partial_state.ts";
import { assertEquals } from "../helpers/assert.ts";
import { tempDir } from "./_support.ts";

const HEX = "a".repeat(64);

Deno.test("requests during a save make one more save, of the latest progress", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/out.tar.partial.json`;
  let done = 1;
  const takes: number[] = [];
  const first = Promise.withResolvers<void>();
  const saver = new StateSaver(path, async () => {
    takes.push(done);
    if (takes.length === 1) await first.promise;
    return { version: 1, layout: "L", blobs: { "sha256:x": { done, sha256: HEX } } };
  });
  saver.request();
  for (done = 2; done <= 5; done++) saver.request();
  done = 5;
  first.resolve();
  await saver.settled();
  assertEquals(takes, [1, 5]);
  assertEquals(saver.saved?.blobs["sha256:x"]?.done, 5);
  assertEquals((await loadPartialState(path, "L"))?.blobs, {
    "sha256:x": { done: 5, sha256: HEX },
  });

  await saver.flush();
  assertEquals(takes, [1, 5, 5]);
});

Deno.test("a save that fails rejects nothing and leaves `saved` as it was", async () => {
  await using dir = await tempDir();
  const saver = new StateSaver(
    `${dir.path}/missing/out.tar.partial.json`,
    () => Promise.resolve({ version: 1 as const, layout: "L", blobs: {} }),
  );
  await saver.flush();
  assertEquals(saver.saved, undefined);
});

import { createLogUpdate } from "log-update";
import { logUpdateOutput } from "../../src/progress/stderr_tty.ts";
import { createTtyRenderer } from "../../src/progress/tty_renderer.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { digest, FakeClock, MiB } from "./_support.ts";

/** Enough of a Node writable stream for log-update: it records what would reach the terminal. */
function fakeTerminal() {
  const writes: string[] = [];
  const stream = {
    isTTY: false,
    columns: 100,
    rows: 24,
    write(chunk: string): boolean {
      writes.push(chunk);
      return true;
    },
  };
  return { writes, stream: stream as unknown as Parameters<typeof createLogUpdate>[0] };
}

Deno.test("the TTY renderer drives the real log-update: block redrawn, lines kept above", () => {
  const { writes, stream } = fakeTerminal();
  const clock = new FakeClock();
  // showCursor keeps log-update from hiding the cursor of the terminal running the tests.
  const tty = createTtyRenderer({
    output: logUpdateOutput(createLogUpdate(stream, { showCursor: true })),
    color: false,
    now: clock.now,
  });
  const A = digest("a");
  tty.sink({ type: "plan", image: "app:1", blobs: 1, bytes: 10 * MiB });
  tty.sink({ type: "blob-start", digest: A, size: 10 * MiB, attempt: 1 });
  tty.flush();
  const first = tty.render();
  assertEquals(writes, [`${first}\n`]);

  tty.sink({ type: "blob-progress", digest: A, done: 10 * MiB, size: 10 * MiB });
  tty.sink({ type: "blob-done", digest: A, size: 10 * MiB, outcome: "uploaded" });
  tty.stop();
  const [persisted, redrawn] = writes.slice(1);
  // log-update erases the three-line block, then writes the permanent line where it was...
  assert(persisted?.endsWith("✓ aaaaaaaaaaaa uploaded 10.0 MiB in 0 ms\n"), persisted);
  assert(persisted?.startsWith("\x1b["), "the old block is erased first");
  // ...and the next update draws the block afresh below it.
  assertEquals(redrawn, `${tty.render()}\n`);
  assertEquals(writes.length, 3);
});

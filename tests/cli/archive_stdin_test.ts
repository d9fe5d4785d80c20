/** Standard input as an archive: a notice at a terminal only, and an abort ends a waiting read. */
import { archiveStdin, TERMINAL_STDIN_NOTICE } from "../../src/cli/archive_stdin.ts";
import { assertEquals, assertRejects } from "../helpers/assert.ts";

/** A stream that gives `chunks`, then never another byte (a terminal nobody types at). */
function silentAfter(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    pull(controller) {
      const chunk = chunks.shift();
      if (chunk !== undefined) controller.enqueue(chunk);
      else return new Promise(() => {});
    },
  }, { highWaterMark: 0 });
}

Deno.test("archiveStdin: a terminal is told what is read; a pipe is not", async () => {
  for (const stdinIsTerminal of [true, false]) {
    const said: string[] = [];
    const open = archiveStdin({
      stdin: () => ReadableStream.from([new Uint8Array([1, 2])]),
      stdinIsTerminal,
      writeErr: (text) => said.push(text),
      signal: new AbortController().signal,
    });
    assertEquals(said, [], "nothing is said before stdin is read");
    assertEquals(await new Response(open()).bytes(), new Uint8Array([1, 2]));
    assertEquals(said, stdinIsTerminal ? [`${TERMINAL_STDIN_NOTICE}\n`] : []);
  }
});

Deno.test("archiveStdin: an abort fails a read that waits for input, with its reason", async () => {
  const controller = new AbortController();
  const stream = archiveStdin({
    stdin: () => silentAfter([new Uint8Array([7])]),
    stdinIsTerminal: true,
    writeErr: () => {},
    signal: controller.signal,
  })();
  const reader = stream.getReader();
  assertEquals((await reader.read()).value, new Uint8Array([7]));
  const waiting = reader.read();
  const reason = new DOMException("Interrupted", "AbortError");
  setTimeout(() => controller.abort(reason), 20);
  const error = await assertRejects(() => waiting);
  assertEquals(error, reason);
});

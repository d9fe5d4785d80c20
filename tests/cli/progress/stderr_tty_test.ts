import {
  createStderrTtyRenderer,
  type TerminalSize,
} from "../../../src/cli/progress/stderr_tty.ts";
import { assert, assertEquals } from "../../helpers/assert.ts";
import { digest, MiB } from "./_support.ts";

const A = digest("a");

/** A renderer writing into `writes`, on a terminal whose size the test sets. */
function setup(size: TerminalSize) {
  const writes: string[] = [];
  const terminal = { size };
  const tty = createStderrTtyRenderer({
    color: false,
    write: (text) => writes.push(text),
    size: () => terminal.size,
  });
  tty.sink({ type: "plan", image: "app:1", blobs: 1, bytes: 10 * MiB });
  tty.sink({ type: "blob-start", digest: A, size: 10 * MiB, attempt: 1 });
  tty.sink({ type: "blob-progress", digest: A, done: 5 * MiB, size: 10 * MiB });
  return { writes, terminal, tty };
}

/** The visible text of a write: escape codes and carriage returns removed. */
function visible(text: string): string {
  // deno-lint-ignore no-control-regex -- escape codes are what is removed
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]|\r/g, "");
}

Deno.test("stderr TTY renderer draws at 80 columns on a terminal that reports 0 × 0", () => {
  const { writes, tty } = setup({ columns: 0, rows: 0 });
  tty.flush();
  tty.stop();
  assertEquals(writes.length, 1);
  const rows = visible(writes[0]!).split("\n").filter((row) => row !== "");
  assertEquals(rows, [
    "aaaaaaaaaaaa [███████████████░░░░░░░░░░░░░░░]  50% 5.0 MiB / 10.0 MiB",
    "total        [███████████████░░░░░░░░░░░░░░░]  50% 5.0 MiB / 10.0 MiB",
    "             0/1 blobs, -- B/s, ETA --:--",
  ]);
});

Deno.test("stderr TTY renderer follows the terminal's width and height at each redraw", () => {
  const { writes, terminal, tty } = setup({ columns: 100, rows: 24 });
  tty.flush();
  terminal.size = { columns: 40, rows: 24 };
  tty.sink({ type: "blob-progress", digest: A, done: 6 * MiB, size: 10 * MiB });
  tty.flush();
  tty.stop();
  const narrow = visible(writes.at(-1)!).split("\n").filter((row) => row !== "");
  assert(narrow.every((row) => [...row].length < 40), narrow.join("\n"));
  assertEquals(narrow[0], "aaaaaaaaaaaa  60% 6.0 MiB / 10.0 MiB");
});

/**
 * `--password-stdin`: an empty password is a usage error whether piped or typed; a terminal
 * gets a prompt whose line is read in raw mode (no echo), with Backspace, Ctrl-U, Enter,
 * Ctrl-D and Ctrl-C handled, and the terminal's mode restored whatever happens.
 */
import {
  type PasswordInput,
  type RawTerminal,
  readHiddenLine,
  readStdinPassword,
} from "../../src/cli/password_input.ts";
import { UsageError } from "../../src/cli/usage_error.ts";
import { assertEquals, assertRejects } from "../helpers/assert.ts";

/** A terminal that delivers `chunks` one read at a time, recording mode changes and output. */
function fakeTerminal(chunks: (string | number[])[]) {
  const log: string[] = [];
  const queue = chunks.map((c) => typeof c === "string" ? new TextEncoder().encode(c) : c);
  const terminal: RawTerminal = {
    setRaw: (raw) => log.push(`raw ${raw}`),
    read: (buffer) => {
      const next = queue.shift();
      if (next === undefined) return Promise.resolve(null);
      buffer.set(next);
      return Promise.resolve(next.length);
    },
    write: (text) => log.push(`write ${JSON.stringify(text)}`),
  };
  return { terminal, log };
}

Deno.test("readHiddenLine prompts, reads in raw mode up to Enter, and restores the mode", async () => {
  const { terminal, log } = fakeTerminal(["pass", "word\r", "ignored after Enter"]);
  assertEquals(await readHiddenLine("Password: ", terminal), "password");
  assertEquals(log, ["raw true", 'write "Password: "', "raw false", 'write "\\n"']);
});

Deno.test("readHiddenLine: Backspace removes a whole character, Ctrl-U the line", async () => {
  const cases: [(string | number[])[], string][] = [
    [["abc\x7f\x7fd\n"], "ad"],
    [["ab\x08c\r"], "ac"],
    [["héé\x7f\r"], "hé"],
    [["🔑x\x7f\x7f\x7fk\r"], "k"],
    [["wrong\x15right\r"], "right"],
    [["a\x1bb\tc\r"], "abc"],
    [["end of input"], "end of input"],
    [["ctrl-d\x04more"], "ctrl-d"],
  ];
  for (const [chunks, expected] of cases) {
    const { terminal } = fakeTerminal(chunks);
    assertEquals(await readHiddenLine("", terminal), expected, JSON.stringify(chunks));
  }
});

Deno.test("readHiddenLine: Ctrl-C rejects with an AbortError, and the mode is restored", async () => {
  const { terminal, log } = fakeTerminal(["secr", [0x03], "et\r"]);
  const error = await assertRejects(() => readHiddenLine("Password: ", terminal));
  assertEquals((error as DOMException).name, "AbortError");
  assertEquals(log.slice(-2), ["raw false", 'write "\\n"']);
});

Deno.test("readHiddenLine: a failing read still restores the mode", async () => {
  const log: string[] = [];
  const terminal: RawTerminal = {
    setRaw: (raw) => log.push(`raw ${raw}`),
    read: () => Promise.reject(new Error("read failed")),
    write: () => {},
  };
  await assertRejects(() => readHiddenLine("", terminal), Error, "read failed");
  assertEquals(log, ["raw true", "raw false"]);
});

function input(options: { terminal: boolean; stdin?: string; typed?: string }) {
  const calls: string[] = [];
  const value: PasswordInput = {
    stdinIsTerminal: options.terminal,
    readStdin: () => {
      calls.push("readStdin");
      return Promise.resolve(options.stdin ?? "");
    },
    promptPassword: (prompt) => {
      calls.push(`prompt ${prompt}`);
      return Promise.resolve(options.typed ?? "");
    },
  };
  return { value, calls };
}

Deno.test("readStdinPassword reads a pipe to its end, without one final newline", async () => {
  const cases: [string, string][] = [
    ["pw", "pw"],
    ["pw\n", "pw"],
    ["pw\r\n", "pw"],
    ["pw\n\n", "pw\n"],
    [" pw ", " pw "],
  ];
  for (const [stdin, expected] of cases) {
    const { value, calls } = input({ terminal: false, stdin });
    assertEquals(await readStdinPassword(value), expected);
    assertEquals(calls, ["readStdin"]);
  }
});

Deno.test("readStdinPassword: an empty pipe is a UsageError with a hint", async () => {
  for (const stdin of ["", "\n", "\r\n"]) {
    const { value } = input({ terminal: false, stdin });
    const error = await assertRejects(() => readStdinPassword(value), UsageError, "empty password");
    assertEquals(typeof error.hint, "string");
  }
});

Deno.test("readStdinPassword asks at a terminal instead of reading it to its end", async () => {
  const typed = input({ terminal: true, typed: "typed-pw" });
  assertEquals(await readStdinPassword(typed.value), "typed-pw");
  assertEquals(typed.calls, ["prompt Password: "]);
  const empty = input({ terminal: true, typed: "" });
  await assertRejects(() => readStdinPassword(empty.value), UsageError, "No password was typed");
});

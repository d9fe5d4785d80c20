/**
 * `--password-stdin`: the password piped in, or typed at a terminal with echo off. An empty
 * password is the user's mistake (a variable that was never set, a file that is empty), never
 * something to try on the registry.
 */
import { UsageError } from "./usage_error.ts";

/** What reading the password needs from the process. */
export interface PasswordInput {
  /** Whether standard input is a terminal (then the password is asked for, not read). */
  stdinIsTerminal: boolean;
  /** Reads standard input to its end. */
  readStdin: () => Promise<string>;
  /**
   * Shows `prompt` and reads a line typed at the terminal without echoing it; rejects with an
   * `AbortError` on Ctrl-C.
   */
  promptPassword: (prompt: string) => Promise<string>;
}

const PIPE_HINT = "Pipe it in, e.g. --password-stdin < token.txt, " +
  'or printf %s "$TOKEN" | docker-image-pusher … --password-stdin';

/** The password for `--password-stdin`; a {@linkcode UsageError} when it is empty. */
export async function readStdinPassword(input: PasswordInput): Promise<string> {
  if (input.stdinIsTerminal) {
    const typed = await input.promptPassword("Password: ");
    if (typed === "") {
      throw new UsageError("No password was typed for --password-stdin", { hint: PIPE_HINT });
    }
    return typed;
  }
  // One final newline ends the line (`echo "$TOKEN" |`); it is not part of the password.
  const password = (await input.readStdin()).replace(/\r?\n$/, "");
  if (password === "") {
    throw new UsageError("--password-stdin read an empty password from standard input", {
      hint: PIPE_HINT,
    });
  }
  return password;
}

/** The terminal as {@linkcode readHiddenLine} uses it. */
export interface RawTerminal {
  /** Raw mode: no echo, no line editing, Ctrl-C arrives as a byte rather than a signal. */
  setRaw(raw: boolean): void;
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes to the terminal the user looks at (stderr). */
  write(text: string): void;
}

const CTRL_C = 0x03;
const CTRL_D = 0x04;
const BACKSPACE = 0x08;
const CTRL_U = 0x15;
const DELETE = 0x7f;

/**
 * Shows `prompt` and reads one line in raw mode, so nothing typed is echoed. Backspace (and
 * Delete) removes the last character, Ctrl-U the whole line; Enter or Ctrl-D ends it; Ctrl-C
 * rejects with an `AbortError`. The terminal's mode is restored whatever happens.
 *
 * @example
 * ```ts
 * const password = await readHiddenLine("Password: ", {
 *   setRaw: (raw) => Deno.stdin.setRaw(raw),
 *   read: (buffer) => Deno.stdin.read(buffer),
 *   write: (text) => Deno.stderr.writeSync(new TextEncoder().encode(text)),
 * });
 * ```
 */
export async function readHiddenLine(prompt: string, terminal: RawTerminal): Promise<string> {
  const line: number[] = [];
  const buffer = new Uint8Array(256);
  // Raw first: a key typed as soon as the prompt shows must not be echoed.
  terminal.setRaw(true);
  try {
    terminal.write(prompt);
    for (;;) {
      const n = await terminal.read(buffer);
      if (n === null) break;
      for (const byte of buffer.subarray(0, n)) {
        if (byte === CTRL_C) throw new DOMException("Interrupted", "AbortError");
        if (byte === 0x0d || byte === 0x0a || byte === CTRL_D) {
          return new TextDecoder().decode(new Uint8Array(line));
        }
        if (byte === DELETE || byte === BACKSPACE) {
          // A whole UTF-8 character: its continuation bytes (10xxxxxx), then its first byte.
          while (line.length > 0 && (line.at(-1)! & 0xc0) === 0x80) line.pop();
          line.pop();
        } else if (byte === CTRL_U) {
          line.length = 0;
        } else if (byte >= 0x20) {
          // Other control bytes are not part of a password.
          line.push(byte);
        }
      }
    }
    return new TextDecoder().decode(new Uint8Array(line));
  } finally {
    terminal.setRaw(false);
    // Enter was not echoed either: end the prompt's line.
    terminal.write("\n");
  }
}

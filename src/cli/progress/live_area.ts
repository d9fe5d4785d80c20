/**
 * The live area of a terminal: a block of lines redrawn in place, with permanent lines printed
 * above it. This is the {@linkcode TtyOutput} the TTY renderer draws on in a real terminal.
 *
 * It writes a handful of escape codes itself rather than through `log-update`. That package
 * pulls in `signal-exit`, which re-raises SIGINT from its own handler: under Deno the process
 * then saw every Ctrl-C twice and exited before the clean shutdown could say how to resume. It
 * also drew nothing at all on a terminal reporting 0 rows, and left stale rows after a resize.
 *
 * How a redraw finds the old block after a resize. Every line is cut to `columns - 1`, so no
 * line fills the last column (terminals differ on whether that wraps) and nothing the block
 * writes is ever wrapped by the terminal. The cursor rests at the start of the line below the
 * block. To redraw, it moves up by the rows the old block occupies now and writes the new block
 * over it. When the width is unchanged or grew, that is one row per line. When it shrank,
 * terminals that reflow (tmux, VTE/GNOME Terminal, iTerm2, kitty, Windows Terminal) have
 * wrapped each old line that is now too long onto `ceil(length / columns)` rows, so that is
 * what the redraw climbs. tmux keeps the cursor's row through a reflow and pushes the rows above
 * into the scrollback instead; the climb then stops at the top of the screen, the screen is
 * right, and the top of the old block stays in the scrollback, out of any redraw's reach. (A
 * terminal that does not reflow, such as xterm, keeps one row per line; there the climb after a
 * narrowing goes too far and the new block covers a few lines above it, which loses less than
 * leaving stale bars would.)
 *
 * Each row is cleared whole (`ESC [ 2K`) before its line is written: besides the old text, that
 * clears the row's "wrapped" mark from a reflow, which would otherwise make the terminal join
 * the row to the next one when the window widens again, and the block would be a row shorter
 * than the climb. The rows below the new block are erased last (`ESC [ J`); erasing them first,
 * from the top-left corner, would be a whole-screen clear, which tmux (`scroll-on-clear`)
 * answers by copying the screen into the scrollback, once per frame.
 */
import type { TtyOutput } from "./tty_renderer.ts";

/** Options for {@linkcode createLiveArea}. */
export interface LiveAreaOptions {
  /** Writes text to the terminal, synchronously and in order. */
  write: (text: string) => void;
  /** The terminal's columns now, read at every draw to follow resizes; at least 1. */
  columns: () => number;
}

const CSI = "\x1b[";
/**
 * DEC mode 2026, synchronized output: the terminal shows the erase and the redraw as one frame,
 * so the block does not flicker. Terminals without it ignore the unknown mode.
 */
const BEGIN_SYNC = `${CSI}?2026h`;
const END_SYNC = `${CSI}?2026l`;
/** SGR and other CSI sequences, which take no columns. */
// deno-lint-ignore no-control-regex -- matching the escape character is the point
const ESCAPE = /\x1b\[[0-9;?]*[ -/]*[@-~]/y;

/**
 * Creates the live area. Nothing is written until the first `update` or `persist`.
 *
 * @example
 * ```ts
 * const area = createLiveArea({
 *   write: (text) => Deno.stderr.writeSync(new TextEncoder().encode(text)),
 *   columns: () => Deno.consoleSize().columns || 80,
 * });
 * area.update("downloading…");
 * area.persist("✓ done");
 * area.done();
 * ```
 */
export function createLiveArea(options: LiveAreaOptions): TtyOutput {
  const { write } = options;
  /** Columns of each line of the block on screen, as drawn. */
  let drawn: number[] = [];

  const columns = (): number => Math.max(1, Math.floor(options.columns()));

  /**
   * Replaces the block on screen with `lines`: up to its first row, each line on a row cleared
   * whole, then whatever the old block had below erased (see the module comment for why).
   */
  const draw = (lines: readonly string[], width: number): void => {
    const rows = drawn.reduce((sum, length) => sum + rowsAt(length, width), 0);
    const up = rows > 0 ? `\r${CSI}${rows}A` : "";
    const body = lines.map((line) => `${CSI}2K${line}${tailClear(line, width)}\n`).join("");
    write(`${BEGIN_SYNC}${up}${body}${rows > 0 ? `${CSI}J` : ""}${END_SYNC}`);
  };

  return {
    update(frame) {
      const width = columns();
      const lines = frame.split("\n").map((line) => fitLine(line, width - 1));
      draw(lines.map((line) => line.text), width);
      drawn = lines.map((line) => line.columns);
    },
    persist(text) {
      // Permanent lines may wrap: they are never redrawn, so their height does not matter.
      draw(text.split("\n"), columns());
      drawn = [];
    },
    done() {
      // The block stays; the cursor is already on the line below it.
      drawn = [];
    },
  };
}

/**
 * A line longer than the terminal (a permanent one: the block's are cut to fit) wraps onto rows
 * `ESC [ 2K` did not clear: its last row keeps the old block's text after it unless erased to
 * the end (`ESC [ K`). Not when the line ends exactly at the edge: the cursor then waits on the
 * last column, and erasing from there would take the line's last character.
 */
function tailClear(line: string, width: number): string {
  const columns = fitLine(line, Number.MAX_SAFE_INTEGER).columns;
  return columns > width && columns % width !== 0 ? `${CSI}K` : "";
}

/** Rows a line of `length` columns takes on a terminal `width` columns wide (reflowed). */
function rowsAt(length: number, width: number): number {
  return Math.max(1, Math.ceil(length / width));
}

/**
 * Cuts `line` to at most `max` columns, keeping every escape sequence (so a colour opened
 * before the cut is still closed), and says how many columns the result takes. Each code point
 * counts as one column: the frame holds only ASCII and one-column symbols (█ ░ … ✓).
 */
export function fitLine(line: string, max: number): { text: string; columns: number } {
  let text = "";
  let count = 0;
  for (let at = 0; at < line.length;) {
    ESCAPE.lastIndex = at;
    const escape = ESCAPE.exec(line);
    if (escape !== null) {
      text += escape[0];
      at += escape[0].length;
      continue;
    }
    const point = String.fromCodePoint(line.codePointAt(at) ?? 0);
    at += point.length;
    if (count < max) {
      text += point;
      count++;
    }
  }
  return { text, columns: count };
}

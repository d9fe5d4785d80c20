/**
 * The real terminal behind the TTY renderer: a {@linkcode createLiveArea} on stderr, sized from
 * the terminal at every redraw. Kept apart from `tty_renderer.ts` so the renderer and its tests
 * need no terminal.
 */
import { createLiveArea } from "./live_area.ts";
import type { Wording } from "./tty_frame.ts";
import { createTtyRenderer, type TtyRenderer } from "./tty_renderer.ts";

/** A terminal's size in character cells; 0 where the terminal does not say. */
export interface TerminalSize {
  readonly columns: number;
  readonly rows: number;
}

/** Options for {@linkcode createStderrTtyRenderer}. */
export interface StderrTtyOptions {
  /** Whether to use ANSI colours; false when `NO_COLOR` is set. */
  color: boolean;
  /** Writes to stderr, synchronously. */
  write: (text: string) => void;
  /** The terminal's size now. Default: `Deno.consoleSize()`, or 0 × 0 when that fails. */
  size?: () => TerminalSize;
  /** Which way the bytes go (default: a push's words). */
  words?: Wording;
}

/** Columns and rows assumed when the terminal reports 0 (serial consoles, unsized ptys). */
export const FALLBACK_SIZE: TerminalSize = { columns: 80, rows: 24 };

/**
 * A TTY renderer drawing on stderr. Call only when stderr is a terminal. It follows terminal
 * resizes, and keeps the live block a few rows shorter than the terminal so redraws never
 * scroll.
 *
 * @example
 * ```ts
 * const encoder = new TextEncoder();
 * const tty = createStderrTtyRenderer({
 *   color: !Deno.noColor,
 *   write: (text) => void Deno.stderr.writeSync(encoder.encode(text)),
 * });
 * ```
 */
export function createStderrTtyRenderer(options: StderrTtyOptions): TtyRenderer {
  const size = options.size ?? consoleSize;
  const columns = () => sizeOr(size().columns, FALLBACK_SIZE.columns);
  return createTtyRenderer({
    output: createLiveArea({ write: options.write, columns }),
    color: options.color,
    width: columns,
    // Rows: the two total lines, an overflow line and the cursor's line.
    maxRows: () => Math.max(1, Math.min(8, sizeOr(size().rows, FALLBACK_SIZE.rows) - 4)),
    ...(options.words ? { words: options.words } : {}),
  });
}

/**
 * The size of the terminal, through Deno (which asks the standard streams in turn); 0 × 0
 * when none of them is a terminal.
 */
function consoleSize(): TerminalSize {
  try {
    return Deno.consoleSize();
  } catch {
    return { columns: 0, rows: 0 };
  }
}

/** A terminal dimension, or `fallback` when unknown or 0 (as in a pty nobody sized). */
function sizeOr(value: number, fallback: number): number {
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

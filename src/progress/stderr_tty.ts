/**
 * The real terminal behind the TTY renderer: `log-update` redrawing on stderr. Kept apart from
 * `tty_renderer.ts` so the renderer and its tests need neither a terminal nor the npm package.
 */
import process from "node:process";
import { createLogUpdate } from "log-update";
import { createTtyRenderer, type TtyOutput, type TtyRenderer } from "./tty_renderer.ts";

/** The subset of a `log-update` instance the renderer uses. */
export interface LogUpdateLike {
  (text: string): void;
  persist(text: string): void;
  done(): void;
}

/** Adapts a `log-update` instance to {@linkcode TtyOutput}. */
export function logUpdateOutput(log: LogUpdateLike): TtyOutput {
  return {
    update: (frame) => log(frame),
    persist: (text) => log.persist(text),
    done: () => log.done(),
  };
}

/**
 * A TTY renderer drawing on stderr. Call only when stderr is a terminal; `color` should be
 * false when `NO_COLOR` is set. It follows terminal resizes, and keeps the live block a few
 * rows shorter than the terminal so redraws never scroll.
 *
 * @example
 * ```ts
 * const tty = createStderrTtyRenderer(Deno.stderr.isTerminal() && !Deno.noColor);
 * ```
 */
export function createStderrTtyRenderer(color: boolean): TtyRenderer {
  const stderr = process.stderr;
  // Rows: the two total lines, an overflow line and the cursor's line.
  const maxRows = Math.max(1, Math.min(8, sizeOr(stderr.rows, 24) - 4));
  return createTtyRenderer({
    output: logUpdateOutput(createLogUpdate(stderr)),
    color,
    width: () => sizeOr(stderr.columns, 80),
    maxRows,
  });
}

/** A terminal dimension, or `fallback` when unknown or 0 (as in a pty nobody sized). */
function sizeOr(value: number | undefined, fallback: number): number {
  return value !== undefined && value > 0 ? value : fallback;
}

/**
 * Live progress bars for an interactive terminal. The renderer owns the model and a redraw
 * timer; the terminal itself sits behind {@linkcode TtyOutput}, so tests feed events and read
 * frames without a terminal. `stderr_tty.ts` wires it to a live area on stderr.
 */
import { palette } from "./ansi.ts";
import type { ProgressSink } from "../../progress/events.ts";
import { ProgressState } from "./state.ts";
import { permanentLine, PUSH_WORDS, renderLiveBlock, type Wording } from "./tty_frame.ts";

/**
 * Where frames go: a live block redrawn in place, with permanent text printed above it. A bare
 * `write(frame)` cannot tell the two apart, hence an interface.
 */
export interface TtyOutput {
  /** Replaces the live block with `frame` (lines joined by "\n", no trailing newline). */
  update(frame: string): void;
  /** Prints `text` permanently in place of the live block; the next `update` redraws below it. */
  persist(text: string): void;
  /** Leaves the last block on screen and stops managing it. */
  done(): void;
}

/** Options for {@linkcode createTtyRenderer}. */
export interface TtyRendererOptions {
  output: TtyOutput;
  /** Whether to use ANSI colours; the caller decides from `NO_COLOR` and isatty. */
  color: boolean;
  /** Clock in milliseconds for rates and times. Default `performance.now`. */
  now?: () => number;
  /** Terminal columns, or a function read at every redraw to follow resizes. Default 80. */
  width?: number | (() => number);
  /**
   * Most blob rows in the live block, or a function read at every redraw; more are summarised
   * in one line. Default 8.
   */
  maxRows?: number | (() => number);
  /** Time between redraws. Default 100 ms, i.e. at most ten frames a second. */
  intervalMs?: number;
  /** Which way the bytes go. Default {@linkcode PUSH_WORDS}. */
  words?: Wording;
}

/** A running TTY renderer. */
export interface TtyRenderer {
  /** Feed progress events here. */
  readonly sink: ProgressSink;
  /** The live block for the current state, as it would be drawn now. */
  render(): string;
  /**
   * Prints a line above the live block (e.g. a verbose HTTP log line), so other output does
   * not tear the bars. Use this instead of writing to stderr while the renderer runs.
   */
  writeLine(line: string): void;
  /** Draws now instead of at the next tick: pending permanent lines, then the live block. */
  flush(): void;
  /** Stops the timer, draws the final state and leaves it on screen. Idempotent. */
  stop(): void;
}

/**
 * Creates a TTY renderer. Events update the model immediately; drawing happens on a timer, so
 * a burst of thousands of progress events costs at most ten redraws a second. The timer starts
 * with the first event and is unref'd, but call `stop()` anyway to draw the final state.
 *
 * @example
 * ```ts
 * const tty = createTtyRenderer({ output, color: !Deno.noColor });
 * try {
 *   await push({ onProgress: tty.sink });
 * } finally {
 *   tty.stop();
 * }
 * ```
 */
export function createTtyRenderer(options: TtyRendererOptions): TtyRenderer {
  const { output } = options;
  const state = new ProgressState(options.now === undefined ? {} : { now: options.now });
  const colors = palette(options.color);
  const words = options.words ?? PUSH_WORDS;
  const width = options.width ?? 80;
  const maxRows = options.maxRows ?? 8;
  const intervalMs = options.intervalMs ?? 100;

  let pending: string[] = [];
  let lastFrame = "";
  // Deno's `number` or, once node types are loaded elsewhere in the graph, node's `Timeout`.
  let timer: ReturnType<typeof setInterval> | undefined;
  let stopped = false;

  const render = (): string =>
    renderLiveBlock(state, {
      palette: colors,
      words,
      width: typeof width === "function" ? width() : width,
      maxRows: typeof maxRows === "function" ? maxRows() : maxRows,
    });

  const flush = (): void => {
    if (pending.length > 0) {
      output.persist(pending.join("\n"));
      pending = [];
      // persist() erased the block; it must be drawn again even if unchanged.
      lastFrame = "";
    }
    const frame = render();
    // The frame also changes without events (the rate decays during a stall), so compare
    // text rather than tracking a dirty flag.
    if (frame !== "" && frame !== lastFrame) {
      output.update(frame);
      lastFrame = frame;
    }
  };

  const startTimer = (): void => {
    if (timer !== undefined || stopped) return;
    const id = setInterval(flush, intervalMs);
    // A renderer someone forgot to stop must not keep the process alive.
    Deno.unrefTimer(id);
    timer = id;
  };

  const sink: ProgressSink = (event) => {
    if (stopped) return;
    state.apply(event);
    const line = permanentLine(event, state, colors, words);
    if (line !== undefined) pending.push(line);
    startTimer();
  };

  const writeLine = (line: string): void => {
    if (stopped) {
      output.persist(line);
      return;
    }
    pending.push(line);
    startTimer();
  };

  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
    flush();
    output.done();
  };

  return { sink, render, writeLine, flush, stop };
}

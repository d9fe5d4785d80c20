/**
 * The few ANSI SGR styles the TTY renderer uses. Plain escape codes: a colour library would be
 * a dependency for six constants. Each style resets only its own attribute, so styles nest.
 */

/** Wraps text in a style, or returns it unchanged when colour is off. */
export type Style = (text: string) => string;

/** The renderer's palette. */
export interface Palette {
  readonly bold: Style;
  readonly dim: Style;
  readonly green: Style;
  readonly yellow: Style;
  readonly cyan: Style;
}

const sgr = (open: number, close: number): Style => (text) =>
  text === "" ? text : `\x1b[${open}m${text}\x1b[${close}m`;

const plain: Style = (text) => text;

/**
 * The palette for `color`: real SGR codes, or identity functions so output holds no escape
 * codes at all (the caller decides from `NO_COLOR` and whether stderr is a terminal).
 */
export function palette(color: boolean): Palette {
  if (!color) return { bold: plain, dim: plain, green: plain, yellow: plain, cyan: plain };
  return {
    bold: sgr(1, 22),
    dim: sgr(2, 22),
    green: sgr(32, 39),
    yellow: sgr(33, 39),
    cyan: sgr(36, 39),
  };
}

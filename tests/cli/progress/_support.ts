/**
 * Shared test support for the progress renderers: a fake clock, a recording terminal output
 * and digests whose short form is easy to read in expected frames.
 */
import type { TtyOutput } from "../../../src/cli/progress/tty_renderer.ts";

/** A clock the test moves by hand; times in milliseconds. */
export class FakeClock {
  t: number;
  constructor(start = 0) {
    this.t = start;
  }
  /** Bound so it can be passed as `now`. */
  readonly now = (): number => this.t;
  /** Moves to an absolute time. */
  at(ms: number): this {
    this.t = ms;
    return this;
  }
}

/** One call made on a {@linkcode RecordingOutput}. */
export type OutputCall = ["update" | "persist", string] | ["done"];

/** A `TtyOutput` that records calls instead of drawing. */
export class RecordingOutput implements TtyOutput {
  readonly calls: OutputCall[] = [];
  update(frame: string): void {
    this.calls.push(["update", frame]);
  }
  persist(text: string): void {
    this.calls.push(["persist", text]);
  }
  done(): void {
    this.calls.push(["done"]);
  }
  /** Returns the calls so far and forgets them. */
  take(): OutputCall[] {
    return this.calls.splice(0);
  }
}

/** 1 MiB in bytes. */
export const MiB = 1024 ** 2;
/** 1 GiB in bytes. */
export const GiB = 1024 ** 3;

/** A digest made of one repeated hex character, so its short form is that character × 12. */
export function digest(hex: string): string {
  return `sha256:${hex.repeat(64)}`;
}

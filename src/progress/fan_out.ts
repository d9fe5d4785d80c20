/** Sending one event stream to several sinks, e.g. a renderer and the verbose HTTP log. */
import { type ProgressSink, silentSink } from "./events.ts";

/**
 * A sink that forwards every event to each of `sinks`, in order.
 *
 * Sinks must not throw; if one does anyway, the others still receive the event and the first
 * error is rethrown afterwards, so a renderer bug neither starves the other sinks nor vanishes.
 *
 * @example
 * ```ts
 * const sink = combineSinks(renderer.sink, verbose ? createHttpLogSink(writeLine) : silentSink);
 * ```
 */
export function combineSinks(...sinks: ProgressSink[]): ProgressSink {
  if (sinks.length === 0) return silentSink;
  if (sinks.length === 1) return sinks[0] ?? silentSink;
  return (event) => {
    let failure: { error: unknown } | undefined;
    for (const sink of sinks) {
      try {
        sink(event);
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure !== undefined) throw failure.error;
  };
}

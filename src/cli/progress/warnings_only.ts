/**
 * What `--quiet` still shows: warnings. A warning says the result may not be what the user
 * expects (credentials that could not be read, an archive old Docker cannot load), so hiding it
 * with the progress would hide the reason for a failure that comes later, elsewhere.
 */
import type { ProgressSink } from "../../progress/events.ts";

/**
 * A sink that writes each warning notice as one `Warning: …` line and drops every other event.
 *
 * @example
 * ```ts
 * const sink = warningsOnly((line) => console.error(line));
 * sink({
 *   type: "notice",
 *   kind: "zstd-layers",
 *   level: "warning",
 *   message: "Layers are zstd-compressed",
 * });
 * ```
 */
export function warningsOnly(writeLine: (line: string) => void): ProgressSink {
  return (event) => {
    if (event.type === "notice" && event.level === "warning") {
      writeLine(`Warning: ${event.message}`);
    }
  };
}

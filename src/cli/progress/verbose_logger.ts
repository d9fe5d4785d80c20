/**
 * The `--verbose` HTTP log: one line per request, separate from the progress renderers so it
 * can be added to any of them (or to none, with `--quiet --verbose`).
 */
import type { ProgressEvent, ProgressSink } from "../../progress/events.ts";

/**
 * A sink printing `http` events, and once per registry that a loopback registry speaks plain
 * HTTP (`plain-http`), ignoring everything else. The URL arrives already redacted by the
 * transport, so it is printed as is.
 *
 * @example
 * ```ts
 * const log = createHttpLogSink((line) => lines.push(line));
 * log({ type: "http", method: "PUT", url: "https://r.example/v2/app/blobs/uploads/1", status: 201, ms: 123 });
 * // lines: ["HTTP PUT https://r.example/v2/app/blobs/uploads/1 -> 201 (123 ms)"]
 * ```
 */
export function createHttpLogSink(writeLine: (line: string) => void): ProgressSink {
  // Each client of a registry finds its scheme for itself: one line per registry is enough.
  const plainHttp = new Set<string>();
  return (event) => {
    if (event.type === "http") writeLine(httpLine(event));
    if (event.type === "plain-http" && !plainHttp.has(event.registry)) {
      plainHttp.add(event.registry);
      writeLine(
        `Notice: ${event.registry} does not speak TLS: using plain HTTP (a registry on this ` +
          `machine, named without https://)`,
      );
    }
  };
}

/** "HTTP PUT https://host/v2/... -> 201 (123 ms)"; a network failure shows as "-> error". */
export function httpLine(event: Extract<ProgressEvent, { type: "http" }>): string {
  // Always milliseconds, unlike elsewhere: a column of one unit is easier to scan and grep.
  return `HTTP ${event.method} ${event.url} -> ${event.status} (${Math.round(event.ms)} ms)`;
}

import { createHttpLogSink } from "../../../src/cli/progress/verbose_logger.ts";
import { assertEquals } from "../../helpers/assert.ts";
import { digest } from "./_support.ts";

Deno.test("HTTP log prints http events and nothing else", () => {
  const lines: string[] = [];
  const sink = createHttpLogSink((line) => lines.push(line));
  sink({ type: "plan", image: "app:1", blobs: 1, bytes: 10 });
  sink({
    type: "http",
    method: "PUT",
    url: "https://r.example/v2/app/blobs/uploads/abc?digest=sha256%3Aaa&_state=REDACTED",
    status: 201,
    ms: 123.4,
  });
  sink({ type: "blob-done", digest: digest("a"), size: 10, outcome: "uploaded" });
  sink({ type: "http", method: "HEAD", url: "https://r.example/v2/", status: "error", ms: 30_000 });
  assertEquals(lines, [
    "HTTP PUT https://r.example/v2/app/blobs/uploads/abc?digest=sha256%3Aaa&_state=REDACTED -> 201 (123 ms)",
    "HTTP HEAD https://r.example/v2/ -> error (30000 ms)",
  ]);
});

Deno.test("HTTP log says once per registry that a loopback registry speaks plain HTTP", () => {
  const lines: string[] = [];
  const sink = createHttpLogSink((line) => lines.push(line));
  sink({ type: "plain-http", registry: "localhost:5000" });
  sink({ type: "plain-http", registry: "localhost:5000" });
  sink({ type: "plain-http", registry: "127.0.0.1:5001" });
  assertEquals(lines, [
    "Notice: localhost:5000 does not speak TLS: using plain HTTP (a registry on this machine, " +
    "named without https://)",
    "Notice: 127.0.0.1:5001 does not speak TLS: using plain HTTP (a registry on this machine, " +
    "named without https://)",
  ]);
});

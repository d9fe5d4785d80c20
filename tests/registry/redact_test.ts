import { redactUrl } from "../../src/registry/redact.ts";
import { assert, assertEquals } from "../helpers/assert.ts";

const HEX = "0123456789abcdef".repeat(4);

const CASES: [string, string][] = [
  ["https://user:pa55@registry.example.com/v2/", "https://registry.example.com/v2/"],
  ["https://user@registry.example.com/v2/", "https://registry.example.com/v2/"],
  [
    "https://bucket.s3.amazonaws.com/blob?X-Amz-Algorithm=AWS4&X-Amz-Signature=deadbeef",
    "https://bucket.s3.amazonaws.com/blob?X-Amz-Algorithm=AWS4&X-Amz-Signature=REDACTED",
  ],
  [
    "https://auth.example/token?service=reg&token=t0ken",
    "https://auth.example/token?service=reg&token=REDACTED",
  ],
  [
    "https://r.example/v2/a/blobs/uploads/u?_state=c3RhdGU%3D",
    "https://r.example/v2/a/blobs/uploads/u?_state=REDACTED",
  ],
  [
    "https://blob.core.windows.net/c/b?sv=2020&sig=abc%2Bdef&se=2030",
    "https://blob.core.windows.net/c/b?sv=REDACTED&sig=REDACTED&se=REDACTED",
  ],
  [
    `https://r.example/v2/a/blobs/uploads/u?_state=s&digest=sha256%3A${HEX}`,
    `https://r.example/v2/a/blobs/uploads/u?_state=REDACTED&digest=sha256:${HEX}`,
  ],
  [`https://r.example/v2/a/blobs/sha256:${HEX}`, `https://r.example/v2/a/blobs/sha256:${HEX}`],
  ["https://r.example/x?TOKEN=1&Sig=2", "https://r.example/x?TOKEN=REDACTED&Sig=REDACTED"],
  ["https://r.example/x?n=1&n=2&token=a&token=b", "https://r.example/x?n=1&n=2&token=REDACTED"],
  ["https://r.example/x?page=2&tokens=ok", "https://r.example/x?page=2&tokens=ok"],
  ["http://127.0.0.1:5000/v2/", "http://127.0.0.1:5000/v2/"],
];

Deno.test("redactUrl drops userinfo and replaces secret query values", () => {
  for (const [input, expected] of CASES) {
    assertEquals(redactUrl(input), expected, input);
    assertEquals(redactUrl(new URL(input)), expected, `URL ${input}`);
  }
});

Deno.test("redactUrl never lets a secret through", () => {
  const secrets = ["pa55", "deadbeef", "t0ken", "c3RhdGU", "abc%2Bdef"];
  for (const [input] of CASES) {
    const output = redactUrl(input);
    for (const secret of secrets) assert(!output.includes(secret), `${secret} in ${output}`);
  }
});

Deno.test("redactUrl answers a placeholder for text that is not a URL", () => {
  assertEquals(redactUrl("not a url"), "<invalid URL>");
  assertEquals(redactUrl(""), "<invalid URL>");
  assertEquals(redactUrl("https://user:secret@bad host/"), "<invalid URL>");
});

Deno.test("redactUrl leaves the URL object it was given unchanged", () => {
  const url = new URL("https://user:pw@r.example/x?token=t");
  redactUrl(url);
  assertEquals(url.href, "https://user:pw@r.example/x?token=t");
});

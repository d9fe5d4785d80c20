import { nextOffsetFromRange, resolveLocation, withDigest } from "../../src/registry/location.ts";
import { assertEquals, assertThrows } from "../helpers/assert.ts";

const DIGEST = `sha256:${"0123456789abcdef".repeat(4)}`;
const ENCODED = `sha256%3A${"0123456789abcdef".repeat(4)}`;
const REQUEST = new URL("https://registry.example.com:5000/v2/team/app/blobs/uploads/");

Deno.test("resolveLocation resolves relative and absolute Location headers", () => {
  const cases: [string, string][] = [
    [
      "/v2/team/app/blobs/uploads/uuid-1?_state=abc%3D%3D",
      "https://registry.example.com:5000/v2/team/app/blobs/uploads/uuid-1?_state=abc%3D%3D",
    ],
    ["uuid-2", "https://registry.example.com:5000/v2/team/app/blobs/uploads/uuid-2"],
    ["../other/uuid-3", "https://registry.example.com:5000/v2/team/app/blobs/other/uuid-3"],
    [
      "https://storage.example.net/upload/xyz?sig=1",
      "https://storage.example.net/upload/xyz?sig=1",
    ],
    ["http://10.0.0.2:9000/u/1", "http://10.0.0.2:9000/u/1"],
    ["//cdn.example.org/u/2", "https://cdn.example.org/u/2"],
    ["  /v2/x/blobs/uploads/4  ", "https://registry.example.com:5000/v2/x/blobs/uploads/4"],
  ];
  for (const [header, expected] of cases) {
    assertEquals(resolveLocation(header, REQUEST, "start upload").href, expected, header);
  }
});

Deno.test("resolveLocation fails with the action when the header is missing or invalid", () => {
  for (const header of [null, "", "   "]) {
    assertThrows(
      () => resolveLocation(header, REQUEST, "start upload"),
      Error,
      "Failed to start upload: the registry sent no Location header",
    );
  }
  const error = assertThrows(
    () => resolveLocation("http://[bad", REQUEST, "upload chunk"),
    Error,
    "Failed to upload chunk: the registry sent an invalid Location header",
  );
  assertEquals(error.cause instanceof TypeError, true);
});

Deno.test("withDigest keeps the existing query byte-for-byte and appends the digest", () => {
  const cases: [string, string][] = [
    [
      "https://r.example/v2/a/blobs/uploads/u?_state=abc%3D%3D&x=1",
      `https://r.example/v2/a/blobs/uploads/u?_state=abc%3D%3D&x=1&digest=${ENCODED}`,
    ],
    [
      "https://r.example/v2/a/blobs/uploads/u",
      `https://r.example/v2/a/blobs/uploads/u?digest=${ENCODED}`,
    ],
    ["https://r.example/u?", `https://r.example/u?digest=${ENCODED}`],
    [
      "https://s3.example/b?X-Amz-Signature=a%2Fb%2Bc&X-Amz-Date=20240101T000000Z",
      `https://s3.example/b?X-Amz-Signature=a%2Fb%2Bc&X-Amz-Date=20240101T000000Z&digest=${ENCODED}`,
    ],
    ["https://r.example/u?a=+b&c=%20", `https://r.example/u?a=+b&c=%20&digest=${ENCODED}`],
  ];
  for (const [location, expected] of cases) {
    assertEquals(withDigest(new URL(location), DIGEST).href, expected, location);
  }
});

Deno.test("withDigest leaves the URL it was given unchanged", () => {
  const location = new URL("https://r.example/u?_state=s");
  withDigest(location, DIGEST);
  assertEquals(location.href, "https://r.example/u?_state=s");
});

Deno.test("nextOffsetFromRange returns the offset after the last byte the registry holds", () => {
  const cases: [string | null, number | undefined][] = [
    ["0-1023", 1024],
    ["bytes=0-9", 10],
    [" 0-4194303 ", 4194304],
    // distribution answers 0-0 for an empty session too: resend from the start.
    ["0-0", 0],
    ["0-1", 2],
    [null, undefined],
    ["", undefined],
    ["garbage", undefined],
    ["0-", undefined],
    ["-5", undefined],
    ["bytes 0-9", undefined],
    ["0-9/100", undefined],
    ["a-b", undefined],
  ];
  for (const [header, expected] of cases) {
    assertEquals(nextOffsetFromRange(header), expected, String(header));
  }
});

import { mergeScopes, parseTokenErrorCodes, parseTokenResponse } from "../../src/registry/token.ts";
import { assertEquals } from "../helpers/assert.ts";

const NOW = Date.parse("2024-05-01T12:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString();

// refreshAt = issuedAt + lifetime - min(10 s, lifetime / 4).
const CASES: [string, string, { value: string; refreshAt: number } | undefined][] = [
  ["token, default 60 s", '{"token":"abc"}', { value: "abc", refreshAt: NOW + 50_000 }],
  ["access_token", '{"access_token":"xyz"}', { value: "xyz", refreshAt: NOW + 50_000 }],
  ["token preferred over access_token", '{"token":"t","access_token":"a"}', {
    value: "t",
    refreshAt: NOW + 50_000,
  }],
  ["empty token falls back to access_token", '{"token":"","access_token":"a"}', {
    value: "a",
    refreshAt: NOW + 50_000,
  }],
  ["expires_in", '{"token":"t","expires_in":300}', { value: "t", refreshAt: NOW + 290_000 }],
  ["short expires_in uses a quarter as margin", '{"token":"t","expires_in":20}', {
    value: "t",
    refreshAt: NOW + 15_000,
  }],
  ["expires_in as a string is ignored", '{"token":"t","expires_in":"300"}', {
    value: "t",
    refreshAt: NOW + 50_000,
  }],
  ["zero expires_in is ignored", '{"token":"t","expires_in":0}', {
    value: "t",
    refreshAt: NOW + 50_000,
  }],
  ["negative expires_in is ignored", '{"token":"t","expires_in":-5}', {
    value: "t",
    refreshAt: NOW + 50_000,
  }],
  [
    "issued_at close to now is used",
    `{"token":"t","expires_in":300,"issued_at":"${iso(NOW - 30_000)}"}`,
    { value: "t", refreshAt: NOW - 30_000 + 290_000 },
  ],
  [
    "issued_at slightly ahead of now is used",
    `{"token":"t","issued_at":"${iso(NOW + 20_000)}"}`,
    { value: "t", refreshAt: NOW + 20_000 + 50_000 },
  ],
  [
    "issued_at an hour ago (clock skew) is ignored",
    `{"token":"t","expires_in":300,"issued_at":"${iso(NOW - 3_600_000)}"}`,
    { value: "t", refreshAt: NOW + 290_000 },
  ],
  [
    "issued_at in the future is ignored",
    `{"token":"t","issued_at":"${iso(NOW + 600_000)}"}`,
    { value: "t", refreshAt: NOW + 50_000 },
  ],
  ["unparsable issued_at is ignored", '{"token":"t","issued_at":"yesterday"}', {
    value: "t",
    refreshAt: NOW + 50_000,
  }],
  ["numeric issued_at is ignored", `{"token":"t","issued_at":${NOW - 30_000}}`, {
    value: "t",
    refreshAt: NOW + 50_000,
  }],
  ["no token", '{"expires_in":300}', undefined],
  ["empty tokens", '{"token":"","access_token":""}', undefined],
  ["token not a string", '{"token":5}', undefined],
  ["not JSON", "<html>oops</html>", undefined],
  ["empty body", "", undefined],
  ["JSON null", "null", undefined],
  ["JSON array", '["token"]', undefined],
  ["JSON string", '"token"', undefined],
  ["truncated JSON", '{"token":"ab', undefined],
];

Deno.test("parseTokenResponse reads the token and when to refresh it", () => {
  for (const [name, body, expected] of CASES) {
    assertEquals(parseTokenResponse(body, NOW), expected, name);
  }
});

Deno.test("parseTokenResponse survives a corrupted byte anywhere in a real response", () => {
  const body = `{"token":"abc","access_token":"abc","expires_in":300,"issued_at":"${iso(NOW)}"}`;
  for (let i = 0; i < body.length; i++) {
    for (const replacement of ['"', "{", "}", ",", ":", "x", "\0"]) {
      const corrupted = body.slice(0, i) + replacement + body.slice(i + 1);
      const token = parseTokenResponse(corrupted, NOW);
      if (token === undefined) continue;
      assertEquals(typeof token.value, "string", corrupted);
      assertEquals(token.value.length > 0, true, corrupted);
      assertEquals(Number.isFinite(token.refreshAt), true, corrupted);
      assertEquals(token.refreshAt > NOW, true, corrupted);
    }
  }
});

Deno.test("mergeScopes joins actions per resource, push first, keeping other scopes", () => {
  const cases: [string[], string[]][] = [
    [["repository:a:push,pull"], ["repository:a:push,pull"]],
    [["repository:a:pull", "repository:a:push"], ["repository:a:push,pull"]],
    [["repository:a:push,pull", "repository:a:pull,push"], ["repository:a:push,pull"]],
    [["repository:a:push,pull", "repository:b:pull"], [
      "repository:a:push,pull",
      "repository:b:pull",
    ]],
    [["repository:a:pull", "repository:a:delete"], ["repository:a:pull,delete"]],
    [["registry:catalog:*", "registry:catalog:*"], ["registry:catalog:*"]],
    [["repository:host:5000/a:pull"], ["repository:host:5000/a:pull"]],
    [["odd"], ["odd"]],
  ];
  for (const [input, expected] of cases) assertEquals(mergeScopes(input), expected);
});

Deno.test("parseTokenErrorCodes reads distribution's errors and an OAuth2 error", () => {
  assertEquals(parseTokenErrorCodes('{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}'), [
    { code: "UNAUTHORIZED", message: "no" },
  ]);
  assertEquals(
    parseTokenErrorCodes('{"error":"invalid_grant","error_description":"token revoked"}'),
    [{ code: "invalid_grant", message: "token revoked" }],
  );
  assertEquals(parseTokenErrorCodes('{"error":"unauthorized"}'), [
    { code: "unauthorized", message: "" },
  ]);
  for (const body of ["", "<html>503</html>", "null", '{"error":""}', '{"error":3}', "[1]"]) {
    assertEquals(parseTokenErrorCodes(body), [], body);
  }
});

import { type DistributionErrorCode, parseErrorCodes } from "../../src/registry/error_codes.ts";
import { assertEquals } from "../helpers/assert.ts";

Deno.test("parseErrorCodes reads the distribution error body and tolerates anything else", () => {
  const cases: [string, DistributionErrorCode[]][] = [
    [
      '{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry","detail":"x"}]}',
      [{ code: "BLOB_UNKNOWN", message: "blob unknown to registry" }],
    ],
    [
      '{"errors":[{"code":"DENIED","message":"no"},{"code":"UNAUTHORIZED"}]}',
      [{ code: "DENIED", message: "no" }, { code: "UNAUTHORIZED", message: "" }],
    ],
    ['{"errors":[{"code":"X","message":42}]}', [{ code: "X", message: "" }]],
    ['{"errors":[null,1,"s",{"message":"no code"},{"code":7},{"code":"OK"}]}', [
      { code: "OK", message: "" },
    ]],
    ['{"errors":[]}', []],
    ['{"errors":{"code":"X"}}', []],
    ['{"error":"x"}', []],
    ["[]", []],
    ["null", []],
    ['"text"', []],
    ["42", []],
    ["<html>502 Bad Gateway</html>", []],
    ['{"errors":[{"code":"X"', []],
    ["", []],
    ["   ", []],
  ];
  for (const [body, expected] of cases) {
    assertEquals(parseErrorCodes(body), expected, body);
  }
});

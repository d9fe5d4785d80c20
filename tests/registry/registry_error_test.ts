import {
  NetworkError,
  parseRetryAfter,
  RegistryError,
  registryErrorIn,
} from "../../src/registry/registry_error.ts";
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";

Deno.test("parseRetryAfter reads seconds and HTTP dates relative to now", () => {
  const now = Date.parse("2015-10-21T07:27:30Z");
  const cases: [string | null, number | undefined][] = [
    ["120", 120_000],
    [" 5 ", 5_000],
    ["0", 0],
    ["Wed, 21 Oct 2015 07:28:00 GMT", 30_000],
    ["Wed, 21 Oct 2015 07:27:00 GMT", 0],
    [null, undefined],
    ["", undefined],
    ["soon", undefined],
    ["in a minute", undefined],
  ];
  for (const [value, expected] of cases) {
    assertEquals(parseRetryAfter(value, now), expected, String(value));
  }
});

Deno.test({
  name: "parseRetryAfter ignores numbers that are not delta-seconds",
  fn() {
    const now = Date.parse("2015-10-21T07:27:30Z");
    for (const value of ["1.5", "-5", "3600.0"]) {
      assertEquals(parseRetryAfter(value, now), undefined, value);
    }
  },
});

const init = { method: "PUT", url: "https://r.example/v2/a/blobs/uploads/u?_state=REDACTED" };

Deno.test("RegistryError is temporary for timeouts, rate limits and server failures", () => {
  for (const status of [408, 429, 500, 502, 503, 504]) {
    assertEquals(new RegistryError({ ...init, status }).temporary, true, String(status));
  }
  for (const status of [400, 401, 403, 404, 405, 413, 416, 501]) {
    assertEquals(new RegistryError({ ...init, status }).temporary, false, String(status));
  }
});

Deno.test("RegistryError's temporary may be said by its maker (an answer retried already)", () => {
  assertEquals(new RegistryError({ ...init, status: 503, temporary: false }).temporary, false);
  assertEquals(new RegistryError({ ...init, status: 503 }).temporary, true);
});

Deno.test("RegistryError is temporary when a 4xx carries TOOMANYREQUESTS", () => {
  const codes = [{ code: "TOOMANYREQUESTS", message: "slow down" }];
  for (const status of [400, 403]) {
    assertEquals(new RegistryError({ ...init, status, codes }).temporary, true, String(status));
  }
  const denied = new RegistryError({
    ...init,
    status: 403,
    codes: [{ code: "DENIED", message: "" }],
  });
  assertEquals(denied.temporary, false);
  assertEquals(denied.hasCode("DENIED"), true);
  assertEquals(denied.hasCode("TOOMANYREQUESTS"), false);
});

Deno.test("RegistryError message names the method, URL, status and codes", () => {
  const error = new RegistryError({
    ...init,
    status: 400,
    statusText: "Bad Request",
    codes: [{ code: "DIGEST_INVALID", message: "digest did not match" }, {
      code: "SIZE_INVALID",
      message: "",
    }],
    action: "upload blob sha256:ab",
  });
  assertEquals(
    error.message,
    `Failed to upload blob sha256:ab: PUT ${init.url} answered 400 Bad Request ` +
      "(DIGEST_INVALID: digest did not match; SIZE_INVALID)",
  );
  assertEquals(error.name, "RegistryError");
  assertEquals(error.status, 400);
  assertEquals(error.method, "PUT");

  const bare = new RegistryError({ method: "HEAD", url: "https://r.example/v2/", status: 503 });
  assertEquals(bare.message, "HEAD https://r.example/v2/ answered 503");
  assertEquals(bare.retryAfterMs, undefined);
  assert(bare instanceof Error);
});

Deno.test("NetworkError carries its temporary flag and cause", () => {
  const cause = new TypeError("connection reset");
  const error = new NetworkError("GET", "https://r.example/v2/", "connection reset", {
    temporary: true,
    cause,
  });
  assertStringIncludes(error.message, "GET https://r.example/v2/ failed: connection reset");
  assertEquals(error.temporary, true);
  assert(error.cause === cause, "cause not chained");
});

Deno.test("RegistryError says to use https:// when Go answers plain HTTP on a TLS port", () => {
  // What Go's net/http writes for an HTTP request on a TLS listener.
  const body = "Client sent an HTTP request to an HTTPS server.\n";
  const init = { method: "GET", status: 400, statusText: "Bad Request", body };
  const plain = new RegistryError({ ...init, url: "http://r.example:5000/v2/" });
  assert(plain.message.endsWith("; the registry speaks HTTPS: use an https:// URL"), plain.message);
  // Not for another 400, nor for a request that was already https.
  for (
    const other of [
      new RegistryError({ ...init, url: "http://r.example:5000/v2/", body: "bad" }),
      new RegistryError({ ...init, url: "https://r.example:5000/v2/" }),
    ]
  ) {
    assert(!other.message.includes("speaks HTTPS"), other.message);
  }
});

Deno.test("registryErrorIn finds the registry's answer behind an error that explains it", () => {
  const answer = new RegistryError({
    method: "GET",
    url: "http://r.example/v2/",
    status: 401,
    statusText: "Unauthorized",
    codes: [{ code: "UNAUTHORIZED", message: "authentication required" }],
    action: "reach registry r.example",
  });
  assertEquals(
    answer.answer,
    "GET http://r.example/v2/ answered 401 Unauthorized " +
      "(UNAUTHORIZED: authentication required)",
  );
  const refusal = Object.assign(new Error("Authentication failed"), { registryError: answer });
  assertEquals(registryErrorIn(answer), answer);
  assertEquals(registryErrorIn(refusal), answer);
  assertEquals(registryErrorIn(new Error("caused", { cause: answer })), answer);
  assertEquals(registryErrorIn(new Error("wrapped", { cause: refusal })), answer);
  assertEquals(registryErrorIn(new Error("no answer")), undefined);
  assertEquals(registryErrorIn("a string"), undefined);
  const loop = new Error("loop");
  loop.cause = new Error("back", { cause: loop });
  assertEquals(registryErrorIn(loop), undefined);
});

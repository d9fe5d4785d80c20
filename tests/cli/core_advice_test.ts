/**
 * The core's advice in an error names the library's options, never a flag; the CLI prints the
 * same error with its flags, as it always has.
 */
import { describeError, inCliTerms } from "../../src/cli/core_advice.ts";
import { NO_CREDENTIALS_ADVICE } from "../../src/registry/auth.ts";
import { EITHER_NAME_SELECTS } from "../../src/archive/legacy_names.ts";
import { toNetworkError } from "../../src/registry/transport.ts";
import { assert, assertEquals } from "../helpers/assert.ts";

Deno.test("a refused certificate: the core names caCerts and skipTls, the CLI its flags", () => {
  const cause = Object.assign(new Error("self signed certificate"), {
    code: "DEPTH_ZERO_SELF_SIGNED_CERT",
  });
  const error = toNetworkError("GET", "https://127.0.0.1:5000/v2/", cause);
  assert(!error.message.includes("--"), error.message);
  assert(error.message.includes("caCerts"), error.message);
  assertEquals(
    describeError(error),
    "GET https://127.0.0.1:5000/v2/ failed: TLS certificate verification failed (self signed " +
      "certificate); trust the registry's CA with --ca-cert FILE, or skip verification with " +
      "--skip-tls",
  );
});

Deno.test("a refusal of anonymous access: the CLI says -u and --password-stdin", () => {
  assert(!NO_CREDENTIALS_ADVICE.includes("-"), NO_CREDENTIALS_ADVICE);
  assertEquals(
    inCliTerms(`Authentication failed for anonymous access at r.example: ${NO_CREDENTIALS_ADVICE}`),
    "Authentication failed for anonymous access at r.example: pass credentials with -u USER " +
      "and --password-stdin, or log in with docker login",
  );
});

Deno.test("a note on names that disagree: the CLI says --image matches either", () => {
  assert(!EITHER_NAME_SELECTS.includes("--"), EITHER_NAME_SELECTS);
  assertEquals(
    inCliTerms(`index.json "app:1": a push uses index.json's; ${EITHER_NAME_SELECTS}`),
    `index.json "app:1": a push uses index.json's; --image matches either`,
  );
});

Deno.test("text without the core's advice is left as it is", () => {
  assertEquals(inCliTerms("Blob sha256:ab does not match"), "Blob sha256:ab does not match");
});

/**
 * The core's advice names the library's options (`caCerts`, `chunked`); the command line says
 * the same with its flags. Every error text and archive note the CLI prints goes through
 * {@linkcode inCliTerms}.
 */
import { NO_CREDENTIALS_ADVICE } from "../registry/auth.ts";
import { TLS_ADVICE } from "../registry/transport.ts";
import { ONE_REQUEST_ADVICE } from "../push/upload_policy.ts";
import { EITHER_NAME_SELECTS } from "../archive/legacy_names.ts";

/** Each piece of the core's advice, and the CLI's words for it. */
const ADVICE: readonly (readonly [string, string])[] = [
  [TLS_ADVICE, "trust the registry's CA with --ca-cert FILE, or skip verification with --skip-tls"],
  [
    NO_CREDENTIALS_ADVICE,
    "pass credentials with -u USER and --password-stdin, or log in with docker login",
  ],
  [ONE_REQUEST_ADVICE, "use --no-chunked to upload in one request"],
  [EITHER_NAME_SELECTS, "--image matches either"],
];

/** `text` (an error's message) with the core's advice said in terms of flags. */
export function inCliTerms(text: string): string {
  let result = text;
  for (const [core, cli] of ADVICE) result = result.replaceAll(core, cli);
  return result;
}

/** An error (or anything thrown) as one line of text, its advice in terms of flags. */
export function describeError(error: unknown): string {
  return inCliTerms(error instanceof Error ? error.message : String(error));
}

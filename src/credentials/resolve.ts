/**
 * Which credentials a push uses, in the order docker users expect: `-p`, then
 * `--password-stdin`, then `DOCKER_PUSHER_PASSWORD` (all resolved into the settings), then
 * docker's own configuration (credential helpers and `config.json`).
 */
import { UsageError } from "../errors.ts";
import type { Credentials } from "../registry/auth.ts";
import { type CredentialSystem, dockerConfigCredentials } from "./docker_config.ts";

export interface ResolvedCredentials {
  credentials: Credentials | undefined;
  /** Where they came from, for `--verbose` (never the secret itself). */
  source: string;
}

export interface ExplicitCredentials {
  username: string | undefined;
  password: string | undefined;
  /** `flag`, `stdin`, `env` or `url`, when a password was given. */
  passwordSource: string | undefined;
}

/** Picks the credentials for `registry`; docker's config only when none were given. */
export async function resolveCredentials(
  explicit: ExplicitCredentials,
  registry: string,
  system: CredentialSystem,
): Promise<ResolvedCredentials> {
  const { username, password } = explicit;
  if (username !== undefined && password !== undefined) {
    return { credentials: { username, password }, source: describeSource(explicit.passwordSource) };
  }
  const found = await dockerConfigCredentials(registry, system);
  if (username === undefined) {
    return found ?? { credentials: undefined, source: "none (anonymous)" };
  }
  // A username alone: docker's stored secret for that same user completes it.
  if (found && found.credentials.username === username) return found;
  throw new UsageError(`No password for user "${username}" at ${registry}`, {
    hint: "Pass --password-stdin, set DOCKER_PUSHER_PASSWORD, or run docker login for it",
  });
}

function describeSource(source: string | undefined): string {
  switch (source) {
    case "flag":
      return "-p/--password";
    case "stdin":
      return "--password-stdin";
    case "env":
      return "DOCKER_PUSHER_PASSWORD";
    case "url":
      return "the repository URL";
    default:
      return "the command line";
  }
}

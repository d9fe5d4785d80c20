/**
 * Which credentials a push uses, in the order docker users expect: those given explicitly (the
 * caller resolves which: the CLI takes its flags, then its variables, then the target URL's),
 * then docker's own configuration (credential helpers and `config.json`).
 *
 * Docker's configuration is read only when a registry asks for credentials, as docker does:
 * a push to a registry open to all never depends on a store that may be broken (a
 * `credsStore` copied from another machine whose helper is not installed here).
 */
import { InvalidOptionError } from "../errors.ts";
import type { Credentials } from "../registry/credentials.ts";
import {
  CredentialStoreError,
  type CredentialSystem,
  dockerConfigCredentials,
  type FoundCredentials,
} from "./docker_config.ts";

/** The credentials for a push: known now, or docker's, looked up if the registry asks. */
export type CredentialChoice =
  | {
    kind: "given";
    credentials: Credentials;
    /**
     * Where docker's configuration had them, for a verbose log (never the secret itself);
     * absent for the explicit ones, whose source the caller knows.
     */
    source?: string;
  }
  | {
    kind: "docker-config";
    /**
     * Reads docker's configuration (and runs its credential helper); undefined when it holds
     * nothing for the registry. Throws {@linkcode CredentialStoreError} when it cannot be read.
     */
    lookup: () => Promise<FoundCredentials | undefined>;
  };

/** The username and password given explicitly; where they came from is the caller's to say. */
export interface ExplicitCredentials {
  username: string | undefined;
  password: string | undefined;
}

/**
 * Picks the credentials for `registry`. Explicit ones are used as given; a username alone is
 * completed now by docker's stored secret for that same user (or is an `InvalidOptionError`);
 * with neither, docker's configuration is deferred to a lookup.
 */
export async function resolveCredentials(
  explicit: ExplicitCredentials,
  registry: string,
  system: CredentialSystem,
): Promise<CredentialChoice> {
  const { username, password } = explicit;
  if (username !== undefined && password !== undefined) {
    return { kind: "given", credentials: { username, password } };
  }
  if (username === undefined) {
    return { kind: "docker-config", lookup: () => dockerConfigCredentials(registry, system) };
  }
  const hint = "Give the password, or store it in docker's configuration (docker login)";
  let found: FoundCredentials | undefined;
  try {
    found = await dockerConfigCredentials(registry, system);
  } catch (error) {
    if (!(error instanceof CredentialStoreError)) throw error;
    throw new InvalidOptionError(
      `No password for user "${username}" at ${registry} (${error.message})`,
      { option: "credentials", reason: "no-password", value: username, hint, cause: error },
    );
  }
  // A username alone: docker's stored secret for that same user completes it.
  if (found && found.credentials.username === username) return { kind: "given", ...found };
  throw new InvalidOptionError(`No password for user "${username}" at ${registry}`, {
    option: "credentials",
    reason: "no-password",
    value: username,
    hint,
  });
}

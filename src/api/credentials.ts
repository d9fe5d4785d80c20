/**
 * The credentials a registry gets from the API: the caller's, else those in the reference, else
 * the `DOCKER_PUSHER_*` variables, else docker's own configuration, looked up only when the
 * registry asks (the command line's order, without its flags).
 */
import { resolveCredentials } from "../credentials/resolve.ts";
import { realCredentialSystem } from "../credentials/system.ts";
import type { CredentialLookup, Credentials } from "../registry/credentials.ts";
import type { ImageReference } from "../image/reference.ts";
import type { RegistryOptions } from "./options.ts";

/** The variables that name a username and password for every registry. */
const USERNAME_VARIABLE = "DOCKER_PUSHER_USERNAME";
const PASSWORD_VARIABLE = "DOCKER_PUSHER_PASSWORD";

/** The credentials (or the lookup run at the registry's first challenge) for `reference`. */
export async function credentialsFor(
  option: RegistryOptions["credentials"],
  reference: ImageReference,
  env: (name: string) => string | undefined,
): Promise<Credentials | CredentialLookup> {
  if (typeof option === "function") {
    return async () => await option(reference.registry);
  }
  if (option !== undefined) return option;
  if (reference.credentials !== undefined) return reference.credentials;
  const username = nonEmpty(env(USERNAME_VARIABLE));
  const password = nonEmpty(env(PASSWORD_VARIABLE));
  const choice = await resolveCredentials(
    { username, password },
    reference.registry,
    realCredentialSystem(env),
  );
  if (choice.kind === "given") return choice.credentials;
  return async () => (await choice.lookup())?.credentials;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === "" ? undefined : value;
}

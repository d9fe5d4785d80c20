/**
 * What a registry is sent to prove who we are, and the lookup that finds it when a registry
 * first asks. Only the types, below everything that uses them: `auth.ts` sends them and imports
 * `token.ts`, which builds token requests from them; `src/credentials/` finds them in docker's
 * config.
 */

/** A username and password, or docker's OAuth2 refresh token (`identitytoken`). */
export type Credentials =
  | { username: string; password: string }
  | { identityToken: string; username?: string };

/**
 * Finds credentials when a registry first asks for them; resolves undefined when there are
 * none. It throws when the store holding them cannot be read (an unparsable config, a missing
 * or failing credential helper): the message names the store and why, never a secret.
 */
export type CredentialLookup = (signal?: AbortSignal) => Promise<Credentials | undefined>;

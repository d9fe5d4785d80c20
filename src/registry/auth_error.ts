/**
 * {@linkcode AuthError}, the refusal of our credentials, and {@linkcode TokenServiceError}, a
 * token service that failed without refusing them, apart from the authenticator that raises
 * them (`auth.ts`), so the answer table's reader (`answer_class.ts`) can know them without
 * importing the client's machinery.
 */
import type { RegistryError } from "./registry_error.ts";

/** The registry refused our credentials (or wants some we don't have). */
export class AuthError extends Error {
  /** Always "AuthError". */
  override name = "AuthError";
  /**
   * The refusal as the registry (or its token service) answered it: status and error codes.
   * Not a `cause`: the message quotes it already, and `--verbose` would say it twice.
   */
  readonly registryError: RegistryError | undefined;
  /** A refusal in our words (`message`), with the registry's answer when there was one. */
  constructor(message: string, options?: ErrorOptions & { registryError?: RegistryError }) {
    super(message, options);
    this.registryError = options?.registryError;
  }
}

/**
 * The token service failed to give us a token, not because it refused the credentials: it
 * answered 5xx or 429 (or the connection dropped) on every attempt the retry policy allows, or
 * answered something no retry can change (404, a body with no token). Retrying the registry
 * request it was for cannot help: the token request was already retried. The authenticator
 * that raised it raises it again at once for every later token request to the same realm.
 */
export class TokenServiceError extends Error {
  /** Always "TokenServiceError". */
  override name = "TokenServiceError";
  /**
   * The token service's last answer (status and codes), when it answered at all. Its
   * `temporary` is false even for a 503: the token request was retried already.
   */
  readonly registryError: RegistryError | undefined;
  /** Token requests made, the first included. */
  readonly attempts: number;
  /** A failure in our words (`message`); the network error, if any, is the `cause`. */
  constructor(
    message: string,
    options: ErrorOptions & { registryError?: RegistryError; attempts: number },
  ) {
    super(message, options);
    this.registryError = options.registryError;
    this.attempts = options.attempts;
  }
}

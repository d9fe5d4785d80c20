/**
 * {@linkcode AuthError}, the refusal of our credentials, apart from the authenticator that
 * raises it (`auth.ts`), so the answer table's reader (`answer_class.ts`) can know it without
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

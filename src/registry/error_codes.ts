/**
 * The distribution spec's error body (`{"errors":[{"code":"BLOB_UNKNOWN","message":…}]}`):
 * its entries and their parser. Below the answer table and {@linkcode RegistryError}, which
 * both read the codes, so neither has to import the other for them.
 *
 * @example Reading the codes of a refusal
 * ```ts
 * import { parseErrorCodes } from "./error_codes.ts";
 *
 * parseErrorCodes('{"errors":[{"code":"DENIED","message":"no"}]}');
 * // [{ code: "DENIED", message: "no" }]
 * ```
 */

/** One entry of the registry's `errors` array. */
export interface DistributionErrorCode {
  /** The code, e.g. `BLOB_UNKNOWN`, `UNAUTHORIZED`, `DENIED`. */
  code: string;
  /** The registry's message for it. */
  message: string;
}

/** Parses the distribution spec's error body, tolerating anything else. */
export function parseErrorCodes(body: string): DistributionErrorCode[] {
  if (body.trim() === "") return [];
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed !== "object" || parsed === null) return [];
    const errors = (parsed as { errors?: unknown }).errors;
    if (!Array.isArray(errors)) return [];
    return errors.flatMap((e): DistributionErrorCode[] => {
      if (typeof e !== "object" || e === null) return [];
      const { code, message } = e as { code?: unknown; message?: unknown };
      if (typeof code !== "string") return [];
      return [{ code, message: typeof message === "string" ? message : "" }];
    });
  } catch {
    return [];
  }
}

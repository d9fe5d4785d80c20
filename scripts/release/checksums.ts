/** `SHA256SUMS` in the format `sha256sum -c` reads: `<64 hex>  <file name>` per line. */
import { createHash } from "node:crypto";

/** What `SHA256SUMS` says of one file. */
export interface FileSum {
  /** The file's name, as `sha256sum -c` looks for it beside `SHA256SUMS`. */
  name: string;
  /** Its sha256, in hex. */
  sha256: string;
  /** Its size in bytes (for the release's report; not part of the file). */
  size: number;
}

/** The sum of `bytes`, named `name`. */
export function fileSum(name: string, bytes: Uint8Array): FileSum {
  return { name, sha256: createHash("sha256").update(bytes).digest("hex"), size: bytes.length };
}

/** The text of a `SHA256SUMS` for `sums`, sorted by name. */
export function sha256sums(sums: readonly FileSum[]): string {
  return [...sums].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    .map((sum) => `${sum.sha256}  ${sum.name}\n`).join("");
}

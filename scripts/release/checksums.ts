/** `SHA256SUMS` in the format `sha256sum -c` reads: `<64 hex>  <file name>` per line. */
import { createHash } from "node:crypto";

/** The lines of a `SHA256SUMS` for `files` (name → bytes), sorted by name. */
export function sha256sums(files: ReadonlyMap<string, Uint8Array>): string {
  return [...files.keys()].sort().map((name) =>
    `${createHash("sha256").update(files.get(name)!).digest("hex")}  ${name}\n`
  ).join("");
}

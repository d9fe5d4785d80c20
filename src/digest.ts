/** sha256 digests, one-shot and streaming (node:crypto hashes incrementally, Web Crypto can't). */
import { createHash, type Hash } from "node:crypto";

/** `sha256:<hex>` of some bytes. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** An incremental sha256 that reports `sha256:<hex>`. */
export class Sha256 {
  #hash: Hash = createHash("sha256");
  update(bytes: Uint8Array): void {
    this.#hash.update(bytes);
  }
  digest(): string {
    return `sha256:${this.#hash.digest("hex")}`;
  }
}

/**
 * 64 lowercase hex digits, the one spelling of a sha256 every check here accepts, as an
 * unanchored RegExp source so that name patterns (`<hex>.tar`, `blobs/sha256/<hex>`) embed it.
 */
export const SHA256_HEX = "[a-f0-9]{64}";

const DIGEST = new RegExp(`^sha256:${SHA256_HEX}$`);
const HEX = new RegExp(`^${SHA256_HEX}$`);
const BLOB_PATH = new RegExp(`^blobs/sha256/(${SHA256_HEX})$`);

/** Whether a string is a sha256 digest we can verify (`sha256:<64 lowercase hex>`). */
export function isSha256Digest(value: string): boolean {
  return DIGEST.test(value);
}

/** Whether a string is a bare sha256 in hex, as saved states hold a hash's prefix. */
export function isSha256Hex(value: string): boolean {
  return HEX.test(value);
}

/** The digest an OCI blob path (`blobs/sha256/<hex>`) names, or undefined for any other path. */
export function digestFromBlobPath(path: string): string | undefined {
  const hex = BLOB_PATH.exec(path)?.[1];
  return hex === undefined ? undefined : `sha256:${hex}`;
}

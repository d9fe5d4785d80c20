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

const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** Whether a string is a sha256 digest we can verify. */
export function isSha256Digest(value: string): boolean {
  return DIGEST.test(value);
}

/** Local verification of a blob: hash every byte and compare with the digest it claims. */
import { Sha256 } from "../digest.ts";
import type { ArchiveBlob } from "../archive/image.ts";
import { digestMismatch } from "../registry/upload_errors.ts";

/** Reads the whole blob and throws if it does not hash to its digest. */
export async function verifyBlob(blob: ArchiveBlob, signal?: AbortSignal): Promise<void> {
  const hash = new Sha256();
  for await (const chunk of blob.read(0, blob.size, signal)) hash.update(chunk);
  if (hash.digest() !== blob.digest) throw digestMismatch(blob);
}

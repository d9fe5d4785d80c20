/** Manifest uploads: exact `Content-Type`, and the registry's digest checked against ours. */
import { sha256Digest } from "../digest.ts";
import type { RegistryClient } from "./client.ts";
import { RegistryError } from "./registry_error.ts";
import { writesRefused } from "./upload_common.ts";

/** Pushes manifest bytes under `reference` (a tag or a digest); returns their digest. */
export async function putManifest(
  client: RegistryClient,
  reference: string,
  mediaType: string,
  bytes: Uint8Array,
): Promise<string> {
  const digest = sha256Digest(bytes);
  let response;
  try {
    response = await client.request({
      method: "PUT",
      url: client.url(`manifests/${reference}`),
      headers: { "Content-Type": mediaType },
      body: bytes,
      expect: [200, 201, 202, 204],
      action: `push manifest ${client.repository}:${reference}`,
    });
  } catch (error) {
    // A read-only registry that has every blob already gets as far as the manifest.
    if (error instanceof RegistryError && error.status === 405) throw writesRefused(client, error);
    throw error;
  }
  await response.discard();
  const reported = response.headers.get("docker-content-digest");
  if (reported && reported !== digest) {
    throw new Error(
      `Registry stored manifest ${client.repository}:${reference} as ${reported}, expected ${digest}`,
    );
  }
  return digest;
}

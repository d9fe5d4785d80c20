/** Manifest uploads: exact `Content-Type`, and the registry's digest checked against ours. */
import { sha256Digest } from "../digest.ts";
import type { RegistryClient } from "./client.ts";
import { answerOf } from "./answer_class.ts";
import { RegistryError } from "./registry_error.ts";
import { writesRefused } from "./upload_errors.ts";

/** Pushes manifest bytes under `reference` (a tag or a digest); returns their digest. */
export async function putManifest(
  client: RegistryClient,
  reference: string,
  mediaType: string,
  bytes: Uint8Array,
): Promise<string> {
  return (await putManifestAnswer(client, reference, mediaType, bytes)).digest;
}

/** What a registry answered to a manifest PUT. */
export interface ManifestPutAnswer {
  /** The manifest's digest (ours, and the registry's when it reported one). */
  digest: string;
  /**
   * `OCI-Subject`: a registry with the referrers API names the pushed manifest's `subject`
   * here; without it, the pusher keeps the fallback tag (see `referrers.ts`).
   */
  ociSubject: string | undefined;
}

/**
 * {@linkcode putManifest}, also returning what the answer said of the manifest's subject;
 * `headers` go with the PUT (`If-Match` for the fallback tag, see `referrers_fallback.ts`).
 */
export async function putManifestAnswer(
  client: RegistryClient,
  reference: string,
  mediaType: string,
  bytes: Uint8Array,
  headers: Record<string, string> = {},
): Promise<ManifestPutAnswer> {
  const digest = sha256Digest(bytes);
  let response;
  try {
    response = await client.request({
      method: "PUT",
      url: client.url(`manifests/${reference}`),
      headers: { ...headers, "Content-Type": mediaType },
      body: bytes,
      expect: [200, 201, 202, 204],
      action: `push manifest ${client.repository}:${reference}`,
    });
  } catch (error) {
    // A read-only registry that has every blob already gets as far as the manifest.
    if (error instanceof RegistryError && answerOf(error, "write").kind === "writes-refused") {
      throw writesRefused(client, error);
    }
    throw error;
  }
  await response.discard();
  const reported = response.headers.get("docker-content-digest");
  if (reported && reported !== digest) {
    throw new Error(
      `Registry stored manifest ${client.repository}:${reference} as ${reported}, expected ${digest}`,
    );
  }
  return { digest, ociSubject: response.headers.get("oci-subject") ?? undefined };
}

/**
 * Redaction of URLs for logs and error messages. Credentials never reach output: userinfo is
 * dropped, and query values that carry secrets (presigned S3/GCS/Azure URLs, tokens) or opaque
 * upload state are replaced.
 */

const SECRET_KEYS =
  /^(x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|signature|sig|token|access_token|password|secret|key|_state|se|sp|sv|st|skoid|sktid|skt|ske|sks|skv)$/i;

/** Returns the URL as text with userinfo removed and secret-bearing query values replaced. */
export function redactUrl(url: URL | string): string {
  let parsed: URL;
  try {
    parsed = new URL(url.toString());
  } catch {
    return "<invalid URL>";
  }
  parsed.username = "";
  parsed.password = "";
  const params = [...parsed.searchParams.keys()];
  for (const key of new Set(params)) {
    if (SECRET_KEYS.test(key)) parsed.searchParams.set(key, "REDACTED");
  }
  // URLSearchParams re-encoding would turn `sha256:` into `sha256%3A`; keep output readable.
  return parsed.toString().replace(/%3A/gi, ":");
}

/**
 * Upload `Location` handling. Registries return relative or absolute locations, sometimes on
 * another host or path, carrying query state (distribution's `_state=`) that must survive
 * unchanged; each response's Location replaces the previous one.
 */

/** Resolves a `Location` header against the URL of the request that returned it. */
export function resolveLocation(header: string | null, requestUrl: URL, action: string): URL {
  if (header === null || header.trim() === "") {
    throw new Error(`Failed to ${action}: the registry sent no Location header`);
  }
  try {
    return new URL(header.trim(), requestUrl);
  } catch (cause) {
    throw new Error(`Failed to ${action}: the registry sent an invalid Location header`, {
      cause,
    });
  }
}

/**
 * Adds `digest=<digest>` to an upload URL, keeping its existing query byte-for-byte
 * (re-serialising through URLSearchParams would re-encode the registry's opaque state).
 */
export function withDigest(location: URL, digest: string): URL {
  const url = new URL(location);
  const param = `digest=${encodeURIComponent(digest)}`;
  url.search = url.search === "" || url.search === "?" ? `?${param}` : `${url.search}&${param}`;
  return url;
}

/** Parses an upload `Range` header (`0-1023`, tolerating a `bytes=` prefix): next offset. */
export function nextOffsetFromRange(header: string | null): number | undefined {
  if (header === null) return undefined;
  const match = /^(?:bytes=)?\s*(\d+)-(\d+)\s*$/.exec(header.trim());
  if (!match) return undefined;
  // distribution answers `0-0` both for an empty session and for one holding a single byte;
  // resending that byte is harmless, skipping one we never sent is not.
  if (match[2] === "0") return 0;
  return Number(match[2]) + 1;
}

/**
 * The pull's {@linkcode ReferrerLookup} over a real registry: `src/registry/referrers.ts`'s
 * listing (the API, else the fallback tag; a registry without the API is asked once per run)
 * and its HEAD probe of cosign's tags.
 */
import { findCosignTags } from "../registry/referrers_cosign.ts";
import { listReferrers, ReferrersSupport } from "../registry/referrers.ts";
import type { ReferrerLookup } from "./find_referrers.ts";

/**
 * A lookup that remembers, for the run it serves, which registries lack the referrers API
 * (each run starts afresh: a registry may have been upgraded since).
 */
export function registryReferrerLookup(): ReferrerLookup {
  const support = new ReferrersSupport();
  return {
    list: async (client, subject) => {
      const listing = await listReferrers(client, subject, { support });
      return { descriptors: listing.descriptors, bytes: listing.index?.bytes };
    },
    cosignTags: findCosignTags,
  };
}

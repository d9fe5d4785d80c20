import { referrerCounts } from "../../src/cli/referrer_counts.ts";
import { assertEquals } from "../helpers/assert.ts";

Deno.test("referrerCounts: by kind in a fixed order, singular and plural; nothing for none", () => {
  const of = (...kinds: ("signature" | "sbom" | "attestation" | "artifact")[]) =>
    referrerCounts(kinds.map((kind) => ({ kind })));
  assertEquals(of(), undefined);
  assertEquals(of("sbom"), "1 SBOM");
  assertEquals(
    of("attestation", "signature", "sbom", "attestation", "signature"),
    "2 signatures, 1 SBOM, 2 attestations",
  );
  assertEquals(of("artifact", "sbom", "sbom"), "2 SBOMs, 1 other artifact");
});

/**
 * What came along with an image, as the result lines of `pull` and `push` say it:
 * "2 signatures, 1 SBOM, 2 attestations".
 */

/** A referrer as the results describe it: only its kind counts here. */
export interface CountedReferrer {
  kind: "signature" | "sbom" | "attestation" | "artifact";
}

const WORDS: Record<CountedReferrer["kind"], [string, string]> = {
  signature: ["signature", "signatures"],
  sbom: ["SBOM", "SBOMs"],
  attestation: ["attestation", "attestations"],
  artifact: ["other artifact", "other artifacts"],
};

/**
 * The referrers counted by kind, in a fixed order; undefined when there are none.
 *
 * @example
 * ```ts
 * import { referrerCounts } from "./referrer_counts.ts";
 * referrerCounts([{ kind: "signature" }, { kind: "sbom" }, { kind: "signature" }]);
 * // "2 signatures, 1 SBOM"
 * ```
 */
export function referrerCounts(referrers: readonly CountedReferrer[]): string | undefined {
  const parts: string[] = [];
  for (const kind of Object.keys(WORDS) as CountedReferrer["kind"][]) {
    const count = referrers.filter((r) => r.kind === kind).length;
    if (count === 0) continue;
    parts.push(`${count} ${WORDS[kind][count === 1 ? 0 : 1]}`);
  }
  return parts.length === 0 ? undefined : parts.join(", ");
}

/**
 * What refers to the manifests a pull keeps: signatures, SBOMs and attestations, found the
 * ways a registry keeps them (the referrers API, else the fallback tag `sha256-<hex>`, and
 * cosign's `sha256-<hex>.sig|.att|.sbom` tags), and what refers to those in turn (a signature
 * of an SBOM). Each referrer's manifest is fetched and checked against its digest here; its
 * blobs are only described, and downloaded with the layers.
 *
 * Probing costs up to five lookups per manifest, so they run concurrently within a bound, and
 * a registry known to lack the API is not asked again (the lookup remembers it).
 */
import { sha256Digest } from "../digest.ts";
import type { Descriptor } from "../image/descriptor.ts";
import { asObject, parseJson } from "../image/json_guards.ts";
import { artifactTypeOf } from "../image/manifest.ts";
import { MEDIA_TYPES } from "../image/media_types.ts";
import type { Limiter } from "../pool.ts";
import type { ProgressSink } from "../progress/events.ts";
import type { RegistryClient } from "../registry/client.ts";
import { RegistryError } from "../registry/registry_error.ts";
import { ReferrersError } from "../registry/referrers_error.ts";
import {
  type Attachment,
  type CosignSuffix,
  kindOfListed,
  parseReferrerTag,
  type ReferrerKind,
} from "../image/referrer.ts";
import { ImageNotFoundError, PullError } from "./pull_errors.ts";
import { fetchManifest } from "./resolve.ts";

/** A subject's OCI 1.1 referrers as a registry lists them. */
export interface ReferrerListing {
  /** The index's entries, each with `artifactType` and annotations as listed. */
  descriptors: Descriptor[];
  /** The index as served (the referrers API's answer, or the fallback tag's manifest). */
  bytes: Uint8Array | undefined;
}

/** A cosign-style tag that exists, as a `HEAD` answered it. */
export interface CosignTagHit {
  tag: string;
  digest: string;
  mediaType: string;
  size: number;
}

/** How referrers are looked up in a registry (see `src/registry/referrers.ts`). */
export interface ReferrerLookup {
  /** The subject's OCI 1.1 referrers: the API where the registry has it, else the fallback tag. */
  list(client: RegistryClient, subject: string): Promise<ReferrerListing>;
  /** cosign's `.sig`, `.att` and `.sbom` tags of the subject that exist. */
  cosignTags(client: RegistryClient, subject: string): Promise<CosignTagHit[]>;
}

/** One referrer a pull stores: its manifest as served, the blobs it names, what it refers to. */
export interface PulledReferrer {
  mediaType: string;
  digest: string;
  /** The manifest's bytes as served. */
  bytes: Uint8Array;
  /** Its config and layers, downloaded with the image's layers. */
  blobs: Descriptor[];
  /** The manifest it refers to. */
  subject: string;
  kind: ReferrerKind;
  /** The manifest's `artifactType`, else its config's media type. */
  artifactType: string;
  attached: Attachment;
}

/**
 * The list of a subject's OCI 1.1 referrers, stored in the archive as the index at its
 * fallback tag: as served, or made here when it lists buildx attestations of a platform.
 */
export interface ReferrerList {
  subject: string;
  digest: string;
  bytes: Uint8Array;
}

/** Everything found, in a stable order (the archive's layout, and so a resume, depend on it). */
export interface FoundReferrers {
  referrers: PulledReferrer[];
  lists: ReferrerList[];
}

export interface FindReferrersOptions {
  lookup: ReferrerLookup;
  /** Name for messages: `127.0.0.1:5000/app:1`. */
  name: string;
  /**
   * Referrers known without asking, by subject: the buildx attestation entries of a platform
   * picked from its index. They are listed in the subject's referrer list.
   */
  known?: ReadonlyMap<string, readonly Descriptor[]>;
  /** Bounds the lookups and manifest fetches at once (shared by every image of a run). */
  limiter: Limiter;
  sink: ProgressSink;
  signal?: AbortSignal;
}

/**
 * How deep referrers of referrers are followed: a signature of an SBOM is 2. Deeper chains are
 * left behind with a notice rather than followed without end.
 */
export const MAX_REFERRER_DEPTH = 4;

const MAX_REFERRER_BLOBS = 1000;
const SUFFIX_ORDER: readonly CosignSuffix[] = ["sig", "att", "sbom"];

interface Found {
  referrer: PulledReferrer;
  below: Probe;
}

interface Probe {
  list: ReferrerList | undefined;
  found: Found[];
}

/**
 * Finds everything that refers to `subjects` (recursively) in the client's repository. A
 * referrer listed but gone from the registry is left out with a notice, and a registry that
 * refuses a lookup costs that subject's referrers with a warning ({@linkcode orWarn}); a
 * failure to fetch a referrer that is there fails the pull, since an image that arrives
 * silently unsigned is worse than a pull that says why.
 */
export async function findReferrers(
  client: RegistryClient,
  subjects: readonly string[],
  options: FindReferrersOptions,
): Promise<FoundReferrers> {
  const { limiter } = options;
  const warn = (subject: string) => (message: string) =>
    options.sink({
      type: "notice",
      kind: "referrers-left-behind",
      level: "warning",
      digest: subject,
      message: `Referrers of ${subject} in ${options.name} are left out: ${message}`,
    });
  const probed = new Set<string>();
  const probe = async (subject: string, depth: number): Promise<Probe> => {
    options.signal?.throwIfAborted();
    const [listing, tags] = await lookUp(client, subject, options.lookup, limiter, warn(subject));
    const known = (options.known?.get(subject) ?? []).filter((d) =>
      !listing.descriptors.some((l) => l.digest === d.digest)
    );
    const listed = [...listing.descriptors, ...known];
    const list = listed.length === 0
      ? undefined
      : referrerList(subject, listing.bytes, listing.descriptors.length, known);
    const wanted: { descriptor: Descriptor; attached: Attachment; suffix?: CosignSuffix }[] = [
      ...listed.map((descriptor) => ({ descriptor, attached: { by: "subject" } as const })),
      ...[...tags].sort((a, b) => suffixRank(a.tag) - suffixRank(b.tag)).map((hit) => ({
        descriptor: { mediaType: hit.mediaType, digest: hit.digest, size: hit.size },
        attached: { by: "tag", tag: hit.tag } as const,
        ...suffixOf(hit.tag),
      })),
    ];
    const found = await Promise.all(wanted.map(async ({ descriptor, attached, suffix }) => {
      const referrer = await limiter.run(() =>
        fetchReferrer(client, subject, descriptor, attached, suffix, options)
      );
      if (referrer === undefined) return undefined;
      options.sink({
        type: "referrer-pulled",
        digest: referrer.digest,
        subject,
        kind: referrer.kind,
        artifactType: referrer.artifactType,
        ...(attached.by === "tag" ? { tag: attached.tag } : {}),
      });
      // A referrer reached twice (listed and tagged, or a cycle) is probed once.
      if (probed.has(referrer.digest)) return { referrer, below: { list: undefined, found: [] } };
      probed.add(referrer.digest);
      if (depth + 1 > MAX_REFERRER_DEPTH) {
        options.sink({
          type: "notice",
          kind: "referrers-left-behind",
          digest: referrer.digest,
          message: `Referrers of ${referrer.digest} (${
            depth + 1
          } levels below the image) are not followed`,
        });
        return { referrer, below: { list: undefined, found: [] } };
      }
      return { referrer, below: await probe(referrer.digest, depth + 1) };
    }));
    return { list, found: found.filter((f): f is Found => f !== undefined) };
  };
  for (const subject of subjects) probed.add(subject);
  const probes = await Promise.all(subjects.map((subject) => probe(subject, 0)));
  return flatten(probes);
}

/**
 * A registry that refuses to say what refers to a manifest (a route it answers with 400, a
 * malformed fallback index) costs the pull that manifest's referrers, with a warning, not the
 * image: the user sees what was left behind in the notice and in the result's count.
 */
async function orWarn<T>(
  lookup: () => Promise<T>,
  none: T,
  warn: (message: string) => void,
): Promise<T> {
  try {
    return await lookup();
  } catch (error) {
    if (!(error instanceof RegistryError || error instanceof ReferrersError)) throw error;
    warn(error.message);
    return none;
  }
}

/**
 * Both lookups of a subject at once, each within the limiter: its OCI 1.1 referrer listing and
 * its cosign-style tags; a refused lookup counts as none, with `warn` ({@linkcode orWarn}).
 */
function lookUp(
  client: RegistryClient,
  subject: string,
  lookup: ReferrerLookup,
  limiter: Limiter,
  warn: (message: string) => void,
): Promise<[ReferrerListing, CosignTagHit[]]> {
  return Promise.all([
    limiter.run(() =>
      orWarn(() => lookup.list(client, subject), { descriptors: [], bytes: undefined }, warn)
    ),
    limiter.run(() => orWarn(() => lookup.cosignTags(client, subject), [], warn)),
  ]);
}

/** The tree of probes, depth first in listing order, each referrer and list once. */
function flatten(probes: readonly Probe[]): FoundReferrers {
  const referrers: PulledReferrer[] = [];
  const lists: ReferrerList[] = [];
  const seen = new Set<string>();
  const visit = (probe: Probe) => {
    if (probe.list !== undefined && !lists.some((l) => l.subject === probe.list!.subject)) {
      lists.push(probe.list);
    }
    for (const { referrer, below } of probe.found) {
      if (!seen.has(referrer.digest)) {
        seen.add(referrer.digest);
        referrers.push(referrer);
      }
      visit(below);
    }
  };
  probes.forEach(visit);
  return { referrers, lists };
}

/**
 * The subject's referrer list as the archive stores it: the bytes as served when nothing is
 * added to them; else their JSON with the `known` entries appended (every field the registry
 * wrote kept), or a new index listing only those.
 */
function referrerList(
  subject: string,
  served: Uint8Array | undefined,
  listedCount: number,
  known: readonly Descriptor[],
): ReferrerList {
  let bytes: Uint8Array;
  if (served !== undefined && listedCount > 0 && known.length === 0) {
    bytes = served;
  } else {
    let index: Record<string, unknown> = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: [],
    };
    if (served !== undefined && listedCount > 0) {
      index = asObject(parseJson(served), "referrers index");
    }
    const manifests = Array.isArray(index["manifests"]) ? index["manifests"] : [];
    index["manifests"] = [...manifests, ...known];
    bytes = new TextEncoder().encode(JSON.stringify(index));
  }
  return { subject, digest: sha256Digest(bytes), bytes };
}

/** Fetches a referrer's manifest and describes its blobs; undefined when it is gone. */
async function fetchReferrer(
  client: RegistryClient,
  subject: string,
  descriptor: Descriptor,
  attached: Attachment,
  suffix: CosignSuffix | undefined,
  options: FindReferrersOptions,
): Promise<PulledReferrer | undefined> {
  let fetched;
  try {
    fetched = await fetchManifest(client, descriptor.digest, options.name, descriptor.mediaType);
  } catch (error) {
    if (!(error instanceof ImageNotFoundError)) throw error;
    options.sink({
      type: "notice",
      kind: "referrers-left-behind",
      digest: descriptor.digest,
      message: `${descriptor.digest}, listed as referring to ${subject}, is not in ${options.name}`,
    });
    return undefined;
  }
  if (attached.by === "subject" && fetched.bytes.length !== descriptor.size) {
    throw new PullError(
      `${options.name}: referrer ${descriptor.digest} is ${fetched.bytes.length} bytes, its ` +
        `list says ${descriptor.size}`,
    );
  }
  const { manifest } = fetched;
  if (manifest.kind === "index") {
    // An index as an artifact (rare): its manifests would have to come too.
    options.sink({
      type: "notice",
      kind: "referrers-left-behind",
      digest: fetched.digest,
      message: `${fetched.digest}, referring to ${subject}, is an index; it is not stored`,
    });
    return undefined;
  }
  const blobs = [manifest.config, ...manifest.layers];
  if (blobs.length > MAX_REFERRER_BLOBS) {
    throw new PullError(`${options.name}: referrer ${fetched.digest} names ${blobs.length} blobs`);
  }
  // An image manifest always has one: its own `artifactType`, else its config's media type.
  const artifactType = artifactTypeOf(manifest)!;
  return {
    mediaType: fetched.mediaType,
    digest: fetched.digest,
    bytes: fetched.bytes,
    blobs,
    subject,
    kind: kindOfListed(descriptor, artifactType, suffix),
    artifactType,
    attached,
  };
}

function suffixOf(tag: string): { suffix?: CosignSuffix } {
  const suffix = parseReferrerTag(tag)?.suffix;
  return suffix === undefined ? {} : { suffix };
}

function suffixRank(tag: string): number {
  const suffix = parseReferrerTag(tag)?.suffix;
  return suffix === undefined ? SUFFIX_ORDER.length : SUFFIX_ORDER.indexOf(suffix);
}

/**
 * How many referrers `subject` has, without fetching them: for an index a platform was picked
 * from, whose own signatures cannot come along without it. Failures count as none.
 */
export async function countReferrers(
  client: RegistryClient,
  subject: string,
  lookup: ReferrerLookup,
  limiter: Limiter,
): Promise<number> {
  const [listing, tags] = await lookUp(client, subject, lookup, limiter, () => {});
  return listing.descriptors.length + tags.length;
}

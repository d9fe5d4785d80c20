/**
 * The OCI descriptor: what a manifest or an index says about a blob or a manifest it names
 * (its media type, digest and size), with what an index entry or a referrer adds (platform,
 * artifact type, annotations). One type for pull, push, inspect and the archive readers, and one
 * guard that validates it where JSON comes in.
 */
import { asArray, asDigest, asObject, asSize, asString } from "./json_guards.ts";
import { asPlatform, type Platform } from "./platform.ts";

/**
 * The annotation that names an entry of an OCI layout's `index.json`: its tag (image-spec
 * `image-layout.md`), which pull writes and the archive readers read.
 */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

/** A content descriptor (image-spec `descriptor.md`). */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  /** Free-form metadata: buildx's `vnd.docker.reference.*`, OCI's `org.opencontainers.*`. */
  annotations?: Record<string, string>;
  /** The platform an index entry serves. */
  platform?: Platform;
  /** An artifact's type, as a referrer's descriptor in a referrers index gives it. */
  artifactType?: string;
  /** Where else the blob can be fetched (foreign layers of Windows images). */
  urls?: string[];
}

/** Options for {@linkcode asDescriptor}. */
export interface DescriptorOptions {
  /**
   * The media type a descriptor without one gets. Absent: a descriptor must name its media
   * type, as image-spec requires. Older writers left it out of configs and layers.
   */
  defaultMediaType?: string;
}

/**
 * Validates a descriptor, throwing a `JsonShapeError` naming `where` and what is wrong.
 * Annotations that are not strings are dropped (they carry nothing we act on); a `platform`
 * without `os` or `architecture` is left out, as if absent.
 *
 * @example
 * ```ts
 * import { asDescriptor } from "./descriptor.ts";
 *
 * const config = asDescriptor(
 *   { digest: "sha256:" + "a".repeat(64), size: 2 },
 *   "config",
 *   { defaultMediaType: "application/vnd.oci.image.config.v1+json" },
 * );
 * config.mediaType; // "application/vnd.oci.image.config.v1+json"
 * ```
 */
export function asDescriptor(
  value: unknown,
  where: string,
  options: DescriptorOptions = {},
): Descriptor {
  const obj = asObject(value, where);
  const declared = obj["mediaType"];
  const mediaType = (declared === undefined || declared === null || declared === "") &&
      options.defaultMediaType !== undefined
    ? options.defaultMediaType
    : asString(declared, `${where}.mediaType`);
  const descriptor: Descriptor = {
    mediaType,
    digest: asDigest(obj["digest"], `${where}.digest`),
    size: asSize(obj["size"], `${where}.size`),
  };
  const annotations = asAnnotations(obj["annotations"], `${where}.annotations`);
  if (annotations !== undefined) descriptor.annotations = annotations;
  if (obj["platform"] !== undefined && obj["platform"] !== null) {
    const platform = asPlatform(obj["platform"], `${where}.platform`);
    if (platform !== undefined) descriptor.platform = platform;
  }
  if (obj["artifactType"] !== undefined && obj["artifactType"] !== null) {
    descriptor.artifactType = asString(obj["artifactType"], `${where}.artifactType`);
  }
  if (obj["urls"] !== undefined && obj["urls"] !== null) {
    descriptor.urls = asArray(obj["urls"], `${where}.urls`).map((u, i) =>
      asString(u, `${where}.urls[${i}]`)
    );
  }
  return descriptor;
}

/** String annotations of a manifest or descriptor; undefined when it has none. */
export function asAnnotations(
  value: unknown,
  where: string,
): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  const annotations: Record<string, string> = {};
  for (const [key, text] of Object.entries(asObject(value, where))) {
    if (typeof text === "string") annotations[key] = text;
  }
  return Object.keys(annotations).length > 0 ? annotations : undefined;
}

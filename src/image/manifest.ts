/**
 * The parsed form of a manifest or an index, validated once where its bytes come in (from an
 * archive or a registry), then trusted: an {@linkcode ImageManifest} (a config and layers) or an
 * {@linkcode ImageIndex} (a list of manifests), each with what OCI 1.1 adds for referrers
 * (`subject`, `artifactType`, `annotations`). The bytes stay the truth: a manifest is pushed as
 * it was read, and this model only says what it names.
 */
import { asAnnotations, asDescriptor, type Descriptor } from "./descriptor.ts";
import {
  asArray,
  asObject,
  asString,
  type JsonObject,
  JsonShapeError,
  parseJson,
} from "./json_guards.ts";
import { isDockerMediaType, isIndexMediaType, MEDIA_TYPES } from "./media_types.ts";

/** What OCI 1.1 lets a manifest and an index say about what they are and what they refer to. */
interface ArtifactFields {
  /** The manifest this one refers to (it is then a referrer: a signature, an SBOM…). */
  subject?: Descriptor;
  /** What kind of artifact this is; for a manifest, the config's media type says it otherwise. */
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** An image (or artifact) manifest: its config and layers. */
export interface ImageManifest extends ArtifactFields {
  kind: "manifest";
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

/** An image index (or Docker manifest list): the manifests it names. */
export interface ImageIndex extends ArtifactFields {
  kind: "index";
  mediaType: string;
  manifests: Descriptor[];
}

/** A parsed manifest or index. */
export type Manifest = ImageManifest | ImageIndex;

/**
 * Parses and validates manifest bytes. The media type is the document's own `mediaType`, else
 * `mediaTypeHint` (the descriptor that named it, or the registry's `Content-Type`), else what
 * its shape says (`manifests` without `layers` is an index). Throws a `JsonShapeError` whose
 * message starts with `where` (`manifest sha256:ab…`), for bytes that are not UTF-8 JSON, for a
 * Docker schema 1 manifest, and for any field of the wrong shape.
 *
 * Descriptors without a media type get their family's default (older writers left it out of
 * configs and layers); an index entry without one gets the index family's manifest type.
 *
 * @example
 * ```ts
 * import { parseManifest } from "./manifest.ts";
 *
 * const bytes = new TextEncoder().encode(JSON.stringify({
 *   schemaVersion: 2,
 *   mediaType: "application/vnd.oci.image.index.v1+json",
 *   manifests: [],
 * }));
 * const parsed = parseManifest(bytes, undefined, "index.json");
 * parsed.kind; // "index"
 * ```
 */
export function parseManifest(
  bytes: Uint8Array,
  mediaTypeHint: string | undefined,
  where: string,
): Manifest {
  try {
    return parseValue(parseJson(bytes), mediaTypeHint);
  } catch (error) {
    if (error instanceof JsonShapeError) {
      throw new JsonShapeError(`${where}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

/**
 * {@linkcode parseManifest} of a value already parsed from JSON, for a caller that names the
 * document in its own errors: the `JsonShapeError` says only what is wrong.
 */
export function parseManifestValue(value: unknown, mediaTypeHint: string | undefined): Manifest {
  return parseValue(value, mediaTypeHint);
}

function parseValue(value: unknown, hint: string | undefined): Manifest {
  const json = asObject(value, "the top level");
  const schemaVersion = json["schemaVersion"];
  if (
    schemaVersion === 1 ||
    (typeof json["mediaType"] === "string" &&
      json["mediaType"].startsWith("application/vnd.docker.distribution.manifest.v1"))
  ) {
    throw new JsonShapeError(
      "is a Docker schema 1 manifest, which registries no longer accept " +
        "(convert it: skopeo copy --format v2s2)",
    );
  }
  if (schemaVersion !== undefined && schemaVersion !== 2) {
    throw new JsonShapeError("schemaVersion must be 2");
  }
  const mediaType = mediaTypeOf(json, hint);
  const fields = artifactFields(json);
  if (isIndexMediaType(mediaType)) {
    const entryType = isDockerMediaType(mediaType)
      ? MEDIA_TYPES.dockerManifest
      : MEDIA_TYPES.ociManifest;
    const manifests = asArray(json["manifests"], "manifests").map((d, i) =>
      asDescriptor(d, `manifests[${i}]`, { defaultMediaType: entryType })
    );
    return { kind: "index", mediaType, manifests, ...fields };
  }
  const docker = isDockerMediaType(mediaType);
  const config = asDescriptor(json["config"], "config", {
    defaultMediaType: docker ? MEDIA_TYPES.dockerConfig : MEDIA_TYPES.ociConfig,
  });
  const layers = asArray(json["layers"], "layers").map((l, i) =>
    asDescriptor(l, `layers[${i}]`, {
      defaultMediaType: docker ? MEDIA_TYPES.dockerLayer : MEDIA_TYPES.ociLayer,
    })
  );
  return { kind: "manifest", mediaType, config, layers, ...fields };
}

/**
 * The document's own media type, else the hint, else its shape's. A hint that contradicts the
 * shape (an index type for a document with layers or a config) loses to the shape.
 */
function mediaTypeOf(json: JsonObject, hint: string | undefined): string {
  const declared = json["mediaType"];
  if (declared !== undefined && declared !== null && declared !== "") {
    return asString(declared, "mediaType");
  }
  const looksLikeIndex = json["manifests"] !== undefined && json["layers"] === undefined;
  const looksLikeManifest = json["layers"] !== undefined || json["config"] !== undefined;
  if (hint !== undefined && hint !== "" && hint !== "application/json") {
    const contradicts = isIndexMediaType(hint) ? looksLikeManifest : looksLikeIndex;
    if (!contradicts) return hint;
  }
  return looksLikeIndex ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.ociManifest;
}

function artifactFields(json: JsonObject): ArtifactFields {
  const fields: ArtifactFields = {};
  if (json["subject"] !== undefined && json["subject"] !== null) {
    // A subject is a manifest; writers that leave its media type out mean an OCI one.
    fields.subject = asDescriptor(json["subject"], "subject", {
      defaultMediaType: MEDIA_TYPES.ociManifest,
    });
  }
  if (json["artifactType"] !== undefined && json["artifactType"] !== null) {
    fields.artifactType = asString(json["artifactType"], "artifactType");
  }
  const annotations = asAnnotations(json["annotations"], "annotations");
  if (annotations !== undefined) fields.annotations = annotations;
  return fields;
}

/**
 * What an artifact is: a manifest's `artifactType`, else its config's media type (the
 * referrers API lists each referrer so); an index's `artifactType`, if any.
 */
export function artifactTypeOf(manifest: Manifest): string | undefined {
  if (manifest.artifactType !== undefined) return manifest.artifactType;
  return manifest.kind === "manifest" ? manifest.config.mediaType : undefined;
}

/**
 * Image references: what a push target or a pull source names.
 *
 * Accepts a full URL (`https://registry.example.com:5000/team/app:v1`, the form the earlier
 * tool documented) or a docker-style reference (`registry:5000/team/app:1`, `alpine`). A
 * reference without a scheme uses https (a registry on this machine may turn out to speak plain
 * HTTP: see `loopback_scheme.ts`); `docker.io/x` and `x` mean Docker Hub's `library/x`.
 */
import { SHA256_HEX } from "../digest.ts";
import { InvalidOptionError } from "../errors.ts";

/** A parsed push target. */
export interface ImageReference {
  /**
   * Transport scheme: what the user wrote, or https. Plain HTTP otherwise only for a loopback
   * registry named without a scheme that does not speak TLS (see `schemeImplied`).
   */
  scheme: "https" | "http";
  /**
   * The user wrote no scheme (`localhost:5000/app`, `alpine`): `scheme` is the default, and
   * the registry client may reach a registry on this machine over plain HTTP if it does not
   * speak TLS. Absent when the user wrote `http://` or `https://`, which are obeyed exactly.
   */
  schemeImplied?: true;
  /** The registry as users name it (`docker.io`, `harbor.example.com`, `127.0.0.1:5000`). */
  registry: string;
  /** The host[:port] that serves the API (Docker Hub's is `registry-1.docker.io`). */
  apiHost: string;
  /** Repository path, e.g. `library/alpine`. */
  repository: string;
  /** Tag to push; absent when pushing by digest. */
  tag?: string;
  /** Manifest digest the push must produce, when the user named one. */
  digest?: string;
  /** Credentials embedded in a URL (`https://user:pass@host/…`). */
  credentials?: { username: string; password: string };
}

export const DOCKER_HUB = "docker.io";
const DOCKER_HUB_API = "registry-1.docker.io";
const DEFAULT_TAG = "latest";

/** A repository name: components joined by `/` (distribution's grammar; no length limit). */
const REPOSITORY =
  /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
/** A tag as the distribution spec allows it. */
export const TAG_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
/** {@linkcode TAG_PATTERN} in words, for the hint of every refused tag. */
export const TAG_HINT =
  "A tag is 1 to 128 letters, digits, _, . and -, and cannot start with . or -";
const TAG = TAG_PATTERN;
const DIGEST = new RegExp(`^(sha256:${SHA256_HEX}|sha512:[a-f0-9]{128})$`);
const HOST = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?$/;

const HINT = "Use a URL like https://registry.example.com/team/app:1.0 or a reference like " +
  "registry.example.com:5000/team/app:1.0";

/**
 * Parses a push target.
 *
 * @example
 * ```ts
 * parseReference("alpine"); // docker.io, library/alpine, tag latest
 * parseReference("http://127.0.0.1:5000/team/app:1"); // http, 127.0.0.1:5000, team/app, tag 1
 * ```
 */
export function parseReference(input: string): ImageReference {
  const text = input.trim();
  if (text === "") throw invalidReference("The repository URL is empty", { hint: HINT });
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(text);
  if (scheme) return parseUrlForm(text, scheme[1]!.toLowerCase());
  return parseDockerForm(text);
}

function parseUrlForm(text: string, scheme: string): ImageReference {
  if (scheme !== "http" && scheme !== "https") {
    throw invalidReference(`Unsupported scheme "${scheme}://" in the repository URL`, {
      hint: HINT,
    });
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch (cause) {
    throw invalidReference(`Invalid repository URL: ${redactUserinfo(text)}`, {
      hint: HINT,
      cause,
    });
  }
  if (url.search !== "" || url.hash !== "") {
    throw invalidReference("The repository URL must not have a query or fragment", { hint: HINT });
  }
  const path = decode(url.pathname, text).replace(/^\/+/, "").replace(/\/+$/, "");
  if (path === "") {
    throw invalidReference(`The repository URL names no repository: ${url.host}`, { hint: HINT });
  }
  const ref = splitNameTagDigest(path);
  const registry = normalizeHubAlias(url.host);
  const result: ImageReference = {
    scheme,
    registry,
    apiHost: apiHostFor(registry),
    repository: validateRepository(registry === DOCKER_HUB ? hubPath(ref.name) : ref.name),
    ...tagAndDigest(ref),
  };
  if (url.username !== "") {
    result.credentials = {
      username: decode(url.username, text),
      password: decode(url.password, text),
    };
  }
  return result;
}

function parseDockerForm(text: string): ImageReference {
  const ref = splitNameTagDigest(text);
  refuseBareRegistry(text, ref);
  const slash = ref.name.indexOf("/");
  const first = slash === -1 ? "" : ref.name.slice(0, slash);
  // Docker's rule: the first component is a registry host if it has a dot or a port, or is
  // `localhost`; otherwise the whole name is a Docker Hub repository.
  const isHost = first !== "" && (first.includes(".") || first.includes(":") ||
    first === "localhost" || first !== first.toLowerCase());
  const registry = isHost ? normalizeHubAlias(first) : DOCKER_HUB;
  if (isHost && !isUsableHost(first)) {
    throw invalidReference(`Invalid registry host "${first}"`, { hint: HINT });
  }
  const rest = isHost ? ref.name.slice(slash + 1) : ref.name;
  return {
    scheme: "https",
    schemeImplied: true,
    registry,
    apiHost: apiHostFor(registry),
    repository: validateRepository(registry === DOCKER_HUB ? hubPath(rest) : rest),
    ...tagAndDigest(ref),
  };
}

/**
 * Parses the target of a push of every image under its own name: `REGISTRY[/PREFIX]`, as a URL (`https://host:5000/mirror`) or
 * docker-style (`host:5000/mirror`, `host:5000`, or a Docker Hub namespace such as `myorg`).
 * The result's `repository` is the prefix ("" for none); it has no tag or digest.
 */
export function parseRegistryPrefix(input: string): ImageReference {
  const text = input.trim().replace(/\/+$/, "");
  const prefixHint = "A prefix target names a registry and an optional prefix, without a tag: " +
    "registry.example.com:5000/mirror";
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(text);
  // A bare host (`127.0.0.1:5000`, `https://host`) is a registry with no prefix.
  const bare = scheme
    ? /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/]*)$/.exec(text)?.[1]
    : /^[^/]+$/.test(text) && /\.|^localhost(:\d+)?$|:\d{2,5}$/.test(text)
    ? text
    : undefined;
  const withRepo = bare === undefined ? text : `${text}/x`;
  const parsed = parseReference(withRepo);
  const named = splitNameTagDigest(withRepo.replace(/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/]*\//, ""));
  if (named.tag !== undefined || named.digest !== undefined) {
    throw new InvalidOptionError(
      `Every image goes under its own tags, into a registry and prefix; ${input} names one image`,
      { option: "targets", reason: "prefix-names-image", value: input, hint: prefixHint },
    );
  }
  const { tag: _tag, digest: _digest, ...rest } = parsed;
  let repository = bare === undefined ? parsed.repository : "";
  // Docker Hub's single-name repositories live under library/, but a prefix is a namespace.
  if (bare === undefined && parsed.registry === DOCKER_HUB && !scheme) {
    const name = named.name.replace(/^(docker\.io|index\.docker\.io)\//, "");
    repository = validateRepository(name);
  }
  return { ...rest, repository };
}

/**
 * `127.0.0.1:5000`, `localhost:5000`, `registry.example.com:5000/`: a registry with no
 * repository. Docker's grammar would read the first three as Docker Hub's `library/<name>`
 * with the port as a tag, a push nobody means. Refused when the name looks like a host (a dot,
 * or `localhost`) and the "tag" is a port; `redis:7` and `myhost:5000` stay Docker Hub names.
 */
function refuseBareRegistry(text: string, ref: NameParts): void {
  let host: string | undefined;
  if (/^[^/]+\/$/.test(ref.name) && ref.tag === undefined) host = ref.name.slice(0, -1);
  else if (
    !ref.name.includes("/") && ref.tag !== undefined && /^\d{1,5}$/.test(ref.tag) &&
    (ref.name.includes(".") || ref.name === "localhost")
  ) host = `${ref.name}:${ref.tag}`;
  const hostLike = host !== undefined && isUsableHost(host) &&
    (host.includes(".") || host.includes(":") || host === "localhost");
  if (!hostLike) return;
  throw invalidReference(`The target ${text} names a registry but no repository`, {
    hint: `Add the repository and tag: ${host}/app:1.0`,
  });
}

interface NameParts {
  name: string;
  tag: string | undefined;
  digest: string | undefined;
}

function splitNameTagDigest(text: string): NameParts {
  let name = text;
  let digest: string | undefined;
  const at = name.indexOf("@");
  if (at !== -1) {
    digest = name.slice(at + 1);
    name = name.slice(0, at);
    if (!DIGEST.test(digest)) {
      throw invalidReference(`Invalid digest "${digest}"`, {
        hint: "A digest looks like sha256: followed by 64 lowercase hex characters",
      });
    }
  }
  let tag: string | undefined;
  const colon = name.lastIndexOf(":");
  if (colon > name.lastIndexOf("/")) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
    if (!TAG.test(tag)) {
      throw invalidReference(`Invalid tag "${tag}"`, { hint: TAG_HINT });
    }
  }
  return { name, tag, digest };
}

function tagAndDigest(parts: NameParts): { tag?: string; digest?: string } {
  if (parts.digest !== undefined) {
    return parts.tag === undefined ? { digest: parts.digest } : {
      tag: parts.tag,
      digest: parts.digest,
    };
  }
  return { tag: parts.tag ?? DEFAULT_TAG };
}

/**
 * Whether `name` is a repository name as distribution's grammar writes it: lowercase
 * components of letters and digits, separated inside by `.`, `_`, `__` or dashes, joined by
 * `/`. No registry, tag or digest. The grammar only: a reference's repository is also refused
 * over 255 characters ({@linkcode parseReference}).
 *
 * @example
 * ```ts
 * import { isRepositoryName } from "./reference.ts";
 * isRepositoryName("team/base-image"); // true
 * isRepositoryName("Team/Base"); // false
 * isRepositoryName("team//base"); // false
 * ```
 */
export function isRepositoryName(name: string): boolean {
  return REPOSITORY.test(name);
}

function validateRepository(name: string): string {
  if (!isRepositoryName(name)) {
    throw invalidReference(`Invalid repository name "${name}"`, {
      hint: "Repository names are lowercase letters, digits and separators (. _ __ -), " +
        "in components joined by /",
    });
  }
  if (name.length > 255) {
    throw invalidReference(`Repository name is longer than 255 characters`, { hint: HINT });
  }
  return name;
}

/** A host[:port] that a URL can carry unchanged (the URL parser rejects bad IPs and ports). */
function isUsableHost(host: string): boolean {
  if (!HOST.test(host)) return false;
  try {
    return new URL(`https://${host}/`).host !== "";
  } catch {
    return false;
  }
}

function hubPath(name: string): string {
  return name.includes("/") ? name : `library/${name}`;
}

/**
 * Any spelling of Docker Hub's host (`index.docker.io`, `registry-1.docker.io`) as `docker.io`;
 * every other host as it is. The one list of Hub aliases, for references and credential keys.
 */
export function normalizeHubAlias(host: string): string {
  return host === "index.docker.io" || host === DOCKER_HUB_API ? DOCKER_HUB : host;
}

function apiHostFor(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
}

function redactUserinfo(text: string): string {
  // Up to the last "@" before the path: a password may itself contain "@".
  return text.replace(/:\/\/[^/]*@/, "://***@");
}

function decode(part: string, text: string): string {
  try {
    return decodeURIComponent(part);
  } catch (cause) {
    throw invalidReference(
      `Invalid percent-encoding in the repository URL: ${redactUserinfo(text)}`,
      {
        hint: HINT,
        cause,
      },
    );
  }
}

/**
 * `registry/repository[:tag][@digest]`, as users write it, for output. (A registry host with
 * no dot, port or `localhost`, reachable only through a URL target, reads back as a Docker Hub
 * name: docker references cannot say it otherwise.)
 */
export function formatReference(ref: ImageReference): string {
  const base = `${ref.registry}/${ref.repository}`;
  return `${base}${ref.tag !== undefined ? `:${ref.tag}` : ""}${
    ref.digest !== undefined ? `@${ref.digest}` : ""
  }`;
}

/**
 * A name as `docker images` shows it: Docker Hub's `docker.io/` and `library/` dropped
 * (`docker.io/library/alpine:3` → `alpine:3`, `docker.io/example/acc:1.0` → `example/acc:1.0`);
 * other names unchanged.
 */
export function familiarName(name: string): string {
  const slash = name.indexOf("/");
  if (slash === -1 || normalizeHubAlias(name.slice(0, slash)) !== DOCKER_HUB) return name;
  const hub = name.slice(slash + 1);
  if (hub === "") return name;
  return /^library\/[^/]+$/.test(hub.replace(/[:@].*$/, "")) ? hub.slice("library/".length) : hub;
}

/** The base URL of the registry API (`https://host[:port]`). */
export function registryBaseUrl(ref: ImageReference): URL {
  return new URL(`${ref.scheme}://${ref.apiHost}/`);
}

/**
 * Where a registry client for `ref` connects, as `RegistryClientOptions` takes it: the base
 * URL, and whether its scheme was implied (a loopback registry may then speak plain HTTP).
 *
 * @example
 * ```ts
 * import { parseReference, registryEndpoint } from "./reference.ts";
 * registryEndpoint(parseReference("localhost:5000/app:1"));
 * // { baseUrl: new URL("https://localhost:5000/"), schemeImplied: true }
 * ```
 */
export function registryEndpoint(ref: ImageReference): { baseUrl: URL; schemeImplied: boolean } {
  return { baseUrl: registryBaseUrl(ref), schemeImplied: ref.schemeImplied === true };
}

/** A reference that cannot be parsed: the message says why, the hint what would parse. */
function invalidReference(
  message: string,
  options: { hint: string; cause?: unknown },
): InvalidOptionError {
  return new InvalidOptionError(message, {
    option: "targets",
    reason: "invalid-reference",
    ...options,
  });
}

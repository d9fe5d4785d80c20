/**
 * Credentials the way docker stores them: `$DOCKER_CONFIG/config.json` (or
 * `~/.docker/config.json`) with `auths` entries (base64 `auth`, or `username`/`password`,
 * or an OAuth2 `identitytoken`), `credHelpers` per registry and a default `credsStore`, both
 * run as `docker-credential-<name> get`.
 */
import type { Credentials } from "../registry/credentials.ts";
import { DOCKER_HUB, normalizeHubAlias } from "../image/reference.ts";

/** Docker keys Docker Hub's credentials by its v1 index URL. */
export const DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/";

/** What looking credentials up needs from the system, injectable for tests. */
export interface CredentialSystem {
  env: (name: string) => string | undefined;
  /** Reads a file; resolves undefined when it does not exist. */
  readTextFile: (path: string) => Promise<string | undefined>;
  /** Runs `docker-credential-<helper> get` with `serverUrl` on stdin; returns stdout. */
  runHelper: (helper: string, serverUrl: string) => Promise<HelperResult>;
}

export type HelperResult =
  | { ok: true; stdout: string }
  | { ok: false; notFound: boolean; message: string };

/**
 * Docker's credential store cannot be read: an unparsable `config.json`, an `auths` entry that
 * is not base64 `user:password`, a credential helper that is missing, fails or answers
 * nonsense. The message names the file or helper and why, never a secret. Callers decide
 * whether that matters: it does not for a registry that never asks for credentials.
 */
export class CredentialStoreError extends Error {
  /** Always "CredentialStoreError". */
  override name = "CredentialStoreError";
}

/** Credentials found in docker's configuration, with where they came from. */
export interface FoundCredentials {
  credentials: Credentials;
  /** e.g. `~/.docker/config.json auths`, `credential helper "ecr-login"`. */
  source: string;
}

/**
 * Looks up credentials for `registry` (as users name it: `docker.io`, `host:port`).
 *
 * @throws {CredentialStoreError} when the config or a credential helper cannot be read.
 */
export async function dockerConfigCredentials(
  registry: string,
  system: CredentialSystem,
): Promise<FoundCredentials | undefined> {
  const dir = system.env("DOCKER_CONFIG") || `${system.env("HOME") ?? ""}/.docker`;
  const path = `${dir}/config.json`;
  let text: string | undefined;
  try {
    text = await system.readTextFile(path);
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : `Cannot read docker config ${path}`;
    throw new CredentialStoreError(message, { cause });
  }
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    // The parser's message quotes the file, secrets included: keep only where it broke.
    const where = /line \d+ column \d+/.exec(String(error))?.[0];
    throw new CredentialStoreError(
      `Docker config ${path} is not valid JSON${where ? ` (${where})` : ""}`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new CredentialStoreError(`Docker config ${path} is not a JSON object`);
  }
  const config = parsed as Record<string, unknown>;
  const host = configHost(registry);
  const serverUrl = host === DOCKER_HUB ? DOCKER_HUB_CONFIG_KEY : host;

  const helpers = asRecord(config["credHelpers"]);
  const perHost = Object.entries(helpers).find(([key]) => configHost(key) === host);
  const [helperName, setting] = perHost
    ? [perHost[1], `"credHelpers" entry "${perHost[0]}"`]
    : [config["credsStore"], '"credsStore"'];
  if (typeof helperName === "string" && helperName !== "") {
    const found = await fromHelper(helperName, serverUrl, system, `the ${setting} of ${path}`);
    if (found) return found;
  }

  for (const [key, value] of Object.entries(asRecord(config["auths"]))) {
    if (configHost(key) !== host) continue;
    const credentials = fromAuthEntry(asRecord(value), path, key);
    if (credentials) return { credentials, source: `${path} (auths "${key}")` };
  }
  return undefined;
}

/** Runs the helper `configuredBy` names (e.g. `the "credsStore" of ~/.docker/config.json`). */
async function fromHelper(
  helper: string,
  serverUrl: string,
  system: CredentialSystem,
  configuredBy: string,
): Promise<FoundCredentials | undefined> {
  const program = `docker-credential-${helper}`;
  const result = await system.runHelper(helper, serverUrl);
  if (!result.ok) {
    if (result.notFound) return undefined;
    throw new CredentialStoreError(
      `Credential helper ${program} (${configuredBy}) failed: ${result.message}`,
    );
  }
  let reply: Record<string, unknown>;
  try {
    reply = asRecord(JSON.parse(result.stdout));
  } catch {
    throw new CredentialStoreError(
      `Credential helper ${program} (${configuredBy}) printed something that is not JSON`,
    );
  }
  const username = typeof reply["Username"] === "string" ? reply["Username"] : "";
  const secret = typeof reply["Secret"] === "string" ? reply["Secret"] : "";
  if (secret === "") return undefined;
  const source = `credential helper ${program}`;
  // Docker's convention: the username "<token>" marks an OAuth2 refresh token.
  if (username === "<token>") return { credentials: { identityToken: secret }, source };
  return { credentials: { username, password: secret }, source };
}

function fromAuthEntry(
  entry: Record<string, unknown>,
  path: string,
  key: string,
): Credentials | undefined {
  const identityToken = entry["identitytoken"];
  const username = typeof entry["username"] === "string" ? entry["username"] : undefined;
  if (typeof identityToken === "string" && identityToken !== "") {
    return { identityToken, ...(username ? { username } : {}) };
  }
  if (typeof entry["auth"] === "string" && entry["auth"] !== "") {
    let decoded: string;
    try {
      decoded = new TextDecoder().decode(
        Uint8Array.from(atob(entry["auth"]), (c) => c.charCodeAt(0)),
      );
    } catch {
      throw new CredentialStoreError(
        `The "auth" value for "${key}" in ${path} is not valid base64`,
      );
    }
    const colon = decoded.indexOf(":");
    if (colon === -1) {
      throw new CredentialStoreError(
        `The "auth" value for "${key}" in ${path} is not user:password`,
      );
    }
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (username !== undefined && typeof entry["password"] === "string") {
    return { username, password: entry["password"] };
  }
  return undefined;
}

/**
 * The host a config key names, the way docker matches them: scheme and path dropped
 * (`https://host:5000/v2/` → `host:5000`), and every Docker Hub spelling as `docker.io`.
 */
export function configHost(key: string): string {
  const host = key.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").split("/")[0]!.toLowerCase();
  return normalizeHubAlias(host);
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : {};
}

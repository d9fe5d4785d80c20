/**
 * Validation of the JSON that archives and registries carry, done once at the edge so the rest
 * of the code can trust the shapes. Each guard throws a message saying what is wrong and where.
 */
import { isSha256Digest } from "../digest.ts";

export type JsonObject = Record<string, unknown>;

/** The problem found in a JSON document; the caller adds which file it was. */
export class JsonShapeError extends Error {
  override name = "JsonShapeError";
}

export function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new JsonShapeError(`not valid JSON (${(cause as Error).message})`, { cause });
  }
}

export function asObject(value: unknown, where: string): JsonObject {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new JsonShapeError(`${where} must be an object`);
  }
  return value as JsonObject;
}

export function asArray(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new JsonShapeError(`${where} must be an array`);
  return value;
}

export function asString(value: unknown, where: string): string {
  if (typeof value !== "string" || value === "") {
    throw new JsonShapeError(`${where} must be a non-empty string`);
  }
  return value;
}

export function asOptionalString(value: unknown, where: string): string | undefined {
  return value === undefined || value === null ? undefined : asString(value, where);
}

export function asSize(value: unknown, where: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new JsonShapeError(`${where} must be a non-negative integer`);
  }
  return value;
}

const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** A digest we can verify (sha256), as the archive formats we read all use. */
export function asDigest(value: unknown, where: string): string {
  const text = asString(value, where);
  if (!DIGEST.test(text)) throw new JsonShapeError(`${where} is not a digest: "${text}"`);
  if (!isSha256Digest(text)) {
    throw new JsonShapeError(
      text.startsWith("sha256:")
        ? `${where} is not a valid digest (sha256 takes 64 lowercase hex digits): "${text}"`
        : `${where} uses an unsupported digest algorithm: "${text}"`,
    );
  }
  return text;
}

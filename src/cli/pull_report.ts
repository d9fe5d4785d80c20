/**
 * The `pull --json` document: what a pull wrote into which archive, for programs. `pull` cannot
 * take push's `--output json` (its `-o/--output` names the archive), so the document is asked
 * for with `--json`, and stdout then carries it in place of the `<name>@<digest>` lines. The
 * fields are listed in the README ("pull --json"); a test holds them to it.
 */
import { CommanderError } from "commander";
import type { PulledImage, PullResult } from "../api/results.ts";
import { registryErrorIn } from "../registry/registry_error.ts";
import { describeError } from "./core_advice.ts";
import { UsageError } from "./usage_error.ts";

/** Version of the document's layout; bumped only when a field changes meaning or goes. */
export const PULL_SCHEMA_VERSION = 1;

/** What the document of a finished pull is made of. */
export interface PullReportInput {
  /** Each source as the command line gave it, in order (`result.images` follows that order). */
  sources: readonly string[];
  /** The archive as `-o` named it (a path; `-` is refused with `--json`). */
  archive: string;
  result: PullResult;
  durationMs: number;
}

/** The document of a pull that succeeded (see the README for every field). */
export function pullJson(input: PullReportInput): Record<string, unknown> {
  const { result } = input;
  return {
    schemaVersion: PULL_SCHEMA_VERSION,
    success: true,
    durationMs: input.durationMs,
    archive: {
      path: input.archive,
      bytes: result.archiveSize,
      downloaded: result.downloaded,
      reused: result.reused,
    },
    images: result.images.map((image, i) =>
      imageJson(image, input.sources[i] === undefined ? null : withoutPassword(input.sources[i]))
    ),
    errors: [],
  };
}

/** A source as given, less the credentials a URL may carry (`https://user:pass@host/…`). */
export function withoutPassword(source: string): string {
  return source.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, "$1");
}

function imageJson(image: PulledImage, source: string | null): Record<string, unknown> {
  return {
    source,
    name: image.name,
    digest: image.digest,
    platforms: image.platforms,
    referrers: image.referrers.map((r) => ({
      digest: r.digest,
      mediaType: r.mediaType,
      size: r.size,
      kind: r.kind,
      artifactType: r.artifactType,
      subject: r.subject,
      tag: r.tag ?? null,
    })),
  };
}

/**
 * The document of a pull that failed, at whatever stage (a refused flag, a registry's refusal,
 * a full disk): no images, and the error with its kind, message, and the registry's status and
 * error codes when a registry answered. `archive` is the `-o` path when one was given.
 */
export function pullFailure(archive: string | null, error: unknown): Record<string, unknown> {
  return {
    schemaVersion: PULL_SCHEMA_VERSION,
    success: false,
    durationMs: 0,
    archive: { path: archive, bytes: null, downloaded: null, reused: null },
    images: [],
    errors: [pullErrorJson(error)],
  };
}

/** What kind of failure it was: `usage` exits 2, the others 1 (`interrupted`: 130). */
export type PullErrorKind = "usage" | "registry" | "interrupted" | "other";

function pullErrorJson(error: unknown): {
  kind: PullErrorKind;
  message: string;
  status: number | null;
  codes: string[];
} {
  const answer = registryErrorIn(error);
  return {
    kind: errorKind(error, answer !== undefined),
    message: describeError(error),
    status: answer?.status ?? null,
    codes: answer?.codes.map((c) => c.code) ?? [],
  };
}

function errorKind(error: unknown, fromRegistry: boolean): PullErrorKind {
  if (error instanceof UsageError || error instanceof CommanderError) return "usage";
  if (error instanceof DOMException && error.name === "AbortError") return "interrupted";
  return fromRegistry ? "registry" : "other";
}

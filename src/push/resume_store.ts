/**
 * Saved progress of chunked uploads, so a push killed at any moment can be re-run and continue
 * each large blob from where the registry says it stands.
 *
 * One small JSON file per blob upload, keyed by registry, repository and digest, in the user's
 * state directory (`$XDG_STATE_HOME/docker-image-pusher/uploads`, else the platform's
 * equivalent). It holds the upload session's URL and the committed offset, never credentials.
 * Files are written atomically (temp file, then rename) and readable by the owner only.
 */
import { createHash } from "node:crypto";
import { userDir, writeFileAtomic } from "../state_files.ts";

export interface UploadRecord {
  registry: string;
  repository: string;
  digest: string;
  /** The session URL the registry gave us last (its `Location`). */
  location: string;
  /** Bytes the registry had confirmed. */
  offset: number;
  /** For a stream compressed on the fly: the level of each block, to make it again alike. */
  levels?: number[];
  updatedAt: string;
}

/** Where state lives by default on this platform. */
export function defaultStateDir(env: (name: string) => string | undefined): string | undefined {
  return userDir("state", env);
}

/** Saved upload sessions in one directory. */
export class ResumeStore {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = `${stateDir}/uploads`;
  }

  #path(registry: string, repository: string, digest: string): string {
    const key = createHash("sha256").update(`${registry}\n${repository}\n${digest}`).digest("hex");
    return `${this.dir}/${key.slice(0, 32)}.json`;
  }

  /** The saved session for this blob, if any (unreadable or foreign files count as none). */
  async load(
    registry: string,
    repository: string,
    digest: string,
  ): Promise<UploadRecord | undefined> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.#path(registry, repository, digest));
    } catch {
      return undefined;
    }
    try {
      const record = JSON.parse(text) as Partial<UploadRecord>;
      if (
        record.registry !== registry || record.repository !== repository ||
        record.digest !== digest || typeof record.location !== "string" ||
        typeof record.offset !== "number" || !Number.isSafeInteger(record.offset) ||
        record.offset < 0 ||
        (record.levels !== undefined &&
          !(Array.isArray(record.levels) && record.levels.every((l) => Number.isInteger(l))))
      ) {
        return undefined;
      }
      return record as UploadRecord;
    } catch {
      return undefined;
    }
  }

  async save(record: Omit<UploadRecord, "updatedAt">): Promise<void> {
    await Deno.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const path = this.#path(record.registry, record.repository, record.digest);
    const full: UploadRecord = { ...record, updatedAt: new Date().toISOString() };
    await writeFileAtomic(path, JSON.stringify(full));
  }

  async remove(registry: string, repository: string, digest: string): Promise<void> {
    try {
      await Deno.remove(this.#path(registry, repository, digest));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
}

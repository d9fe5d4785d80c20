/**
 * What a pull that stopped has in place: the archive being written (`OUTPUT.partial`, laid out
 * in full from the start) and, beside it, `OUTPUT.partial.json`: for each layer, how many bytes
 * are in place and the sha256 of those bytes. A rerun that lays out the same archive (same
 * manifests, so same names, sizes and digests) re-hashes each saved prefix from the partial
 * file, keeps the prefixes that match, and downloads only the rest.
 *
 * The state never claims more than is in the file: a prefix is recorded only after its bytes
 * were written, and a state file from before a crash only under-counts. It is written
 * atomically (temporary file, then rename). It holds no credentials.
 */
import { createHash } from "node:crypto";
import type { TarLayout } from "./tar_layout.ts";

/** Saved progress of one layer. */
export interface SavedBlob {
  /** Bytes in place from the blob's start. */
  done: number;
  /** sha256 (hex) of those bytes. */
  sha256: string;
}

export interface PartialState {
  version: 1;
  /** {@linkcode layoutFingerprint} of the archive being written. */
  layout: string;
  /** By layer digest. */
  blobs: Record<string, SavedBlob>;
  updatedAt: string;
}

/** The temporary archive and its state file, beside the final path. */
export function partialPaths(output: string): { data: string; state: string } {
  return { data: `${output}.partial`, state: `${output}.partial.json` };
}

/**
 * Identifies the layers' part of a layout: their names, sizes, digests and offsets. Layers come
 * first in the archive, so the small files after them (whose names may differ: the same image
 * pulled through another host name) are rewritten by every run without moving a layer.
 */
export function layoutFingerprint(layout: TarLayout): string {
  const hash = createHash("sha256");
  for (const entry of layout.entries) {
    if (entry.kind !== "blob") continue;
    hash.update(`${entry.name} ${entry.digest} ${entry.size} ${entry.dataOffset}\n`);
  }
  return hash.digest("hex");
}

/**
 * The saved state at `path` if it belongs to this layout; undefined when there is none, it is
 * unreadable, or it describes another archive.
 */
export async function loadPartialState(
  path: string,
  fingerprint: string,
): Promise<PartialState | undefined> {
  let value: unknown;
  try {
    value = JSON.parse(await Deno.readTextFile(path));
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const state = value as Partial<PartialState>;
  if (state.version !== 1 || state.layout !== fingerprint) return undefined;
  if (typeof state.blobs !== "object" || !state.blobs) {
    return undefined;
  }
  const blobs: Record<string, SavedBlob> = {};
  for (const [digest, saved] of Object.entries(state.blobs as Record<string, unknown>)) {
    const { done, sha256 } = (saved ?? {}) as Partial<SavedBlob>;
    if (
      typeof done === "number" && Number.isSafeInteger(done) && done >= 0 &&
      typeof sha256 === "string" && /^[a-f0-9]{64}$/.test(sha256)
    ) blobs[digest] = { done, sha256 };
  }
  return { version: 1, layout: fingerprint, blobs, updatedAt: "" };
}

/** Writes the state atomically. */
export async function savePartialState(
  path: string,
  state: Omit<PartialState, "updatedAt">,
): Promise<void> {
  const temp = `${path}.${crypto.randomUUID()}.tmp`;
  const full: PartialState = { ...state, updatedAt: new Date().toISOString() };
  try {
    await Deno.writeTextFile(temp, JSON.stringify(full), { mode: 0o600 });
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

/**
 * Writes a pull's state file one save at a time. A save asked for while another runs is made
 * once that one ends, and any number of such requests make that one save: progress reported
 * faster than the disk takes the file never queues saves behind each other, and each save
 * records the progress of the moment it starts (`take` is called then).
 */
export class StateSaver {
  readonly #path: string;
  readonly #take: () => Promise<Omit<PartialState, "updatedAt">>;
  #running: Promise<void> | undefined;
  #again = false;
  #saved: Omit<PartialState, "updatedAt"> | undefined;

  constructor(path: string, take: () => Promise<Omit<PartialState, "updatedAt">>) {
    this.#path = path;
    this.#take = take;
  }

  /** The state last written; undefined until one is. */
  get saved(): Omit<PartialState, "updatedAt"> | undefined {
    return this.#saved;
  }

  /** Saves now, or right after the save under way. Never rejects: see {@linkcode settled}. */
  request(): void {
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#running = this.#saveWhileAsked();
  }

  /** Saves the progress of now and waits until it is written (or failed to be). */
  async flush(): Promise<void> {
    this.request();
    await this.settled();
  }

  /** Waits for every save asked for so far. */
  async settled(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  async #saveWhileAsked(): Promise<void> {
    try {
      do {
        this.#again = false;
        try {
          const state = await this.#take();
          await savePartialState(this.#path, state);
          this.#saved = state;
        } catch {
          // A state file that could not be written only costs a rerun some bytes.
        }
      } while (this.#again);
    } finally {
      this.#running = undefined;
    }
  }
}

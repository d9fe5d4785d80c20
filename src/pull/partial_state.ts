/**
 * What a pull that stopped has in place: the archive being written (`OUTPUT.partial`, laid out
 * in full from the start) and, beside it, `OUTPUT.partial.json`: for each layer, how many bytes
 * are in place and the sha256 of those bytes. A rerun that lays out the same archive (same
 * manifests, so same names, sizes and digests) re-hashes each saved prefix from the partial
 * file, keeps the prefixes that match, and downloads only the rest.
 *
 * The state never claims more than is in the file: a prefix is recorded only after its bytes
 * were written, and a state file from before a crash only under-counts. It holds no
 * credentials.
 *
 * The first save of a run writes the file atomically (temporary file, then rename); later
 * saves overwrite it in place ({@linkcode StateSaver}). Creating and renaming a file wait for
 * ext4's journal, which waits for the archive being flushed to disk: such saves took up to
 * 0.5 s during a flush, an overwrite in place a few milliseconds. Every save of a layout is
 * JSON of the same length (every layer listed, counts padded to a fixed width), so an overwrite
 * never leaves the end of a longer one behind, and one cut short by a kill mixes whole old and
 * new bytes: still JSON, and any layer whose count and hash no longer agree fails its re-hash.
 */
import { createHash } from "node:crypto";
import { isSha256Hex } from "../digest.ts";
import { writeFileAtomic } from "../state_files.ts";
import { StateWriteError } from "./pull_errors.ts";
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
      typeof sha256 === "string" && isSha256Hex(sha256)
    ) blobs[digest] = { done, sha256 };
  }
  return { version: 1, layout: fingerprint, blobs, updatedAt: "" };
}

/**
 * The state as JSON whose length depends only on its layout and its layers' digests: counts are
 * padded to the width of the largest safe integer, hashes and times have fixed widths.
 */
export function encodePartialState(state: Omit<PartialState, "updatedAt">): Uint8Array {
  const blobs = Object.entries(state.blobs).map(([digest, { done, sha256 }]) =>
    `${JSON.stringify(digest)}:{"done":${String(done).padStart(16)},"sha256":"${sha256}"}`
  );
  // toISOString always has 24 characters (until the year 10000).
  const updatedAt = new Date().toISOString();
  return new TextEncoder().encode(
    `{"version":1,"layout":${JSON.stringify(state.layout)},"updatedAt":"${updatedAt}",` +
      `"blobs":{${blobs.join(",")}}}\n`,
  );
}

/**
 * Writes the state atomically; a failure is a {@linkcode StateWriteError} naming `path` and
 * why (the system's own error names no path, or the temporary file's).
 */
export async function savePartialState(
  path: string,
  state: Omit<PartialState, "updatedAt">,
): Promise<void> {
  try {
    await writeFileAtomic(path, encodePartialState(state));
  } catch (error) {
    throw new StateWriteError(path, error);
  }
}

/**
 * Writes a pull's state file one save at a time: the first atomically, the others in place
 * over it (see the module's doc). A save asked for while another runs is made once that one
 * ends, and any number of such requests make that one save: progress reported faster than the
 * disk takes the file never queues saves behind each other, and each save records the progress
 * of the moment it starts (`take` is called then). Close it (`await using`) to close the file.
 */
export class StateSaver implements AsyncDisposable {
  readonly #path: string;
  readonly #take: () => Promise<Omit<PartialState, "updatedAt">>;
  #running: Promise<void> | undefined;
  #again = false;
  #saved: Omit<PartialState, "updatedAt"> | undefined;
  /** The state file as last written (open for overwriting), and its length. */
  #file: { handle: Deno.FsFile; length: number } | undefined;

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

  /** Waits for the saves asked for, then closes the file. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.settled();
    this.#file?.handle.close();
    this.#file = undefined;
  }

  async #write(state: Omit<PartialState, "updatedAt">): Promise<void> {
    const bytes = encodePartialState(state);
    if (this.#file?.length === bytes.length) {
      const { handle } = this.#file;
      await handle.seek(0, Deno.SeekMode.Start);
      for (let at = 0; at < bytes.length;) at += await handle.write(bytes.subarray(at));
      return;
    }
    // The first save, or one of another length (a layer's digest changed: never in one run).
    this.#file?.handle.close();
    this.#file = undefined;
    await savePartialState(this.#path, state);
    this.#file = { handle: await Deno.open(this.#path, { write: true }), length: bytes.length };
  }

  async #saveWhileAsked(): Promise<void> {
    try {
      do {
        this.#again = false;
        try {
          const state = await this.#take();
          await this.#write(state);
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

/**
 * Reading a tar archive front to back, once: for pipes (`docker save app | … -f -`) and
 * decompressed streams, which cannot seek. Each entry is reported as its header streams past;
 * a file's data can then be read as it arrives, or is skipped when the next entry is asked for.
 * Nothing is buffered but the current source chunk, one header block and (at most 1 MiB of)
 * PAX or GNU long-name payload.
 *
 * The rules are those of `indexTar` (`tar_index.ts`), shared through `tar_header.ts`,
 * `tar_sequence.ts` and `tar_names.ts`: the same archives are accepted, with the same entries
 * and names, and refused with the same messages, "archive ends at byte" reading "stream ends
 * at byte". One difference is inherent to a single pass: an entry is reported before its data
 * is read, so an entry that is both cut off and unsafe or duplicated is refused for its name,
 * where `indexTar` reports the truncation.
 */
import { ArchiveError } from "../errors.ts";
import { ChunkCursor, type TarStreamSource } from "./_chunk_cursor.ts";
import { BLOCK_SIZE, hasValidChecksum, isZeroBlock, parseHeader } from "./tar_header.ts";
import { type TarEntry, TarNames } from "./tar_names.ts";
import {
  describeMeta,
  ExtendedHeaders,
  isMetaKind,
  MAX_EXTENDED_HEADER,
  notTar,
  padded,
} from "./tar_sequence.ts";

/** Options for {@linkcode readTarStream}. */
export interface ReadTarStreamOptions {
  /**
   * Stops reading: checked before and after every read from the source, and a pending read
   * of a `ReadableStream` (a stalled pipe) is cancelled at once. Default: none.
   */
  signal?: AbortSignal;
}

/** An entry of a streamed archive: its metadata, and its data to read once. */
export interface StreamedTarEntry extends TarEntry {
  /**
   * The entry's `size` data bytes (a file's content), as they arrive; iterate it at most once,
   * before asking for the next entry. Unread data is skipped when the next entry is asked
   * for. For a fetch body or a pipe, wrap it: `ReadableStream.from(entry.body)`.
   *
   * Each chunk is a view of a chunk of the source that the reader never writes to or reads
   * again: keep or modify it freely. It may share its `ArrayBuffer` with neighbouring bytes of
   * the stream, so don't transfer (detach) `chunk.buffer`; `slice()` it if you need that.
   *
   * @throws {ArchiveError} when the stream ends before `size` bytes (truncated).
   * @throws {TypeError} when iterated twice, or after the reader moved to the next entry.
   */
  readonly body: AsyncIterable<Uint8Array>;
  /**
   * Reads the whole data into one new array: for small entries such as `manifest.json`
   * (check `size` first). Like iterating {@linkcode body}, possible once.
   */
  bytes(): Promise<Uint8Array>;
}

/**
 * Reads the tar archive that `source` yields front to back, in one pass. `label` names the
 * archive in errors (e.g. "-" or "app.tar.gz"). Reading starts when the returned
 * {@linkcode TarStream} is iterated; breaking out of the loop cancels the source.
 *
 * @example
 * ```ts
 * import { readTarStream } from "./tar_stream.ts";
 *
 * const tar = readTarStream(Deno.stdin.readable, "-");
 * const small = new Map<string, Uint8Array>();
 * let layerBytes = 0;
 * for await (const entry of tar) {
 *   if (entry.type !== "file") continue; // links are resolved at the end
 *   if (entry.size <= 1 << 20) {
 *     small.set(entry.name, await entry.bytes());
 *   } else {
 *     for await (const chunk of entry.body) layerBytes += chunk.length; // hash and upload here
 *   }
 * }
 * // skopeo's `<id>/layer.tar` is a symlink to `<digest>.tar`, which may come before or after.
 * const manifest = JSON.parse(
 *   new TextDecoder().decode(small.get(tar.names.resolve("manifest.json").name)),
 * );
 * const firstLayer = tar.names.resolve(manifest[0].Layers[0]).name;
 * ```
 */
export function readTarStream(
  source: TarStreamSource,
  label: string,
  options?: ReadTarStreamOptions,
): TarStream {
  return new TarStream(source, label, options);
}

/** A tar archive read front to back; iterate it once for its entries in archive order. */
export class TarStream implements AsyncIterable<StreamedTarEntry> {
  /** Names the archive in errors. */
  readonly label: string;
  /**
   * Every entry seen so far by normalized name (bodies are not kept). Links may point forward,
   * so resolve them once the iteration has ended: {@linkcode TarNames.resolve}.
   */
  readonly names: TarNames;
  readonly #source: TarStreamSource;
  readonly #signal: AbortSignal | undefined;
  #input: ChunkCursor | undefined;
  #started = false;
  /** The first error, rethrown by the iteration after a body read failed. */
  #failure: unknown = undefined;

  /** Prefer {@linkcode readTarStream}. */
  constructor(source: TarStreamSource, label: string, options?: ReadTarStreamOptions) {
    this.#source = source;
    this.label = label;
    this.#signal = options?.signal;
    this.names = new TarNames(label);
  }

  /** Bytes of the (decompressed) stream consumed so far, for progress. */
  get position(): number {
    return this.#input?.position ?? 0;
  }

  /**
   * Whether the archive ended with an end-of-archive marker (false hints at truncation), or
   * undefined until the iteration has reached the end.
   */
  get endMarker(): boolean | undefined {
    return this.names.endMarker;
  }

  /**
   * The entries in archive order: every entry `indexTar` records (not the root directory, nor
   * a directory repeated), as its header arrives.
   *
   * @throws {ArchiveError} when the stream is not a well-formed tar archive or ends early.
   * @throws {TypeError} when iterated twice.
   */
  [Symbol.asyncIterator](): AsyncIterator<StreamedTarEntry> {
    if (this.#started) throw new TypeError(`Cannot read the tar stream "${this.label}" twice`);
    this.#started = true;
    return this.#entries();
  }

  async *#entries(): AsyncGenerator<StreamedTarEntry, void, undefined> {
    const label = this.label;
    const signal = this.#signal;
    const input = new ChunkCursor(this.#source, label, signal);
    this.#input = input;
    const extended = new ExtendedHeaders(label);
    const scratch = new Uint8Array(BLOCK_SIZE);
    const truncated = (what: string, declared: number) =>
      new ArchiveError(
        label,
        `${what} declares ${declared} bytes but the stream ends at byte ${input.position} (truncated?)`,
      );
    let body: Body | undefined;
    let finished = false;
    try {
      let offset = 0;
      let endMarker = false;
      for (;;) {
        signal?.throwIfAborted();
        const block = await input.block(scratch);
        const got = block.length;
        // A clean end exactly at a header boundary is accepted as the end of the archive.
        if (got === 0) {
          if (offset === 0) throw new ArchiveError(label, "empty stream, not a tar archive");
          break;
        }
        if (got === BLOCK_SIZE && isZeroBlock(block)) {
          // The end marker is two zero blocks; accept one followed by the end of the stream.
          const next = await input.block(scratch);
          if (next.length < BLOCK_SIZE || isZeroBlock(next)) {
            endMarker = true;
            break;
          }
          throw new ArchiveError(
            label,
            `unexpected header after an end-of-archive block at offset ${offset}`,
          );
        }
        if (offset === 0 && (got < BLOCK_SIZE || !hasValidChecksum(block))) {
          throw notTar(label, block);
        }
        if (got < BLOCK_SIZE) {
          throw new ArchiveError(
            label,
            `incomplete header at offset ${offset}: the stream ends at byte ${input.position} (truncated?)`,
          );
        }

        const header = parseHeader(block, offset, label);
        let dataOffset = offset + BLOCK_SIZE;
        // Old GNU sparse headers chain extension blocks, each flagging another at byte 504.
        for (let more = header.sparseExtended; more;) {
          const extension = await input.block(scratch);
          if (extension.length < BLOCK_SIZE) {
            throw new ArchiveError(
              label,
              `incomplete sparse header at offset ${dataOffset} (truncated?)`,
            );
          }
          dataOffset += BLOCK_SIZE;
          more = extension[504] !== 0;
        }
        const kind = header.kind;

        if (isMetaKind(kind)) {
          const what = describeMeta(kind, offset);
          if (header.size > MAX_EXTENDED_HEADER) {
            // Skipped, not buffered, to tell a truncated archive from an oversized header.
            if (await input.skip(header.size) < header.size) throw truncated(what, header.size);
            extended.checkSize(kind, offset, header.size);
          }
          const payload = new Uint8Array(header.size);
          if (await input.read(payload) < header.size) throw truncated(what, header.size);
          extended.apply(kind, offset, payload);
          await input.skip(padded(header.size) - header.size);
          offset = dataOffset + padded(header.size);
          continue;
        }

        const fields = extended.take(header, kind);
        const entry = this.names.add(fields.rawName, {
          type: fields.type,
          size: fields.size,
          headerOffset: offset,
          dataOffset,
          ...(fields.linkName === undefined ? {} : { linkName: fields.linkName }),
        });
        const what = `entry "${fields.rawName}"`;
        let remaining = fields.size;
        if (entry !== undefined) {
          const current = new Body(entry.name, fields.size, input, {
            truncated: () => truncated(what, fields.size),
            fail: (error) => this.#failure ??= error,
          });
          body = current;
          yield { ...entry, body: current, bytes: () => current.bytes() };
          remaining = current.leave();
          body = undefined;
          if (this.#failure !== undefined) throw this.#failure;
        }
        if (await input.skip(remaining) < remaining) throw truncated(what, fields.size);
        // The padding after the last entry may be cut off: indexTar accepts that too.
        await input.skip(padded(fields.size) - fields.size);
        offset = dataOffset + padded(fields.size);
      }
      extended.finish();
      this.names.endMarker = endMarker;
      // Whatever follows the marker (tar pads to a 10 KiB record) is read and ignored, so the
      // writer of a pipe sees no broken pipe and a decompressor checks its trailer.
      if (endMarker) await input.drain();
      finished = true;
    } catch (error) {
      this.#failure ??= error;
      throw error;
    } finally {
      body?.abandon();
      await input.close(finished ? undefined : this.#failure);
    }
  }
}

/** What a {@linkcode Body} reports to its reader. */
interface BodyEvents {
  /** The error for a stream that ends before the body does. */
  truncated(): ArchiveError;
  /** Records a failure that ends the whole iteration. */
  fail(error: unknown): void;
}

/** The data of the current entry: readable once, until the reader moves on. */
class Body implements AsyncIterable<Uint8Array>, AsyncIterator<Uint8Array> {
  readonly #name: string;
  readonly #input: ChunkCursor;
  readonly #events: BodyEvents;
  #remaining: number;
  #claimed = false;
  #reading = false;
  #left = false;

  constructor(name: string, size: number, input: ChunkCursor, events: BodyEvents) {
    this.#name = name;
    this.#remaining = size;
    this.#input = input;
    this.#events = events;
  }

  /** Ends reading: returns how many data bytes are left unread (to skip). */
  leave(): number {
    if (this.#reading) {
      throw new TypeError(
        `Cannot move past "${this.#name}" while its body is being read: await each read first`,
      );
    }
    this.#left = true;
    return this.#remaining;
  }

  /** Ends reading when the iteration is over, whatever state the body is in. */
  abandon(): void {
    this.#left = true;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    this.#claim();
    return this;
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    if (this.#remaining === 0) return { done: true, value: undefined };
    this.#check();
    this.#reading = true;
    try {
      const chunk = await this.#input.take(this.#remaining);
      if (chunk === undefined) throw this.#events.truncated();
      this.#remaining -= chunk.length;
      return { done: false, value: chunk };
    } catch (error) {
      this.#events.fail(error);
      throw error;
    } finally {
      this.#reading = false;
    }
  }

  /** Stopping early is fine: the rest is skipped when the reader moves on. */
  return(): Promise<IteratorResult<Uint8Array>> {
    return Promise.resolve({ done: true, value: undefined });
  }

  async bytes(): Promise<Uint8Array> {
    this.#claim();
    const out = new Uint8Array(this.#remaining);
    this.#reading = true;
    try {
      if (await this.#input.read(out) < out.length) throw this.#events.truncated();
      this.#remaining = 0;
      return out;
    } catch (error) {
      this.#events.fail(error);
      throw error;
    } finally {
      this.#reading = false;
    }
  }

  #claim(): void {
    if (this.#claimed) throw new TypeError(`Cannot read the body of "${this.#name}" twice`);
    this.#check();
    this.#claimed = true;
  }

  #check(): void {
    if (this.#left) {
      throw new TypeError(
        `Cannot read the body of "${this.#name}": the reader has moved past it`,
      );
    }
    if (this.#reading) {
      throw new TypeError(`Cannot read the body of "${this.#name}" concurrently`);
    }
  }
}

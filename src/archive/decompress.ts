/**
 * Opening an image archive from any byte stream (a file, standard input) whatever its
 * compression: the format is told from the first bytes, never the name, and the archive is
 * decoded as it is read, in one pass, with no temporary copy and bounded memory.
 *
 * | format | decoder                                                                      |
 * |--------|------------------------------------------------------------------------------|
 * | tar    | none: the bytes pass through untouched                                       |
 * | gzip   | `node:zlib` gunzip: every member (`pigz`, `cat a.gz b.gz`); zero padding after the last member is allowed, other trailing bytes are an error |
 * | zstd   | `node:zlib` zstd, fed frame by frame (`zstd_frames.ts`): every frame, skippable frames, windows up to 2 GiB (`--long=31`) |
 * | xz     | `xz-decompress` (WebAssembly): every stream, with its zero padding             |
 * | bzip2  | refused, with the command that decompresses it first                         |
 *
 * Trailing garbage after gzip data is an error here. GNU gzip decompresses such a file but
 * warns "decompression OK, trailing garbage ignored" and exits with status 2; it ignores zero
 * padding silently (tape blocks), and so does this decoder. `zstd -d` refuses both.
 *
 * Streams are web `ReadableStream<Uint8Array>`s in and out: they carry backpressure (the
 * output reads the input only as its reader asks for data) and cancellation (cancelling the
 * output cancels the input).
 */
import zlib from "node:zlib";
import { ArchiveError } from "../errors.ts";
import { PeekableReader } from "./peekable_stream.ts";
import { hexPrefix, SNIFF_BYTES, sniffStreamFormat, type StreamFormat } from "./stream_format.ts";
import { decodeXz } from "./xz_decoder.ts";
import { decodeWithZlib, OUTPUT_CHUNK } from "./zlib_decoder.ts";
import { ZstdFrameSplitter } from "./zstd_frames.ts";

/** The formats {@linkcode openDecompressed} decodes. */
export type ArchiveStreamFormat = "tar" | "gzip" | "zstd" | "xz";

/** Options for {@linkcode openDecompressed}. */
export interface OpenDecompressedOptions {
  /** Aborting fails the returned stream with the signal's reason and cancels the source. */
  signal?: AbortSignal;
}

/** What {@linkcode openDecompressed} returns. */
export interface DecompressedArchive {
  /** The format of the source: `tar` when it was not compressed. */
  format: ArchiveStreamFormat;
  /** The uncompressed tar, read on demand. Read it to the end or cancel it. */
  stream: ReadableStream<Uint8Array>;
}

/**
 * zstd frames declare the window they need; libzstd refuses more than 128 MiB unless told.
 * `zstd --long=31` writes up to 2 GiB windows (only when the input is that large), and the
 * memory used is what the frame declares, whatever the archive's size.
 */
const ZSTD_WINDOW_LOG_MAX = 31;

/**
 * Looks at the first bytes of `source` and returns its content as an uncompressed tar
 * stream. `label` names the source in errors (a path, or "standard input").
 *
 * The source is owned from here on: it is read by the returned stream, and cancelled when
 * that stream is cancelled, fails or when this function throws.
 *
 * @throws {ArchiveError} for an empty source, one that is neither a tar nor compressed in a
 * known format, and bzip2. Errors found while decoding (truncation, corruption, trailing
 * garbage) fail the returned stream with an {@linkcode ArchiveError}.
 *
 * @example
 * ```ts
 * import { openDecompressed } from "./decompress.ts";
 * using file = await Deno.open("app.tar.zst");
 * const { format, stream } = await openDecompressed(file.readable, "app.tar.zst");
 * for await (const chunk of stream) {
 *   // the tar's bytes, `format` was "zstd"
 * }
 * ```
 */
export async function openDecompressed(
  source: ReadableStream<Uint8Array>,
  label: string,
  options: OpenDecompressedOptions = {},
): Promise<DecompressedArchive> {
  const { signal } = options;
  const input = new PeekableReader(source);
  let format: StreamFormat;
  try {
    signal?.throwIfAborted();
    const head = await input.peek(SNIFF_BYTES);
    signal?.throwIfAborted();
    format = sniffStreamFormat(head);
    checkSupported(format, head, label);
  } catch (error) {
    await input.cancel(error).catch(() => {});
    throw error;
  }
  switch (format) {
    case "gzip":
      return { format, stream: gunzip(input, label, signal) };
    case "zstd":
      return { format, stream: unzstd(input, label, signal) };
    case "xz":
      return { format, stream: decodeXz(input, label, signal) };
    default:
      return { format: "tar", stream: passThrough(input, signal) };
  }
}

/** Refuses what cannot be decoded, saying what it is. */
function checkSupported(format: StreamFormat, head: Uint8Array, label: string): void {
  switch (format) {
    case "empty":
      throw new ArchiveError(label, "empty input, not an image archive");
    case "unknown":
      throw new ArchiveError(
        label,
        `not a tar archive or a compressed one (first bytes ${hexPrefix(head)})`,
      );
    case "bzip2":
      throw new ArchiveError(
        label,
        "bzip2-compressed archives are not supported; decompress it on the way in, e.g. " +
          "`bzip2 -dc app.tar.bz2 | docker-image-pusher -f - …`",
      );
  }
}

function gunzip(input: PeekableReader, label: string, signal?: AbortSignal) {
  return decodeWithZlib(input, zlib.createGunzip({ chunkSize: OUTPUT_CHUNK }), {
    describeError: (error) => new ArchiveError(label, gzipProblem(error), { cause: error }),
    dataAfterEnd: () => new ArchiveError(label, "unexpected bytes after the gzip data"),
    ...(signal ? { signal } : {}),
  });
}

/** zlib's messages, as `node:zlib` reports them, in words that say what is wrong. */
function gzipProblem(error: Error): string {
  switch (error.message) {
    case "unexpected end of file":
      return "the gzip stream ends early (truncated?)";
    case "incorrect header check":
      // Where a member ended and the next bytes are neither a member nor zero padding.
      return "unexpected bytes after the gzip data, not another gzip member: trailing garbage " +
        "or a corrupt member header";
    case "incorrect data check":
      return "the gzip data is corrupt (CRC mismatch)";
    case "incorrect length check":
      return "the gzip data is corrupt (length mismatch)";
    default:
      return `the gzip data is corrupt (${error.message})`;
  }
}

function unzstd(input: PeekableReader, label: string, signal?: AbortSignal) {
  const frames = new ZstdFrameSplitter(label);
  const decoder = zlib.createZstdDecompress({
    chunkSize: OUTPUT_CHUNK,
    params: { [zlib.constants.ZSTD_d_windowLogMax]: ZSTD_WINDOW_LOG_MAX },
  });
  return decodeWithZlib(input, decoder, {
    split: (batch) => frames.split(batch),
    finish: () => frames.finish(),
    describeError: (error) =>
      new ArchiveError(
        label,
        `the zstd data is corrupt (${error.message.replace(/^Zstd decompress error: /, "")})`,
        { cause: error },
      ),
    dataAfterEnd: () => new ArchiveError(label, "unexpected bytes after the zstd data"),
    ...(signal ? { signal } : {}),
  });
}

/** The tar's bytes as they come, peeked head included. */
function passThrough(input: PeekableReader, signal?: AbortSignal): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      try {
        signal?.throwIfAborted();
        const chunk = await input.read();
        signal?.throwIfAborted();
        if (chunk === null) controller.close();
        else controller.enqueue(chunk);
      } catch (error) {
        await input.cancel(error).catch(() => {});
        throw error;
      }
    },
    cancel: (reason) => input.cancel(reason),
  }, { highWaterMark: 0 });
}

/**
 * Decoding xz streams with `xz-decompress`: xz-embedded compiled to WebAssembly, shipped inside
 * its one JavaScript file, so it runs the same under `deno run`, `deno compile` and a bundle,
 * on every platform, with no native binary.
 *
 * Chosen over `@napi-rs/lzma` (whole-buffer API only, so memory grows with the archive, and a
 * native `.node` binary per platform that `deno compile` must carry) and `lzma-native` /
 * `node-liblzma` (native addons). It decodes about 45 MB/s here (`xz -d`: about 100 MB/s);
 * xz is the slow format whichever decoder reads it.
 *
 * It reads its input on demand, one chunk per output chunk, so backpressure holds. It decodes
 * concatenated xz streams and the zero padding between them, and checks each block's
 * CRC32/CRC64. It decodes one stream at a time per process (a module-wide lock): a second
 * decoder opened while one is running waits for it to finish or be cancelled.
 */
import xzDecompress from "xz-decompress";
import { ArchiveError } from "../errors.ts";
import type { PeekableReader } from "./peekable_stream.ts";

/** xz-embedded's `enum xz_ret` (xz.h), as the package reports it. */
const XZ_ERRORS: Record<number, string> = {
  2: "the xz data uses an integrity check this decoder does not know",
  3: "the xz data needs more memory than this decoder allows",
  4: "the xz data needs a dictionary larger than this decoder allows",
  5: "bytes that are not xz data where another xz stream should start: trailing garbage?",
  6: "the xz data uses options (filters) this decoder does not support",
  7: "the xz data is corrupt (bad checksum or invalid data)",
  8: "the xz stream ends early (truncated?)",
};

/** Decodes an xz stream; decoder errors become {@linkcode ArchiveError}s naming `label`. */
export function decodeXz(
  input: PeekableReader,
  label: string,
  signal?: AbortSignal,
): ReadableStream<Uint8Array> {
  const decoded: ReadableStream<Uint8Array> = new xzDecompress.XzReadableStream(
    input.toStream(),
  );
  const reader = decoded.getReader();
  // The package does not cancel its input when it fails: every way out cancels it here.
  const stop = async (reason: unknown) => {
    signal?.removeEventListener("abort", onAbort);
    await reader.cancel(reason).catch(() => {});
    await input.cancel(reason).catch(() => {});
  };
  const onAbort = () => void stop(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  return new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
        signal?.throwIfAborted();
      } catch (error) {
        await stop(error);
        throw signal?.aborted ? signal.reason : describeXzError(label, error);
      }
      if (result.done) {
        signal?.removeEventListener("abort", onAbort);
        controller.close();
      } else {
        controller.enqueue(result.value);
      }
    },
    cancel: (reason) => stop(reason),
  }, { highWaterMark: 1 });
}

/** The package reports decoder failures as "get_next_output failed with error code N". */
function describeXzError(label: string, error: unknown): unknown {
  const code = error instanceof Error ? /error code (\d+)/.exec(error.message)?.[1] : undefined;
  if (code === undefined) return error;
  const problem = XZ_ERRORS[Number(code)] ?? `the xz data cannot be decoded (error ${code})`;
  return new ArchiveError(label, problem, { cause: error });
}

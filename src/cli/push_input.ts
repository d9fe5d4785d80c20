/**
 * Where a push's archives come from: a tar file, indexed in place, or a stream read once (a pipe,
 * a FIFO, a compressed file), watched so that an input that stalls fails the push.
 */
import { openArchiveStream } from "../archive/stream_archive.ts";
import { ArchiveError } from "../errors.ts";
import type { StreamSource } from "../push/push_stream.ts";

/** Where the archive comes from: a tar file read in place, or a stream read once. */
export type Source = { kind: "file" } | ({ kind: "stream" } & StreamSource);

/**
 * `-` is standard input; a file that starts like gzip, zstd or xz is read as a stream (it can't
 * be indexed in place); anything else is indexed as a tar, which says what is wrong with it.
 * A stream that gives no bytes for `timeoutSeconds` fails (see {@linkcode watchInput}).
 */
export async function openSource(
  file: string,
  context: { stdin: () => ReadableStream<Uint8Array> },
  timeoutSeconds: number,
): Promise<Source> {
  if (file === "-") {
    const label = "standard input";
    return { kind: "stream", label, stream: watchInput(context.stdin(), label, timeoutSeconds) };
  }
  // A pipe given by name (`-f <(docker save app)`) or a compressed file is read as a stream.
  const stream = await openArchiveStream(file);
  if (stream === undefined) return { kind: "file" };
  return { kind: "stream", label: file, stream: watchInput(stream.stream, file, timeoutSeconds) };
}

/**
 * `--timeout` for the input: a read that waits `seconds` for bytes fails the stream, so a pipe
 * whose writer stalls ends the push with an error instead of hanging it. Only waits count: while
 * the push is busy elsewhere nothing is asked of the input, and no clock runs.
 */
function watchInput(
  stream: ReadableStream<Uint8Array>,
  label: string,
  seconds: number,
): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stalled = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new ArchiveError(label, `timed out: no data came in for ${seconds} s`)),
          seconds * 1000,
        );
      });
      try {
        const { done, value } = await Promise.race([reader.read(), stalled]);
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (error) {
        // Settles the read still pending on the stalled input.
        await reader.cancel(error).catch(() => {});
        throw error;
      } finally {
        clearTimeout(timer);
      }
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

/**
 * Standard input as the archive of `push -f -` and `inspect -f -`. At a terminal nothing comes
 * until the user types, so the command says what it waits for instead of waiting silently; and
 * an interruption ends the read at once (a read of a terminal or of a stalled pipe would
 * otherwise hold the program until the next key or byte, and the first Ctrl-C looked ignored).
 */

/** What {@linkcode archiveStdin} needs from the process. */
export interface ArchiveStdinContext {
  /** Standard input. */
  stdin: () => ReadableStream<Uint8Array>;
  stdinIsTerminal: boolean;
  writeErr: (text: string) => void;
  signal: AbortSignal;
}

/** Said on stderr when an archive is to be read from a terminal. */
export const TERMINAL_STDIN_NOTICE =
  "Reading an image archive from standard input, which is a terminal: pipe or redirect one " +
  "in (-f - < app.tar), or press Ctrl-C to stop";

/**
 * `context.stdin` for reading an archive: says so at a terminal, and errors with the signal's
 * reason as soon as it is aborted.
 */
export function archiveStdin(context: ArchiveStdinContext): () => ReadableStream<Uint8Array> {
  return () => {
    if (context.stdinIsTerminal) context.writeErr(`${TERMINAL_STDIN_NOTICE}\n`);
    return abortable(context.stdin(), context.signal);
  };
}

/** `stream`, failing with `signal.reason` when the signal aborts, even mid-read. */
function abortable(
  stream: ReadableStream<Uint8Array>,
  signal: AbortSignal,
): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  const aborted = Promise.withResolvers<never>();
  // Only raced against reads; unobserved when no read is waiting.
  aborted.promise.catch(() => {});
  const onAbort = () => {
    aborted.reject(signal.reason);
    // Not awaited: a read of a terminal may not end until a key comes.
    reader.cancel(signal.reason).catch(() => {});
  };
  const release = () => signal.removeEventListener("abort", onAbort);
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await Promise.race([reader.read(), aborted.promise]);
        if (done) {
          release();
          controller.close();
        } else {
          controller.enqueue(value);
        }
      } catch (error) {
        release();
        throw error;
      }
    },
    cancel(reason) {
      release();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/**
 * A `node:zlib` decoder (gunzip, zstd) run on a worker thread, behind the small part of the
 * decoder interface `zlib_decoder.ts` drives. Decompressing a `.tar.gz` costs about as much CPU
 * as everything else the main thread does for a push (hashing, tar parsing, sending); on the
 * main thread it made a push of a 1.5 GB `.tar.gz` twice as slow as one of the plain tar.
 *
 * The worker is started from a `blob:` URL (like the compression workers), so the same code
 * runs from `deno run`, the bundle and a compiled binary. Flow control keeps memory bounded:
 * input goes over one write at a time (the next after the worker's decoder took it), and the
 * worker sends decoded chunks only against credits, a few at a time.
 */
import type { ZlibLike } from "./zlib_decoder.ts";

/** What the worker decodes. */
export type WorkerCodec = "gzip" | "zstd";

/** Decoded chunks the worker may send ahead of the reader. */
export const DECODED_AHEAD = 4;

const SOURCE = `
import zlib from "node:zlib";
let decoder;
let credit = 0;
// The decoder can end before its input does (zero padding after the last gzip member): the
// main thread hears of it once it has sent all its input, as it would from a local decoder.
let ended = false;
let endAsked = false;
const pump = () => {
  while (credit > 0) {
    const out = decoder.read();
    if (out === null) return;
    credit--;
    // A copy (Buffer's slice() is a view): zlib writes on into the buffer a chunk is part of.
    const chunk = new Uint8Array(out);
    self.postMessage({ type: "data", chunk }, [chunk.buffer]);
  }
};
const fail = (error) =>
  self.postMessage({ type: "error", message: String(error?.message ?? error), code: error?.code });
self.onmessage = (event) => {
  const message = event.data;
  switch (message.type) {
    case "init":
      decoder = message.codec === "gzip"
        ? zlib.createGunzip({ chunkSize: message.chunkSize })
        : zlib.createZstdDecompress({
          chunkSize: message.chunkSize,
          params: { [zlib.constants.ZSTD_d_windowLogMax]: message.windowLogMax },
        });
      decoder.on("readable", pump);
      decoder.on("end", () => {
        ended = true;
        if (endAsked) self.postMessage({ type: "end" });
      });
      decoder.on("error", fail);
      break;
    case "write":
      if (ended) {
        self.postMessage({ type: "written" });
        break;
      }
      try {
        decoder.write(new Uint8Array(message.chunk), () => self.postMessage({ type: "written" }));
      } catch (error) {
        fail(error);
      }
      break;
    case "end":
      endAsked = true;
      if (ended) self.postMessage({ type: "end" });
      else {
        decoder.end();
        pump();
      }
      break;
    case "credit":
      credit += message.n;
      pump();
      break;
  }
};
`;

let sourceUrl: string | undefined;

type Listener = (...args: never[]) => void;

/** The decoder's side on the main thread. */
class WorkerDecoder implements ZlibLike {
  readonly #worker: Worker;
  readonly #queue: Uint8Array[] = [];
  readonly #listeners = new Map<string, Listener[]>();
  #writeDone: (() => void) | undefined;
  #finished = false;
  #endEmitted = false;
  #destroyed = false;

  constructor(codec: WorkerCodec, chunkSize: number, windowLogMax: number) {
    sourceUrl ??= URL.createObjectURL(new Blob([SOURCE], { type: "text/javascript" }));
    this.#worker = new Worker(sourceUrl, { type: "module" });
    this.#worker.onmessage = (event: MessageEvent) => this.#receive(event.data);
    this.#worker.onerror = (event) => {
      event.preventDefault();
      this.#emit("error", new Error(event.message));
    };
    this.#worker.postMessage({ type: "init", codec, chunkSize, windowLogMax });
    this.#worker.postMessage({ type: "credit", n: DECODED_AHEAD });
  }

  on(event: "readable" | "end" | "error", listener: Listener): this {
    this.#listeners.set(event, [...this.#listeners.get(event) ?? [], listener]);
    return this;
  }

  write(chunk: Uint8Array, done: () => void): void {
    // The worker gets a buffer of its own: transferred when the chunk is one, copied otherwise.
    const whole = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength &&
      chunk.buffer instanceof ArrayBuffer;
    const owned = whole ? chunk : chunk.slice();
    this.#writeDone = done;
    this.#worker.postMessage({ type: "write", chunk: owned.buffer }, [
      owned.buffer as ArrayBuffer,
    ]);
  }

  read(): Uint8Array | null {
    const chunk = this.#queue.shift();
    if (chunk !== undefined) {
      this.#worker.postMessage({ type: "credit", n: 1 });
      return chunk;
    }
    if (this.#finished) this.#emitEnd();
    return null;
  }

  end(): void {
    this.#worker.postMessage({ type: "end" });
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#worker.terminate();
  }

  #receive(message: { type: string; chunk?: Uint8Array; message?: string; code?: string }) {
    if (this.#destroyed) return;
    switch (message.type) {
      case "data":
        this.#queue.push(message.chunk!);
        this.#emit("readable");
        return;
      case "written": {
        const done = this.#writeDone;
        this.#writeDone = undefined;
        done?.();
        return;
      }
      case "end":
        this.#finished = true;
        if (this.#queue.length === 0) this.#emitEnd();
        else this.#emit("readable");
        return;
      case "error": {
        const error = new Error(message.message) as Error & { code?: string };
        if (message.code !== undefined) error.code = message.code;
        this.#emit("error", error);
        return;
      }
    }
  }

  #emitEnd(): void {
    if (this.#endEmitted) return;
    this.#endEmitted = true;
    queueMicrotask(() => this.#emit("end"));
  }

  #emit(event: string, ...args: unknown[]): void {
    for (const listener of this.#listeners.get(event) ?? []) {
      (listener as (...a: unknown[]) => void)(...args);
    }
  }
}

/** A decoder for `codec` running on a worker; stop it with `destroy()`. */
export function workerDecoder(
  codec: WorkerCodec,
  chunkSize: number,
  windowLogMax: number,
): ZlibLike {
  return new WorkerDecoder(codec, chunkSize, windowLogMax);
}

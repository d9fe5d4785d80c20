/**
 * The running sha256 of a blob being downloaded, on this thread or on a worker thread.
 *
 * A pull's main thread reads every byte off the network, writes it and hashes it; hashing is
 * the largest share (sha256 runs at ~1.8 GB/s here, so ~0.85 s of a 1.5 GB pull), and with it
 * the main thread was the bottleneck: when the last, largest layer downloads alone, nothing
 * else can use the second core. {@linkcode HashWorker} hashes on a worker thread instead: the
 * 1.5 GB benchmark pull took 2.31 s against 2.42 s (medians of eight runs each, loopback, two
 * cores), for ~15 MB more peak RSS. Bytes in a `SharedArrayBuffer` reach the worker without a
 * copy (a download's batches live in one); others are copied into the message. Copying every
 * batch cost more than it saved: the copies, made and freed on two threads, took that pull's
 * peak RSS from ~95 MB to 230 MB.
 *
 * The worker is started from a `blob:` URL made from a source string, as the compression
 * workers are (`src/compress/worker_source.ts`), so it runs from `deno run`, the bundle and a
 * compiled binary alike.
 */
import { createHash, type Hash } from "node:crypto";

/** A running sha256. */
export interface RunningHash {
  /**
   * Adds `bytes`; resolves once they are hashed. The caller leaves them unchanged until then
   * (a worker may be reading them from shared memory).
   */
  update(bytes: Uint8Array): Promise<void>;
  /** The hex sha256 of the bytes added so far (since the last reset); the hash goes on. */
  hex(): Promise<string>;
  /** Starts again from no bytes. */
  reset(): void;
}

/** A running sha256 on this thread (node:crypto). */
export function localHash(): RunningHash {
  let hash: Hash = createHash("sha256");
  return {
    update(bytes) {
      hash.update(bytes);
      return Promise.resolve();
    },
    hex: () => Promise.resolve(hash.copy().digest("hex")),
    reset() {
      hash = createHash("sha256");
    },
  };
}

/**
 * Protocol: the main thread posts `{ op: "update", id, seq, bytes }` (`bytes` a view of a
 * SharedArrayBuffer, or a copy), `{ op: "hex", id, seq }` and `{ op: "reset", id }`; the worker
 * answers each message with a `seq` as `{ seq }`, `{ seq, hex }` or `{ seq, error }`, in order.
 * It frees each copy once hashed (`transfer(0)`), so no buffer waits for a garbage collection.
 */
const WORKER_SOURCE = `
import { createHash } from "node:crypto";
const hashes = new Map();
const hashOf = (id) => {
  let hash = hashes.get(id);
  if (hash === undefined) hashes.set(id, hash = createHash("sha256"));
  return hash;
};
self.onmessage = ({ data }) => {
  const { op, id, seq, bytes } = data;
  try {
    if (op === "update") {
      hashOf(id).update(bytes);
      if (bytes.buffer instanceof ArrayBuffer && !bytes.buffer.detached) bytes.buffer.transfer(0);
      self.postMessage({ seq });
    } else if (op === "hex") {
      self.postMessage({ seq, hex: hashOf(id).copy().digest("hex") });
    } else if (op === "reset") {
      hashes.delete(id);
    }
  } catch (error) {
    if (seq !== undefined) self.postMessage({ seq, error: String(error?.message ?? error) });
  }
};
`;

type Reply = { seq: number; hex?: string; error?: string };

/**
 * One worker thread hashing for every blob of a pull. Started on the first byte to hash;
 * `close` (or `using`) ends it.
 */
export class HashWorker implements Disposable {
  #worker: Worker | undefined;
  #url: string | undefined;
  #ids = 0;
  #seq = 0;
  #pending = new Map<number, PromiseWithResolvers<string>>();
  #failure: Error | undefined;

  /** A running hash kept on the worker. */
  newHash(): RunningHash {
    const id = ++this.#ids;
    return {
      update: async (bytes) => {
        await this.#request({ op: "update", id, bytes });
      },
      hex: () => this.#request({ op: "hex", id }),
      reset: () => {
        if (this.#failure === undefined) this.#start().postMessage({ op: "reset", id });
      },
    };
  }

  /** Ends the worker; hashing still waited for fails. */
  close(): void {
    this.#worker?.terminate();
    this.#worker = undefined;
    if (this.#url !== undefined) URL.revokeObjectURL(this.#url);
    this.#url = undefined;
    this.#fail(new Error("The hashing worker was closed"));
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #request(message: { op: string; id: number; bytes?: Uint8Array }): Promise<string> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const seq = ++this.#seq;
    const reply = Promise.withResolvers<string>();
    this.#pending.set(seq, reply);
    this.#start().postMessage({ ...message, seq });
    return reply.promise;
  }

  #start(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    this.#url ??= URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
    const worker = new Worker(this.#url, { type: "module" });
    worker.onmessage = ({ data }: MessageEvent<Reply>) => {
      const reply = this.#pending.get(data.seq);
      this.#pending.delete(data.seq);
      if (data.error !== undefined) reply?.reject(new Error(`Hashing failed: ${data.error}`));
      else reply?.resolve(data.hex ?? "");
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.#fail(new Error(`The hashing worker failed: ${event.message}`));
      worker.terminate();
    };
    this.#worker = worker;
    return worker;
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const reply of this.#pending.values()) reply.reject(this.#failure);
    this.#pending.clear();
  }
}

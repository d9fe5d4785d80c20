/**
 * The compression level, fixed or following the link. With `auto`, each block sent reports how
 * long the upload waited for it to be compressed and how long sending it took. Over a few blocks:
 * when the upload spends a real share of its time waiting, compression holds the link back (one
 * level faster); when it hardly waits, the link is the bottleneck and spare CPU buys a smaller
 * stream (one level stronger). On a fast link this settles at the fastest levels; on a slow one
 * at the strongest level the cores keep the link busy with. It never goes below the codec's
 * floor (`LEVELS[codec].autoMin`: no more bytes than GNU `gzip -1` + 3 %), however fast the link.
 *
 * Stronger only while a whole core is left idle: when the upload waits on something else that
 * needs the CPU too (decompressing a `.tar.gz` on the way in), a stronger level would take that
 * CPU from it, and the upload would only wait longer.
 */
import process from "node:process";
import { type Codec, LEVELS } from "./codec.ts";

/** Blocks per decision. */
const SAMPLE = 4;
/** Above this share of time spent waiting for compression: faster. */
const WAITING_TOO_MUCH = 0.2;
/** Below this share: stronger. */
const HARDLY_WAITING = 0.05;
/** Cores that must be left idle for a stronger level. */
const SPARE_CORES = 1;

export interface LevelControlOptions {
  /**
   * How many of the machine's cores this process left idle since the last call (on average).
   * Default: from `process.cpuUsage()` over the wall clock.
   */
  idleCores?: () => number;
}

/** {@linkcode LevelControlOptions.idleCores} from this process's CPU time. */
export function processIdleCores(cores = navigator.hardwareConcurrency || 1): () => number {
  let last = { cpu: cpuMicros(), at: performance.now() };
  return () => {
    const now = { cpu: cpuMicros(), at: performance.now() };
    const wallMs = now.at - last.at;
    const busy = wallMs <= 0 ? 0 : (now.cpu - last.cpu) / 1000 / wallMs;
    last = now;
    return Math.max(0, cores - busy);
  };
}

function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

export class LevelControl {
  readonly codec: Codec;
  readonly adaptive: boolean;
  #level: number;
  #min: number;
  #max: number;
  #waited = 0;
  #sent = 0;
  #blocks = 0;
  #idleCores: () => number;

  constructor(codec: Codec, level: number | "auto", options: LevelControlOptions = {}) {
    this.#idleCores = options.idleCores ?? processIdleCores();
    this.codec = codec;
    const range = LEVELS[codec];
    this.adaptive = level === "auto";
    this.#level = level === "auto" ? range.start : level;
    this.#min = range.autoMin;
    this.#max = range.autoMax;
  }

  /** The level for the next block. */
  get level(): number {
    return this.#level;
  }

  /** A block went out: the upload waited `waitedMs` for it, then spent `sentMs` sending it. */
  observe(waitedMs: number, sentMs: number): void {
    if (!this.adaptive) return;
    this.#waited += Math.max(0, waitedMs);
    this.#sent += Math.max(0, sentMs);
    if (++this.#blocks < SAMPLE) return;
    const share = this.#waited / Math.max(1e-3, this.#waited + this.#sent);
    const idle = this.#idleCores();
    if (share > WAITING_TOO_MUCH) this.#level = Math.max(this.#min, this.#level - 1);
    else if (share < HARDLY_WAITING && idle >= SPARE_CORES) {
      this.#level = Math.min(this.#max, this.#level + 1);
    }
    this.#waited = this.#sent = this.#blocks = 0;
  }
}

/**
 * A tar archive laid out before any of its data exists: every entry's size is known from the
 * manifests (descriptor sizes), so every header and every data offset can be computed up front.
 * Downloads then write each blob at its own offset, in parallel, into one file.
 *
 * Headers are ustar (names here are under 100 bytes: `blobs/sha256/<64 hex>`); sizes of 8 GiB
 * and more use the base-256 encoding GNU tar, Go's archive/tar and Python's tarfile read.
 */

/** One entry to lay out: a directory, or a file whose data is given or downloaded later. */
export type LayoutInput =
  | { kind: "dir"; name: string }
  | { kind: "bytes"; name: string; data: Uint8Array }
  | { kind: "blob"; name: string; digest: string; size: number };

/** An entry with its place in the archive. */
export type LaidOutEntry = LayoutInput & {
  /** Offset of the 512-byte header. */
  headerOffset: number;
  /** Offset of the first data byte. */
  dataOffset: number;
  /** Data bytes (0 for a directory). */
  size: number;
};

export interface TarLayout {
  entries: LaidOutEntry[];
  /** Bytes of the whole archive, the two zero blocks of its end included. */
  totalSize: number;
}

const BLOCK = 512;
const encoder = new TextEncoder();

/** Rounds up to a whole number of 512-byte blocks. */
export function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

/** Computes every entry's offsets, in the order given. */
export function layOut(inputs: readonly LayoutInput[]): TarLayout {
  let at = 0;
  const entries = inputs.map((input): LaidOutEntry => {
    const size = input.kind === "dir" ? 0 : input.kind === "bytes" ? input.data.length : input.size;
    const entry = { ...input, headerOffset: at, dataOffset: at + BLOCK, size };
    at += BLOCK + padded(size);
    return entry;
  });
  return { entries, totalSize: at + 2 * BLOCK };
}

/**
 * The 512-byte ustar header of an entry: owner 0:0, time stamp at the epoch, so the same
 * entries make the same bytes. `mode` defaults to 0755 for a directory, 0644 for a file.
 */
export function tarHeader(
  entry: { kind: LayoutInput["kind"]; name: string; size: number; mode?: number },
): Uint8Array {
  const header = new Uint8Array(BLOCK);
  const name = encoder.encode(
    entry.kind === "dir" && !entry.name.endsWith("/") ? `${entry.name}/` : entry.name,
  );
  if (name.length > 100) {
    throw new RangeError(`Tar entry name longer than 100 bytes: ${entry.name}`);
  }
  header.set(name, 0);
  const dir = entry.kind === "dir";
  writeOctal(header, 100, 8, entry.mode ?? (dir ? 0o755 : 0o644));
  writeOctal(header, 108, 8, 0); // uid
  writeOctal(header, 116, 8, 0); // gid
  writeSize(header, 124, entry.size);
  writeOctal(header, 136, 12, 0); // mtime: the epoch, so the same image makes the same archive
  header[156] = dir ? 0x35 /* 5 */ : 0x30 /* 0 */;
  header.set(encoder.encode("ustar\0"), 257);
  header.set(encoder.encode("00"), 263);
  // The checksum is computed with its own field read as eight spaces.
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  writeOctal(header, 148, 7, sum);
  header[155] = 0x20;
  return header;
}

/** An octal number, zero-padded, NUL-terminated, in a field of `width` bytes. */
function writeOctal(header: Uint8Array, at: number, width: number, value: number): void {
  header.set(encoder.encode(value.toString(8).padStart(width - 1, "0") + "\0"), at);
}

/** The size field: octal up to 8 GiB - 1, else base-256 (first byte 0x80, then big-endian). */
function writeSize(header: Uint8Array, at: number, size: number): void {
  if (size <= 0o77777777777) {
    writeOctal(header, at, 12, size);
    return;
  }
  let value = BigInt(size);
  for (let i = at + 11; i > at; i--) {
    header[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  header[at] = 0x80;
}

/** The zero bytes after an entry's data, up to the next block. */
export function paddingFor(size: number): Uint8Array {
  return new Uint8Array(padded(size) - size);
}

/** The two zero blocks that end an archive. */
export function endOfArchive(): Uint8Array {
  return new Uint8Array(2 * BLOCK);
}

/**
 * A `.tar.gz` of a kit, written here rather than by a `tar` command so that it is the same on
 * every build machine (GNU tar and macOS's bsdtar differ in headers, owners and order): ustar
 * headers, owner 0:0, modes as given, every time stamp at the epoch, entries in the order given,
 * gzip from the runtime's `CompressionStream`.
 */
import type { KitEntry } from "./kit_entry.ts";

const BLOCK = 512;
const encoder = new TextEncoder();

/** The ustar header of one entry. */
function header(entry: KitEntry): Uint8Array {
  const block = new Uint8Array(BLOCK);
  const name = encoder.encode(entry.kind === "dir" ? `${entry.name}/` : entry.name);
  // Kit paths are short (`<kit>/lib/docker-image-pusher.js`, under 90 bytes for any plain
  // version): a longer one is a mistake in the kit's layout, not something to encode.
  if (name.length > 100) {
    throw new RangeError(`Tar entry name longer than 100 bytes: ${entry.name}`);
  }
  block.set(name, 0);
  const size = entry.kind === "dir" ? 0 : entry.data.length;
  if (size > 0o77777777777) throw new RangeError(`Tar entry over 8 GiB: ${entry.name}`);
  octal(block, 100, 8, entry.mode);
  octal(block, 108, 8, 0); // uid
  octal(block, 116, 8, 0); // gid
  octal(block, 124, 12, size);
  octal(block, 136, 12, 0); // mtime
  block[156] = entry.kind === "dir" ? 0x35 /* 5 */ : 0x30 /* 0 */;
  block.set(encoder.encode("ustar\0"), 257);
  block.set(encoder.encode("00"), 263);
  // The checksum is summed with its own field read as eight spaces.
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  octal(block, 148, 7, sum);
  block[155] = 0x20;
  return block;
}

/** An octal number, zero-padded and NUL-terminated, in a field of `width` bytes. */
function octal(block: Uint8Array, at: number, width: number, value: number): void {
  block.set(encoder.encode(value.toString(8).padStart(width - 1, "0") + "\0"), at);
}

/** The gzip-compressed tar of `entries`, in their order. */
export async function tarGz(entries: readonly KitEntry[]): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (const entry of entries) {
    parts.push(header(entry));
    if (entry.kind === "file") {
      parts.push(entry.data);
      const pad = (BLOCK - (entry.data.length % BLOCK)) % BLOCK;
      if (pad > 0) parts.push(new Uint8Array(pad));
    }
  }
  parts.push(new Uint8Array(2 * BLOCK));
  const gzipped = new Blob(parts as Uint8Array<ArrayBuffer>[]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(gzipped).arrayBuffer());
}

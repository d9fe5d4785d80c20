/**
 * A `.tar.gz` of a kit, written here rather than by a `tar` command so that it is the same on
 * every build machine (GNU tar and macOS's bsdtar differ in headers, owners and order): ustar
 * headers, owner 0:0, modes as given, every time stamp at the epoch, entries in the order given,
 * gzip from the runtime's `CompressionStream`.
 */
import { tarHeader } from "../../src/pull/tar_layout.ts";
import type { KitEntry } from "./kit_entry.ts";

const BLOCK = 512;

/** The gzip-compressed tar of `entries`, in their order. */
export async function tarGz(entries: readonly KitEntry[]): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (const entry of entries) {
    // Kit paths are short (`<kit>/lib/docker-image-pusher.js`, under 90 bytes for any plain
    // version): tarHeader refuses a name over 100 bytes, a mistake in the kit's layout.
    parts.push(tarHeader(
      entry.kind === "dir"
        ? { kind: "dir", name: entry.name, size: 0, mode: entry.mode }
        : { kind: "bytes", name: entry.name, size: entry.data.length, mode: entry.mode },
    ));
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

/**
 * A `.zip` of a kit, for Windows, whose Explorer and PowerShell (`Expand-Archive`) open zip and
 * not tar.gz. Written here, as the tar.gz is, so the same files make the same bytes on every
 * build machine: deflate from the runtime's `CompressionStream("deflate-raw")`, UTF-8 names,
 * every time stamp at 1980-01-01 00:00 (zip's epoch), Unix modes in the external attributes (so
 * `unzip` elsewhere keeps the launcher executable). No zip64: a kit is far below 4 GiB, and a
 * bigger entry is refused rather than written wrong.
 */
import type { KitEntry } from "./kit_entry.ts";

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** The CRC-32 (ISO 3309, as zip and gzip use it) of `data`. */
export function crc32(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = CRC_TABLE[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** DOS date of 1980-01-01: (year - 1980) << 9 | month << 5 | day. */
const DOS_DATE = (1 << 5) | 1;
const UTF8_NAMES = 0x0800;
const MADE_BY_UNIX = (3 << 8) | 20;
const NEEDED = 20;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const MSDOS_DIRECTORY = 0x10;
const MAX_32 = 0xffffffff;

/** The zip archive of `entries`, in their order. */
export async function zip(entries: readonly KitEntry[]): Promise<Uint8Array> {
  const encoder = new TextEncoder();
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = encoder.encode(entry.kind === "dir" ? `${entry.name}/` : entry.name);
    const data = entry.kind === "file" ? entry.data : new Uint8Array(0);
    // Directories and empty files are stored; deflate of nothing would still add two bytes.
    const method = data.length === 0 ? 0 : 8;
    const stored = method === 0 ? data : await deflateRaw(data);
    if (data.length > MAX_32 || stored.length > MAX_32 || offset > MAX_32) {
      throw new RangeError(`Zip entry needs zip64, which this writer does not do: ${entry.name}`);
    }
    const crc = crc32(data);
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, NEEDED, true);
    local.setUint16(6, UTF8_NAMES, true);
    local.setUint16(8, method, true);
    local.setUint16(10, 0, true); // time 00:00:00
    local.setUint16(12, DOS_DATE, true);
    local.setUint32(14, crc, true);
    local.setUint32(18, stored.length, true);
    local.setUint32(22, data.length, true);
    local.setUint16(26, name.length, true);
    local.setUint16(28, 0, true); // no extra field
    parts.push(new Uint8Array(local.buffer), name, stored);

    const dir = new DataView(new ArrayBuffer(46));
    dir.setUint32(0, 0x02014b50, true);
    dir.setUint16(4, MADE_BY_UNIX, true);
    dir.setUint16(6, NEEDED, true);
    dir.setUint16(8, UTF8_NAMES, true);
    dir.setUint16(10, method, true);
    dir.setUint16(12, 0, true);
    dir.setUint16(14, DOS_DATE, true);
    dir.setUint32(16, crc, true);
    dir.setUint32(20, stored.length, true);
    dir.setUint32(24, data.length, true);
    dir.setUint16(28, name.length, true);
    // Extra field, comment, disk number and internal attributes: all zero.
    const unixMode = (entry.kind === "dir" ? S_IFDIR : S_IFREG) | entry.mode;
    dir.setUint32(
      38,
      ((unixMode << 16) | (entry.kind === "dir" ? MSDOS_DIRECTORY : 0)) >>> 0,
      true,
    );
    dir.setUint32(42, offset, true);
    central.push(new Uint8Array(dir.buffer), name);
    offset += 30 + name.length + stored.length;
  }
  const centralSize = central.reduce((sum, part) => sum + part.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  // Disk numbers (4, 6) stay 0: one disk.
  end.setUint16(8, entries.length, true);
  end.setUint16(10, entries.length, true);
  end.setUint32(12, centralSize, true);
  end.setUint32(16, offset, true);
  end.setUint16(20, 0, true); // no comment
  return new Uint8Array(
    await new Blob([...parts, ...central, new Uint8Array(end.buffer)] as Uint8Array<ArrayBuffer>[])
      .arrayBuffer(),
  );
}

async function deflateRaw(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("deflate-raw"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

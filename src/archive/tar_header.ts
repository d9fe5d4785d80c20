/**
 * Parsing of one 512-byte tar header block: ustar/PAX, GNU and v7 layouts.
 *
 * Field offsets (POSIX ustar; GNU and v7 agree on the first 257 bytes):
 *
 * | field    | offset | length | note                                      |
 * |----------|--------|--------|-------------------------------------------|
 * | name     | 0      | 100    | NUL-terminated unless it fills the field  |
 * | size     | 124    | 12     | octal, or GNU base-256 (high bit set)     |
 * | chksum   | 148    | 8      | octal                                     |
 * | typeflag | 156    | 1      |                                           |
 * | linkname | 157    | 100    |                                           |
 * | magic    | 257    | 6      | "ustar\0" (ustar) or "ustar " (GNU)       |
 * | version  | 263    | 2      | "00" (ustar) or " \0" (GNU)               |
 * | prefix   | 345    | 155    | ustar only; GNU keeps atime/ctime there   |
 */
import { ArchiveError } from "../errors.ts";

/** Tar works in 512-byte blocks: headers are one block, data is padded to a block. */
export const BLOCK_SIZE = 512;

/** What a header describes. Metadata kinds apply to the entry that follows them. */
export type HeaderKind =
  | "file"
  | "hardlink"
  | "symlink"
  | "directory"
  | "other"
  | "pax"
  | "pax-global"
  | "gnu-long-name"
  | "gnu-long-link";

/** The fields of a header block that indexing needs. */
export interface TarHeader {
  /** Name as stored (ustar prefix joined with "/"), not yet normalized. */
  name: string;
  /** Link target as stored; "" when the field is empty. */
  linkName: string;
  /** Bytes of data following the header (before padding to a block). */
  size: number;
  kind: HeaderKind;
  /** The raw typeflag character ("\0" for the historical NUL flag). */
  typeflag: string;
  format: "ustar" | "gnu" | "v7";
  /** Old GNU sparse files ('S') may be followed by extension header blocks. */
  sparseExtended: boolean;
}

const CHKSUM_OFFSET = 148;
const CHKSUM_LENGTH = 8;
const decoder = new TextDecoder();

/** Whether every byte of the block is zero: the end-of-archive marker. */
export function isZeroBlock(block: Uint8Array): boolean {
  for (const byte of block) if (byte !== 0) return false;
  return true;
}

/**
 * Whether the stored checksum matches the block. The checksum is the sum of all bytes with the
 * chksum field counted as eight spaces; some historical tars (old SunOS, early GNU) summed
 * signed chars, so that variant is accepted too.
 */
export function hasValidChecksum(block: Uint8Array): boolean {
  if (block.length !== BLOCK_SIZE) return false;
  const stored = parseOctal(block.subarray(CHKSUM_OFFSET, CHKSUM_OFFSET + CHKSUM_LENGTH));
  if (stored === undefined) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) {
    const inField = i >= CHKSUM_OFFSET && i < CHKSUM_OFFSET + CHKSUM_LENGTH;
    const byte = inField ? 0x20 : block[i]!;
    unsigned += byte;
    signed += byte >= 0x80 ? byte - 0x100 : byte;
  }
  return stored === unsigned || stored === signed;
}

/**
 * Parses one header block found at `offset` of `archive` (both only for error messages).
 * The caller checks {@linkcode isZeroBlock} first: a zero block is not a header.
 *
 * @throws {ArchiveError} on a bad checksum or an unreadable size field.
 */
export function parseHeader(block: Uint8Array, offset: number, archive: string): TarHeader {
  if (block.length !== BLOCK_SIZE) {
    throw new ArchiveError(archive, `incomplete header at offset ${offset}`);
  }
  if (!hasValidChecksum(block)) {
    throw new ArchiveError(archive, `bad header checksum at offset ${offset}`);
  }
  const format = detectFormat(block);
  const size = parseNumeric(block.subarray(124, 136));
  if (size === undefined) throw new ArchiveError(archive, `invalid size field at offset ${offset}`);

  let name = readString(block, 0, 100);
  if (format === "ustar") {
    // star writes atime/ctime after a 131-byte prefix and marks that with "tar\0" at 508.
    const star = ascii(block, 508, 4) === "tar\0";
    const prefix = readString(block, 345, star ? 131 : 155);
    if (prefix !== "") name = `${prefix}/${name}`;
  }
  const typeflag = String.fromCharCode(block[156]!);
  const kind = kindOf(typeflag);
  return {
    name,
    linkName: readString(block, 157, 100),
    size,
    kind,
    typeflag,
    format,
    // The old GNU sparse header keeps an "isextended" flag at byte 482.
    sparseExtended: format === "gnu" && typeflag === "S" && block[482] !== 0,
  };
}

/**
 * Parses the payload of a PAX extended header: records "<length> <key>=<value>\n", where the
 * decimal length counts the whole record. `what` names the header in error messages.
 *
 * @throws {ArchiveError} on a malformed record (a bad or oversized length, a missing "=").
 */
export function parsePaxRecords(
  data: Uint8Array,
  archive: string,
  what: string,
): Map<string, string> {
  const records = new Map<string, string>();
  const bad = (pos: number, why: string) =>
    new ArchiveError(archive, `malformed record at byte ${pos} of the ${what}: ${why}`);
  let pos = 0;
  while (pos < data.length) {
    // Some writers pad the payload with NULs after the last record.
    if (data.subarray(pos).every((b) => b === 0)) break;
    let space = pos;
    while (
      space < data.length && space - pos < 16 && data[space]! >= 0x30 && data[space]! <= 0x39
    ) {
      space++;
    }
    if (space === pos || data[space] !== 0x20) throw bad(pos, "expected a decimal length");
    const length = Number(decoder.decode(data.subarray(pos, space)));
    const end = pos + length;
    // The smallest record after the length is "k=\n".
    if (length < space - pos + 4 || end > data.length) {
      throw bad(pos, `length ${length} does not fit`);
    }
    if (data[end - 1] !== 0x0a) throw bad(pos, "record does not end with a newline");
    const body = data.subarray(space + 1, end - 1);
    const equals = body.indexOf(0x3d);
    if (equals <= 0) throw bad(pos, 'expected "key=value"');
    records.set(
      decoder.decode(body.subarray(0, equals)),
      decoder.decode(body.subarray(equals + 1)),
    );
    pos = end;
  }
  return records;
}

/** The name in a GNU long name ('L') or long link ('K') payload: NUL-terminated. */
export function parseGnuLongName(payload: Uint8Array): string {
  return readString(payload, 0, payload.length);
}

/**
 * Parses a numeric header field: octal digits (leading spaces allowed, ended by NUL or space,
 * possibly filling the field), or GNU base-256 when the first byte has its high bit set.
 * Returns undefined when the field is malformed, negative or beyond Number.MAX_SAFE_INTEGER.
 */
function parseNumeric(field: Uint8Array): number | undefined {
  const first = field[0];
  if (first !== undefined && (first & 0x80) !== 0) return parseBase256(field);
  return parseOctal(field);
}

function parseBase256(field: Uint8Array): number | undefined {
  // Bit 0x40 of the first byte is the two's-complement sign (GNU writes 0xff for negatives).
  // Sizes cannot be negative.
  if ((field[0]! & 0x40) !== 0) return undefined;
  let value = field[0]! & 0x3f;
  for (let i = 1; i < field.length; i++) {
    value = value * 256 + field[i]!;
    if (value > Number.MAX_SAFE_INTEGER) return undefined;
  }
  return value;
}

function parseOctal(field: Uint8Array): number | undefined {
  let i = 0;
  while (i < field.length && field[i] === 0x20) i++;
  let value = 0;
  let digits = 0;
  for (; i < field.length; i++) {
    const c = field[i]!;
    if (c < 0x30 || c > 0x37) break;
    value = value * 8 + (c - 0x30);
    digits++;
  }
  // Whatever follows the digits must be terminators (NUL or space) only.
  for (; i < field.length; i++) {
    const c = field[i]!;
    if (c !== 0 && c !== 0x20) return undefined;
  }
  // A field of only NULs or spaces is zero (some writers leave unused fields blank),
  // but a field of spaces ending in garbage was rejected above.
  if (digits === 0) return 0;
  return value;
}

function readString(block: Uint8Array, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return decoder.decode(end === -1 ? field : field.subarray(0, end));
}

function detectFormat(block: Uint8Array): TarHeader["format"] {
  const magic = ascii(block, 257, 6);
  // POSIX says version "00", but some writers leave it blank; the prefix field still applies.
  if (magic === "ustar\0") return "ustar";
  // GNU: "ustar  \0" = magic "ustar " + version " \0".
  if (magic === "ustar ") return "gnu";
  return "v7";
}

function ascii(block: Uint8Array, offset: number, length: number): string {
  return String.fromCharCode(...block.subarray(offset, offset + length));
}

function kindOf(typeflag: string): HeaderKind {
  switch (typeflag) {
    case "0":
    case "\0":
    case "7": // contiguous file: a regular file everywhere but on Masscomp
      return "file";
    case "1":
      return "hardlink";
    case "2":
      return "symlink";
    case "5":
      return "directory";
    case "x":
      return "pax";
    case "g":
      return "pax-global";
    case "L":
      return "gnu-long-name";
    case "K":
      return "gnu-long-link";
    default:
      // Devices, FIFOs, GNU sparse/volume/multivolume, vendor extensions.
      return "other";
  }
}

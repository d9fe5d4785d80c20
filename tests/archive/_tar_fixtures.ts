/**
 * Hand-made tar blocks for parser tests: exact control over every field, including the
 * malformed ones real tools refuse to write.
 *
 * @module
 */

import { run } from "../helpers/command.ts";

const encoder = new TextEncoder();

/** Fields of a hand-made header block. Unset fields are what GNU tar writes for a file. */
export interface HeaderFields {
  name?: string;
  /** A number is written as 11 octal digits + NUL; a string or bytes go in the field raw. */
  size?: number | string | Uint8Array;
  /** Default "0". */
  typeflag?: string;
  linkName?: string;
  /** Default "ustar" ("ustar\0" + "00"). */
  format?: "ustar" | "gnu" | "v7";
  /** ustar prefix field. */
  prefix?: string;
  /** Written at the given offset before the checksum is computed. */
  patch?: { offset: number; bytes: Uint8Array };
  /** "signed" sums bytes as signed chars (historical tars); a number is stored as is. */
  checksum?: "unsigned" | "signed" | number;
}

/** Builds one 512-byte header block. */
export function header(fields: HeaderFields = {}): Uint8Array {
  const block = new Uint8Array(512);
  put(block, 0, fields.name ?? "file.txt");
  put(block, 100, "0000644\0");
  put(block, 108, "0000000\0");
  put(block, 116, "0000000\0");
  const size = fields.size ?? 0;
  if (size instanceof Uint8Array) block.set(size, 124);
  else put(block, 124, typeof size === "number" ? octal(size, 11) + "\0" : size);
  put(block, 136, "00000000000\0");
  put(block, 156, fields.typeflag ?? "0");
  put(block, 157, fields.linkName ?? "");
  const format = fields.format ?? "ustar";
  if (format === "ustar") put(block, 257, "ustar\x0000");
  if (format === "gnu") put(block, 257, "ustar  \0");
  if (fields.prefix !== undefined) put(block, 345, fields.prefix);
  if (fields.patch) block.set(fields.patch.bytes, fields.patch.offset);
  const checksum = fields.checksum ?? "unsigned";
  put(block, 148, "        ");
  let sum = 0;
  for (const byte of block) sum += checksum === "signed" && byte >= 0x80 ? byte - 0x100 : byte;
  put(block, 148, octal(typeof checksum === "number" ? checksum : sum, 6) + "\0 ");
  return block;
}

/** A PAX extended header payload with correctly computed record lengths. */
export function paxPayload(records: Record<string, string>): Uint8Array {
  let text = "";
  for (const [key, value] of Object.entries(records)) {
    const body = ` ${key}=${value}\n`;
    let length = encoder.encode(body).length + 1;
    // The length counts its own digits, which may add a digit.
    while (String(length).length + encoder.encode(body).length !== length) length++;
    text += `${length}${body}`;
  }
  return encoder.encode(text);
}

/** A header followed by its data padded to a block; the size field is the data's length. */
export function member(
  fields: HeaderFields,
  data: Uint8Array | string = new Uint8Array(),
): Uint8Array {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  return concat(header({ size: bytes.length, ...fields }), pad(bytes));
}

/** A whole archive: the parts followed by the two zero blocks that end it. */
export function archive(...parts: Uint8Array[]): Uint8Array {
  return concat(...parts, new Uint8Array(1024));
}

/** Pads to a multiple of 512 bytes. */
export function pad(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(data.length / 512) * 512);
  out.set(data);
  return out;
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** A temporary directory removed (with its contents) when disposed. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "archive_test_" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

/** Writes `bytes` to `dir/name` and returns the path. */
export async function writeFile(dir: string, name: string, bytes: Uint8Array): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeFile(path, bytes);
  return path;
}

function put(block: Uint8Array, offset: number, text: string): void {
  for (let i = 0; i < text.length; i++) block[offset + i] = text.charCodeAt(i) & 0xff;
}

function octal(value: number, digits: number): string {
  return value.toString(8).padStart(digits, "0");
}

/**
 * How many file descriptors this process has open (Linux). Deno's resource sanitizer no longer
 * reports leaked `Deno.FsFile`s, so tests that must prove a file was closed count descriptors.
 */
export async function openFileCount(): Promise<number> {
  let count = 0;
  for await (const _ of Deno.readDir("/proc/self/fd")) count++;
  return count;
}

/** Overwrites a field of the header at `at` and recomputes that header's checksum. */
export function patchHeader(tar: Uint8Array, at: number, field: number, value: string): void {
  const block = tar.subarray(at, at + 512);
  put(block, field, value);
  put(block, 148, "        ");
  const sum = block.reduce((n, byte) => n + byte, 0);
  put(block, 148, octal(sum, 6) + "\0 ");
}

/** An entry for {@linkcode pythonTar}: name, typeflag ("0", "1", "2", "5", "6"…), data, link. */
export type PyEntry = [name: string, type: string, data?: string, link?: string];

/**
 * Writes `entries` to `dir/file` with Python's tarfile, which writes whatever names and links
 * it is given: absolute paths, "..", duplicates, loops.
 */
export async function pythonTar(
  dir: string,
  file: string,
  entries: PyEntry[],
  format: "pax" | "gnu" | "ustar" = "pax",
): Promise<string> {
  const script = `
import io, json, sys, tarfile
fmt = {"pax": tarfile.PAX_FORMAT, "gnu": tarfile.GNU_FORMAT, "ustar": tarfile.USTAR_FORMAT}
with tarfile.open(sys.argv[1], "w", format=fmt[sys.argv[2]]) as t:
    for name, type, data, link in json.loads(sys.argv[3]):
        info = tarfile.TarInfo(name)
        info.type = type.encode()
        info.linkname = link
        body = data.encode()
        info.size = len(body)
        t.addfile(info, io.BytesIO(body) if body else None)
`;
  const rows = entries.map(([name, type, data = "", link = ""]) => [name, type, data, link]);
  const path = `${dir}/${file}`;
  await run("python3", ["-c", script, path, format, JSON.stringify(rows)]);
  return path;
}

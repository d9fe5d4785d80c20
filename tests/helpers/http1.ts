/**
 * HTTP/1.1 message framing on a raw `Deno.Conn`, for the test proxies that need to see (and
 * cut) bytes as they travel: reading a head, reading a body by its framing (`Content-Length`,
 * chunked, or until the connection closes), writing heads and chunks.
 *
 * @module
 */

/** Longest request or response head accepted, in bytes. */
export const MAX_HEAD_BYTES = 64 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A parsed request or response head. */
export interface ParsedHead {
  /** The first line's words: method, target, version (request) or version, status, reason. */
  startLine: string[];
  headers: [string, string][];
  /** The first header of that name (case-insensitive), trimmed. */
  header(name: string): string | undefined;
}

/** Splits a head (without its blank line) into its start line and headers. */
export function parseHead(head: string): ParsedHead {
  const [startLine = "", ...lines] = head.split("\r\n");
  const headers: [string, string][] = [];
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return {
    startLine: startLine.split(" "),
    headers,
    header: (name) => headers.find(([n]) => n.toLowerCase() === name)?.[1],
  };
}

const STATUS_TEXT: Record<number, string> = {
  100: "Continue",
  200: "OK",
  201: "Created",
  202: "Accepted",
  204: "No Content",
  206: "Partial Content",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Content Too Large",
  416: "Range Not Satisfiable",
  429: "Too Many Requests",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

/** A response head with `connection: keep-alive` or `close` added. */
export function encodeResponseHead(
  status: number,
  headers: [string, string][],
  keepAlive: boolean,
): Uint8Array {
  let head = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Status"}\r\n`;
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  head += `connection: ${keepAlive ? "keep-alive" : "close"}\r\n\r\n`;
  return encoder.encode(head);
}

/** A request head, exactly as given (the caller adds `host` and the body's framing). */
export function encodeRequestHead(
  method: string,
  target: string,
  headers: [string, string][],
): Uint8Array {
  let head = `${method} ${target} HTTP/1.1\r\n`;
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  return encoder.encode(`${head}\r\n`);
}

/** The last chunk of a chunked body, with no trailers. */
export const LAST_CHUNK: Uint8Array = encoder.encode("0\r\n\r\n");

/** Writes `data` as one chunk of a chunked body (nothing for empty data: that would end it). */
export async function writeChunk(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  if (data.length === 0) return;
  await writeAll(conn, encoder.encode(`${data.length.toString(16)}\r\n`));
  await writeAll(conn, data);
  await writeAll(conn, encoder.encode("\r\n"));
}

export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/** Whether `error` means the other side went away (or we closed the connection under a read). */
export function isDisconnect(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.UnexpectedEof;
}

/** Buffered reads from a connection: a head, lines, then body bytes straight into a buffer. */
export class ConnReader {
  #conn: Deno.Conn;
  #buffer = new Uint8Array(MAX_HEAD_BYTES);
  #start = 0;
  #end = 0;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** The start line and headers (without the blank line), or null at a clean end. */
  async readHead(): Promise<string | null> {
    let searchFrom = this.#start;
    for (;;) {
      const end = indexOfBlankLine(this.#buffer, searchFrom, this.#end);
      if (end >= 0) {
        const head = decoder.decode(this.#buffer.subarray(this.#start, end));
        this.#start = end + 4;
        return head;
      }
      searchFrom = Math.max(this.#start, this.#end - 3);
      if (this.#start > 0) {
        // Move the partial head to the front to make room.
        this.#buffer.copyWithin(0, this.#start, this.#end);
        searchFrom -= this.#start;
        this.#end -= this.#start;
        this.#start = 0;
      }
      if (this.#end === this.#buffer.length) throw new Error("Message head too large");
      const n = await this.#conn.read(this.#buffer.subarray(this.#end));
      if (n === null) {
        if (this.#end === this.#start) return null;
        throw new Deno.errors.UnexpectedEof("Connection closed in a message head");
      }
      this.#end += n;
    }
  }

  /** One CRLF-terminated line, without the CRLF; null when the connection has ended. */
  async readLine(): Promise<string | null> {
    const bytes: number[] = [];
    const one = new Uint8Array(1);
    for (;;) {
      const n = await this.readInto(one);
      if (n === null) return null;
      if (one[0] === 10 && bytes.at(-1) === 13) {
        return decoder.decode(new Uint8Array(bytes.slice(0, -1)));
      }
      bytes.push(one[0]!);
      if (bytes.length > 4096) throw new Error("Line too long");
    }
  }

  /** Reads up to `target.length` bytes into `target`; null when the connection has ended. */
  async readInto(target: Uint8Array): Promise<number | null> {
    if (this.#start < this.#end) {
      const n = Math.min(target.length, this.#end - this.#start);
      target.set(this.#buffer.subarray(this.#start, this.#start + n));
      this.#start += n;
      return n;
    }
    this.#start = this.#end = 0;
    return await this.#conn.read(target);
  }
}

/**
 * How a body is delimited: a byte count (`Content-Length`), `chunked` (RFC 9112 §7.1), or
 * `until-close` (a response with neither, ended by the server closing the connection).
 */
export type BodyFraming = number | "chunked" | "until-close";

/**
 * A message body's data, read piece by piece in constant memory (chunked framing decoded).
 *
 * `read(target)` fills part of `target` and returns the count, or null once the body has
 * ended. With an empty `target` it reads only framing: null when the body ends there, 0 when
 * more data follows (so a caller can tell a body that stops exactly at a limit from one that
 * goes on). A connection that ends inside the body throws `Deno.errors.UnexpectedEof`.
 */
export class BodyReader {
  #input: ConnReader;
  #framing: BodyFraming;
  /** Data bytes left: of the whole body (length framing) or of the current chunk. */
  #remaining: number;
  #ended = false;
  /** Chunked framing: whether a chunk's data was read, so a CRLF comes before the next size. */
  #afterChunk = false;

  constructor(input: ConnReader, framing: BodyFraming) {
    this.#input = input;
    this.#framing = framing;
    this.#remaining = typeof framing === "number" ? framing : 0;
  }

  async read(target: Uint8Array): Promise<number | null> {
    if (this.#ended) return null;
    if (this.#framing === "until-close") {
      if (target.length === 0) return 0;
      const n = await this.#input.readInto(target);
      if (n === null) this.#ended = true;
      return n;
    }
    if (this.#remaining === 0) {
      if (this.#framing !== "chunked" || !await this.#nextChunk()) {
        this.#ended = true;
        return null;
      }
    }
    if (target.length === 0) return 0;
    const n = await this.#input.readInto(
      target.subarray(0, Math.min(target.length, this.#remaining)),
    );
    if (n === null) throw new Deno.errors.UnexpectedEof("Connection closed in a message body");
    this.#remaining -= n;
    return n;
  }

  /** Reads up to the next chunk's data; false after the last chunk and its trailers. */
  async #nextChunk(): Promise<boolean> {
    const line = async () => {
      const text = await this.#input.readLine();
      if (text === null) throw new Deno.errors.UnexpectedEof("Connection closed in a chunked body");
      return text;
    };
    if (this.#afterChunk && await line() !== "") throw new Error("No CRLF after chunk data");
    const sizeLine = await line();
    const size = parseInt(sizeLine.split(";")[0]!.trim(), 16);
    if (!Number.isSafeInteger(size) || size < 0) throw new Error(`Bad chunk size: ${sizeLine}`);
    if (size === 0) {
      while (await line() !== ""); // Trailers, dropped.
      return false;
    }
    this.#remaining = size;
    this.#afterChunk = true;
    return true;
  }
}

function indexOfBlankLine(bytes: Uint8Array, from: number, to: number): number {
  for (let i = from; i + 3 < to; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

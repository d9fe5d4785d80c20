/**
 * A registry on this machine named without a scheme (`localhost:5000/app`, `127.0.0.1:5000/app`)
 * is tried over HTTPS first and reached over plain HTTP if it does not speak TLS, as docker
 * (which treats `127.0.0.0/8` as insecure) and crane (`name.Registry.Scheme()`) assume. Only
 * loopback: nobody can sit between a client and a server on the same machine, so dropping TLS
 * there gives nothing away. Every other host keeps the rule that an https registry never falls
 * back to HTTP, and a scheme the user wrote is obeyed as written.
 *
 * The decision is made once per registry, by the first request that reaches it, and holds for
 * every later request of the run through the same client (blob uploads, token fetches from a
 * realm on the registry's own port), so requests racing at the start wait for the first one
 * instead of each failing its handshake.
 */
import {
  NotTlsError,
  type Transport,
  type TransportRequest,
  type TransportResponse,
} from "./transport.ts";

/**
 * Whether `hostname` (as `URL.hostname` has it: lowercase, IPv6 in brackets, IPv4 normalized)
 * is this machine's loopback: `localhost`, `127.0.0.0/8` or `[::1]`.
 *
 * @example
 * ```ts
 * import { isLoopbackHost } from "./loopback_scheme.ts";
 * isLoopbackHost(new URL("https://127.0.0.1:5000/").hostname); // true
 * isLoopbackHost("registry.example.com"); // false
 * ```
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  if (host === "localhost" || host === "[::1]") return true;
  const octets = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  return octets !== null && octets.slice(1).every((octet) => Number(octet) <= 255);
}

/**
 * Whether a client for `baseUrl` may fall back to plain HTTP: its scheme was not the user's
 * choice (`implied`), it is https, and its host is loopback.
 */
export function mayUsePlainHttp(baseUrl: URL, implied: boolean): boolean {
  return implied && baseUrl.protocol === "https:" && isLoopbackHost(baseUrl.hostname);
}

export interface LoopbackSchemeOptions {
  /** The registry's `https://host:port/`; requests to other origins pass through untouched. */
  baseUrl: URL;
  /** Told once, when the registry turned out to speak plain HTTP. */
  onPlainHttp: () => void;
}

/**
 * A transport that reaches one loopback registry over whatever it speaks: https until its
 * first TLS handshake gets plain bytes back ({@linkcode NotTlsError}), http from then on. Any
 * other outcome of the first request (an answer, a refused certificate, a refused connection)
 * leaves https in place; only an answer settles it, so a registry still starting up is asked
 * again by the next request.
 */
export class LoopbackSchemeTransport implements Transport {
  readonly #inner: Transport;
  readonly #origin: string;
  readonly #onPlainHttp: () => void;
  #scheme: "https" | "http" | undefined;
  /** The first request's exchange, while it decides; later requests wait for it. */
  #deciding: Promise<void> | undefined;

  constructor(inner: Transport, options: LoopbackSchemeOptions) {
    this.#inner = inner;
    this.#origin = options.baseUrl.origin;
    this.#onPlainHttp = options.onPlainHttp;
  }

  /** The scheme found so far: undefined until a first request has been answered. */
  get scheme(): "https" | "http" | undefined {
    return this.#scheme;
  }

  /** `url` as it is sent: on the registry's origin, http once that has been found. */
  effectiveUrl(url: URL): URL {
    return this.#scheme === "http" && url.origin === this.#origin ? plain(url) : url;
  }

  async send(request: TransportRequest): Promise<TransportResponse> {
    if (request.url.origin !== this.#origin) return await this.#inner.send(request);
    while (this.#scheme === undefined && this.#deciding !== undefined) {
      await this.#deciding;
    }
    if (this.#scheme !== undefined) {
      return await this.#inner.send({ ...request, url: this.effectiveUrl(request.url) });
    }
    let decided!: () => void;
    this.#deciding = new Promise((resolve) => decided = resolve);
    try {
      const response = await this.#inner.send(request);
      this.#scheme = "https";
      return response;
    } catch (error) {
      if (!(error instanceof NotTlsError)) throw error;
      this.#scheme = "http";
      this.#onPlainHttp();
      // The handshake failed before any of the request went out: send it again, over http (a
      // body source starts a fresh pass for every send, as for a retry).
      return await this.#inner.send({ ...request, url: plain(request.url) });
    } finally {
      this.#deciding = undefined;
      decided();
    }
  }

  close(): void {
    this.#inner.close();
  }
}

function plain(url: URL): URL {
  const copy = new URL(url);
  copy.protocol = "http:";
  // No port meant https's 443, where the server answered: http's default would be 80.
  if (url.port === "") copy.port = "443";
  return copy;
}

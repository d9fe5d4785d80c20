/**
 * An internal certificate authority for HTTPS tests, made with `openssl`: a CA certificate and
 * a server certificate it signed for 127.0.0.1 and localhost.
 *
 * Why a CA and not one self-signed certificate: `Deno.createHttpClient({ caCerts })` (rustls
 * and webpki underneath) accepts a CA as a trust anchor but rejects a self-signed leaf used as
 * one, and a private CA is what users of `--ca-cert` actually have.
 *
 * @example
 * ```ts
 * const ca = await makeTestCa(dir);
 * await using registry = await startRegistry({
 *   tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert },
 * });
 * ```
 *
 * @module
 */

import { run } from "./command.ts";

/** PEM files written by {@linkcode makeTestCa}. */
export interface TestCa {
  /** The CA certificate: what a client must trust (`--ca-cert`). */
  caCert: string;
  /** The CA's private key. */
  caKey: string;
  /** The server certificate, for 127.0.0.1 and localhost, signed by the CA. */
  serverCert: string;
  /** The server certificate's private key. */
  serverKey: string;
}

/** Options for {@linkcode makeTestCa}. */
export interface TestCaOptions {
  /** The CA's common name. Default: "dip test CA". */
  caName?: string;
  /** Days the certificates are valid. Default: 2. */
  days?: number;
}

/**
 * Writes `ca.pem`, `ca-key.pem`, `server.pem` and `server-key.pem` into `dir` (which must
 * exist). Keys are ECDSA P-256: fast to make, and both Go's TLS and rustls accept them.
 *
 * @throws {Error} when openssl is missing or fails (its stderr is in the message).
 */
export async function makeTestCa(dir: string, options: TestCaOptions = {}): Promise<TestCa> {
  const days = String(options.days ?? 2);
  const ca: TestCa = {
    caCert: `${dir}/ca.pem`,
    caKey: `${dir}/ca-key.pem`,
    serverCert: `${dir}/server.pem`,
    serverKey: `${dir}/server-key.pem`,
  };
  const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await run("openssl", [
    "req",
    "-x509",
    ...newKey,
    "-keyout",
    ca.caKey,
    "-out",
    ca.caCert,
    "-days",
    days,
    "-subj",
    `/CN=${options.caName ?? "dip test CA"}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  const csr = `${dir}/server.csr`;
  await run("openssl", [
    "req",
    "-new",
    ...newKey,
    "-keyout",
    ca.serverKey,
    "-out",
    csr,
    "-subj",
    "/CN=127.0.0.1",
  ]);
  const extensions = `${dir}/server.ext`;
  await Deno.writeTextFile(
    extensions,
    [
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "basicConstraints=CA:FALSE",
      "keyUsage=digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      "",
    ].join("\n"),
  );
  const serial = Array.from(
    crypto.getRandomValues(new Uint8Array(8)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    ca.caCert,
    "-CAkey",
    ca.caKey,
    "-set_serial",
    `0x${serial}`,
    "-days",
    days,
    "-sha256",
    "-extfile",
    extensions,
    "-out",
    ca.serverCert,
  ]);
  await Deno.remove(csr);
  await Deno.remove(extensions);
  return ca;
}

/** A self-signed certificate for 127.0.0.1, made by openssl (node's TLS accepts it as its own CA). */
export async function selfSignedCert(): Promise<{ cert: string; key: string }> {
  const dir = await Deno.makeTempDir({ prefix: "dip-tls-" });
  try {
    await run("openssl", [
      ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1"],
      ...["-addext", "subjectAltName=IP:127.0.0.1", "-days", "1"],
      ...["-keyout", `${dir}/key.pem`, "-out", `${dir}/cert.pem`],
    ]);
    return {
      cert: await Deno.readTextFile(`${dir}/cert.pem`),
      key: await Deno.readTextFile(`${dir}/key.pem`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `--ca-cert`: the PEM bundle of extra CAs to trust, read for push and pull alike. */
import { UsageError } from "./usage_error.ts";

/** Reads a PEM bundle; a missing or non-PEM file is the user's mistake. */
export async function readCaFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (cause) {
    throw new UsageError(`Cannot read the CA certificate file ${path}`, {
      hint: "--ca-cert (or DOCKER_PUSHER_CA_CERT) takes a PEM file of CA certificates",
      cause,
    });
  }
  if (!text.includes("-----BEGIN CERTIFICATE-----")) {
    throw new UsageError(`${path} holds no PEM certificate`, {
      hint: "--ca-cert takes a PEM file (-----BEGIN CERTIFICATE----- …)",
    });
  }
  return text;
}

/**
 * How the kit's runtime runs the bundle, in one place for the launchers (sh and .cmd) and for
 * `deno compile`.
 */

/**
 * What the program may do, and nothing more (no `-A`, no `--allow-ffi`): read archives, configs
 * and CA files; write pulled archives, the blob-info cache and resume state; reach registries;
 * read `DOCKER_PUSHER_*`, `HOME`, `XDG_*` and proxy variables; run `docker-credential-<name>`
 * helpers named by a Docker config; and `--allow-sys`: with `--ca-cert` (or Node's
 * `NODE_EXTRA_CA_CERTS` set), reading the system's CAs (`tls.rootCertificates`) asks for sys
 * access "ca" in Deno 2.9, which no narrower `--allow-sys=…` list can name (Deno refuses "ca"
 * as a descriptor). The kits are tested with exactly these (tests/scripts/release_test.ts).
 */
export const PERMISSIONS: readonly string[] = [
  "--allow-read",
  "--allow-write",
  "--allow-net",
  "--allow-env",
  "--allow-run",
  "--allow-sys",
];

/**
 * `deno run` flags that keep the bundle self-contained wherever it is started: no `deno.json`,
 * `package.json` or lock file of the current directory is read, and no remote or npm module
 * may be fetched (the bundle has every dependency inlined).
 */
export const ISOLATION: readonly string[] = [
  "--no-config",
  "--no-lock",
  "--no-remote",
  "--no-npm",
  "--cached-only",
];

/** A launcher template with its `@DENO_FLAGS@` filled in (and CRLF line ends for a .cmd). */
export function fillLauncher(template: string, crlf: boolean): string {
  const filled = template.replace("@DENO_FLAGS@", [...ISOLATION, ...PERMISSIONS].join(" "));
  return crlf ? filled.replace(/\r?\n/g, "\r\n") : filled;
}

/**
 * The flags `push` and `pull` share, defined once: credentials, the inactivity timeout, TLS,
 * concurrency and retries, and how much is printed. Each takes the same `DOCKER_PUSHER_*`
 * variable and default in both commands.
 */
import { type Command, Option } from "commander";
import { DEFAULTS, ENV } from "./options.ts";

const env = (name: string) => ` (env: ${name})`;

/** Credentials and the inactivity timeout. */
export function connectionFlags(): Option[] {
  return [
    new Option("-u, --username <user>", `registry username${env(ENV.username)}`),
    new Option(
      "-p, --password <password>",
      `registry password; prefer --password-stdin${env(ENV.password)}`,
    ),
    new Option("--password-stdin", "read the password from standard input"),
    new Option(
      "-t, --timeout <duration>",
      "fail a request after this long with no bytes moving: seconds, or 30s, 5m, 2h, 1h30m " +
        `[default: ${DEFAULTS.timeoutSeconds} (2h)]${env(ENV.timeout)}`,
    ),
  ];
}

/** Concurrency, retries and TLS; `moved` says what the blobs do ("uploaded"). */
export function transferFlags(moved: "uploaded" | "downloaded"): Option[] {
  return [
    new Option(
      "--max-concurrent <n>",
      `blobs ${moved} in parallel [default: ${DEFAULTS.maxConcurrent}]${env(ENV.maxConcurrent)}`,
    ),
    new Option(
      "--retry-attempts <n>",
      `retries per request and per blob [default: ${DEFAULTS.retryAttempts}]` +
        env(ENV.retryAttempts),
    ),
    new Option("--skip-tls", `do not verify the registry's TLS certificate${env(ENV.skipTls)}`),
    new Option(
      "--ca-cert <file>",
      `PEM file of CA certificates to trust for the registry${env(ENV.caCert)}`,
    ),
  ];
}

/** How much is printed. */
export function outputFlags(): Option[] {
  return [
    new Option("--verbose", `log every HTTP request${env(ENV.verbose)}`),
    new Option("-q, --quiet", "print only errors and the result"),
  ];
}

/** Adds `flags` to `command`, in order. */
export function addFlags(command: Command, flags: readonly Option[]): Command {
  for (const flag of flags) command.addOption(flag);
  return command;
}

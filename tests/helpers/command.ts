/**
 * Run external tools (skopeo, umoci, htpasswd, tar…) from tests and fail with
 * a message that names the command and shows its stderr.
 *
 * @module
 */

/** Options for {@linkcode run}. */
export interface RunOptions {
  /** Extra environment variables; the rest of the environment is inherited. */
  env?: Record<string, string>;
  /** Working directory. Default: the current one. */
  cwd?: string;
  /** Bytes written to the command's stdin. Default: no stdin. */
  stdin?: Uint8Array;
}

/** What {@linkcode run} returns when the command exits with status 0. */
export interface RunResult {
  /** Raw stdout. */
  stdoutBytes: Uint8Array;
  /** Stdout decoded as UTF-8. */
  stdout: string;
  /** Stderr decoded as UTF-8. */
  stderr: string;
}

/**
 * Runs `cmd args…`, waits for it and returns its output.
 *
 * @throws {Error} when the command cannot be started or exits non-zero; the
 * message holds the command line and its stderr.
 *
 * @example
 * ```ts
 * const { stdout } = await run("skopeo", ["--version"]);
 * ```
 */
export async function run(
  cmd: string,
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const commandLine = [cmd, ...args].map(quote).join(" ");
  const command = new Deno.Command(cmd, {
    args,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
  let output: Deno.CommandOutput;
  try {
    if (options.stdin === undefined) {
      output = await command.output();
    } else {
      const child = command.spawn();
      const writer = child.stdin.getWriter();
      try {
        await writer.write(options.stdin);
      } finally {
        await writer.close().catch(() => {});
      }
      output = await child.output();
    }
  } catch (error) {
    throw new Error(`Failed to start command: ${commandLine}`, { cause: error });
  }
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  if (!output.success) {
    const signal = output.signal === null ? "" : ` (signal ${output.signal})`;
    throw new Error(
      `Command failed with exit code ${output.code}${signal}: ${commandLine}\n` +
        `--- stderr ---\n${stderr.trimEnd()}` +
        (stdout.trim() === "" ? "" : `\n--- stdout ---\n${stdout.trimEnd()}`),
    );
  }
  return { stdoutBytes: output.stdout, stdout, stderr };
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

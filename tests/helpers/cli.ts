/**
 * Runs docker-image-pusher as a user would: a subprocess of `deno run -A main.ts`, with a
 * clean environment apart from what the test gives, capturing exit code, stdout and stderr.
 */

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

export interface CliResult {
  code: number;
  /** The signal that ended the process, if one did. */
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
  /** Whether the process was killed at `deadlineMs`. */
  hung: boolean;
}

export interface CliOptions {
  env?: Record<string, string>;
  stdin?: string;
  /** A file piped into standard input (a real pipe, as `cat file | …`). */
  stdinFile?: string;
  /** Run this script instead of main.ts (e.g. the bundle). */
  script?: string;
  /** Kill the process after this long, so a hang fails the test instead of stalling it. */
  deadlineMs?: number;
  /**
   * A command the CLI runs under, with its arguments (e.g. `["unshare", "-U",
   * "--map-root-user"]`): the CLI's own command line follows them.
   */
  under?: string[];
}

/** A CLI process under way: signal it through `child`, await `done` for its result. */
export interface RunningCli {
  child: Deno.ChildProcess;
  done: Promise<CliResult>;
}

/**
 * Resume state goes to a directory of this test process unless a test sets its own, so no test
 * writes into the developer's real state directory.
 */
let stateDir: string | undefined;
let runs = 0;
function defaultStateHome(): string {
  if (stateDir === undefined) {
    stateDir = Deno.makeTempDirSync({ prefix: "dip-cli-state-" });
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(stateDir!, { recursive: true });
      } catch {
        // Already gone.
      }
    });
  }
  return stateDir;
}

function defaultDenoDir(): string | undefined {
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  const home = Deno.env.get("HOME");
  if (xdg) return `${xdg}/deno`;
  return home ? `${home}/.cache/deno` : undefined;
}

/** Runs the CLI with `args` to its end; never throws for a non-zero exit. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, options).done;
}

/** Starts the CLI with `args` as `runCli` does, returning at once. */
export function startCli(args: string[], options: CliOptions = {}): RunningCli {
  // Only PATH, HOME and Deno's cache leak in: DOCKER_PUSHER_* from the developer's shell must not.
  // Deno's own cache defaults to $XDG_CACHE_HOME/deno, and the child gets a private
  // XDG_CACHE_HOME: name the parent's cache explicitly so npm packages are found offline.
  const denoDir = Deno.env.get("DENO_DIR") ?? defaultDenoDir();
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/tmp",
    ...(denoDir ? { DENO_DIR: denoDir } : {}),
    NO_COLOR: "1",
    // Deno's own upgrade check would go through HTTPS_PROXY (tests count the proxy's CONNECTs)
    // and out to a network this machine does not have.
    DENO_NO_UPDATE_CHECK: "1",
    XDG_STATE_HOME: defaultStateHome(),
    // A cache of its own per run (blobs found in sibling repositories would be mounted, not
    // uploaded); tests of the cache pass a shared XDG_CACHE_HOME.
    XDG_CACHE_HOME: `${defaultStateHome()}/cache-${++runs}`,
    // Most tests are about how blobs travel, so they send layers as stored; tests of
    // compression set it (an empty value restores the default).
    DOCKER_PUSHER_COMPRESSION: "none",
    ...options.env,
  };
  const [command, ...before] = [...options.under ?? [], Deno.execPath()];
  const child = new Deno.Command(command!, {
    args: [...before, "run", "-A", "--quiet", options.script ?? MAIN, ...args],
    env,
    clearEnv: true,
    stdin: options.stdin === undefined && options.stdinFile === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let hung = false;
  const timer = options.deadlineMs === undefined ? undefined : setTimeout(() => {
    hung = true;
    child.kill("SIGKILL");
  }, options.deadlineMs);
  const done = (async () => {
    try {
      if (options.stdin !== undefined) {
        const writer = child.stdin.getWriter();
        await writer.write(new TextEncoder().encode(options.stdin));
        await writer.close();
      }
      // The CLI may stop reading early (an error): a broken pipe is its business, not ours.
      const piped = options.stdinFile === undefined
        ? undefined
        : Deno.open(options.stdinFile).then((file) => file.readable.pipeTo(child.stdin))
          .catch(() => {});
      const output = await child.output();
      await piped;
      const decoder = new TextDecoder();
      return {
        code: output.code,
        signal: output.signal,
        stdout: decoder.decode(output.stdout),
        stderr: decoder.decode(output.stderr),
        hung,
      };
    } finally {
      clearTimeout(timer);
    }
  })();
  return { child, done };
}

/** Lines of text, without the empty one after a final newline. */
export function lines(text: string): string[] {
  return text.split("\n").filter((line, i, all) => line !== "" || i < all.length - 1);
}

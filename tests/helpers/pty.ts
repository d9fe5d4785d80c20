/**
 * Runs docker-image-pusher in a pseudo-terminal, as a user at a terminal would, and reads back
 * the screen. A pipe cannot show terminal behaviour: Ctrl-C as a key (the terminal turns it into
 * SIGINT for the whole foreground process group), the live progress block redrawn in place,
 * resizes and their reflow. tmux provides the terminal: it renders the program's output into a
 * screen we can capture row by row, resizes it on request, and types keys into it. Each session
 * has a tmux server of its own on a private socket, so parallel tests never meet.
 *
 * @example
 * ```ts
 * await using pty = await startCliInPty(["-r", target, "-f", archive], { columns: 100 });
 * await pty.waitForScreen((rows) => rows.some((row) => row.startsWith("total")), "progress bars");
 * await pty.sendKeys("C-c");
 * assertEquals(await pty.exitCode(), 130);
 * ```
 *
 * @module
 */

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** Options for {@linkcode startCliInPty}. */
export interface PtyOptions {
  /** Terminal width. Default 80. */
  columns?: number;
  /** Terminal height. Default 24. */
  rows?: number;
  /**
   * Make the terminal report 0 × 0 to the program (`stty cols 0 rows 0`), as some CI
   * pseudo-terminals and serial consoles do. tmux still draws into a screen of `columns` ×
   * `rows`, so what the program drew can be read. Default false.
   */
  unsized?: boolean;
  /**
   * Text printed on the terminal just before the program starts, as a shell's prompt and the
   * typed command would be. A live block drawn below it must leave it alone. Default none.
   */
  before?: string;
  /** Environment for the program, on top of a clean one (see {@linkcode startCliInPty}). */
  env?: Record<string, string>;
}

/** A program running in a tmux pseudo-terminal. */
export interface PtySession extends AsyncDisposable {
  /** The visible screen, one string per row, trailing spaces removed. */
  screen(): Promise<string[]>;
  /** The rows scrolled off the top of the screen, oldest first, then the visible screen. */
  scrollback(): Promise<string[]>;
  /**
   * Polls the screen until `ready(rows)` holds, and returns those rows. Throws after
   * `timeoutMs` (default 30 s) with `what` and the last screen.
   */
  waitForScreen(
    ready: (rows: string[]) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<string[]>;
  /** Types keys, in tmux's key names: "C-c" is Ctrl-C, "Enter", or literal text. */
  sendKeys(...keys: string[]): Promise<void>;
  /** Resizes the terminal; the program gets SIGWINCH, as from a window being dragged. */
  resize(columns: number, rows: number): Promise<void>;
  /** Waits for the program to end (default up to 30 s) and returns its exit code. */
  exitCode(timeoutMs?: number): Promise<number>;
  /** Kills the terminal and the program, and removes the temporary directory. Idempotent. */
  close(): Promise<void>;
}

/** Whether tmux is available; tests needing it use `integrationTest(…, { tools: ["tmux"] })`. */
export const PTY_TOOL = "tmux";

/**
 * Starts `deno run -A main.ts ...args` in a new tmux terminal of `columns` × `rows`.
 *
 * The environment is clean apart from PATH, HOME, Deno's cache, private state and cache
 * directories, `NO_COLOR=1` (so captured rows hold no colour codes),
 * `DOCKER_PUSHER_COMPRESSION=none` (as in tests/helpers/cli.ts) and `options.env`.
 */
export async function startCliInPty(args: string[], options: PtyOptions = {}): Promise<PtySession> {
  const dir = await Deno.makeTempDir({ prefix: "dip-pty-" });
  const socket = `${dir}/tmux.sock`;
  const columns = options.columns ?? 80;
  const rows = options.rows ?? 24;
  const denoDir = Deno.env.get("DENO_DIR") ?? defaultDenoDir();
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/tmp",
    ...(denoDir ? { DENO_DIR: denoDir } : {}),
    NO_COLOR: "1",
    XDG_STATE_HOME: `${dir}/state`,
    XDG_CACHE_HOME: `${dir}/cache`,
    DOCKER_PUSHER_COMPRESSION: "none",
    ...options.env,
  };
  // The pane stays after the program exits, so its last screen can be read; no
  // status line, so the program gets every row.
  await Deno.writeTextFile(
    `${dir}/tmux.conf`,
    "set -g remain-on-exit on\nset -g status off\nset -g history-limit 1000\n",
  );

  const tmux = async (...tmuxArgs: string[]): Promise<string> => {
    const output = await new Deno.Command("tmux", {
      args: ["-S", socket, "-f", `${dir}/tmux.conf`, ...tmuxArgs],
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    if (!output.success) {
      throw new Error(
        `tmux ${tmuxArgs[0]} failed (exit ${output.code}): ${decoder.decode(output.stderr).trim()}`,
      );
    }
    return decoder.decode(output.stdout);
  };

  const statusFile = `${dir}/status`;
  // The exit status comes through a file: tmux 3.3 sometimes marks a pane dead before it has
  // reaped the process, and then reports no status at all. bash waits out a Ctrl-C that its
  // child handles (it gets the SIGINT too) and records the status the child exits with.
  const script = `${options.unsized ? "stty cols 0 rows 0 || exit 1; " : ""}` +
    'status_file=$1; printf %s "$2"; shift 2; "$@"; echo $? > "$status_file"';
  const command = [
    "bash",
    "-c",
    script,
    "bash",
    statusFile,
    options.before ?? "",
    Deno.execPath(),
    "run",
    "-A",
    "--quiet",
    MAIN,
    ...args,
  ];
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await tmux("kill-server").catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await tmux(
      "new-session",
      "-d",
      "-s",
      "cli",
      "-x",
      String(columns),
      "-y",
      String(rows),
      "--",
      ...command,
    );
  } catch (error) {
    await close();
    throw error;
  }

  const capture = async (...extra: string[]): Promise<string[]> =>
    (await tmux("capture-pane", "-p", "-t", "cli", ...extra)).replace(/\n$/, "").split("\n")
      .map((row) => row.trimEnd());
  const screen = () => capture();

  const deadline = async <T>(
    what: string,
    timeoutMs: number,
    attempt: () => Promise<T | undefined>,
  ): Promise<T> => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const result = await attempt();
      if (result !== undefined) return result;
      if (Date.now() > until) {
        throw new Error(
          `Timed out after ${timeoutMs} ms waiting for ${what}; the screen:\n` +
            (await screen()).join("\n"),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  return {
    screen,
    scrollback: () => capture("-S", "-"),
    waitForScreen: (ready, what, timeoutMs = 30_000) =>
      deadline(what, timeoutMs, async () => {
        const rows = await screen();
        return ready(rows) ? rows : undefined;
      }),
    async sendKeys(...keys) {
      await tmux("send-keys", "-t", "cli", ...keys);
    },
    async resize(newColumns, newRows) {
      await tmux("resize-window", "-t", "cli", "-x", String(newColumns), "-y", String(newRows));
    },
    exitCode: (timeoutMs = 30_000) =>
      deadline("the program to exit", timeoutMs, async () => {
        const text = await Deno.readTextFile(statusFile).catch(() => "");
        // Written by `echo`, so whole once it ends with a newline.
        return text.endsWith("\n") ? Number(text.trim()) : undefined;
      }),
    close,
    [Symbol.asyncDispose]: close,
  };
}

function defaultDenoDir(): string | undefined {
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  const home = Deno.env.get("HOME");
  if (xdg) return `${xdg}/deno`;
  return home ? `${home}/.cache/deno` : undefined;
}

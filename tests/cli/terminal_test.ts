/**
 * The CLI at a real (pseudo-)terminal: Ctrl-C typed as a key, the live progress block through
 * resizes, and a terminal that reports no size. Pipes cannot show any of this (the progress
 * renderer and the bug that swallowed the first Ctrl-C only exist when stderr is a terminal),
 * so each test runs the CLI in tmux (tests/helpers/pty.ts) and reads the screen.
 *
 * The pushes go through a 2 Mbit/s throttle to a real registry, so they are still under way
 * when the test types or resizes; every test ends them with Ctrl-C.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { writeOciArchive } from "../helpers/image_fixtures.ts";
import { PTY_TOOL, type PtySession, startCliInPty } from "../helpers/pty.ts";
import { runCli } from "../helpers/cli.ts";
import { integrationTest, startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { startThrottleProxy, type ThrottleProxy } from "../../scripts/throttle_proxy.ts";
import { TERMINAL_STDIN_NOTICE } from "../../src/cli/archive_stdin.ts";
import { NAME } from "../../src/version.ts";

const TOOLS = ["docker-registry", PTY_TOOL];
const INTERRUPTED = "Interrupted. Run the same command again to resume";
/** A blob row or the total row with a whole bar, as drawn on a wide terminal. */
const BAR_ROW = /^(?:[0-9a-f]{12}|total) +\[[█░]+\] +\d+% /;

interface SlowPush extends AsyncDisposable {
  /** The CLI's arguments: push the archive through the throttle. */
  args: string[];
}

/** A registry behind a 2 Mbit/s link, and a 12 MB image that takes ~50 s to push through it. */
async function slowPush(): Promise<SlowPush> {
  const dir = await Deno.makeTempDir({ prefix: "dip-terminal-" });
  let registry: TestRegistry | undefined;
  let proxy: ThrottleProxy | undefined;
  const close = async () => {
    await proxy?.close();
    await registry?.stop();
    await Deno.remove(dir, { recursive: true });
  };
  try {
    const archive = await writeOciArchive(
      `${dir}/app.tar`,
      [{ name: "app:1", layerSizes: [4e6, 4e6, 4e6] }],
      { compression: "none" },
    );
    registry = await startRegistry();
    const [hostname = "", port = ""] = registry.host.split(":");
    proxy = await startThrottleProxy({
      target: { hostname, port: Number(port) },
      bitsPerSecond: 2e6,
    });
    return {
      args: ["-r", `http://127.0.0.1:${proxy.port}/app:1`, "-f", archive.path],
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

const isTotal = (row: string) => row.startsWith("total ");
const hasBars = (rows: string[]) => rows.some((row) => isTotal(row) && row.includes("["));

/** Types Ctrl-C once and checks the clean shutdown: its message, then exit code 130. */
async function interrupt(pty: PtySession): Promise<void> {
  await pty.sendKeys("C-c");
  const code = await pty.exitCode();
  const screen = (await pty.screen()).join("\n");
  assertEquals(code, 130, screen);
  assert(screen.includes(INTERRUPTED), `no "${INTERRUPTED}…" line on the screen:\n${screen}`);
}

integrationTest("Ctrl-C at a terminal stops the push cleanly and says how to resume", async () => {
  await using push = await slowPush();
  await using pty = await startCliInPty(push.args, { columns: 100, rows: 30 });
  await pty.waitForScreen(hasBars, "the progress bars");
  // One Ctrl-C is one interruption: log-update's signal-exit used to raise a second SIGINT,
  // which main.ts took for an impatient user and exited at once, without the message.
  await interrupt(pty);
}, { tools: TOOLS });

integrationTest(
  "the progress block leaves no stale rows when the terminal narrows and widens",
  async () => {
    await using push = await slowPush();
    // Rows above the block, as a shell prompt leaves them: redraws must not climb past the block
    // into them. (tmux keeps the cursor's row when it reflows, so rows pushed up by the wrapped
    // block go to the scrollback, where no redraw can reach; the screen itself must be clean.)
    const before = ["$ earlier output", "$ docker-image-pusher …"];
    await using pty = await startCliInPty(push.args, {
      columns: 100,
      rows: 30,
      before: before.map((line) => `${line}\n`).join(""),
    });
    await pty.waitForScreen(hasBars, "the progress bars");

    // 40 columns are too few for bars: the block drops them, so any bar left is a stale copy.
    await pty.resize(40, 30);
    const narrow = await pty.waitForScreen(
      (rows) => rows.some((row) => isTotal(row) && !row.includes("[")),
      "the block redrawn at 40 columns",
    );
    assertEquals((await pty.scrollback()).slice(0, 2), before);
    assertEquals(narrow.filter(isTotal).length, 1, narrow.join("\n"));
    assert(!narrow.some((row) => /[█░]/.test(row)), `stale bars:\n${narrow.join("\n")}`);
    assert(narrow.every((row) => row.length < 40), `a row fills the width:\n${narrow.join("\n")}`);

    await pty.resize(100, 30);
    const wide = await pty.waitForScreen(hasBars, "the block redrawn at 100 columns");
    const text = wide.join("\n");
    assertEquals((await pty.scrollback()).slice(0, 2), before);
    assertEquals(wide.filter(isTotal).length, 1, text);
    const bars = wide.filter((row) => /[█░]/.test(row));
    assert(bars.every((row) => BAR_ROW.test(row)), `a partial bar row is left:\n${text}`);
    const labels = bars.map((row) => row.slice(0, 12));
    assertEquals(labels.length, new Set(labels).size, `a blob is drawn twice:\n${text}`);

    await interrupt(pty);
  },
  { tools: TOOLS },
);

integrationTest(
  "a terminal that reports 0 columns still gets progress, 80 columns wide",
  async () => {
    await using push = await slowPush();
    await using pty = await startCliInPty(push.args, { columns: 100, rows: 30, unsized: true });
    const rows = await pty.waitForScreen(hasBars, "the progress bars", 20_000);
    const bars = rows.filter((row) => BAR_ROW.test(row));
    assert(bars.length >= 2, rows.join("\n"));
    // Drawn for the 80 columns assumed, one short of the width, not for tmux's real 100.
    assert(bars.every((row) => row.length <= 79), rows.join("\n"));
    await interrupt(pty);
  },
  { tools: TOOLS },
);

integrationTest(
  "a pull at a terminal draws bars that say downloaded; Ctrl-C keeps the rest",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "dip-terminal-pull-" });
    await using registry = await startRegistry();
    const [hostname = "", port = ""] = registry.host.split(":");
    const proxy = await startThrottleProxy({
      target: { hostname, port: Number(port) },
      bitsPerSecond: 2e6,
    });
    try {
      // A small layer that lands at once, then two that take ~30 s through the throttle.
      const archive = await writeOciArchive(
        `${dir}/app.tar`,
        [{ name: "app:1", layerSizes: [20_000, 4e6, 4e6] }],
        { compression: "none" },
      );
      const pushed = await runCli(["-r", `http://${registry.host}/app:1`, "-f", archive.path]);
      assertEquals(pushed.code, 0, pushed.stderr);
      const out = `${dir}/pulled.tar`;
      await using pty = await startCliInPty(
        ["pull", `http://127.0.0.1:${proxy.port}/app:1`, "-o", out],
        { columns: 100, rows: 30 },
      );
      const screen = await pty.waitForScreen(
        (rows) => hasBars(rows) && rows.some((row) => / downloaded [\d.]+ (KiB|B)/.test(row)),
        "bars, and the small layer downloaded",
      );
      assert(screen.some((row) => BAR_ROW.test(row)), screen.join("\n"));
      await pty.sendKeys("C-c");
      assertEquals(await pty.exitCode(), 130);
      // The message wraps at the terminal's width.
      const last = (await pty.screen()).map((row) => row.trimEnd()).join("");
      assert(last.includes(`kept in ${out}.partial`), last);
    } finally {
      await proxy.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
  { tools: TOOLS },
);

integrationTest(
  "pull -o - (or -o /dev/stdout) at a terminal refuses before any request, as docker save does",
  async () => {
    await using registry = await startRegistry();
    for (const output of ["-", "/dev/stdout"]) {
      await using pty = await startCliInPty(["pull", `${registry.url}/app:1`, "-o", output], {
        columns: 200,
      });
      const code = await pty.exitCode();
      const screen = (await pty.scrollback()).join("\n");
      assertEquals(code, 2, screen);
      assert(screen.includes("Refusing to write the archive to a terminal"), screen);
      assert(screen.includes("Hint: Redirect it"), screen);
    }
    const ours = (await registry.requests()).filter((r) => r.userAgent.startsWith(`${NAME}/`));
    assertEquals(ours, []);
  },
  { tools: TOOLS },
);

/**
 * Starts `args` with a terminal on stdin, waits for the notice that an archive is read from it,
 * then types one Ctrl-C: the program must end at once with 130. Returns the last screen.
 */
async function interruptStdinRead(args: string[]): Promise<string> {
  await using pty = await startCliInPty(args, { columns: 200 });
  await pty.waitForScreen(
    (rows) => rows.some((row) => row.includes(TERMINAL_STDIN_NOTICE)),
    "the notice that standard input is read",
    15_000,
  );
  await pty.sendKeys("C-c");
  // Promptly: the read of the terminal used to swallow the first Ctrl-C.
  const code = await pty.exitCode(5_000);
  const screen = (await pty.screen()).join("\n");
  assertEquals(code, 130, screen);
  return screen;
}

integrationTest(
  "push -f - with a terminal on stdin says what it waits for; the first Ctrl-C exits 130",
  async () => {
    await using registry = await startRegistry();
    const screen = await interruptStdinRead(["-r", `${registry.url}/app:1`, "-f", "-"]);
    assert(screen.includes(INTERRUPTED), screen);
  },
  { tools: TOOLS },
);

integrationTest(
  "inspect -f - with a terminal on stdin says what it waits for; Ctrl-C gives no push hint",
  async () => {
    const screen = await interruptStdinRead(["inspect", "-f", "-"]);
    assert(screen.includes("Interrupted."), screen);
    assert(!screen.includes("blobs already in the registry"), screen);
  },
  { tools: [PTY_TOOL] },
);

integrationTest(
  "Ctrl-C at a pull's password prompt claims no kept .partial file",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "dip-terminal-password-" });
    try {
      const out = `${dir}/app.tar`;
      // No registry is asked anything before the password: any address will do.
      await using pty = await startCliInPty(
        ["pull", "http://127.0.0.1:9/app:1", "-o", out, "-u", "alice", "--password-stdin"],
        { columns: 200 },
      );
      await pty.waitForScreen((rows) => rows.some((row) => row.includes("Password:")), "prompt");
      await pty.sendKeys("C-c");
      const code = await pty.exitCode(5_000);
      const screen = (await pty.screen()).join("\n");
      assertEquals(code, 130, screen);
      assert(screen.includes("Interrupted."), screen);
      assert(!screen.includes(".partial"), screen);
      assert(!screen.includes("blobs already in the registry"), screen);
      assertEquals([...Deno.readDirSync(dir)], []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { tools: [PTY_TOOL] },
);

/**
 * Every command's help, read as a user reads it: at widths from 64 to 200 columns, through a
 * pipe (80 columns) and at terminals (tmux). No line is wider than the screen, and no sentence is
 * broken early, as when text wrapped by hand was wrapped again at another width. The help shown
 * first (push's) names the other commands.
 */
import { buildProgram, withDefaultCommand } from "../../src/cli/program.ts";
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { lines, runCli } from "../helpers/cli.ts";
import { PTY_TOOL, startCliInPty } from "../helpers/pty.ts";
import { integrationTest } from "../helpers/tools.ts";

/** Each command's help, and the program's own (`help` with no command). */
function helpCalls(): string[][] {
  const program = buildProgram({ writeOut() {}, writeErr() {} }, async () => {});
  const names = program.commands.map((c) => c.name());
  assertEquals(names.toSorted(), ["inspect", "pull", "push"]);
  return [["--help"], ["help"], ...names.map((name) => [name, "--help"])];
}

/** The help `args` print when stdout is `width` columns wide, read in this process. */
async function helpAt(args: string[], width: number): Promise<string[]> {
  let out = "";
  const program = buildProgram({
    writeOut: (text) => out += text,
    writeErr() {},
    helpWidth: () => width,
  }, async () => {});
  const error = await program.parseAsync(withDefaultCommand(args), { from: "user" })
    .then(() => undefined, (e) => e);
  assert(/^commander\.help/.test((error as { code?: string }).code ?? ""), String(error));
  return lines(out);
}

/**
 * Where a row's text starts: a row of an item list (`  -f, --file <path>  image archive…`) at
 * its description; any other row at its first character.
 */
function textColumn(row: string): number {
  const item = /^ {2}\S.*? {2,}(?=\S)/.exec(row);
  return item !== null ? item[0].length : row.length - row.trimStart().length;
}

/**
 * The first row that ends a line early, though the next row's first word would have fitted
 * after it: a sentence broken where the text was wrapped by hand. Rows that end a sentence or a
 * clause may end early (each paragraph starts on a row of its own).
 */
function brokenEarly(rows: readonly string[], width: number): string | undefined {
  for (let i = 0; i + 1 < rows.length; i++) {
    const [row, next] = [rows[i]!, rows[i + 1]!];
    if (row.trim() === "" || next.trim() === "" || /[.:;)]$/.test(row)) continue;
    const indent = next.length - next.trimStart().length;
    // The next row goes on with this row's text: prose at the margin, or a description that
    // continues in its column (a new item starts at column 2).
    const continues = indent === textColumn(row) && (indent === 0 || indent > 2);
    const word = next.trimStart().split(" ")[0]!;
    if (continues && row.length + 1 + word.length <= width) return `${row}\n${next}`;
  }
  return undefined;
}

function checkLayout(rows: readonly string[], width: number, what: string): void {
  const wide = rows.filter((row) => row.length > width);
  assertEquals(wide, [], `${what}: rows wider than ${width}`);
  const broken = brokenEarly(rows, width);
  assertEquals(broken, undefined, `${what}: a line broken early`);
}

Deno.test("help at 64 to 200 columns: no row wider, no sentence broken early", async () => {
  for (const width of [64, 72, 80, 100, 132, 200]) {
    for (const args of helpCalls()) {
      checkLayout(await helpAt(args, width), width, `${args.join(" ")} at ${width} columns`);
    }
  }
});

Deno.test("help through a pipe: 80 columns, no sentence broken early", async () => {
  for (const args of helpCalls()) {
    const { code, stdout, stderr } = await runCli(args);
    assertEquals([code, stderr], [0, ""], args.join(" "));
    checkLayout(lines(stdout), 80, args.join(" "));
  }
});

Deno.test("help narrower than commander wraps at: each description below its term", async () => {
  // Commander leaves a description column under 40 unwrapped, for the terminal to cut.
  const rows = await helpAt(["push", "--help"], 64);
  const at = rows.indexOf("  -r, --repository-url <target>");
  assert(at > 0, rows.join("\n"));
  assert(rows[at + 1]!.startsWith("      where to push: https://host[:port]/repo"), rows[at + 1]);
  assertEquals((await helpAt(["push", "--help"], 80)).filter((r) => /^ {6}\S/.test(r)), []);
});

Deno.test("brokenEarly finds a sentence wrapped by hand at another width", () => {
  // inspect's help as it was: wrapped by hand near 90 columns, then again at 80.
  const rows = [
    "Show what an image archive holds: its format, each image's names, platforms,",
    "manifest,",
    "config and layers (digest, size, media type, compression), and totals. No",
    "registry.",
  ];
  assertEquals(brokenEarly(rows, 80), `${rows[1]}\n${rows[2]}`);
  const item = [
    "  -o, --output <path>  archive to write, - for",
    "                       stdout",
    "  --platform <p>       the platform",
  ];
  assertEquals(brokenEarly(item, 80), `${item[0]}\n${item[1]}`);
  // Paragraphs, and items of a list, each start on a row of their own.
  assertEquals(brokenEarly(["Exit codes: 0 ok.", "On success stdout…"], 80), undefined);
  assertEquals(brokenEarly(["  push  push images", "  pull  pull images"], 80), undefined);
});

integrationTest("help at a terminal: wrapped at its width, no sentence broken early", async () => {
  // tmux wraps what is wider than the screen, so rows can't be wider: what shows the width was
  // followed is the layout (rows past 80 at 120 columns; descriptions below terms at 64).
  for (const columns of [64, 120]) {
    for (const args of helpCalls()) {
      const what = `${args.join(" ")} at ${columns} columns`;
      await using pty = await startCliInPty(args, { columns, rows: 30 });
      assertEquals(await pty.exitCode(), 0, what);
      // Everything the program wrote, without tmux's note that it ended.
      const rows = (await pty.scrollback()).filter((row) => !row.startsWith("Pane is dead"));
      while (rows.at(-1) === "") rows.pop();
      checkLayout(rows, columns, what);
      assertEquals(rows, await helpAt(args, columns), what);
    }
  }
}, { tools: [PTY_TOOL] });

Deno.test("--help (push's) and help list every command", async () => {
  for (const args of [["--help"], ["help"]]) {
    const { stdout } = await runCli(args);
    const commands = stdout.slice(stdout.indexOf("\nCommands:\n"));
    for (const name of ["push", "pull", "inspect"]) {
      assert(new RegExp(`^ {2}${name} `, "m").test(commands), `${args}: ${name}\n${stdout}`);
    }
  }
  const { stdout } = await runCli(["--help"]);
  assertStringIncludes(stdout, "docker-image-pusher COMMAND --help");
});

/**
 * Runs one benchmark script for two commits side by side, in one run: the script of each
 * commit's tree measures that commit's `main.ts`, one repetition at a time, alternating which
 * commit goes first each round (so drift in the machine's load falls on both alike). Prints each
 * round's tables, then one table of the rows both commits printed: per numeric cell, the median
 * over rounds for the base and for this tree, and the change.
 *
 *   deno run -A scripts/bench_compare.ts --base COMMIT [--rounds 3] SCRIPT [SCRIPT ARGS...]
 *   deno run -A scripts/bench_compare.ts --base 2676b28 --rounds 3 bench_pull.ts --keep /work/benchdata/pull
 *   deno run -A scripts/bench_compare.ts --from SAVED.txt     # the medians of a saved output again
 *
 * The base tree is a detached `git worktree` under the temporary directory, kept between runs
 * (`--base` names any commit). The script runs with `--runs 1` added; pass `--keep DIR` so both
 * trees share built fixtures instead of building them each round.
 */
// deno-lint-ignore-file no-console -- a benchmark reports to the terminal
import { join } from "node:path";

const argv = [...Deno.args];
const take = (name: string): string | undefined => {
  const at = argv.indexOf(name);
  if (at < 0) return undefined;
  const [, value] = argv.splice(at, 2);
  return value;
};
const saved = take("--from");
if (saved !== undefined) {
  // Each round's output is under a "## Round N: base …" or "## Round N: head …" heading.
  const text = await Deno.readTextFile(saved);
  const [, ...parts] = text.split(/^## Round \d+: /m);
  const labels = ["base", "head"].map((kind) =>
    /^## Round \d+: (\S+ \S+)/m.exec(
      text.slice(text.search(new RegExp(`^## Round \\d+: ${kind}`, "m"))),
    )?.[1] ?? kind
  );
  const runs: Rows[][] = [[], []];
  for (const part of parts) {
    const body = part.split(/^## Medians/m)[0]!;
    runs[part.startsWith("base") ? 0 : 1]!.push(tableRows(body));
  }
  printMedians(runs, labels[0]!, labels[1]!);
  Deno.exit(0);
}
const base = take("--base");
const rounds = Number(take("--rounds") ?? 3);
const [script, ...scriptArgs] = argv;
if (
  base === undefined || script === undefined ||
  !(Number.isInteger(rounds) && rounds >= 1)
) {
  console.error(
    "Usage: bench_compare.ts --base COMMIT [--rounds N] SCRIPT [ARGS...]",
  );
  Deno.exit(2);
}

/** Rows of every markdown table a run printed, by the cells naming them. */
type Rows = Map<string, string[]>;

const here = new URL("..", import.meta.url).pathname;
const git = async (...args: string[]): Promise<string> => {
  const out = await new Deno.Command("git", {
    args,
    cwd: here,
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `Failed to run git ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return new TextDecoder().decode(out.stdout).trim();
};
const baseSha = await git("rev-parse", "--verify", `${base}^{commit}`);
const headSha = await git("rev-parse", "HEAD");
const dirty = (await git("status", "--porcelain", "--untracked-files=no")) !== "";
const baseTree = join(
  Deno.env.get("TMPDIR") ?? "/tmp",
  `dip-bench-base-${baseSha.slice(0, 12)}`,
);
if (!(await Deno.stat(baseTree).then(() => true, () => false))) {
  await git("worktree", "add", "--detach", baseTree, baseSha);
}

const trees = [
  { label: `base ${baseSha.slice(0, 7)}`, dir: baseTree },
  { label: `head ${headSha.slice(0, 7)}${dirty ? "+" : ""}`, dir: here },
];
const results: Rows[][] = trees.map(() => []);

for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? [0, 1] : [1, 0];
  for (const which of order) {
    const tree = trees[which]!;
    console.log(`\n## Round ${round + 1}: ${tree.label}\n`);
    const out = await new Deno.Command("deno", {
      args: [
        "run",
        "-A",
        join(tree.dir, "scripts", script),
        ...scriptArgs,
        "--runs",
        "1",
      ],
      cwd: tree.dir,
      stdout: "piped",
      stderr: "inherit",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    console.log(text);
    if (!out.success) throw new Error(`${script} failed for ${tree.label}`);
    results[which]!.push(tableRows(text));
  }
}

printMedians(results, trees[0]!.label, trees[1]!.label);

/** Per row both sides printed, each numeric cell's median for the base and the head. */
function printMedians(
  results: Rows[][],
  baseLabel: string,
  headLabel: string,
): void {
  const [baseRuns, headRuns] = results as [Rows[], Rows[]];
  console.log(
    `\n## Medians over ${baseRuns.length} round(s): ${baseLabel} → ${headLabel}\n`,
  );
  for (const [name, cells] of baseRuns[0] ?? new Map<string, string[]>()) {
    if (!headRuns.every((rows) => rows.has(name))) continue;
    const merged = cells.map((_, column) => {
      const a = median(
        baseRuns.map((rows) => leadingNumber(rows.get(name)?.[column])),
      );
      const b = median(
        headRuns.map((rows) => leadingNumber(rows.get(name)?.[column])),
      );
      if (a === undefined || b === undefined) return cells[column] ?? "";
      const change = a === 0 ? "" : ` (${b >= a ? "+" : ""}${((b / a - 1) * 100).toFixed(1)} %)`;
      return `${round(a)} → ${round(b)}${change}`;
    });
    console.log(`| ${name} | ${merged.join(" | ")} |`);
  }
}

/**
 * Every markdown table row (`| a | b |`), header and rule rows excluded, by the cells that
 * name it: those before its first numeric cell (`1.5 GB, 3 layers | ours, as stored`).
 */
function tableRows(text: string): Rows {
  const rows: Rows = new Map();
  for (const line of text.split("\n")) {
    if (!line.startsWith("|") || /^\|[\s:|-]+\|$/.test(line.trim())) continue;
    const cells = line.split(" | ").map((cell) => cell.replace(/^\|\s*|\s*\|$/g, "").trim());
    const first = cells.findIndex((cell, i) => i > 0 && leadingNumber(cell) !== undefined);
    if (first < 0) continue;
    const name = cells.slice(0, first).join(" | ");
    if (!rows.has(name)) rows.set(name, cells.slice(first));
  }
  return rows;
}

/** The number a cell starts with (`1,470,671,942` and `13.53–14.02` read as their first). */
function leadingNumber(cell: string | undefined): number | undefined {
  const match = /^(-?\d[\d,]*(?:\.\d+)?)/.exec(cell ?? "");
  return match === null ? undefined : Number(match[1]!.replaceAll(",", ""));
}

function round(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(Math.abs(n) < 10 ? 2 : 1);
}

function median(values: (number | undefined)[]): number | undefined {
  if (values.some((v) => v === undefined)) return undefined;
  const sorted = (values as number[]).toSorted((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

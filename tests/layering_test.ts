/**
 * The layering of `src/`, read from the source: which folder may import which, no import
 * cycles, and no module that re-exports another's names. `docs/architecture.md` explains the
 * layers, and its table is checked against {@linkcode MAY_IMPORT}, the one place that says them.
 *
 * Every relative import counts, `import type` included: a type pointing up ties the layers
 * together as surely as a value does.
 */
import { assert, assertEquals } from "./helpers/assert.ts";

/**
 * Each part of `src/` and the parts it may import besides itself, from the bottom up. `.` is
 * the files at `src/`'s root (digests, errors, the limiter, state files: no layer of their own,
 * importing only each other).
 */
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  ".": [],
  image: ["."],
  progress: ["."],
  archive: [".", "image"],
  compress: [".", "image"],
  registry: [".", "image", "progress"],
  credentials: [".", "image", "registry"],
  inspect: [".", "image", "archive"],
  push: [".", "image", "progress", "archive", "compress", "registry"],
  pull: [".", "image", "progress", "archive", "registry"],
  api: [
    ".",
    "image",
    "progress",
    "archive",
    "compress",
    "registry",
    "credentials",
    "inspect",
    "push",
    "pull",
  ],
  cli: [
    ".",
    "image",
    "progress",
    "archive",
    "compress",
    "registry",
    "credentials",
    "inspect",
    "push",
    "pull",
    "api",
  ],
};

/**
 * Import cycles that are known and not yet broken, each the files of one cycle. A cycle found
 * must lie within one of these; a file listed here that is in no cycle any more must leave.
 */
const KNOWN_CYCLES: readonly (readonly string[])[] = [];

const SRC = new URL("../src/", import.meta.url);

/**
 * A top-level `export … from` statement (named over several lines, or `*`): a re-export. A
 * comment's text never matches; a line of a template literal could, and would be seen.
 */
const RE_EXPORT =
  /^export\s+(?:type\s+)?(?:\{[^}]*\}|\*(?:\s+as\s+[\w$]+)?)\s*from\s*["']([^"']+)["']/gm;

/** Re-exports of another module's names (`export … from "./x.ts"`), which make shims. */
function reExports(source: string): string[] {
  return [...source.matchAll(RE_EXPORT)].map((m) => m[0]);
}

/** A module `deno info --json` describes, with the modules it imports. */
interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
}

/**
 * The module graph `deno info` reads from `roots` (which resolves every import as Deno does:
 * `import type`, `export … from` and dynamic imports included), as file URLs.
 */
async function moduleGraph(roots: readonly URL[]): Promise<Map<string, string[]>> {
  const root = await Deno.makeTempFile({ prefix: "layering-", suffix: ".ts" });
  try {
    await Deno.writeTextFile(root, roots.map((url) => `import "${url.href}";\n`).join(""));
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--config", new URL("../deno.json", import.meta.url).pathname, root],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(output.success, new TextDecoder().decode(output.stderr));
    const info = JSON.parse(new TextDecoder().decode(output.stdout)) as { modules: InfoModule[] };
    return new Map(
      info.modules.map((m) => [
        m.specifier,
        (m.dependencies ?? []).flatMap((d) => [d.code?.specifier, d.type?.specifier])
          .filter((s): s is string => s !== undefined),
      ]),
    );
  } finally {
    await Deno.remove(root);
  }
}

/** The part of `src/` a path relative to it sits in: its first folder, or `.`. */
function partOf(path: string): string {
  const slash = path.indexOf("/");
  return slash === -1 ? "." : path.slice(0, slash);
}

async function sourceFiles(dir = SRC, prefix = ""): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory) {
      files.push(
        ...await sourceFiles(new URL(`${entry.name}/`, dir), `${prefix}${entry.name}/`),
      );
    } else if (entry.name.endsWith(".ts")) files.push(`${prefix}${entry.name}`);
  }
  return files.sort();
}

/** Every `src/` file with the `src/` files it imports (paths relative to `src/`). */
async function importGraph(): Promise<Map<string, string[]>> {
  const files = await sourceFiles();
  const modules = await moduleGraph(files.map((file) => new URL(file, SRC)));
  const inSrc = (href: string) => href.startsWith(SRC.href) ? href.slice(SRC.href.length) : "";
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const imports = modules.get(new URL(file, SRC).href);
    assert(imports !== undefined, `deno info does not list src/${file}`);
    graph.set(file, [...new Set(imports.map(inSrc).filter((target) => target !== ""))]);
  }
  return graph;
}

/** The strongly connected components of more than one file (Tarjan's algorithm). */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (file: string): void => {
    index.set(file, next);
    low.set(file, next++);
    stack.push(file);
    onStack.add(file);
    for (const target of graph.get(file) ?? []) {
      if (!graph.has(target)) continue;
      if (!index.has(target)) {
        visit(target);
        low.set(file, Math.min(low.get(file)!, low.get(target)!));
      } else if (onStack.has(target)) {
        low.set(file, Math.min(low.get(file)!, index.get(target)!));
      }
    }
    if (low.get(file) !== index.get(file)) return;
    const component: string[] = [];
    for (let member = ""; member !== file;) {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    }
    if (component.length > 1) found.push(component.sort());
  };
  for (const file of graph.keys()) if (!index.has(file)) visit(file);
  return found;
}

Deno.test("layering: reExports finds re-exports, not imports, local exports or comments", () => {
  const source = [
    `import { a } from "./a.ts";`,
    `export {`,
    `  b,`,
    `  type C,`,
    `} from "./b.ts";`,
    `export type * from "./d.ts";`,
    `export * as e from "../e.ts";`,
    ` * export { f } from "./f.ts";`,
    `export { i };`,
  ].join("\n");
  assertEquals(reExports(source).map((s) => s.replace(/\s+/g, " ")), [
    `export { b, type C, } from "./b.ts"`,
    `export type * from "./d.ts"`,
    `export * as e from "../e.ts"`,
  ]);
});

Deno.test("layering: every folder of src/ has its place in the table", async () => {
  const parts = new Set((await sourceFiles()).map(partOf));
  assertEquals([...parts].sort(), Object.keys(MAY_IMPORT).sort());
});

Deno.test("layering: no file of src/ imports a part its own part may not", async () => {
  const wrong: string[] = [];
  for (const [file, targets] of await importGraph()) {
    const from = partOf(file);
    const allowed = MAY_IMPORT[from] ?? [];
    for (const target of targets) {
      const to = partOf(target);
      if (to !== from && !allowed.includes(to)) {
        wrong.push(`src/${file} imports src/${target} (${from} may import: ${allowed.join(", ")})`);
      }
    }
  }
  assertEquals(wrong, []);
});

Deno.test("layering: nothing the library's entry point reaches is of the CLI", async () => {
  const modules = await moduleGraph([new URL("../mod.ts", import.meta.url)]);
  const cli = [...modules.keys()].filter((href) => href.startsWith(new URL("cli/", SRC).href));
  assertEquals(cli, []);
  assert(modules.has(new URL("api/push.ts", SRC).href), "mod.ts reaches src/api/push.ts");
});

Deno.test("layering: no import cycles in src/ but the known ones, each file listed still in one", async () => {
  const found = cycles(await importGraph());
  const unknown = found.filter((cycle) =>
    !KNOWN_CYCLES.some((known) => cycle.every((file) => known.includes(file)))
  );
  assertEquals(unknown, [], "new import cycles: move the shared piece down");
  const inCycles = new Set(found.flat());
  const gone = KNOWN_CYCLES.flat().filter((file) => !inCycles.has(file));
  assertEquals(gone, [], "no longer in a cycle: remove them from KNOWN_CYCLES");
});

Deno.test("layering: no module of src/ re-exports another's names", async () => {
  const shims: string[] = [];
  for (const file of await sourceFiles()) {
    for (const statement of reExports(await Deno.readTextFile(new URL(file, SRC)))) {
      shims.push(`src/${file}: ${statement.replace(/\s+/g, " ").trim()}`);
    }
  }
  assertEquals(shims, [], "import each name from where it lives (only mod.ts re-exports)");
});

/** What the layers table of `docs/architecture.md` says each part may import. */
function documentedTable(doc: string): Record<string, string[]> {
  const table: Record<string, string[]> = {};
  const parts = Object.keys(MAY_IMPORT).filter((part) => part !== ".");
  for (const row of doc.matchAll(/^\| `src\/([\w*.]*)\/?` *\|.*\| *([^|]*?) *\|$/gm)) {
    const part = row[1] === "*.ts" ? "." : row[1]!;
    const cell = row[2]!;
    const listed = cell === "nothing else"
      ? []
      : cell === "every folder"
      ? parts.filter((p) => p !== part)
      : cell === "every folder but `src/cli/`"
      ? parts.filter((p) => p !== part && p !== "cli")
      : cell.split(",").map((name) => name.trim());
    table[part] = part === "." ? listed : [".", ...listed];
  }
  return table;
}

Deno.test("layering: docs/architecture.md's layers table says what MAY_IMPORT says", async () => {
  const doc = await Deno.readTextFile(new URL("../docs/architecture.md", import.meta.url));
  const sorted = (table: Readonly<Record<string, readonly string[]>>) =>
    Object.fromEntries(Object.entries(table).map(([k, v]) => [k, [...v].sort()]).sort());
  assertEquals(sorted(documentedTable(doc)), sorted(MAY_IMPORT));
});

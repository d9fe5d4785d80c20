/**
 * `docs/architecture.md` and the README's layout block name files and folders a newcomer then
 * opens: each must exist, and every folder of `src/` must have its line in the layers table.
 */
import { assert, assertEquals } from "./helpers/assert.ts";

const ROOT = new URL("../", import.meta.url);

/** Repository paths a text names in backticks or a code block: `src/…`, `tests/…`, `mod.ts`. */
function namedPaths(text: string): string[] {
  const paths = text.match(
    /(?<![\w./-])(?:src|tests|scripts|docs)\/(?:[\w./-]*[\w/])?|\b(?:mod|main)\.ts\b/g,
  );
  return [...new Set(paths ?? [])];
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(new URL(path, ROOT));
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function missing(paths: readonly string[]): Promise<string[]> {
  const gone: string[] = [];
  for (const path of paths) if (!await exists(path)) gone.push(path);
  return gone;
}

/** The README's `## Development` section, up to the next `## ` heading. */
function developmentSection(readme: string): string {
  const start = readme.indexOf("\n## Development\n");
  assert(start !== -1, "README.md has a Development section");
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end === -1 ? undefined : end);
}

Deno.test("namedPaths finds paths in prose, tables and code blocks, and no lookalikes", () => {
  const text = [
    "Compressed in `src/push/layer_compressor.ts` (see src/compress/).",
    "| `src/*.ts` | digests |",
    "src/cli/progress/  renderers",
    "through `mod.ts` and main.ts; tests/layering_test.ts checks it.",
    "not a path: resrc/x.ts, my_src/y.ts, commod.ts",
  ].join("\n");
  assertEquals(namedPaths(text), [
    "src/push/layer_compressor.ts",
    "src/compress/",
    "src/",
    "src/cli/progress/",
    "mod.ts",
    "main.ts",
    "tests/layering_test.ts",
  ]);
});

Deno.test("docs/architecture.md: every file and folder it names exists", async () => {
  const doc = await Deno.readTextFile(new URL("docs/architecture.md", ROOT));
  const paths = namedPaths(doc);
  assert(paths.filter((p) => p.endsWith(".ts")).length > 40, "the page names the files");
  assertEquals(await missing(paths), []);
});

Deno.test("docs/architecture.md: every folder of src/ has its row in the layers table", async () => {
  const doc = await Deno.readTextFile(new URL("docs/architecture.md", ROOT));
  const rows = new Set(
    [...doc.matchAll(/^\| `(src\/[\w/*.]*)`/gm)].map((m) => m[1]!),
  );
  const folders: string[] = [];
  for await (const entry of Deno.readDir(new URL("src/", ROOT))) {
    if (entry.isDirectory) folders.push(`src/${entry.name}/`);
  }
  assertEquals(folders.filter((folder) => !rows.has(folder)).sort(), []);
  assert(rows.has("src/*.ts"), "the root files have their row");
});

Deno.test("README.md: the Development section's paths exist and it links the architecture", async () => {
  const section = developmentSection(await Deno.readTextFile(new URL("README.md", ROOT)));
  assert(section.includes("(docs/architecture.md)"), "links docs/architecture.md");
  assertEquals(await missing(namedPaths(section)), []);
});

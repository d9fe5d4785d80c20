/**
 * Which failures get a JSON document from the top level: the command and `--output json` are
 * read from the arguments as given, since parsing them is what may have failed.
 */
import { CommanderError } from "commander";
import { jsonCommand, reportedAsJson, writeJsonFailure } from "../../src/cli/json_failure.ts";
import { assertEquals } from "../helpers/assert.ts";

Deno.test("jsonCommand: push (the default), inspect, and pull when JSON is asked for", () => {
  const cases: [string[], "push" | "inspect" | "pull" | undefined][] = [
    [["-r", "r/app:1", "--output", "json"], "push"],
    [["push", "--output=json"], "push"],
    [["--output", "JSON"], undefined], // push takes `json` exactly: this is a usage error
    [["inspect", "-f", "a.tar", "--output", "JSON"], "inspect"],
    [["inspect", "--output=json"], "inspect"],
    [["inspect", "--output", "text"], undefined],
    // pull's --output is the archive (here named `json`); its document is asked for with --json
    [["pull", "r/app:1", "-o", "x.tar", "--output", "json"], undefined],
    [["pull", "r/app:1", "-o", "x.tar", "--json"], "pull"],
    [["pull", "r/app:1", "--", "--json"], undefined],
    [["-r", "r/app:1", "--json"], undefined],
    [["-f", "a.tar", "--", "--output", "json"], undefined],
    [["--output"], undefined],
    [["frobnicate", "--output", "json"], undefined],
  ];
  for (const [args, expected] of cases) assertEquals(jsonCommand(args), expected, args.join(" "));
});

Deno.test("writeJsonFailure: one document, none for help or an error already reported", () => {
  const out: string[] = [];
  const write = (text: string) => out.push(text);
  const args = ["inspect", "--output", "json", "--bogus"];
  writeJsonFailure(
    args,
    new CommanderError(1, "commander.unknownOption", "error: unknown option"),
    write,
  );
  assertEquals(JSON.parse(out.pop()!), {
    schemaVersion: 1,
    success: false,
    archive: { path: null },
    errors: [{ message: "Unknown option" }],
  });
  writeJsonFailure(args, new CommanderError(0, "commander.helpDisplayed", "(outputHelp)"), write);
  const reported = new Error("said already");
  reportedAsJson(reported);
  writeJsonFailure(args, reported, write);
  assertEquals(out, []);
  writeJsonFailure(["--output", "json", "--dry-run"], new Error("No archive"), write);
  const push = JSON.parse(out.pop()!);
  assertEquals([push.success, push.dryRun, push.images], [false, true, []]);
  assertEquals(push.errors, [
    { target: null, image: null, message: "No archive", status: null, codes: [] },
  ]);
});

Deno.test("writeJsonFailure: pull's document names the archive and the error's kind", () => {
  const out: string[] = [];
  const write = (text: string) => out.push(text);
  writeJsonFailure(
    ["pull", "r/app:1", "--json", "--output=x.tar", "--bogus"],
    new CommanderError(1, "commander.unknownOption", "error: unknown option '--bogus'"),
    write,
  );
  assertEquals(JSON.parse(out.pop()!), {
    schemaVersion: 1,
    success: false,
    durationMs: 0,
    archive: { path: "x.tar", bytes: null, downloaded: null, reused: null },
    images: [],
    errors: [{ kind: "usage", message: "Unknown option '--bogus'", status: null, codes: [] }],
  });
  writeJsonFailure(["pull", "r/app:1", "-ox.tar", "--json"], new Error("Disk full"), write);
  const failure = JSON.parse(out.pop()!);
  assertEquals(failure.archive.path, "x.tar");
  assertEquals(failure.errors, [{ kind: "other", message: "Disk full", status: null, codes: [] }]);
  writeJsonFailure(["pull", "r/app:1", "-o", "x.tar"], new Error("Disk full"), write);
  assertEquals(out, []);
});

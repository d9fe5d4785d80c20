/**
 * A stream's table of contents is checked the moment it passes: a malformed `manifest.json` or
 * `index.json` ahead of a large layer stops the stream before that layer is handed on (in a
 * push, before it goes to the registry). Well-formed files of every format pass the check.
 */
import { checkLayoutFile } from "../../src/archive/layout_files.ts";
import { type PassEntry, readArchiveStream } from "../../src/archive/stream_archive.ts";
import { ArchiveError } from "../../src/errors.ts";
import {
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "../helpers/assert.ts";
import { seededBytes } from "../helpers/random.ts";
import { tarBytes } from "../helpers/tar_writer.ts";

const encoder = new TextEncoder();
/** Above the 1 MiB a stream holds: handed to `pass` as it goes past. */
const LARGE = 1_200_000;

/** A stream of a tar holding `name` with `text`, then a large layer. */
async function tocThenLayer(name: string, text: string): Promise<ReadableStream<Uint8Array>> {
  const bytes = await tarBytes(async (tar) => {
    await tar.addFile(name, encoder.encode(text));
    await tar.addFile("layer.tar", seededBytes("layer", LARGE));
  });
  return ReadableStream.from([bytes]);
}

const MALFORMED: [name: string, text: string, expected: string][] = [
  ["manifest.json", '{"Config":"c.json"}', "manifest.json: the top level must be an array"],
  ["manifest.json", '{"schemaVersion":3}', "manifest.json: schemaVersion must be 2"],
  ["manifest.json", '[{"Config":"c.json"}]', "manifest.json: entry 0.Layers must be an array"],
  ["manifest.json", "42", "manifest.json: the top level must be a list"],
  ["manifest.json", "not json", "manifest.json: not valid JSON"],
  ["index.json", '{"manifests":[{"digest":"x"}]}', "index.json: manifests[0].digest is not"],
];

for (const [name, text, expected] of MALFORMED) {
  Deno.test(`a stream stops at a malformed ${name} (${text}) before the layer after it passes`, async () => {
    const passed: string[] = [];
    const pass: PassEntry = async (entry, _label, _head, body) => {
      passed.push(entry.name);
      for await (const _ of body) { /* drained */ }
      return { kind: "passed", digest: "sha256:0", head: new Uint8Array() };
    };
    const stream = await tocThenLayer(name, text);
    const error = await assertRejects(
      () => readArchiveStream({ label: "standard input", stream }, { pass }),
      ArchiveError,
    );
    assertStringIncludes(error.message, `standard input: ${expected}`);
    assertEquals(passed, []);
  });
}

Deno.test("well-formed layout files of every format pass; other files are not looked at", () => {
  const digest = `sha256:${"a".repeat(64)}`;
  const descriptor = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest, size: 2 };
  checkLayoutFile("x", "index.json", encoder.encode(JSON.stringify({ manifests: [descriptor] })));
  checkLayoutFile(
    "x",
    "manifest.json",
    encoder.encode(JSON.stringify([{ Config: "c.json", RepoTags: null, Layers: ["l.tar"] }])),
  );
  checkLayoutFile(
    "x",
    "manifest.json",
    encoder.encode(JSON.stringify({ schemaVersion: 2, config: descriptor, layers: [descriptor] })),
  );
  checkLayoutFile("x", "blobs/sha256/abc", encoder.encode("not json"));
  assertThrows(() => checkLayoutFile("x", "index.json", encoder.encode("[]")), ArchiveError);
});

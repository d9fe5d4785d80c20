/** The kit's THIRD-PARTY-LICENSES: packages found from the bundle's module comments. */
import {
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "../../helpers/assert.ts";
import { inlinedPackages, thirdPartyNotices } from "../../../scripts/release/third_party.ts";

Deno.test("inlinedPackages finds each npm package the bundle marks, scoped ones too, once", () => {
  const bundle = [
    "// ../../cache/deno/npm/registry.npmjs.org/commander/14.0.3/lib/error.js",
    "var a = 1;",
    "// ../../cache/deno/npm/registry.npmjs.org/commander/14.0.3/lib/help.js",
    "// /abs/deno/npm/registry.npmjs.org/@scope/pkg/1.2.3-rc.1/index.js",
    "// src/version.ts",
    'const s = "// not/registry.npmjs.org/x/1/y.js";',
  ].join("\n");
  assertEquals(inlinedPackages(bundle, "/repo/root"), [
    {
      name: "@scope/pkg",
      version: "1.2.3-rc.1",
      dir: "/abs/deno/npm/registry.npmjs.org/@scope/pkg/1.2.3-rc.1",
    },
    {
      name: "commander",
      version: "14.0.3",
      dir: "/repo/root/../../cache/deno/npm/registry.npmjs.org/commander/14.0.3",
    },
  ]);
  assertThrows(
    () =>
      inlinedPackages(
        "// node_modules/.deno/commander@14.0.3/node_modules/commander/index.js\n",
        "/r",
      ),
    Error,
    "from a local node_modules",
  );
});

Deno.test("thirdPartyNotices carries each package's license files, or says it ships none", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dip-third-party-" });
  try {
    await Deno.mkdir(`${dir}/a/1.0.0`, { recursive: true });
    await Deno.mkdir(`${dir}/b/2.0.0`, { recursive: true });
    await Deno.writeTextFile(`${dir}/a/1.0.0/package.json`, '{"license": "MIT"}');
    await Deno.writeTextFile(`${dir}/a/1.0.0/license.md`, "Copyright (c) A\n\nMIT terms\n");
    await Deno.writeTextFile(`${dir}/a/1.0.0/index.js`, "not a license");
    await Deno.writeTextFile(`${dir}/b/2.0.0/package.json`, '{"license": "ISC"}');
    const text = await thirdPartyNotices([
      { name: "a", version: "1.0.0", dir: `${dir}/a/1.0.0` },
      { name: "b", version: "2.0.0", dir: `${dir}/b/2.0.0` },
    ]);
    assertStringIncludes(text, "a@1.0.0 (license: MIT)\n\nCopyright (c) A\n\nMIT terms\n");
    assertStringIncludes(
      text,
      "b@2.0.0 (license: ISC)\n\nThe package ships no license text; its package.json declares the license above.\n",
    );
    assertEquals(text.includes("not a license"), false);
    await assertRejects(
      () => thirdPartyNotices([{ name: "c", version: "3.0.0", dir: `${dir}/c/3.0.0` }]),
      Error,
      "Cannot read c@3.0.0's package.json",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

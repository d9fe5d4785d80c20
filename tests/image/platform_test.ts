import { hostPlatform, parsePlatform, platformMatches } from "../../src/image/platform.ts";
import { assertEquals, assertThrows } from "../helpers/assert.ts";

Deno.test("hostPlatform maps Deno's names to OCI's", () => {
  assertEquals(hostPlatform({ os: "linux", arch: "x86_64" }), {
    os: "linux",
    architecture: "amd64",
  });
  assertEquals(hostPlatform({ os: "darwin", arch: "aarch64" }), {
    os: "linux",
    architecture: "arm64",
  });
});

Deno.test("parsePlatform: os/arch[/variant] or all; anything else is a SyntaxError", () => {
  assertEquals(parsePlatform("linux/arm/v7"), {
    kind: "one",
    platform: { os: "linux", architecture: "arm", variant: "v7" },
  });
  assertEquals(parsePlatform("ALL"), { kind: "all" });
  for (const bad of ["linux", "linux/", "a/b/c/d", "linux/amd 64"]) {
    assertThrows(() => parsePlatform(bad), SyntaxError);
  }
});

Deno.test("platformMatches: default variants as containerd assumes them", () => {
  const p = (architecture: string, variant?: string) => ({
    os: "linux",
    architecture,
    ...(variant ? { variant } : {}),
  });
  assertEquals(platformMatches(p("arm64"), p("arm64", "v8")), true);
  assertEquals(platformMatches(p("arm64", "v8"), p("arm64")), true);
  assertEquals(platformMatches(p("arm", "v6"), p("arm", "v7")), false);
  assertEquals(platformMatches(p("arm"), p("arm", "v7")), true);
  assertEquals(platformMatches(p("amd64"), p("arm64")), false);
});

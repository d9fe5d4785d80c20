import { type Challenge, parseChallenges } from "../../src/registry/challenge.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { SeededRandom } from "../helpers/random.ts";

const CASES: [string, string, Challenge[]][] = [
  ["Basic", 'Basic realm="Registry Realm"', [
    { scheme: "basic", params: { realm: "Registry Realm" } },
  ]],
  [
    "Docker Hub Bearer",
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",' +
    'scope="repository:library/alpine:pull"',
    [{
      scheme: "bearer",
      params: {
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:library/alpine:pull",
      },
    }],
  ],
  ["comma inside quotes", 'Bearer realm="https://a/t",scope="repository:a:pull,push"', [
    { scheme: "bearer", params: { realm: "https://a/t", scope: "repository:a:pull,push" } },
  ]],
  [
    "insufficient_scope",
    'Bearer realm="https://a/t",error="insufficient_scope",scope="repository:b:pull"',
    [{
      scheme: "bearer",
      params: { realm: "https://a/t", error: "insufficient_scope", scope: "repository:b:pull" },
    }],
  ],
  ["several challenges", 'Basic realm="one", Bearer realm="two",service="s"', [
    { scheme: "basic", params: { realm: "one" } },
    { scheme: "bearer", params: { realm: "two", service: "s" } },
  ]],
  ["escaped quotes and backslashes", 'Bearer realm="say \\"hi\\"",note="a\\\\b"', [
    { scheme: "bearer", params: { realm: 'say "hi"', note: "a\\b" } },
  ]],
  ["odd spacing", '  Bearer   realm = "x" ,\tservice=  "y" ,  scope="z"  ', [
    { scheme: "bearer", params: { realm: "x", service: "y", scope: "z" } },
  ]],
  ["lowercased scheme and names, values kept", 'BEARER Realm="HTTPS://A/T",SERVICE=Reg', [
    { scheme: "bearer", params: { realm: "HTTPS://A/T", service: "Reg" } },
  ]],
  ["unquoted values", "Bearer realm=https://a/t,service=reg", [
    { scheme: "bearer", params: { realm: "https://a/t", service: "reg" } },
  ]],
  ["unquoted value, space before the comma", "Bearer realm=https://a/t , service=reg", [
    { scheme: "bearer", params: { realm: "https://a/t", service: "reg" } },
  ]],
  ["scheme without parameters", "Negotiate", [{ scheme: "negotiate", params: {} }]],
  ["empty list elements", ', , Basic ,, realm="r"', [
    { scheme: "basic", params: { realm: "r" } },
  ]],
  ["two schemes without parameters", "Basic, Negotiate", [
    { scheme: "basic", params: {} },
    { scheme: "negotiate", params: {} },
  ]],
  ["empty quoted value", 'Bearer realm=""', [{ scheme: "bearer", params: { realm: "" } }]],
  ["unterminated quote", 'Bearer realm="https://a/t', [
    { scheme: "bearer", params: { realm: "https://a/t" } },
  ]],
  ["empty header", "", []],
  ["only separators", " , ,\t", []],
];

Deno.test("parseChallenges reads the challenges registries send", () => {
  for (const [name, header, expected] of CASES) {
    assertEquals(parseChallenges(header), expected, name);
  }
});

Deno.test("parseChallenges keeps the last value of a repeated parameter", () => {
  assertEquals(parseChallenges('Bearer realm="a",realm="b"'), [
    { scheme: "bearer", params: { realm: "b" } },
  ]);
});

Deno.test("parseChallenges returns on garbage input without hanging or throwing", () => {
  const alphabet = ' \t,="\\=abcBearer realm:/;!@{}\u00e9\0';
  const random = new SeededRandom("challenge garbage");
  for (let round = 0; round < 500; round++) {
    const bytes = random.bytes(1 + (round % 64));
    const header = [...bytes].map((b) => alphabet[b % alphabet.length]).join("");
    const result = parseChallenges(header);
    assert(Array.isArray(result), header);
    for (const challenge of result) {
      assert(challenge.scheme !== "", `empty scheme from ${JSON.stringify(header)}`);
      assertEquals(challenge.scheme, challenge.scheme.toLowerCase(), header);
    }
  }
});

Deno.test("parseChallenges survives a corrupted byte anywhere in a real header", () => {
  const header =
    'Bearer realm="https://auth.example/token",service="reg",scope="repository:a:push"';
  for (let i = 0; i < header.length; i++) {
    for (const replacement of ['"', "\\", ",", "=", " ", "\0"]) {
      const corrupted = header.slice(0, i) + replacement + header.slice(i + 1);
      assert(Array.isArray(parseChallenges(corrupted)), corrupted);
    }
  }
});

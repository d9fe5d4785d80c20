import { InvalidOptionError } from "../../src/errors.ts";
import {
  familiarName,
  formatReference,
  type ImageReference,
  isRepositoryName,
  parseReference,
  parseRegistryPrefix,
  registryBaseUrl,
  registryEndpoint,
} from "../../src/image/reference.ts";
import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";

const DIGEST = `sha256:${"ab".repeat(32)}`;

const VALID: [string, ImageReference][] = [
  ["https://registry.example.com/project/app:v1.0", {
    scheme: "https",
    registry: "registry.example.com",
    apiHost: "registry.example.com",
    repository: "project/app",
    tag: "v1.0",
  }],
  ["http://127.0.0.1:5000/a/b:1", {
    scheme: "http",
    registry: "127.0.0.1:5000",
    apiHost: "127.0.0.1:5000",
    repository: "a/b",
    tag: "1",
  }],
  ["https://registry.example.com:8443/team/app", {
    scheme: "https",
    registry: "registry.example.com:8443",
    apiHost: "registry.example.com:8443",
    repository: "team/app",
    tag: "latest",
  }],
  [`https://registry.example.com/app@${DIGEST}`, {
    scheme: "https",
    registry: "registry.example.com",
    apiHost: "registry.example.com",
    repository: "app",
    digest: DIGEST,
  }],
  [`https://registry.example.com/app:v2@${DIGEST}`, {
    scheme: "https",
    registry: "registry.example.com",
    apiHost: "registry.example.com",
    repository: "app",
    tag: "v2",
    digest: DIGEST,
  }],
  ["https://u:p@host.example/app", {
    scheme: "https",
    registry: "host.example",
    apiHost: "host.example",
    repository: "app",
    tag: "latest",
    credentials: { username: "u", password: "p" },
  }],
  ["HTTPS://docker.io/nginx", {
    scheme: "https",
    registry: "docker.io",
    apiHost: "registry-1.docker.io",
    repository: "library/nginx",
    tag: "latest",
  }],
  ["https://registry-1.docker.io/user/app:3", {
    scheme: "https",
    registry: "docker.io",
    apiHost: "registry-1.docker.io",
    repository: "user/app",
    tag: "3",
  }],
  ["alpine", {
    scheme: "https",
    schemeImplied: true,
    registry: "docker.io",
    apiHost: "registry-1.docker.io",
    repository: "library/alpine",
    tag: "latest",
  }],
  ["docker.io/x", {
    scheme: "https",
    schemeImplied: true,
    registry: "docker.io",
    apiHost: "registry-1.docker.io",
    repository: "library/x",
    tag: "latest",
  }],
  ["index.docker.io/x:1", {
    scheme: "https",
    schemeImplied: true,
    registry: "docker.io",
    apiHost: "registry-1.docker.io",
    repository: "library/x",
    tag: "1",
  }],
  ["user/app", {
    scheme: "https",
    schemeImplied: true,
    registry: "docker.io",
    apiHost: "registry-1.docker.io",
    repository: "user/app",
    tag: "latest",
  }],
  ["localhost/app", {
    scheme: "https",
    schemeImplied: true,
    registry: "localhost",
    apiHost: "localhost",
    repository: "app",
    tag: "latest",
  }],
  ["localhost:5000/app", {
    scheme: "https",
    schemeImplied: true,
    registry: "localhost:5000",
    apiHost: "localhost:5000",
    repository: "app",
    tag: "latest",
  }],
  ["registry:5000/team/app:1", {
    scheme: "https",
    schemeImplied: true,
    registry: "registry:5000",
    apiHost: "registry:5000",
    repository: "team/app",
    tag: "1",
  }],
  ["[::1]:5000/app", {
    scheme: "https",
    schemeImplied: true,
    registry: "[::1]:5000",
    apiHost: "[::1]:5000",
    repository: "app",
    tag: "latest",
  }],
  [`  ghcr.io/org/sub/app@${DIGEST}  `, {
    scheme: "https",
    schemeImplied: true,
    registry: "ghcr.io",
    apiHost: "ghcr.io",
    repository: "org/sub/app",
    digest: DIGEST,
  }],
];

Deno.test("parseReference accepts full URLs and docker-style references", () => {
  for (const [input, expected] of VALID) {
    assertEquals(parseReference(input), expected, input);
  }
});

Deno.test("parseReference keeps Docker Hub names whose tag looks like a port", () => {
  // Only a host-looking name (a dot, or localhost) with a numeric tag is a bare registry.
  const cases: [string, string, string][] = [
    ["nginx:1.25", "library/nginx", "1.25"],
    ["redis:7", "library/redis", "7"],
    ["myhost:5000", "library/myhost", "5000"],
    ["library/nginx:latest", "library/nginx", "latest"],
    ["foo.bar:latest", "library/foo.bar", "latest"],
    ["user/app.web:8080", "user/app.web", "8080"],
  ];
  for (const [input, repository, tag] of cases) {
    const ref = parseReference(input);
    assertEquals([ref.registry, ref.repository, ref.tag], ["docker.io", repository, tag], input);
  }
});

Deno.test("familiarName drops Docker Hub's docker.io/ and library/ as docker images does", () => {
  const cases: [string, string][] = [
    ["docker.io/example/acc:1.0", "example/acc:1.0"],
    ["docker.io/library/alpine:3", "alpine:3"],
    ["index.docker.io/library/alpine", "alpine"],
    ["registry-1.docker.io/team/app:1", "team/app:1"],
    ["docker.io:5000/library/app:1", "docker.io:5000/library/app:1"],
    ["docker.io/", "docker.io/"],
    ["docker.io/library/sub/app:1", "library/sub/app:1"],
    ["alpine:3", "alpine:3"],
    ["127.0.0.1:5000/app:1", "127.0.0.1:5000/app:1"],
    ["ghcr.io/org/app:1", "ghcr.io/org/app:1"],
    [`docker.io/library/x@${DIGEST}`, `x@${DIGEST}`],
  ];
  for (const [input, expected] of cases) assertEquals(familiarName(input), expected, input);
});

const INVALID: [string, string][] = [
  ["https://registry.example.com/Team/app", "Invalid repository name"],
  ["Alpine", "Invalid repository name"],
  ["registry.example.com/app:-bad", "Invalid tag"],
  ["registry.example.com/app:bad!", "Invalid tag"],
  [`app:${"t".repeat(129)}`, "Invalid tag"],
  ["registry.example.com/app@sha256:xyz", "Invalid digest"],
  [`app@md5:${"ab".repeat(16)}`, "Invalid digest"],
  ["", "empty"],
  ["   ", "empty"],
  ["ftp://registry.example.com/app", "Unsupported scheme"],
  ["https://registry.example.com/app?x=1", "query or fragment"],
  ["https://registry.example.com/app#frag", "query or fragment"],
  ["https://registry.example.com/", "names no repository"],
  ["https://registry.example.com", "names no repository"],
  ["registry.example.com/", "names a registry but no repository"],
  // host[:port] with no repository: not Docker Hub's library/<host> tagged with the port.
  ["127.0.0.1:5000", "names a registry but no repository"],
  ["localhost:5000", "names a registry but no repository"],
  ["registry.example.com:5000", "names a registry but no repository"],
  ["registry.example.com:5000/", "names a registry but no repository"],
  [`127.0.0.1:5000@sha256:${"a".repeat(64)}`, "names a registry but no repository"],
  ["https://registry.example.com/a//b", "Invalid repository name"],
  ["bad_host.example/app", "Invalid registry host"],
  ["https://bad host/app", "Invalid repository URL"],
];

Deno.test("parseReference rejects malformed input with an InvalidOptionError and a hint", () => {
  for (const [input, message] of INVALID) {
    const error = assertThrows(() => parseReference(input), InvalidOptionError, message);
    assert(error.hint !== undefined && error.hint.length > 0, `no hint for ${input}`);
  }
});

Deno.test("isRepositoryName: distribution's grammar, for references and mountFrom alike", () => {
  const accepted = [
    "a",
    "a/b-c_d.e",
    "team/base",
    "a__b",
    "a---b",
    "0/9",
    "x/".repeat(200) + "x",
  ];
  const refused = [
    "",
    "Team/Base",
    "aB",
    "a//b",
    "/a",
    "a/",
    "a___b",
    "a..b",
    "a_.b",
    "-a",
    "a-",
    "_a",
    "a:1",
    "a@sha256:00",
    "host.example:5000/a",
    "a b",
    "a\n",
  ];
  for (const name of accepted) assert(isRepositoryName(name), name);
  for (const name of refused) assert(!isRepositoryName(name), JSON.stringify(name));
});

Deno.test("parseReference takes a repository of 255 characters, not 256", () => {
  const name = (length: number) => `team/${"a".repeat(length - 5)}`;
  assertEquals(parseReference(`registry.example.com/${name(255)}:1`).repository, name(255));
  assertThrows(
    () => parseReference(`registry.example.com/${name(256)}:1`),
    InvalidOptionError,
    "Repository name is longer than 255 characters",
  );
});

Deno.test("parseReference never puts the password of a bad URL in the error text", () => {
  for (const input of ["https://u:s3cret@bad host/app", "https://u:s3cret@host:99999/app"]) {
    const error = assertThrows(() => parseReference(input), InvalidOptionError, "***@");
    assert(!error.message.includes("s3cret"), error.message);
    assert(!String(error.hint).includes("s3cret"), String(error.hint));
  }
});

Deno.test({
  name: "parseReference hides a password containing @ in the error for a bad URL",
  fn() {
    const error = assertThrows(
      () => parseReference("https://u:p@ss@bad host/app"),
      InvalidOptionError,
    );
    assert(!error.message.includes("ss@"), error.message);
  },
});

Deno.test({
  name: "parseReference rejects malformed percent-escapes with an InvalidOptionError",
  fn() {
    assertThrows(() => parseReference("https://host.example/app%ZZ"), InvalidOptionError);
    assertThrows(() => parseReference("https://u%ZZ:p@host.example/app"), InvalidOptionError);
  },
});

Deno.test("parseReference decodes percent-encoded credentials", () => {
  const ref = parseReference("https://us%40er:p%3Ass@host.example/app");
  assertEquals(ref.credentials, { username: "us@er", password: "p:ss" });
});

Deno.test("formatReference writes registry/repository with the tag or the digest", () => {
  const cases: [string, string][] = [
    ["alpine", "docker.io/library/alpine:latest"],
    ["http://127.0.0.1:5000/a/b:1", "127.0.0.1:5000/a/b:1"],
    [`host.example/app@${DIGEST}`, `host.example/app@${DIGEST}`],
    ["https://u:p@host.example/app:2", "host.example/app:2"],
  ];
  for (const [input, expected] of cases) {
    assertEquals(formatReference(parseReference(input)), expected, input);
  }
});

Deno.test("registryBaseUrl uses the scheme and the API host", () => {
  const cases: [string, string][] = [
    ["alpine", "https://registry-1.docker.io/"],
    ["http://127.0.0.1:5000/a/b:1", "http://127.0.0.1:5000/"],
    ["registry:5000/team/app:1", "https://registry:5000/"],
    ["[::1]:5000/app", "https://[::1]:5000/"],
    ["https://u:p@host.example/app", "https://host.example/"],
  ];
  for (const [input, expected] of cases) {
    assertEquals(registryBaseUrl(parseReference(input)).href, expected, input);
  }
});

Deno.test("registryEndpoint says when the scheme was implied: never for a scheme written", () => {
  const cases: [string, string, boolean][] = [
    ["localhost:5000/app:1", "https://localhost:5000/", true],
    ["127.0.0.1:5000/app:1", "https://127.0.0.1:5000/", true],
    ["registry.example.com/app", "https://registry.example.com/", true],
    ["https://localhost:5000/app:1", "https://localhost:5000/", false],
    ["http://127.0.0.1:5000/app:1", "http://127.0.0.1:5000/", false],
  ];
  for (const [input, url, implied] of cases) {
    const endpoint = registryEndpoint(parseReference(input));
    assertEquals([endpoint.baseUrl.href, endpoint.schemeImplied], [url, implied], input);
  }
  // --all's registry prefix carries it too, with or without a prefix.
  assertEquals(registryEndpoint(parseRegistryPrefix("localhost:5000")).schemeImplied, true);
  assertEquals(registryEndpoint(parseRegistryPrefix("localhost:5000/mirror")).schemeImplied, true);
  assertEquals(
    registryEndpoint(parseRegistryPrefix("https://localhost:5000")).schemeImplied,
    false,
  );
});

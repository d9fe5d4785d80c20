/**
 * Property tests of `parseReference`: any string is parsed or refused with a `InvalidOptionError`
 * (never a TypeError, URIError or a hang), and references parse → format → parse stably.
 *
 * Replay a failure with the seed (and path) fast-check prints:
 * `FC_SEED=<seed> FC_PATH=<path> deno test -A tests/registry/reference_property_test.ts`.
 * `FC_RUNS=<n>` multiplies every property's run count for a longer soak.
 */
import fc from "fast-check";
import { InvalidOptionError } from "../../src/errors.ts";
import {
  formatReference,
  type ImageReference,
  parseReference,
  registryBaseUrl,
} from "../../src/image/reference.ts";
import { assert, assertEquals } from "../helpers/assert.ts";

/** Run settings: a modest count, and the seed from `FC_SEED` when replaying a failure. */
function params<T>(numRuns: number): fc.Parameters<T> {
  const seed = Deno.env.get("FC_SEED");
  const path = Deno.env.get("FC_PATH");
  const factor = Number(Deno.env.get("FC_RUNS") ?? "1");
  return {
    numRuns: Math.max(1, Math.round(numRuns * (Number.isFinite(factor) ? factor : 1))),
    ...(seed !== undefined && seed !== "" ? { seed: Number(seed) } : {}),
    ...(path !== undefined && path !== "" ? { path } : {}),
  };
}

/** Parses `input`; a refusal must be an InvalidOptionError with a message, and must come quickly. */
function parseOrUsageError(input: string): ImageReference | undefined {
  const started = performance.now();
  try {
    return parseReference(input);
  } catch (error) {
    if (!(error instanceof InvalidOptionError)) {
      const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw new Error(`Expected an InvalidOptionError for ${JSON.stringify(input)}, got ${what}`, {
        cause: error,
      });
    }
    assert(/^[A-Z-]/.test(error.message), `message "${error.message}" starts lowercase`);
    return undefined;
  } finally {
    const took = performance.now() - started;
    assert(took < 250, `parseReference took ${took.toFixed(0)} ms for ${input.length} chars`);
  }
}

// ---------------------------------------------------------------------------------------------
// Arbitrary strings

/** Pieces of references, URLs and near misses, to build strings that get past the first checks. */
const TOKENS = [
  "http://",
  "https://",
  "HTTP://",
  "ftp://",
  "oci://",
  "/",
  "//",
  ":",
  "@",
  "sha256:",
  "sha512:",
  "ab".repeat(32),
  "AB".repeat(32),
  "cd".repeat(64),
  "a",
  "Z",
  "0",
  "99999",
  "5000",
  "65535",
  ".",
  "..",
  "-",
  "_",
  "__",
  "[",
  "]",
  "[::1]",
  "::",
  "%",
  "%2F",
  "%zz",
  "%E0%A4%A",
  "%00",
  "localhost",
  "docker.io",
  "index.docker.io",
  "registry-1.docker.io",
  "user:pw@",
  "@@",
  "?",
  "#",
  " ",
  "\t",
  "\n",
  "é",
  "\u0000",
  "\u{1F600}",
  "\uD800",
  "latest",
  "library",
  "x".repeat(130),
];

const anyString = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.string({ unit: fc.constantFrom(...TOKENS), maxLength: 30 }),
  // Surrogate halves and other UTF-16 oddities that the "binary" unit leaves out.
  fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 60 })
    .map((units) => String.fromCharCode(...units)),
);

Deno.test("property: parseReference parses any string or throws InvalidOptionError", () => {
  fc.assert(
    fc.property(anyString, (input) => {
      const ref = parseOrUsageError(input);
      if (ref === undefined) return;
      assert(ref.repository !== "" && ref.repository.length <= 255, ref.repository);
      assert(ref.tag !== undefined || ref.digest !== undefined, "neither tag nor digest");
      assert(ref.scheme === "https" || ref.scheme === "http");
    }),
    params(5000),
  );
});

Deno.test("property: parseReference never hangs on long inputs", () => {
  // Shapes that make backtracking regular expressions slow, repeated thousands of times.
  const unit = fc.constantFrom(
    "a-",
    "a.",
    "a_",
    "a__",
    "a--",
    "a",
    "A",
    "0",
    "-",
    "a/",
    ":",
    "@",
    "%2",
    "://",
    "a@",
  );
  fc.assert(
    fc.property(
      fc.constantFrom("", "http://", "https://", "host.example:5000/", "a/"),
      fc.array(unit, { minLength: 1, maxLength: 3 }),
      fc.integer({ min: 1000, max: 20000 }),
      fc.constantFrom("", "!", "-", ":", "@sha256:", "/", "A"),
      (prefix, pattern, times, suffix) => {
        parseOrUsageError(prefix + pattern.join("").repeat(times).slice(0, 20000) + suffix);
      },
    ),
    params(200),
  );
});

Deno.test("property: a reference parseReference accepts has a usable registry URL", () => {
  // What the CLI does next with an accepted reference: `new URL(scheme://apiHost/)`. A host the
  // parser accepts but URL refuses (port 99999, "[::::]") fails later as a TypeError, exit 1,
  // instead of a usage error with a hint.
  const host = fc.oneof(
    fc.stringMatching(/^[a-z0-9]([a-z0-9.-]{0,10}[a-z0-9])?\.[a-z]{2,4}$/),
    fc.constantFrom(
      "localhost",
      "127.0.0.1",
      "[::1]",
      "[fe80::1]",
      "[::::]",
      "[1.2.3.4]",
      "999.1.1.1",
      "registry.1",
    ),
  );
  fc.assert(
    fc.property(
      host,
      fc.option(fc.integer({ min: 0, max: 99999 }), { nil: undefined }),
      fc.constantFrom("", "http://", "https://"),
      (hostname, port, scheme) => {
        const input = `${scheme}${hostname}${port === undefined ? "" : `:${port}`}/team/app:1`;
        const ref = parseOrUsageError(input);
        if (ref === undefined) return;
        try {
          registryBaseUrl(ref);
        } catch (error) {
          throw new Error(
            `parseReference accepted ${JSON.stringify(input)} (registry ${ref.apiHost}) but ` +
              `registryBaseUrl throws ${(error as Error).name}: ${(error as Error).message}`,
          );
        }
      },
    ),
    params(500),
  );
});

// ---------------------------------------------------------------------------------------------
// Round trip

const alnum = fc.string({
  unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789"),
  minLength: 1,
  maxLength: 8,
});
const separator = fc.constantFrom(".", "_", "__", "-", "--", "---");
/** A repository path component: lowercase alphanumerics joined by separators. */
const component = fc.tuple(alnum, fc.array(fc.tuple(separator, alnum), { maxLength: 3 }))
  .map(([first, rest]) => first + rest.map(([sep, part]) => sep + part).join(""));
const repository = fc.array(component, { minLength: 1, maxLength: 4 }).map((c) => c.join("/"));

/** Whether the WHATWG URL parser takes it as a host (punycode "xn--" and numbers must be valid). */
function urlHost(host: string): boolean {
  try {
    new URL(`https://${host}/`);
    return true;
  } catch {
    return false;
  }
}
const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?$/).filter(urlHost);
/** A registry host: a domain, an IPv4 or IPv6 address, or localhost, with an optional port. */
const hostname = fc.oneof(
  // The last label of a domain is alphabetic: URL parsing reads "a.b.1" as a bad IPv4 address.
  fc.tuple(fc.array(label, { minLength: 1, maxLength: 3 }), fc.stringMatching(/^[a-z]{2,6}$/))
    .map(([labels, tld]) => [...labels, tld].join(".")).filter(urlHost),
  fc.ipV4(),
  fc.constantFrom("localhost", "[::1]", "[fe80::1]", "Registry.Example.COM"),
).filter((host) => !["docker.io", "index.docker.io", "registry-1.docker.io"].includes(host));
const port = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined });
/** A single label: a registry only in URL form (in docker form it is a Docker Hub namespace). */
const singleLabel = label.filter((l) => l !== "localhost");

const tag = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/);
const digest = fc.oneof(
  fc.stringMatching(/^[a-f0-9]{64}$/).map((hex) => `sha256:${hex}`),
  fc.stringMatching(/^[a-f0-9]{128}$/).map((hex) => `sha512:${hex}`),
);

interface Generated {
  text: string;
  form: "docker" | "http" | "https";
  registry: string;
  repository: string;
  tag: string | undefined;
  digest: string | undefined;
}

function reference(
  hosts: fc.Arbitrary<string>,
  forms: ("docker" | "http" | "https")[],
  refs: "any" | "tag-or-digest",
): fc.Arbitrary<Generated> {
  return fc.record({
    host: hosts,
    port,
    form: fc.constantFrom(...forms),
    repository,
    tag: fc.option(tag, { nil: undefined }),
    digest: fc.option(digest, { nil: undefined }),
  }).filter((g) => refs === "any" || g.tag === undefined || g.digest === undefined)
    .map((g) => {
      const written = g.port === undefined ? g.host : `${g.host}:${g.port}`;
      const scheme = g.form === "docker" ? "" : `${g.form}://`;
      const suffix = (g.tag === undefined ? "" : `:${g.tag}`) +
        (g.digest === undefined ? "" : `@${g.digest}`);
      return {
        text: `${scheme}${written}/${g.repository}${suffix}`,
        form: g.form,
        // A URL's host is lowercased and loses a default port (http://h:80 is h).
        registry: g.form === "docker" ? written : new URL(`${scheme}${written}/`).host,
        repository: g.repository,
        tag: g.tag ?? (g.digest === undefined ? "latest" : undefined),
        digest: g.digest,
      };
    });
}

/** Parses, formats, parses again: both parses name the same image. */
function assertStable(generated: Generated): void {
  const first = parseReference(generated.text);
  assertEquals(
    {
      registry: first.registry,
      repository: first.repository,
      tag: first.tag,
      digest: first.digest,
    },
    {
      registry: generated.registry,
      repository: generated.repository,
      tag: generated.tag,
      digest: generated.digest,
    },
    `parse of ${generated.text}`,
  );
  const formatted = formatReference(first);
  const second = parseReference(formatted);
  assertEquals(
    { registry: second.registry, repository: second.repository, tag: second.tag },
    { registry: first.registry, repository: first.repository, tag: first.tag },
    `${generated.text} formats as ${formatted}, which parses differently`,
  );
  assertEquals(
    second.digest,
    first.digest,
    `${generated.text} formats as ${formatted}, which loses the digest`,
  );
}

Deno.test("property: parse, format and parse again is stable", () => {
  fc.assert(
    fc.property(
      reference(
        fc.oneof({ weight: 4, arbitrary: hostname }, { weight: 1, arbitrary: singleLabel }),
        ["docker", "docker", "http", "https"],
        "any",
        // A single-label host is only expressible as a URL; its docker form reads as Docker Hub.
      ).filter((g) => isHostLike(g.registry)),
      assertStable,
    ),
    params(1000),
  );
});

/** A first component docker's rule reads as a host (a dot, a port, localhost, uppercase). */
function isHostLike(registry: string): boolean {
  return registry.includes(".") || registry.includes(":") || registry === "localhost" ||
    registry !== registry.toLowerCase();
}

// Narrower properties, so that the failures of the one above (tag and digest together, a
// single-label host in URL form) do not hide a regression elsewhere.

Deno.test("property: round trip with a tag or a digest, hosts with a dot, a port or localhost", () => {
  fc.assert(
    fc.property(
      reference(hostname, ["docker", "http", "https"], "tag-or-digest"),
      assertStable,
    ),
    params(1000),
  );
});

Deno.test("property: round trip keeps the digest of a reference with a tag and a digest", () => {
  fc.assert(
    fc.property(
      reference(hostname, ["docker"], "any").filter((g) =>
        g.tag !== undefined && g.digest !== undefined
      ),
      assertStable,
    ),
    params(200),
  );
});

Deno.test("property: a single-label registry given as a URL is parsed and printed as given", () => {
  fc.assert(
    fc.property(reference(singleLabel, ["http", "https"], "tag-or-digest"), (generated) => {
      const parsed = parseReference(generated.text);
      assertEquals(parsed.registry, generated.registry);
      assertEquals(parsed.apiHost, generated.registry);
      assert(formatReference(parsed).startsWith(`${generated.registry}/`));
    }),
    params(200),
  );
});

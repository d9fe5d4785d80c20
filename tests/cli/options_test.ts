import { UsageError } from "../../src/cli/usage_error.ts";
import {
  DEFAULTS,
  describePasswordSource,
  ENV,
  type PushSettings,
  type RawFlags,
  resolveSettings,
} from "../../src/cli/options.ts";
import { TAG_HINT } from "../../src/image/reference.ts";
import { LIMITS, registryLimits } from "../../src/api/checks.ts";
import { InvalidOptionError } from "../../src/errors.ts";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../helpers/assert.ts";

const BASE: RawFlags = { file: "app.tar", repositoryUrl: "registry.example.com/team/app:1" };
const MiB = 1024 ** 2;

const noEnv = (): string | undefined => undefined;
const envOf = (vars: Record<string, string>) => (name: string): string | undefined => vars[name];
const resolve = (flags: RawFlags, vars: Record<string, string> = {}, stdin?: string) =>
  resolveSettings({ ...BASE, ...flags }, envOf(vars), stdin);

Deno.test("resolveSettings uses the documented defaults", () => {
  const s = resolveSettings(BASE, noEnv);
  assertEquals(DEFAULTS, {
    timeoutSeconds: 7200,
    largeLayerThreshold: 1024 ** 3,
    chunkSize: 64 * MiB,
    maxConcurrent: 3,
    retryAttempts: 3,
    compression: "gzip",
  });
  const expected: Omit<PushSettings, "targets"> = {
    files: ["app.tar"],
    tags: [],
    all: false,
    multiArch: false,
    output: "text",
    timeoutSeconds: 7200,
    largeLayerThreshold: 1024 ** 3,
    chunkSize: 64 * MiB,
    maxConcurrent: 3,
    retryAttempts: 3,
    skipTls: false,
    verbose: false,
    quiet: false,
    dryRun: false,
    forceUpload: false,
    images: [],
    caCert: undefined,
    mountFrom: undefined,
    chunked: "auto",
    resume: true,
    verify: false,
    compression: { codec: "gzip", level: "auto" },
    compressionExplicit: false,
    referrers: true,
  };
  const { targets, ...rest } = s;
  assertEquals(rest, expected);
  assertEquals(targets.length, 1);
  const { reference, ...credentials } = targets[0]!;
  assertEquals(credentials, {
    username: undefined,
    password: undefined,
    passwordSource: undefined,
  });
  assertEquals([reference.registry, reference.repository, reference.tag], [
    "registry.example.com",
    "team/app",
    "1",
  ]);
});

// [setting, flags, env var, env value, flag value, expected from env, expected from flag]
type Row = [keyof PushSettings, keyof RawFlags, string, string, string | boolean, unknown, unknown];
const ROWS: Row[] = [
  ["maxConcurrent", "maxConcurrent", ENV.maxConcurrent, "5", "8", 5, 8],
  ["timeoutSeconds", "timeout", ENV.timeout, "60", "90", 60, 90],
  ["timeoutSeconds", "timeout", ENV.timeout, "2h", "5m", 7200, 300],
  [
    "largeLayerThreshold",
    "largeLayerThreshold",
    ENV.largeLayerThreshold,
    "512MiB",
    "2GB",
    512 * MiB,
    2_000_000_000,
  ],
  ["retryAttempts", "retryAttempts", ENV.retryAttempts, "0", "7", 0, 7],
  ["chunkSize", "chunkSize", ENV.chunkSize, "8M", "4MiB", 8 * MiB, 4 * MiB],
  ["skipTls", "skipTls", ENV.skipTls, "yes", false, true, false],
  ["verbose", "verbose", ENV.verbose, "on", false, true, false],
  ["forceUpload", "skipExisting", ENV.skipExisting, "false", true, true, false],
];

Deno.test("resolveSettings: environment overrides defaults, flags override environment", () => {
  for (const [setting, flag, name, envValue, flagValue, fromEnv, fromFlag] of ROWS) {
    assertEquals(resolve({}, { [name]: envValue })[setting], fromEnv, `${name}=${envValue}`);
    assertEquals(
      resolve({ [flag]: flagValue }, { [name]: envValue })[setting],
      fromFlag,
      `--${flag} ${flagValue} over ${name}`,
    );
  }
});

Deno.test("resolveSettings: --compression and --compression-level, flags over environment", () => {
  const cases: [RawFlags, Record<string, string>, unknown][] = [
    [{}, {}, { codec: "gzip", level: "auto" }],
    [{ compression: "ZSTD" }, {}, { codec: "zstd", level: "auto" }],
    [{ compression: "none" }, { [ENV.compression]: "zstd" }, { codec: "none" }],
    [{}, { [ENV.compression]: "zstd", [ENV.compressionLevel]: "19" }, { codec: "zstd", level: 19 }],
    [{ compressionLevel: "1" }, { [ENV.compressionLevel]: "9" }, { codec: "gzip", level: 1 }],
    [{ compressionLevel: "auto" }, { [ENV.compressionLevel]: "9" }, {
      codec: "gzip",
      level: "auto",
    }],
    [{}, { [ENV.compression]: "" }, { codec: "gzip", level: "auto" }],
  ];
  for (const [flags, vars, expected] of cases) {
    assertEquals(resolve(flags, vars).compression, expected, JSON.stringify([flags, vars]));
  }
  const bad: [RawFlags, Record<string, string>, string][] = [
    [{ compression: "brotli" }, {}, "--compression"],
    [{}, { [ENV.compression]: "lz4" }, ENV.compression],
    [{ compressionLevel: "10" }, {}, "--compression-level"],
    [{ compression: "zstd", compressionLevel: "20" }, {}, "--compression-level"],
    [{ compressionLevel: "0" }, {}, "--compression-level"],
    [{ compression: "none", compressionLevel: "3" }, {}, "--compression-level"],
    [{}, { [ENV.compression]: "none", [ENV.compressionLevel]: "3" }, ENV.compressionLevel],
  ];
  for (const [flags, vars, needle] of bad) {
    assertThrows(() => resolve(flags, vars), UsageError, needle);
  }
});

Deno.test("resolveSettings: compression is explicit only from the command line; --no-referrers", () => {
  assertEquals(resolve({}).compressionExplicit, false);
  assertEquals(resolve({}, { [ENV.compression]: "zstd" }).compressionExplicit, false);
  assertEquals(resolve({ compression: "gzip" }).compressionExplicit, true);
  assertEquals(resolve({ compressionLevel: "6" }).compressionExplicit, true);
  assertEquals(resolve({}).referrers, true);
  assertEquals(resolve({ referrers: false }).referrers, false);
});

Deno.test("resolveSettings reads the password from the flag, stdin, environment or URL", () => {
  const env = { [ENV.username]: "u", [ENV.password]: "envpw" };
  const cases: [RawFlags, Record<string, string>, string | undefined, unknown[]][] = [
    [{ password: "flagpw" }, env, undefined, ["u", "flagpw", "flag"]],
    [{ passwordStdin: true }, env, "stdinpw", ["u", "stdinpw", "stdin"]],
    [{ passwordStdin: true }, env, undefined, ["u", "", "stdin"]],
    [{}, env, undefined, ["u", "envpw", "env"]],
    [{ repositoryUrl: "https://a:urlpw@r.example/app" }, {}, undefined, ["a", "urlpw", "url"]],
    [{ repositoryUrl: "https://a:urlpw@r.example/app" }, env, undefined, ["u", "envpw", "env"]],
    // The URL's user named again (environment or -u) takes the URL's password; another does not.
    [{ repositoryUrl: "https://a:urlpw@r.example/app" }, { [ENV.username]: "a" }, undefined, [
      "a",
      "urlpw",
      "url",
    ]],
    [{ repositoryUrl: "https://a:urlpw@r.example/app", username: "a" }, {}, undefined, [
      "a",
      "urlpw",
      "url",
    ]],
    [{ repositoryUrl: "https://a:urlpw@r.example/app", username: "b" }, {}, undefined, [
      "b",
      undefined,
      undefined,
    ]],
    [{ username: "x" }, { [ENV.password]: "" }, undefined, ["x", undefined, undefined]],
  ];
  for (const [flags, vars, stdin, expected] of cases) {
    const s = resolve(flags, vars, stdin);
    const t = s.targets[0]!;
    assertEquals([t.username, t.password, t.passwordSource], expected, JSON.stringify(flags));
  }
});

Deno.test("resolveSettings reads boolean environment variables", () => {
  const cases: [string, boolean][] = [
    ["true", true],
    ["1", true],
    ["YES", true],
    ["on", true],
    ["false", false],
    ["0", false],
    ["no", false],
    ["Off", false],
  ];
  for (const [value, expected] of cases) {
    for (const name of [ENV.skipTls, ENV.verbose] as const) {
      const s = resolve({}, { [name]: value });
      assertEquals(name === ENV.skipTls ? s.skipTls : s.verbose, expected, `${name}=${value}`);
    }
    assertEquals(resolve({}, { [ENV.skipExisting]: value }).forceUpload, !expected, value);
  }
  assertEquals(resolve({}, { [ENV.verbose]: "" }).verbose, false);
});

Deno.test("resolveSettings rejects garbage boolean environment variables", () => {
  for (const name of [ENV.skipTls, ENV.verbose, ENV.skipExisting]) {
    assertThrows(() => resolve({}, { [name]: "maybe" }), UsageError, name);
  }
});

Deno.test("resolveSettings: --force-upload wins over DOCKER_PUSHER_SKIP_EXISTING=true", () => {
  assertEquals(resolve({ forceUpload: true }, { [ENV.skipExisting]: "true" }).forceUpload, true);
  assertEquals(resolve({ forceUpload: true }).forceUpload, true);
  assertEquals(resolve({ skipExisting: true }).forceUpload, false);
});

Deno.test("resolveSettings: --quiet wins over DOCKER_PUSHER_VERBOSE", () => {
  const s = resolve({ quiet: true }, { [ENV.verbose]: "true" });
  assertEquals([s.quiet, s.verbose], [true, false]);
});

Deno.test("resolveSettings rejects conflicting or missing flags with a UsageError", () => {
  const cases: [RawFlags, Record<string, string>, string][] = [
    [{ forceUpload: true, skipExisting: true }, {}, "--skip-existing and --force-upload"],
    [{ quiet: true, verbose: true }, {}, "--quiet and --verbose"],
    [{ password: "p", passwordStdin: true }, {}, "--password and --password-stdin"],
    [{ password: "p" }, {}, "without a username"],
    [{ passwordStdin: true }, {}, "without a username"],
    [{}, { [ENV.password]: "p" }, "without a username"],
    [{ repositoryUrl: "Not A Reference" }, {}, "Invalid"],
    [{ chunkSize: "1KiB" }, {}, "--chunk-size must be at least"],
    [{ timeout: "0" }, {}, "--timeout"],
    [{ retryAttempts: "101" }, {}, "--retry-attempts"],
  ];
  for (const [flags, vars, message] of cases) {
    assertThrows(() => resolve(flags, vars), UsageError, message);
  }
  for (const flags of [{ file: "app.tar" }, { file: "app.tar", repositoryUrl: "" }]) {
    const error = assertThrows(
      () => resolveSettings(flags, noEnv),
      UsageError,
      "-r/--repository-url",
    );
    assert(error.hint !== undefined, "no hint");
  }
  for (const flags of [{ repositoryUrl: "app" }, { repositoryUrl: "app", file: "" }]) {
    const error = assertThrows(() => resolveSettings(flags, noEnv), UsageError, "-f/--file");
    assert(error.hint !== undefined, "no hint");
  }
});

Deno.test("resolveSettings validates counts and sizes from flags and environment", () => {
  for (const value of ["0", "65", "abc", "-1", "2.5"]) {
    assertThrows(() => resolve({ maxConcurrent: value }), UsageError, "--max-concurrent");
    assertThrows(() => resolve({}, { [ENV.maxConcurrent]: value }), UsageError, ENV.maxConcurrent);
  }
  assertEquals(resolve({ maxConcurrent: "64" }).maxConcurrent, 64);
  assertEquals(resolve({ maxConcurrent: "1" }).maxConcurrent, 1);
  for (const value of ["garbage", "12XB", "1..5G"]) {
    assertThrows(() => resolve({ largeLayerThreshold: value }), UsageError, "--large-layer");
    assertThrows(() => resolve({}, { [ENV.chunkSize]: value }), UsageError, ENV.chunkSize);
  }
  assertEquals(resolve({ largeLayerThreshold: "1.5GiB" }).largeLayerThreshold, 1.5 * 1024 ** 3);
  assertEquals(resolve({ largeLayerThreshold: "0" }).largeLayerThreshold, 0);
  assertEquals(resolve({ chunkSize: "64KiB" }).chunkSize, 64 * 1024);
  assertEquals(resolve({ timeout: "604800" }).timeoutSeconds, 7 * 24 * 3600);
  assertThrows(() => resolve({ timeout: "604801" }), UsageError, "--timeout");
});

Deno.test("the shared flags and the API's options take the ranges of one table, LIMITS", () => {
  const flags = {
    maxConcurrent: "maxConcurrent",
    retryAttempts: "retryAttempts",
    timeoutSeconds: "timeout",
  } as const;
  for (const [option, { min, max }] of Object.entries(LIMITS)) {
    const key = option as keyof typeof LIMITS;
    for (const bound of [min, max]) {
      assertEquals(resolve({ [flags[key]]: String(bound) })[key], bound, `${option} ${bound}`);
      assertEquals(registryLimits({ [key]: bound })[key], bound, `${option} ${bound}`);
    }
    for (const past of [min - 1, max + 1].filter((n) => n >= 0)) {
      assertThrows(() => resolve({ [flags[key]]: String(past) }), UsageError);
      assertThrows(() => registryLimits({ [key]: past }), InvalidOptionError);
    }
  }
  // The words users see, unchanged since the ranges moved into the table.
  const words: [RawFlags, string][] = [
    [{ maxConcurrent: "0" }, '--max-concurrent expects a whole number from 1 to 64, got "0"'],
    [{ maxConcurrent: "65" }, '--max-concurrent expects a whole number from 1 to 64, got "65"'],
    [{ retryAttempts: "101" }, '--retry-attempts expects a whole number from 0 to 100, got "101"'],
    [{ timeout: "0" }, '--timeout expects a duration from 1s to 168h, got "0"'],
    [{ timeout: "8d" }, '--timeout expects a duration from 1s to 168h, got "8d"'],
  ];
  for (const [flag, message] of words) {
    assertEquals(assertThrows(() => resolve(flag), UsageError).message, message);
  }
});

Deno.test("resolveSettings: every bad environment value gets a hint that names the variable", () => {
  const cases: [string, string][] = [
    [ENV.maxConcurrent, "x"],
    [ENV.timeout, "soon"],
    [ENV.largeLayerThreshold, "big"],
    [ENV.chunkSize, "1"],
    [ENV.retryAttempts, "lots"],
    [ENV.skipTls, "maybe"],
    [ENV.verbose, "loud"],
    [ENV.skipExisting, "perhaps"],
    [ENV.compression, "lz4"],
    [ENV.compressionLevel, "x"],
  ];
  for (const [name, value] of cases) {
    const error = assertThrows(() => resolve({}, { [name]: value }), UsageError, name);
    assert(error.hint?.includes(`unset ${name}`), `${name}=${value}: ${error.hint}`);
  }
  // A flag's value is not the environment's: no advice to unset anything.
  const flag = assertThrows(() => resolve({ maxConcurrent: "x" }), UsageError, "--max-concurrent");
  assert(flag.hint !== undefined && !flag.hint.includes("unset"), flag.hint);
});

Deno.test("resolveSettings: a bad compression level says auto is allowed too", () => {
  for (
    const [flags, vars, name] of [
      [{}, { [ENV.compressionLevel]: "x" }, ENV.compressionLevel],
      [{ compressionLevel: "fast" }, {}, "--compression-level"],
      [{ compression: "zstd", compressionLevel: "20" }, {}, "--compression-level"],
    ] as [RawFlags, Record<string, string>, string][]
  ) {
    const error = assertThrows(() => resolve(flags, vars), UsageError, `${name} expects auto or`);
    assert(error.hint?.includes("auto"), error.hint);
  }
});

Deno.test("resolveSettings: -t/--timeout and its variable take 30s, 5m, 2h, 1h30m", () => {
  const cases: [string, number][] = [["30s", 30], ["5m", 300], ["2h", 7200], ["1h30m", 5400]];
  for (const [text, seconds] of cases) {
    assertEquals(resolve({ timeout: text }).timeoutSeconds, seconds, text);
    assertEquals(resolve({}, { [ENV.timeout]: text }).timeoutSeconds, seconds, text);
  }
});

Deno.test("resolveSettings passes --dry-run, --image and --file through", () => {
  const s = resolve({ dryRun: true, image: "app:2", file: "/tmp/x.tar" });
  assertEquals([s.dryRun, s.images, s.files], [true, ["app:2"], ["/tmp/x.tar"]]);
});

Deno.test("resolveSettings: the username comes from -u, else its variable", () => {
  assertEquals(resolve({}, { [ENV.username]: "envuser" }).targets[0]!.username, "envuser");
  assertEquals(
    resolve({ username: "flaguser" }, { [ENV.username]: "envuser" }).targets[0]!.username,
    "flaguser",
  );
});

Deno.test("resolveSettings: -f, -r, --image and --tag repeat; each -r has its own credentials", () => {
  const s = resolve({
    file: ["a.tar", "b.tar"],
    repositoryUrl: ["https://a:urlpw@r.example/app:1", "s.example/team/app:2"],
    image: ["x:1", "y:1"],
    tag: ["latest", "stable", "latest"],
    multiArch: true,
  });
  assertEquals(s.files, ["a.tar", "b.tar"]);
  assertEquals(s.images, ["x:1", "y:1"]);
  assertEquals(s.tags, ["latest", "stable"]);
  assertEquals(s.targets.map((t) => [t.reference.registry, t.reference.tag, t.username]), [
    ["r.example", "1", "a"],
    ["s.example", "2", undefined],
  ]);
});

Deno.test("resolveSettings: --all takes registry[/prefix] targets", () => {
  const s = resolve({ all: true, repositoryUrl: ["127.0.0.1:5000", "http://r.example/mirror"] });
  assertEquals(s.all, true);
  assertEquals(s.targets.map((t) => [t.reference.registry, t.reference.repository]), [
    ["127.0.0.1:5000", ""],
    ["r.example", "mirror"],
  ]);
});

Deno.test("resolveSettings refuses an empty --tag, as -r refuses an empty tag", () => {
  // Dropping it silently would push without the tag a script meant (`--tag "$TAG"`, TAG unset).
  for (const tag of ["", ["1.0", ""]]) {
    const error = assertThrows(() => resolve({ tag }), UsageError, "--tag is empty");
    assertEquals(error.hint, TAG_HINT);
  }
  const fromUrl = assertThrows(
    () => resolve({ repositoryUrl: "registry.example.com/team/app:" }),
    UsageError,
    'Invalid tag ""',
  );
  assertEquals(fromUrl.hint, TAG_HINT);
});

Deno.test("resolveSettings: a tag starting with . or - is refused, and the hint says why", () => {
  for (const tag of [".hidden", "-rc1", "a b", "x".repeat(129)]) {
    const error = assertThrows(() => resolve({ tag }), UsageError, `Invalid tag "${tag}"`);
    assertEquals(error.hint, TAG_HINT);
  }
  assertStringIncludes(TAG_HINT, "cannot start with . or -");
  assertEquals(resolve({ tag: ["_x", "1.0-rc.1", "x".repeat(128)] }).tags.length, 3);
});

Deno.test("resolveSettings refuses runs of several images that make no sense", () => {
  const bad: [RawFlags, string][] = [
    [{ file: ["a.tar", "b.tar"] }, "without --all or --multi-arch"],
    [{ all: true, multiArch: true }, "cannot be used together"],
    [{ all: true, repositoryUrl: "r.example/mirror/app:1" }, "names one"],
    [
      { multiArch: true, repositoryUrl: `r.example/app@sha256:${"a".repeat(64)}` },
      "not to a digest",
    ],
    [{ tag: ["ok", "bad tag"] }, "Invalid tag"],
    [{ output: "yaml" }, "--output"],
    [{ file: ["-", "-"], all: true }, "more than once"],
    [
      { mountFrom: "team/app", repositoryUrl: ["r.example/other:1", "r.example/team/app:1"] },
      "--mount-from",
    ],
    [{ mountFrom: "team/base:1" }, '--mount-from expects a repository name, got "team/base:1"'],
  ];
  for (const [flags, needle] of bad) {
    assertThrows(() => resolve(flags), UsageError, needle);
  }
});

Deno.test("describePasswordSource: --verbose names where the password came from", () => {
  assertEquals(
    (["flag", "stdin", "env", "url", undefined] as const).map(describePasswordSource),
    [
      "-p/--password",
      "--password-stdin",
      "DOCKER_PUSHER_PASSWORD",
      "the repository URL",
      "the command line",
    ],
  );
});

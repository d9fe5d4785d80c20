/**
 * `deno task release` (scripts/release.ts): the six kits, their checksums, and proof that the
 * two Linux kits work where neither Node nor Deno can be reached: in a private mount namespace
 * with `/dev/null` mounted over every `node`, `deno`, `npm` and `npx`, an empty read-only HOME,
 * `PATH=/usr/bin:/bin` and nothing else in the environment, each kit's launcher pushes the test
 * archive to the real registry and pulls it back, and skopeo reads back the config digest and
 * diff IDs. The aarch64 kit runs under qemu user emulation (binfmt_misc). The macOS and Windows
 * kits are checked for what they hold: the runtime's executable format, the launcher.
 *
 * The kits are built once for the file; the npm tarballs are cached in the repository's
 * .tmp/deno-runtimes, as `deno task release` caches them.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { run } from "../helpers/command.ts";
import { writeOciArchive } from "../helpers/image_fixtures.ts";
import { integrationTest, startRegistry } from "../helpers/registry.ts";
import { pullBack, skopeo } from "../helpers/skopeo.ts";
import { makeTestCa } from "../helpers/tls.ts";
import { sha256Digest } from "../helpers/random.ts";
import { VERSION } from "../../src/version.ts";
import { ISOLATION, PERMISSIONS } from "../../scripts/release/run_flags.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const RELEASE = `${ROOT}scripts/release.ts`;
const LINUX = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"] as const;
const TOOLS = ["docker-registry", "skopeo", "tar", "sha256sum", "unshare", "python3"];
const QEMU_TOOLS = [...TOOLS, "qemu-aarch64-static", "/lib/ld-linux-aarch64.so.1"];

const kitName = (target: string) => `docker-image-pusher-${VERSION}-${target}`;

/** The release's output directory, built once (all six targets) for every test of the file. */
let built: Promise<{ dir: string; stdout: string; stderr: string }> | undefined;
function buildAll(): Promise<{ dir: string; stdout: string; stderr: string }> {
  built ??= (async () => {
    const dir = Deno.makeTempDirSync({ prefix: "dip-release-test-" });
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    const { stdout, stderr } = await run(Deno.execPath(), ["run", "-A", RELEASE, "--out", dir]);
    return { dir, stdout, stderr };
  })();
  return built;
}

/** Unpacks a tar.gz kit into a new temporary directory; returns the kit's folder. */
async function unpack(dir: string, target: string): Promise<string> {
  const into = await Deno.makeTempDir({ prefix: "dip-kit-" });
  await run("tar", ["-xzf", `${dir}/${kitName(target)}.tar.gz`, "-C", into]);
  return `${into}/${kitName(target)}`;
}

/**
 * Every `node`, `deno`, `npm` and `npx` this machine has on its PATH (and the files their links
 * lead to), and the Deno running this test: what the isolated runs mount /dev/null over.
 */
async function runtimesToHide(): Promise<string[]> {
  const found = new Set<string>();
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/bin", "/bin", "/usr/local/bin"];
  for (const dir of dirs.filter((d) => d !== "")) {
    for (const name of ["node", "deno", "npm", "npx"]) {
      const path = `${dir}/${name}`;
      const real = await Deno.realPath(path).catch(() => undefined);
      if (real === undefined) continue;
      found.add(path);
      found.add(real);
    }
  }
  found.add(Deno.execPath());
  return [...found];
}

/** What an isolated run printed. */
interface Isolated {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `command` in a private mount namespace with /dev/null over every runtime of
 * {@linkcode runtimesToHide}, `home` mounted read-only, `PATH=/usr/bin:/bin`, `HOME=home` and
 * no other environment, in `cwd`.
 */
async function isolated(
  command: string[],
  options: { home: string; cwd: string; stdinFile?: string },
): Promise<Isolated> {
  const hide = await runtimesToHide();
  const script = 'home=$1; shift; n=$1; shift; i=0; while [ "$i" -lt "$n" ]; do ' +
    'mount --bind /dev/null "$1" || exit 97; shift; i=$((i+1)); done; ' +
    'mount --bind "$home" "$home" && mount -o remount,bind,ro "$home" || exit 98; ' +
    'exec env -i HOME="$home" PATH=/usr/bin:/bin "$@"';
  const child = new Deno.Command("unshare", {
    args: [
      "-m",
      "--propagation",
      "private",
      "sh",
      "-c",
      script,
      "sh",
      options.home,
      String(hide.length),
      ...hide,
      ...command,
    ],
    cwd: options.cwd,
    stdin: options.stdinFile === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdinFile !== undefined) {
    await (await Deno.open(options.stdinFile)).readable.pipeTo(child.stdin);
  }
  const output = await child.output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/** The config bytes and diff IDs skopeo reads from a docker-save archive. */
async function skopeoArchiveConfig(path: string): Promise<{ digest: string; diffIds: string[] }> {
  const raw = await skopeo(["inspect", "--raw", "--config", `docker-archive:${path}`]);
  const config = JSON.parse(raw) as { rootfs: { diff_ids: string[] } };
  return { digest: sha256Digest(new TextEncoder().encode(raw)), diffIds: config.rootfs.diff_ids };
}

/**
 * With no Node and no Deno reachable and a read-only empty HOME: the kit's launcher pushes the
 * fixture (from stdin when `viaStdin`), skopeo reads the pushed image back, and the launcher
 * pulls it into an archive that skopeo reads too.
 */
async function pushAndPullIsolated(
  target: string,
  architecture: string,
  viaStdin: boolean,
): Promise<void> {
  const { dir } = await buildAll();
  const kit = await unpack(dir, target);
  const work = await Deno.makeTempDir({ prefix: "dip-kit-work-" });
  try {
    const home = `${work}/home`;
    await Deno.mkdir(home);
    const launcher = `${kit}/bin/docker-image-pusher`;
    // The runtimes are out of reach in there: each of them fails to start.
    const probe = await isolated(
      [
        "sh",
        "-c",
        "for t in node deno npm npx; do if $t --version >/dev/null 2>&1; then echo $t; fi; done",
      ],
      { home, cwd: work },
    );
    assertEquals(probe, { code: 0, stdout: "", stderr: "" }, "a runtime still starts");

    await using registry = await startRegistry();
    const archive = await writeOciArchive(`${work}/app.tar`, [{ name: "app:1", architecture }]);
    const image = archive.images[0]!;
    const repo = `kit/${target}`;
    const pushed = await isolated(
      [launcher, "-r", `http://${registry.host}/${repo}:1`, "-f", viaStdin ? "-" : archive.path],
      { home, cwd: work, ...(viaStdin ? { stdinFile: archive.path } : {}) },
    );
    assertEquals(pushed.code, 0, pushed.stderr);
    const back = await pullBack(registry, repo, "1");
    assertEquals(back.configDigest, image.configDigest);
    assertEquals(back.layerDiffIds, image.layerDiffIds);
    // HOME is read-only in there: the push says its cache was not saved, and succeeds.
    assertStringIncludes(pushed.stderr, "could not save the blob-info cache");

    const pulled = await isolated(
      [launcher, "pull", `http://${registry.host}/${repo}:1`, "-o", `${work}/pulled.tar`],
      { home, cwd: work },
    );
    assertEquals(pulled.code, 0, pulled.stderr);
    const read = await skopeoArchiveConfig(`${work}/pulled.tar`);
    assertEquals(read.digest, image.configDigest);
    assertEquals(read.diffIds, image.layerDiffIds);
  } finally {
    await Deno.remove(work, { recursive: true });
    await Deno.remove(kit.slice(0, kit.lastIndexOf("/")), { recursive: true });
  }
}

integrationTest(
  "release writes the six kits and a SHA256SUMS that sha256sum -c accepts",
  async () => {
    const { dir, stdout, stderr } = await buildAll();
    const kits = [
      ...LINUX.map((t) => `${kitName(t)}.tar.gz`),
      `${kitName("x86_64-apple-darwin")}.tar.gz`,
      `${kitName("aarch64-apple-darwin")}.tar.gz`,
      `${kitName("x86_64-pc-windows-msvc")}.zip`,
      `${kitName("aarch64-pc-windows-msvc")}.zip`,
    ];
    for (const kit of kits) assertStringIncludes(stdout, `${dir}/${kit}`);
    const sums = await Deno.readTextFile(`${dir}/SHA256SUMS`);
    const listed = sums.trim().split("\n").map((line) => line.split("  ")[1]);
    // Every kit, plus the single-file executables where deno compile could build them.
    for (const kit of kits) assert(listed.includes(kit), `${kit} is not in SHA256SUMS:\n${sums}`);
    if (listed.length === kits.length) {
      // No executables: the one line that says why.
      assertStringIncludes(stderr, "deno compile cannot download its runtime base here");
    }
    const check = await run("sha256sum", ["-c", "SHA256SUMS"], { cwd: dir });
    assertEquals(check.stdout.trim().split("\n").filter((l) => !l.endsWith(": OK")), []);
    // A changed kit fails the check.
    const copy = await Deno.makeTempDir({ prefix: "dip-sums-" });
    try {
      await Deno.writeTextFile(`${copy}/SHA256SUMS`, sums);
      for (const kit of kits) await Deno.symlink(`${dir}/${kit}`, `${copy}/${kit}`);
      await Deno.remove(`${copy}/${kits[2]}`);
      await Deno.writeTextFile(`${copy}/${kits[2]}`, "not the kit");
      const bad = await new Deno.Command("sha256sum", { args: ["-c", "SHA256SUMS"], cwd: copy })
        .output();
      assertEquals(bad.code, 1);
    } finally {
      await Deno.remove(copy, { recursive: true });
    }
  },
  { tools: TOOLS },
);

integrationTest(
  "the x86_64 Linux kit pushes from stdin and pulls with no Node or Deno reachable",
  async () => {
    await pushAndPullIsolated("x86_64-unknown-linux-gnu", "amd64", true);
  },
  { tools: TOOLS },
);

integrationTest(
  "the aarch64 Linux kit pushes and pulls under qemu with no Node or Deno reachable",
  async () => {
    // The arm64 runtime runs through binfmt_misc (scripts/install_test_tools.ts and .ci/run
    // register qemu); without it, exec fails with "Exec format error".
    const registered = await Deno.stat("/proc/sys/fs/binfmt_misc/qemu-aarch64").then(
      () => true,
      () => false,
    );
    assert(
      registered,
      "qemu-aarch64 is not registered in /proc/sys/fs/binfmt_misc: run scripts/install_test_tools.ts as root",
    );
    await pushAndPullIsolated("aarch64-unknown-linux-gnu", "arm64", false);
  },
  { tools: QEMU_TOOLS },
);

integrationTest(
  "the x86_64 Linux kit pushes to an HTTPS registry it trusts through --ca-cert",
  async () => {
    // --ca-cert reads the system's CAs too (Node's tls.rootCertificates), which Deno gates behind
    // --allow-sys: the launcher's permissions must cover it.
    const { dir } = await buildAll();
    const kit = await unpack(dir, "x86_64-unknown-linux-gnu");
    const work = await Deno.makeTempDir({ prefix: "dip-kit-tls-" });
    try {
      await Deno.mkdir(`${work}/home`);
      await Deno.mkdir(`${work}/ca`);
      const ca = await makeTestCa(`${work}/ca`);
      await using registry = await startRegistry({
        tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert },
      });
      const archive = await writeOciArchive(`${work}/app.tar`, [{ name: "app:1" }]);
      const pushed = await isolated([
        `${kit}/bin/docker-image-pusher`,
        "-r",
        `${registry.url}/tls/app:1`,
        "-f",
        archive.path,
        "--ca-cert",
        ca.caCert,
      ], { home: `${work}/home`, cwd: work });
      assertEquals(pushed.code, 0, pushed.stderr);
      assert(await registry.manifestExists("tls/app", "1"));
    } finally {
      await Deno.remove(work, { recursive: true });
      await Deno.remove(kit.slice(0, kit.lastIndexOf("/")), { recursive: true });
    }
  },
  { tools: [...TOOLS, "openssl"] },
);

integrationTest(
  "the launcher follows symlinks to itself, and passes exit codes and Ctrl-C through",
  async () => {
    const { dir } = await buildAll();
    const kit = await unpack(dir, "x86_64-unknown-linux-gnu");
    const links = await Deno.makeTempDir({ prefix: "dip-kit-links-" });
    try {
      // An absolute link in one folder, a relative link to that link in another, run by its name.
      await Deno.mkdir(`${links}/a`);
      await Deno.mkdir(`${links}/b`);
      await Deno.symlink(`${kit}/bin/docker-image-pusher`, `${links}/a/dip`);
      await Deno.symlink("../a/dip", `${links}/b/dip`);
      const version = await run("sh", ["-c", "dip --version"], {
        env: { PATH: `${links}/b:/usr/bin:/bin` },
        cwd: links,
      });
      assertEquals(version.stdout.trim(), VERSION);

      // A usage error's exit code and message come through.
      const usage = await new Deno.Command(`${links}/b/dip`, {
        args: ["--no-such-flag"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(usage.code, 2);
      assertStringIncludes(new TextDecoder().decode(usage.stderr), "--no-such-flag");

      // The runtime takes the launcher's process (exec): the pid started is the kit's deno, so a
      // Ctrl-C (SIGINT) reaches the program itself, which exits 130. It waits for a registry that
      // accepts the connection and never answers.
      using silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const child = new Deno.Command(`${links}/b/dip`, {
        args: ["-r", `127.0.0.1:${silent.addr.port}/x:1`, "-f", "-"],
        env: { PATH: "/usr/bin:/bin", HOME: links },
        clearEnv: true,
        stdin: "piped",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const until = Date.now() + 30_000;
      let exe = "";
      while (Date.now() < until) {
        exe = await Deno.readLink(`/proc/${child.pid}/exe`).catch(() => "");
        if (exe === `${kit}/lib/deno`) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assertEquals(exe, `${kit}/lib/deno`);
      // Give the program time to start and reach its first request before the signal.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      child.kill("SIGINT");
      await child.stdin.close().catch(() => {});
      const status = await child.output();
      assertEquals(status.code, 130, new TextDecoder().decode(status.stderr));
    } finally {
      await Deno.remove(links, { recursive: true });
      await Deno.remove(kit.slice(0, kit.lastIndexOf("/")), { recursive: true });
    }
  },
  { tools: TOOLS },
);

/** The first bytes of `member` in a tar.gz or zip kit, and the kit's member names and modes. */
async function kitMembers(
  path: string,
  member: string,
): Promise<{ members: Map<string, number>; head: Uint8Array; text: string }> {
  // python3 reads both formats the same way, and is independent of our writers.
  const script = `
import sys, json, tarfile, zipfile, base64
path, member = sys.argv[1], sys.argv[2]
if path.endswith(".zip"):
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        members = {i.filename.rstrip("/"): i.external_attr >> 16 & 0o7777 for i in z.infolist()}
        data = z.read(member)
        launcher = [n for n in z.namelist() if "/bin/" in n and not n.endswith("/")][0]
        text = z.read(launcher).decode()
else:
    with tarfile.open(path) as t:
        members = {i.name: i.mode for i in t.getmembers()}
        data = t.extractfile(member).read(4096)
        launcher = [n for n in t.getnames() if "/bin/" in n][0]
        text = t.extractfile(launcher).read().decode()
print(json.dumps({"members": members, "head": base64.b64encode(data[:4096]).decode(), "text": text}))
`;
  const { stdout } = await run("python3", ["-c", script, path, member]);
  const parsed = JSON.parse(stdout) as {
    members: Record<string, number>;
    head: string;
    text: string;
  };
  return {
    members: new Map(Object.entries(parsed.members)),
    head: Uint8Array.from(atob(parsed.head), (c) => c.charCodeAt(0)),
    text: parsed.text,
  };
}

/** The machine a runtime is built for, read from its executable header. */
function executableFormat(head: Uint8Array): string {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (view.getUint32(0) === 0x7f454c46) {
    return `ELF ${
      ({ 62: "x86_64", 183: "aarch64" } as Record<number, string>)[view.getUint16(18, true)]
    }`;
  }
  // 64-bit Mach-O, little-endian: the magic 0xfeedfacf reads as cf fa ed fe.
  if (view.getUint32(0, true) === 0xfeedfacf) {
    const cpu = view.getUint32(4, true);
    return `Mach-O ${
      ({ 0x01000007: "x86_64", 0x0100000c: "arm64" } as Record<number, string>)[cpu]
    }`;
  }
  if (head[0] === 0x4d && head[1] === 0x5a) { // "MZ", then "PE\0\0" at e_lfanew
    const pe = view.getUint32(0x3c, true);
    if (view.getUint32(pe) !== 0x50450000) return "MZ without PE";
    const machine = view.getUint16(pe + 4, true);
    return `PE ${({ 0x8664: "x86_64", 0xaa64: "arm64" } as Record<number, string>)[machine]}`;
  }
  return "unknown";
}

integrationTest(
  "every kit holds the launcher, the bundle, the licenses and its target's runtime",
  async () => {
    const { dir } = await buildAll();
    const expected: [string, string][] = [
      ["x86_64-unknown-linux-gnu", "ELF x86_64"],
      ["aarch64-unknown-linux-gnu", "ELF aarch64"],
      ["x86_64-apple-darwin", "Mach-O x86_64"],
      ["aarch64-apple-darwin", "Mach-O arm64"],
      ["x86_64-pc-windows-msvc", "PE x86_64"],
      ["aarch64-pc-windows-msvc", "PE arm64"],
    ];
    const flags = [...ISOLATION, ...PERMISSIONS].join(" ");
    for (const [target, format] of expected) {
      const windows = target.includes("windows");
      const root = kitName(target);
      const runtime = `${root}/lib/deno${windows ? ".exe" : ""}`;
      const launcher = `${root}/bin/docker-image-pusher${windows ? ".cmd" : ""}`;
      const { members, head, text } = await kitMembers(
        `${dir}/${root}${windows ? ".zip" : ".tar.gz"}`,
        runtime,
      );
      assertEquals(executableFormat(head), format, target);
      assertEquals(
        [...members.keys()].sort(),
        [
          root,
          `${root}/LICENSE`,
          `${root}/LICENSE-deno`,
          `${root}/THIRD-PARTY-LICENSES`,
          `${root}/README.md`,
          `${root}/bin`,
          launcher,
          `${root}/lib`,
          runtime,
          `${root}/lib/docker-image-pusher.js`,
        ].sort(),
        target,
      );
      assertEquals(members.get(launcher), 0o755, `${target}: the launcher is executable`);
      assertEquals(members.get(runtime), 0o755, `${target}: the runtime is executable`);
      // The launcher runs the bundle with the kit's runtime, the isolation flags and exactly the
      // permissions, never -A.
      assertStringIncludes(text, ` run ${flags} `);
      assert(!/ -A\b|--allow-all/.test(text), `${target}: the launcher grants everything`);
      if (windows) {
        assertStringIncludes(text, '"%~dp0..\\lib\\deno.exe" run');
        assertEquals(text.replace(/\r\n/g, "").includes("\n"), false, "a .cmd has CRLF lines");
        assertStringIncludes(text, "exit /b %ERRORLEVEL%");
      } else {
        assertStringIncludes(text, 'exec "$kit/lib/deno" run');
      }
    }
  },
  { tools: TOOLS },
);

Deno.test("release refuses an unknown target or argument with exit 2 and a hint", async () => {
  for (const args of [["--target", "riscv64-unknown-linux-gnu"], ["--targets"], ["--out"]]) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", RELEASE, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assertEquals(output.code, 2, stderr);
    assertStringIncludes(stderr, "Usage: deno task release");
    assertEquals(stderr.trim().split("\n").length, 2, stderr);
  }
});

/** The Linux and macOS kits' tar.gz writer, read back by GNU tar and Python's tarfile. */
import { assertEquals, assertRejects } from "../../helpers/assert.ts";
import { run } from "../../helpers/command.ts";
import { tarGz } from "../../../scripts/release/tar_gz.ts";
import type { KitEntry } from "../../../scripts/release/kit_entry.ts";

const READ = `
import sys, json, tarfile, hashlib
with tarfile.open(sys.argv[1], "r:gz") as t:
    print(json.dumps([[m.name, m.type.decode(), m.mode, m.uid, m.gid, m.mtime,
        hashlib.sha256(t.extractfile(m).read()).hexdigest() if m.isfile() else ""]
        for m in t.getmembers()]))
`;

async function sha256(data: Uint8Array): Promise<string> {
  const hash = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("tarGz keeps modes, owns everything as 0:0 at the epoch, and reads back in GNU tar and Python", async () => {
  const entries: KitEntry[] = [
    { kind: "dir", name: "kit", mode: 0o755 },
    { kind: "dir", name: "kit/bin", mode: 0o755 },
    {
      kind: "file",
      name: "kit/bin/run",
      mode: 0o755,
      data: new TextEncoder().encode("#!/bin/sh\n"),
    },
    { kind: "file", name: "kit/empty", mode: 0o644, data: new Uint8Array(0) },
    { kind: "file", name: "kit/block", mode: 0o644, data: new Uint8Array(512).fill(1) },
    { kind: "file", name: "kit/odd", mode: 0o600, data: new Uint8Array(1000).fill(2) },
  ];
  const bytes = await tarGz(entries);
  assertEquals(await sha256(await tarGz(entries)), await sha256(bytes), "deterministic");
  const dir = await Deno.makeTempDir({ prefix: "dip-targz-test-" });
  try {
    await Deno.writeFile(`${dir}/kit.tar.gz`, bytes);
    const { stdout } = await run("python3", ["-c", READ, `${dir}/kit.tar.gz`]);
    assertEquals(
      JSON.parse(stdout),
      await Promise.all(entries.map(async (e) => [
        e.name,
        e.kind === "dir" ? "5" : "0",
        e.mode,
        0,
        0,
        0,
        e.kind === "dir" ? "" : await sha256(e.data),
      ])),
    );
    await Deno.mkdir(`${dir}/out`);
    await run("tar", ["-xzf", `${dir}/kit.tar.gz`, "-C", `${dir}/out`]);
    assertEquals((await Deno.stat(`${dir}/out/kit/bin/run`)).mode! & 0o777, 0o755);
    assertEquals(await Deno.readTextFile(`${dir}/out/kit/bin/run`), "#!/bin/sh\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tarGz refuses a name longer than a ustar name field", async () => {
  await assertRejects(
    () =>
      tarGz([{
        kind: "file",
        name: `kit/${"x".repeat(100)}`,
        mode: 0o644,
        data: new Uint8Array(1),
      }]),
    RangeError,
    "longer than 100 bytes",
  );
});

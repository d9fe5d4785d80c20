/** The Windows kit's zip writer, read back by Python's zipfile (independent of our writer). */
import { assertEquals } from "../../helpers/assert.ts";
import { run } from "../../helpers/command.ts";
import { crc32, zip } from "../../../scripts/release/zip.ts";
import type { KitEntry } from "../../../scripts/release/kit_entry.ts";

const READ = `
import sys, json, zipfile, hashlib
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    print(json.dumps({"bad": bad, "entries": [
        [i.filename, i.external_attr >> 16, i.date_time[0], i.compress_type,
         hashlib.sha256(z.read(i)).hexdigest()] for i in z.infolist()]}))
`;

async function sha256(data: Uint8Array): Promise<string> {
  const hash = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("crc32 gives the check value of the standard", () => {
  assertEquals(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  assertEquals(crc32(new Uint8Array(0)), 0);
});

Deno.test("zip writes folders, modes, empty and large files that Python's zipfile reads back", async () => {
  const big = new Uint8Array(300_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
  const entries: KitEntry[] = [
    { kind: "dir", name: "kit", mode: 0o755 },
    {
      kind: "file",
      name: "kit/run.cmd",
      mode: 0o755,
      data: new TextEncoder().encode("@echo off\r\n"),
    },
    { kind: "file", name: "kit/empty", mode: 0o644, data: new Uint8Array(0) },
    { kind: "file", name: "kit/big.bin", mode: 0o644, data: big },
    { kind: "file", name: "kit/naïve.txt", mode: 0o600, data: new TextEncoder().encode("é") },
  ];
  const bytes = await zip(entries);
  // Deterministic: the same entries make the same bytes.
  assertEquals(await sha256(await zip(entries)), await sha256(bytes));
  const dir = await Deno.makeTempDir({ prefix: "dip-zip-test-" });
  try {
    await Deno.writeFile(`${dir}/kit.zip`, bytes);
    const { stdout } = await run("python3", ["-c", READ, `${dir}/kit.zip`]);
    const read = JSON.parse(stdout) as { bad: string | null; entries: unknown[][] };
    assertEquals(read.bad, null);
    const expected = await Promise.all(entries.map(async (e) => [
      e.kind === "dir" ? `${e.name}/` : e.name,
      (e.kind === "dir" ? 0o040000 : 0o100000) | e.mode,
      1980,
      e.kind === "dir" || e.data.length === 0 ? 0 : 8, // stored, or deflated
      await sha256(e.kind === "dir" ? new Uint8Array(0) : e.data),
    ]));
    assertEquals(read.entries, expected);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { run } from "../helpers/command.ts";
import { seededBytes, seededStream, sha256Hex } from "../helpers/random.ts";
import { tarBytes, tarStream, TarWriter } from "../helpers/tar_writer.ts";
import { integrationTest } from "../helpers/tools.ts";

const encoder = new TextEncoder();
const longDir = `${"d".repeat(60)}/${"e".repeat(60)}`;
const longName = `${longDir}/${"f".repeat(80)}.txt`;

async function writeSample(path: string, longNames: "pax" | "gnu"): Promise<Uint8Array> {
  const streamed = seededBytes("streamed", 3 * 1024 * 1024 + 17);
  await using tar = await TarWriter.create(path, { longNames });
  await tar.addDirectory("dir", { mtime: 1700000000 });
  await tar.addFile("dir/hello.txt", encoder.encode("hello\n"), { mode: 0o600 });
  await tar.addFile("dir/empty", new Uint8Array(0));
  await tar.addFile("dir/streamed.bin", {
    size: streamed.byteLength,
    stream: seededStream("streamed", streamed.byteLength, 1000_000),
  });
  await tar.addDirectory(longDir);
  await tar.addFile(longName, encoder.encode("long\n"));
  await tar.addFile("dir/ünïcødé.txt", encoder.encode("u\n"));
  await tar.addSymlink("dir/link", "hello.txt");
  await tar.addSymlink("dir/longlink", `../${longName}`);
  await tar.addHardlink("dir/hard", "dir/hello.txt");
  await tar.close();
  return streamed;
}

for (const longNames of ["pax", "gnu"] as const) {
  integrationTest(
    `TarWriter (${longNames} long names) writes archives GNU tar and Python read`,
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "dip-tar-test-" });
      try {
        const streamed = await writeSample(`${dir}/a.tar`, longNames);
        const size = (await Deno.stat(`${dir}/a.tar`)).size;
        assertEquals(size % 512, 0);

        const { stdout } = await run("tar", ["-tf", `${dir}/a.tar`]);
        assertEquals(stdout.trim().split("\n"), [
          "dir/",
          "dir/hello.txt",
          "dir/empty",
          "dir/streamed.bin",
          `${longDir}/`,
          longName,
          "dir/ünïcødé.txt",
          "dir/link",
          "dir/longlink",
          "dir/hard",
        ]);

        await Deno.mkdir(`${dir}/out`);
        await run("tar", ["-xf", `${dir}/a.tar`, "-C", `${dir}/out`]);
        assertEquals(await Deno.readTextFile(`${dir}/out/dir/hello.txt`), "hello\n");
        assertEquals(await Deno.readTextFile(`${dir}/out/${longName}`), "long\n");
        assertEquals(await Deno.readTextFile(`${dir}/out/dir/link`), "hello\n");
        assertEquals(await Deno.readLink(`${dir}/out/dir/longlink`), `../${longName}`);
        assertEquals(await Deno.readTextFile(`${dir}/out/dir/ünïcødé.txt`), "u\n");
        assertEquals((await Deno.stat(`${dir}/out/dir/hard`)).nlink, 2);
        assertEquals((await Deno.stat(`${dir}/out/dir/hello.txt`)).mode! & 0o777, 0o600);
        assertEquals(
          sha256Hex(await Deno.readFile(`${dir}/out/dir/streamed.bin`)),
          sha256Hex(streamed),
        );

        // Python's tarfile validates checksums strictly and reports the format it saw.
        const script = [
          "import sys, tarfile",
          "t = tarfile.open(sys.argv[1])",
          "for m in t.getmembers(): print(m.type.decode(), m.size, m.name, m.linkname, sep='|')",
        ].join("\n");
        const py = await run("python3", ["-c", script, `${dir}/a.tar`]);
        const lines = py.stdout.trim().split("\n");
        assertEquals(lines.length, 10);
        assertEquals(lines[3], `0|${streamed.byteLength}|dir/streamed.bin|`);
        assertEquals(lines[5], `0|5|${longName}|`);
        assertEquals(lines[8], `2|0|dir/longlink|../${longName}`);
        assertEquals(lines[9], "1|0|dir/hard|dir/hello.txt");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
    { tools: ["tar", "python3"] },
  );
}

Deno.test("TarWriter ends with two zero blocks and pads entries to 512 bytes", async () => {
  const bytes = await tarBytes(async (tar) => {
    await tar.addFile("a", encoder.encode("abc"));
  });
  assertEquals(bytes.byteLength, 512 + 512 + 1024);
  assert(bytes.subarray(1024).every((b) => b === 0));
  assertEquals(new TextDecoder().decode(bytes.subarray(257, 263)), "ustar\0");
  // Header checksum: sum of the header with the checksum field read as spaces.
  const header = bytes.slice(0, 512);
  const stored = parseInt(new TextDecoder().decode(header.subarray(148, 154)), 8);
  header.fill(0x20, 148, 156);
  assertEquals(header.reduce((sum, b) => sum + b, 0), stored);
});

Deno.test("TarWriter rejects a stream that does not match its declared size", async () => {
  await assertRejects(
    () =>
      tarBytes(async (tar) => {
        await tar.addFile("short", { size: 10, stream: seededStream("s", 5) });
      }),
    RangeError,
    "yielded 5 of the declared 10 bytes",
  );
  await assertRejects(
    () =>
      tarBytes(async (tar) => {
        await tar.addFile("long", { size: 10, stream: seededStream("s", 20) });
      }),
    RangeError,
    "more than the declared 10 bytes",
  );
});

Deno.test("tarStream yields the same bytes as tarBytes", async () => {
  const build = async (tar: TarWriter) => {
    await tar.addDirectory("x");
    await tar.addFile("x/data", { size: 70_000, stream: seededStream("t", 70_000, 4096) });
  };
  const expected = await tarBytes(build);
  const chunks: Uint8Array[] = [];
  for await (const chunk of tarStream(build)) chunks.push(chunk);
  const actual = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    actual.set(chunk, offset);
    offset += chunk.byteLength;
  }
  assertEquals(sha256Hex(actual), sha256Hex(expected));
});

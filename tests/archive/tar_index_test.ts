import { ArchiveError } from "../../src/errors.ts";
import { readRangeBytes } from "../../src/archive/byte_range.ts";
import { type FileTarIndex, indexTar } from "../../src/archive/tar_index.ts";
import { run } from "../helpers/command.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../helpers/assert.ts";
import {
  archive,
  concat,
  header,
  member,
  openFileCount,
  pad,
  patchHeader,
  paxPayload,
  pythonTar,
  tempDir,
  writeFile,
} from "./_tar_fixtures.ts";

const LONG = `blobs/sha256/${"ab".repeat(64)}`; // 141 bytes: needs PAX or GNU 'L'

async function text(index: FileTarIndex, name: string): Promise<string> {
  const entry = index.resolve(name);
  return new TextDecoder().decode(
    await readRangeBytes(index.path, entry.dataOffset, entry.size, 1 << 20),
  );
}

async function indexBytes(dir: string, bytes: Uint8Array): Promise<FileTarIndex> {
  return await indexTar(await writeFile(dir, "test.tar", bytes));
}

/** A tree with a directory, files, a symlink, a hard link and (optionally) long names. */
async function makeTree(root: string, long: boolean): Promise<void> {
  await Deno.mkdir(`${root}/d/sub`, { recursive: true });
  await Deno.writeTextFile(`${root}/d/a.txt`, "hello\n");
  await Deno.writeTextFile(`${root}/d/big.bin`, "x".repeat(1500));
  await Deno.symlink("a.txt", `${root}/d/link`);
  await Deno.link(`${root}/d/a.txt`, `${root}/d/hard`);
  if (long) {
    await Deno.mkdir(`${root}/d/blobs/sha256`, { recursive: true });
    await Deno.writeTextFile(`${root}/d/${LONG}`, "long\n");
    await Deno.symlink(`../${LONG}`, `${root}/d/sub/${"l".repeat(120)}`);
  }
}

for (const format of ["gnu", "oldgnu", "pax", "ustar", "v7"]) {
  Deno.test(`indexTar reads GNU tar's ${format} format`, async () => {
    await using dir = await tempDir();
    const long = format === "gnu" || format === "oldgnu" || format === "pax";
    await makeTree(dir.path, long);
    await run("tar", [`--format=${format}`, "-cf", "t.tar", "d"], { cwd: dir.path });
    const index = await indexTar(`${dir.path}/t.tar`);
    assertEquals(index.size, (await Deno.stat(`${dir.path}/t.tar`)).size);
    assertEquals(index.get("d")?.type, "directory");
    assertEquals(index.get("d/sub/")?.type, "directory");
    assertEquals(index.get("d/link")?.type, "symlink");
    assertEquals(index.get("d/link")?.linkName, "a.txt");
    // Which of the two names is the hard link depends on directory order.
    const types = [index.get("d/a.txt")?.type, index.get("d/hard")?.type].sort();
    assertEquals(types, ["file", "hardlink"]);
    for (const name of ["d/a.txt", "d/hard", "d/link", "./d//link"]) {
      assertEquals(await text(index, name), "hello\n", name);
    }
    assertEquals(await text(index, "d/big.bin"), "x".repeat(1500));
    for (const entry of index.entries.values()) assertEquals(entry.dataOffset % 512, 0);
    if (long) {
      assertEquals(await text(index, `d/${LONG}`), "long\n");
      const link = index.get(`d/sub/${"l".repeat(120)}`);
      assertEquals(link?.linkName, `../${LONG}`);
      assertEquals(await text(index, `d/sub/${"l".repeat(120)}`), "long\n");
    }
  });
}

Deno.test("indexTar reads Python tarfile archives: PAX, GNU long names and global headers", async () => {
  await using dir = await tempDir();
  const entries: [string, string, string?, string?][] = [
    ["blobs/", "5"],
    [LONG, "0", "blob"],
    ["caf\u00e9/\u{1f600}.json", "0", "{}"], // non-ASCII names go in PAX records
    [`links/${"k".repeat(110)}`, "2", "", `../${LONG}`],
  ];
  for (const format of ["pax", "gnu"] as const) {
    const index = await indexTar(await pythonTar(dir.path, `${format}.tar`, entries, format));
    assertEquals([...index.entries.keys()], entries.map(([name]) => name.replace(/\/$/, "")));
    assertEquals(await text(index, LONG), "blob");
    assertEquals(await text(index, "caf\u00e9/\u{1f600}.json"), "{}");
    assertEquals(await text(index, `links/${"k".repeat(110)}`), "blob");
  }
  await run("python3", [
    "-c",
    `import tarfile, io
with tarfile.open("g.tar", "w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "global"}) as t:
    i = tarfile.TarInfo("f"); i.size = 2; t.addfile(i, io.BytesIO(b"hi"))`,
  ], { cwd: dir.path });
  const index = await indexTar(`${dir.path}/g.tar`);
  assertEquals([...index.entries.keys()], ["f"]);
  assertEquals(index.get("f")?.headerOffset, 1024); // after the 'g' header and its payload
});

Deno.test("indexTar skips GNU sparse files (old 'S' headers with extensions, and PAX 1.0)", async () => {
  await using dir = await tempDir();
  // 30 data fragments between holes: more than fit in the 'S' header, so extension blocks follow.
  using file = await Deno.open(`${dir.path}/sparse`, { write: true, create: true });
  for (let i = 0; i < 30; i++) {
    await file.seek(i * 65536, Deno.SeekMode.Start);
    await file.write(new Uint8Array(512).fill(0x41));
  }
  await Deno.writeTextFile(`${dir.path}/after.txt`, "after\n");
  for (const [format, name] of [["gnu", "sparse"], ["pax", "sparse"]]) {
    await run("tar", [`--format=${format}`, "-S", "-cf", "s.tar", "sparse", "after.txt"], {
      cwd: dir.path,
    });
    const bytes = await Deno.readFile(`${dir.path}/s.tar`);
    if (format === "gnu") assertEquals(String.fromCharCode(bytes[156]!), "S");
    const index = await indexTar(`${dir.path}/s.tar`);
    assertEquals(index.get(name!)?.type, "other", format);
    assertThrows(() => index.resolve(name!), ArchiveError, `"${name}" is not a regular file`);
    assertEquals(await text(index, "after.txt"), "after\n", format);
  }
});

Deno.test("indexTar accepts every end-of-archive form", async () => {
  await using dir = await tempDir();
  const a = member({ name: "a" }, "aaa");
  const b = member({ name: "b" }, "bb");
  const forms = {
    "two zero blocks": archive(a, b),
    "two zero blocks and record padding": concat(a, b, new Uint8Array(10240 - 2048)),
    "one zero block then end of file": concat(a, b, new Uint8Array(512)),
    "no end marker": concat(a, b),
    "end marker, then junk": concat(a, b, new Uint8Array(1024), new Uint8Array(700).fill(7)),
  };
  for (const [form, bytes] of Object.entries(forms)) {
    const index = await indexBytes(dir.path, bytes);
    assertEquals([...index.entries.keys()], ["a", "b"], form);
    assertEquals(await text(index, "b"), "bb", form);
  }
  await run("tar", ["-cf", "empty.tar", "-T", "/dev/null"], { cwd: dir.path });
  assertEquals((await indexTar(`${dir.path}/empty.tar`)).entries.size, 0);

  await assertRejects(
    () => indexBytes(dir.path, concat(a, new Uint8Array(512), b, new Uint8Array(1024))),
    ArchiveError,
    "unexpected header after an end-of-archive block at offset 1024",
  );
});

Deno.test("indexTar explains files that are not tar archives", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/t.tar`;
  await Deno.writeTextFile(`${dir.path}/f.txt`, "content\n");
  await run("tar", ["-cf", "t.tar", "f.txt"], { cwd: dir.path });
  const tools = [
    ["gzip", ["-k", path], ".gz", "gzip-compressed; decompress it first (e.g. `gunzip -k`)"],
    ["zstd", ["-q", "-k", path], ".zst", "zstd-compressed; decompress it first (e.g. `zstd -d`)"],
    ["xz", ["-k", path], ".xz", "xz-compressed"],
    ["bzip2", ["-k", path], ".bz2", "bzip2-compressed"],
  ] as const;
  for (const [tool, args, suffix, message] of tools) {
    await run(tool, [...args]);
    await assertRejects(
      () => indexTar(path + suffix),
      ArchiveError,
      `${path}${suffix}: the archive is ${message}`,
    );
  }
  const cases: [string, Uint8Array, string][] = [
    ["empty", new Uint8Array(), "empty file, not a tar archive"],
    [
      "short",
      new Uint8Array(100).fill(0x61),
      "not a tar archive (100 bytes, shorter than one 512-byte header)",
    ],
    [
      "text",
      new Uint8Array(4096).fill(0x61),
      "not a tar archive (bad header checksum at offset 0)",
    ],
  ];
  for (const [name, bytes, message] of cases) {
    const file = await writeFile(dir.path, name, bytes);
    await assertRejects(() => indexTar(file), ArchiveError, `${file}: ${message}`);
  }
});

Deno.test("indexTar turns open failures into ArchiveErrors", async () => {
  await using dir = await tempDir();
  const missing = await assertRejects(
    () => indexTar(`${dir.path}/nope.tar`),
    ArchiveError,
    "nope.tar: no such file",
  );
  assert(missing.cause instanceof Deno.errors.NotFound);
  await assertRejects(() => indexTar(`${dir.path}/nope/x.tar`), ArchiveError, "no such file");
  await assertRejects(
    () => indexTar(dir.path),
    ArchiveError,
    `${dir.path}: is a directory, not a file`,
  );
  await run("mkfifo", [`${dir.path}/fifo`]);
  await assertRejects(() => indexTar(`${dir.path}/fifo`), ArchiveError, "is not a regular file");

  // Running as root defeats chmod, so deny access through Deno's permissions instead.
  const script = `${dir.path}/probe.ts`;
  await Deno.writeTextFile(
    script,
    `import { indexTar } from ${
      JSON.stringify(new URL("../../src/archive/tar_index.ts", import.meta.url).href)
    };
try { await indexTar(Deno.args[0]); } catch (e) { await Deno.stdout.write(new TextEncoder().encode(e.message)); }`,
  );
  const { stdout } = await run(Deno.execPath(), [
    "run",
    "--no-config",
    "--allow-read=/nonexistent",
    script,
    script,
  ]);
  assertEquals(stdout, `${script}: permission denied`);
});

Deno.test("indexTar reports corrupted headers and truncation precisely", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/a.txt`, "hello\n");
  await Deno.writeFile(`${dir.path}/big.bin`, new Uint8Array(3000).fill(1));
  await Deno.writeTextFile(`${dir.path}/c.txt`, "c\n");
  await run("tar", ["--format=gnu", "-cf", "t.tar", "a.txt", "big.bin", "c.txt"], {
    cwd: dir.path,
  });
  const good = await Deno.readFile(`${dir.path}/t.tar`);
  // a.txt: header 0, data 512; big.bin: header 1024, data 1536-4536 (padded to 4608); c.txt: 4608.
  const index = await indexBytes(dir.path, good);
  assertEquals(index.get("c.txt")?.headerOffset, 4608);
  const corrupt = async (bytes: Uint8Array, message: string) => {
    const path = await writeFile(dir.path, "bad.tar", bytes);
    await assertRejects(() => indexTar(path), ArchiveError, `${path}: ${message}`);
  };

  const flipped = good.slice();
  flipped[1024 + 5]! ^= 0x20;
  await corrupt(flipped, "bad header checksum at offset 1024");
  await corrupt(
    good.slice(0, 1024 + 100),
    "incomplete header at offset 1024: the archive ends at byte 1124 (truncated?)",
  );
  await corrupt(
    good.slice(0, 3000),
    'entry "big.bin" declares 3000 bytes but the archive ends at byte 3000 (truncated?)',
  );
  const garbage = good.slice();
  patchHeader(garbage, 1024, 124, "xyzzy\0\0\0\0\0\0\0");
  await corrupt(garbage, "invalid size field at offset 1024");
  const pastEnd = good.slice();
  patchHeader(pastEnd, 4608, 124, "00004000000\0");
  await corrupt(
    pastEnd,
    `entry "c.txt" declares 1048576 bytes but the archive ends at byte ${good.length} (truncated?)`,
  );

  // A cut exactly at a header boundary loses entries but is a readable archive.
  assertEquals([...(await indexBytes(dir.path, good.slice(0, 4608))).entries.keys()], [
    "a.txt",
    "big.bin",
  ]);
});

Deno.test("indexTar normalizes names and rejects unsafe ones", async () => {
  await using dir = await tempDir();
  const index = await indexBytes(
    dir.path,
    archive(
      member({ name: "./", typeflag: "5" }),
      member({ name: "./a//b/./c.json" }, "{}"),
      member({ name: "old-style-dir/", typeflag: "\0" }), // v7: a trailing slash marks a directory
      member({ name: "./old-style-dir", typeflag: "5" }), // directories may repeat
    ),
  );
  assertEquals([...index.entries.keys()], ["a/b/c.json", "old-style-dir"]);
  assertEquals(index.get("old-style-dir")?.type, "directory");
  assertEquals(index.get("./a/b//c.json/")?.size, 2);
  assertEquals(index.get("../a/b/c.json"), undefined);
  assertEquals(index.get("/a/b/c.json"), undefined);

  const unsafe: [string, string][] = [
    ["/etc/passwd", 'unsafe path "/etc/passwd" at offset 0 (absolute)'],
    ["a/../../x", 'unsafe path "a/../../x" at offset 0 (contains "..")'],
    ["..", 'unsafe path ".." at offset 0 (contains "..")'],
  ];
  for (const [name, message] of unsafe) {
    const path = await pythonTar(dir.path, "u.tar", [[name, "0", "x"]], "ustar");
    await assertRejects(() => indexTar(path), ArchiveError, message);
  }
  // Through a PAX path record and a GNU long name too.
  const viaPax = await pythonTar(dir.path, "p.tar", [[`../${"x".repeat(120)}`, "0"]], "pax");
  await assertRejects(() => indexTar(viaPax), ArchiveError, 'contains "..")');
  const viaGnu = await pythonTar(dir.path, "g.tar", [[`/${"x".repeat(120)}`, "0"]], "gnu");
  await assertRejects(() => indexTar(viaGnu), ArchiveError, "(absolute)");
});

Deno.test("indexTar rejects duplicate files and links", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/m.json`, "{}");
  await run("tar", ["-cf", "t.tar", "m.json"], { cwd: dir.path });
  await run("tar", ["-rf", "t.tar", "m.json"], { cwd: dir.path }); // tar -r appends a second copy
  await assertRejects(
    () => indexTar(`${dir.path}/t.tar`),
    ArchiveError,
    'duplicate entry "m.json" at offset 1024 (first at offset 0)',
  );
  const cases = [
    [["a", "0", "1"], ["./a", "2", "", "b"]],
    [["d", "5"], ["d", "0", "1"]],
    [["a", "0", "1"], ["a", "5"]],
  ] as const;
  for (const entries of cases) {
    const path = await pythonTar(dir.path, "d.tar", entries.map((e) => [...e]));
    await assertRejects(() => indexTar(path), ArchiveError, "duplicate entry");
  }
});

Deno.test("resolve follows symlinks and hard links like docker save and skopeo write them", async () => {
  await using dir = await tempDir();
  const digest = "c".repeat(64);
  const path = await pythonTar(dir.path, "links.tar", [
    ["blobs/sha256/", "5"],
    [`blobs/sha256/${digest}`, "0", "layer"],
    ["abc/layer.tar", "2", "", `../blobs/sha256/${digest}`], // Docker 25+
    ["abs.tar", "2", "", `/blobs/sha256/${digest}`], // absolute: from the archive root
    ["hard.tar", "1", "", `./blobs/sha256/${digest}`],
    ["chain", "2", "", "abc/layer.tar"],
    ["via-hard", "2", "", "hard.tar"],
    ["store", "2", "", "blobs"], // a symlinked directory
    ["real/", "5"], // "d" is passed twice without a loop: d/x -> real/x -> d/y -> real/y
    ["d", "2", "", "real"],
    ["real/x", "2", "", "../d/y"],
    ["real/y", "2", "", `/blobs/sha256/${digest}`],
    ["grow", "2", "", "grow/more"],
    ["a", "2", "", "b"],
    ["b", "2", "", "./a"],
    ["self", "1", "", "self"],
    ["dangling", "2", "", "blobs/sha256/missing"],
    ["escape", "2", "", "../../etc/passwd"],
    ["fifo", "6"],
  ]);
  const index = await indexTar(path);
  const blob = index.get(`blobs/sha256/${digest}`);
  for (
    const name of [
      "abc/layer.tar",
      "abs.tar",
      "hard.tar",
      "chain",
      "via-hard",
      `store/sha256/${digest}`,
      "d/x",
    ]
  ) {
    assertEquals(index.resolve(name), blob, name);
  }
  assertEquals(index.get("hard.tar")?.size, 0);
  assertEquals(await text(index, "chain"), "layer");

  const failures: [string, string][] = [
    ["a", "symlink loop: a -> b -> a"],
    ["self", "hard link loop: self -> self"],
    ["grow/x", 'more than 40 links resolving "grow/x" (a loop?): grow/x -> grow/more/x -> '],
    ["dangling", '"dangling" links to "blobs/sha256/missing", which is not in the archive'],
    ["escape", 'link "escape" -> "../../etc/passwd" points outside the archive'],
    ["blobs/sha256", '"blobs/sha256" is a directory, not a file'],
    ["store", '"store" is a directory, not a file'],
    ["fifo", '"fifo" is not a regular file'],
    ["nothing.json", '"nothing.json" not found in archive'],
    ["../x", '"../x" not found in archive'],
    ["abc/layer.tar/x", '"abc/layer.tar/x" links to'],
  ];
  for (const [name, message] of failures) {
    assertThrows(() => index.resolve(name), ArchiveError, `${path}: ${message}`);
  }
});

Deno.test("indexTar applies PAX size and rejects bad extended headers", async () => {
  await using dir = await tempDir();
  const x = (records: Record<string, string> | Uint8Array, typeflag = "x") => {
    const payload = records instanceof Uint8Array ? records : paxPayload(records);
    return member({ name: "PaxHeaders/x", typeflag }, payload);
  };
  // The header says 0 bytes; the PAX record says 5 and wins.
  const sized = await indexBytes(
    dir.path,
    archive(x({ size: "5" }), member({ name: "f", size: 0 }, "fffff"), member({ name: "g" }, "g")),
  );
  assertEquals(sized.get("f")?.size, 5);
  // An empty path record means "use the header's name".
  const reset = await indexBytes(dir.path, archive(x({ path: "" }), member({ name: "h" }, "h")));
  assertEquals([...reset.entries.keys()], ["h"]);

  const bad: [Uint8Array, string][] = [
    [
      archive(x(new TextEncoder().encode("99 path=x\n")), member({ name: "f" })),
      "malformed record at byte 0 of the PAX header at offset 0",
    ],
    [archive(x(new TextEncoder().encode("7 path=x\n")), member({ name: "f" })), "malformed record"],
    [
      archive(x({ size: "12abc" }), member({ name: "f" })),
      'invalid size "12abc" in the PAX header at offset 0',
    ],
    [archive(x({ size: "99999999999999999999" }), member({ name: "f" })), "invalid size"],
    [
      archive(x(new TextEncoder().encode("5 a=b"), "g"), member({ name: "f" })),
      "of the PAX global header at offset 0",
    ],
    [
      archive(member({ name: "f" }), x({ path: "g" })),
      "extended header at offset 512 is not followed by an entry",
    ],
    [
      archive(member({ name: "L", typeflag: "L" }, "long\0")),
      "extended header at offset 0 is not followed by an entry",
    ],
  ];
  for (const [bytes, message] of bad) {
    await assertRejects(() => indexBytes(dir.path, bytes), ArchiveError, message);
  }
  // Extended headers are capped at 1 MiB (the file is sparse, so nothing big is written).
  const path = await writeFile(
    dir.path,
    "huge.tar",
    header({ name: "h", typeflag: "x", size: 2 * 1024 * 1024 }),
  );
  await Deno.truncate(path, 512 + 2 * 1024 * 1024 + 1024);
  await assertRejects(
    () => indexTar(path),
    ArchiveError,
    "PAX header at offset 0 is 2097152 bytes, over the 1 MiB limit",
  );
});

Deno.test("indexTar reads a base-256 size field", async () => {
  await using dir = await tempDir();
  const size = new Uint8Array(12);
  size[0] = 0x80;
  size.set([0x02, 0xbc], 10); // 700
  const data = Uint8Array.from({ length: 700 }, (_, i) => i % 256);
  const gnu = header({ name: "b256", size, format: "gnu" });
  const index = await indexBytes(dir.path, archive(gnu, pad(data), member({ name: "next" }, "n")));
  const entry = index.resolve("b256");
  assertEquals(entry.size, 700);
  assertEquals(await readRangeBytes(index.path, entry.dataOffset, entry.size, 700), data);
  assertEquals(index.get("next")?.headerOffset, 512 + 1024);
  assertEquals(await text(index, "next"), "n");
});

Deno.test("indexTar seeks past data: a sparse 3 GiB entry indexes in milliseconds", async () => {
  await using dir = await tempDir();
  const GiB = 2 ** 30;
  const path = `${dir.path}/sparse.tar`;
  // 3 GiB with an octal size, then 10 GiB (past the octal limit) with a PAX size record.
  await Deno.writeFile(path, header({ name: "blobs/sha256/big", size: 3 * GiB }));
  const paxAt = 512 + 3 * GiB;
  const tenAt = paxAt + 1024;
  const tail = concat(
    member({ name: "PaxHeaders/ten", typeflag: "x" }, paxPayload({ size: String(10 * GiB) })),
    header({ name: "blobs/sha256/ten", size: 0 }),
  );
  {
    using file = await Deno.open(path, { write: true });
    await file.seek(paxAt, Deno.SeekMode.Start);
    await file.write(tail);
    await file.seek(tenAt + 512 + 10 * GiB, Deno.SeekMode.Start);
    await file.write(archive(member({ name: "manifest.json" }, "[]")));
  }
  const before = await openFileCount();
  const started = performance.now();
  const index = await indexTar(path);
  const elapsed = performance.now() - started;
  assert(elapsed < 1000, `indexing took ${elapsed} ms: is data being read?`);
  assertEquals(index.get("blobs/sha256/big"), {
    name: "blobs/sha256/big",
    type: "file",
    size: 3 * GiB,
    headerOffset: 0,
    dataOffset: 512,
  });
  assertEquals(index.get("blobs/sha256/ten")?.size, 10 * GiB);
  assertEquals(index.get("blobs/sha256/ten")?.dataOffset, tenAt + 512);
  assertEquals(index.get("manifest.json")?.headerOffset, tenAt + 512 + 10 * GiB);
  assertEquals(await text(index, "manifest.json"), "[]");
  assertEquals(await openFileCount(), before, "indexTar closed its file");
});

Deno.test("indexTar closes its file on failure and honours an aborted signal", async () => {
  await using dir = await tempDir();
  const path = await writeFile(
    dir.path,
    "bad.tar",
    concat(member({ name: "a" }, "a"), new Uint8Array(100)),
  );
  const before = await openFileCount();
  await assertRejects(() => indexTar(path), ArchiveError, "incomplete header at offset 1024");
  assertEquals(await openFileCount(), before);
  await assertRejects(() => indexTar(path, { signal: AbortSignal.abort() }), DOMException);
});

import {
  createTtyRenderer,
  type TtyRendererOptions,
} from "../../../src/cli/progress/tty_renderer.ts";
import { assert, assertEquals } from "../../helpers/assert.ts";
import { digest, FakeClock, MiB, RecordingOutput } from "./_support.ts";

const A = digest("a");
const B = digest("b");
const C = digest("c");
const D = digest("d");

function setup(options: Partial<TtyRendererOptions> = {}) {
  const clock = new FakeClock();
  const output = new RecordingOutput();
  const tty = createTtyRenderer({ output, color: false, now: clock.now, ...options });
  return { clock, output, tty };
}

Deno.test("TTY renderer draws concurrent blobs and prints finished ones above the block", () => {
  const { clock, output, tty } = setup();
  tty.sink({ type: "plan", image: "app:1", blobs: 4, bytes: 200 * MiB });
  tty.sink({ type: "blob-done", digest: C, size: 12 * MiB, outcome: "skipped" });
  tty.sink({ type: "blob-start", digest: A, size: 64 * MiB, attempt: 1 });
  tty.sink({ type: "blob-start", digest: B, size: 100 * MiB, attempt: 1 });
  clock.at(2000);
  tty.sink({ type: "blob-progress", digest: A, done: 32 * MiB, size: 64 * MiB });
  tty.sink({ type: "blob-progress", digest: B, done: 10 * MiB, size: 100 * MiB });

  // Nothing is drawn between ticks: events only update the model.
  assertEquals(output.calls, []);
  const frame = [
    "aaaaaaaaaaaa [███████████████░░░░░░░░░░░░░░░]  50% 32.0 MiB / 64.0 MiB",
    "bbbbbbbbbbbb [███░░░░░░░░░░░░░░░░░░░░░░░░░░░]  10% 10.0 MiB / 100.0 MiB",
    "total        [██████░░░░░░░░░░░░░░░░░░░░░░░░]  22% 42.0 MiB / 188.0 MiB",
    "             1/4 blobs, 21.0 MiB/s, ETA 0:07",
  ].join("\n");
  assertEquals(tty.render(), frame);
  tty.flush();
  assertEquals(output.take(), [["persist", "= cccccccccccc exists, skipped"], ["update", frame]]);

  // An unchanged frame is not sent again.
  tty.flush();
  assertEquals(output.take(), []);

  clock.at(4000);
  tty.sink({ type: "blob-progress", digest: A, done: 64 * MiB, size: 64 * MiB });
  tty.sink({ type: "blob-done", digest: A, size: 64 * MiB, outcome: "uploaded" });
  tty.sink({ type: "blob-done", digest: D, size: 24 * MiB, outcome: "mounted" });
  tty.flush();
  assertEquals(output.take(), [
    [
      "persist",
      "✓ aaaaaaaaaaaa uploaded 64.0 MiB in 4.0 s\n= dddddddddddd mounted from another repository",
    ],
    [
      "update",
      [
        "bbbbbbbbbbbb [███░░░░░░░░░░░░░░░░░░░░░░░░░░░]  10% 10.0 MiB / 100.0 MiB",
        // The mounted blob left the total: 200 MiB planned - 12 skipped - 24 mounted.
        "total        [█████████████░░░░░░░░░░░░░░░░░]  45% 74.0 MiB / 164.0 MiB",
        "             3/4 blobs, 18.5 MiB/s, ETA 0:05",
      ].join("\n"),
    ],
  ]);

  clock.at(6000);
  tty.sink({ type: "blob-done", digest: B, size: 100 * MiB, outcome: "uploaded" });
  tty.sink({ type: "manifest-done", reference: "registry.example/app:1", digest: digest("e") });
  tty.stop();
  assertEquals(output.take(), [
    [
      "persist",
      [
        "✓ bbbbbbbbbbbb uploaded 100.0 MiB in 6.0 s",
        `✓ pushed manifest registry.example/app:1 (${digest("e")})`,
      ].join("\n"),
    ],
    [
      "update",
      [
        "total        [██████████████████████████████] 100% 164.0 MiB / 164.0 MiB",
        "             4/4 blobs, 27.3 MiB/s, ETA 0:00",
      ].join("\n"),
    ],
    ["done"],
  ]);
});

Deno.test("TTY renderer shows a retrying blob and prints the retry", () => {
  const { clock, output, tty } = setup();
  tty.sink({ type: "plan", image: "app:1", blobs: 1, bytes: 10 * MiB });
  tty.sink({ type: "blob-start", digest: A, size: 10 * MiB, attempt: 1 });
  clock.at(1000);
  tty.sink({ type: "blob-progress", digest: A, done: 4 * MiB, size: 10 * MiB });
  tty.sink({
    type: "retry",
    subject: { kind: "blob", digest: A },
    digest: A,
    attempt: 2,
    delayMs: 1500,
    reason: "HTTP 503 Service Unavailable",
  });
  tty.flush();
  assertEquals(output.take(), [
    ["persist", `↻ Retrying blob ${A} in 1.5 s (attempt 2): HTTP 503 Service Unavailable`],
    [
      "update",
      [
        "aaaaaaaaaaaa retrying (attempt 2)",
        "total        [░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░]   0% 0 B / 10.0 MiB",
        "             0/1 blobs, 4.0 MiB/s, ETA 0:03",
      ].join("\n"),
    ],
  ]);

  clock.at(2500);
  tty.sink({ type: "blob-start", digest: A, size: 10 * MiB, attempt: 2 });
  clock.at(3000);
  tty.sink({ type: "blob-progress", digest: A, done: 1 * MiB, size: 10 * MiB });
  assertEquals(
    tty.render().split("\n")[0],
    "aaaaaaaaaaaa [███░░░░░░░░░░░░░░░░░░░░░░░░░░░]  10% 1.0 MiB / 10.0 MiB",
  );
  tty.stop();
});

Deno.test("TTY renderer prints notices and writeLine lines in order above the block", () => {
  const { output, tty } = setup();
  tty.sink({
    type: "notice",
    kind: "chunks-refused-fallback",
    message: "Registry does not support cross-repository mounts",
  });
  tty.writeLine("HTTP HEAD https://r.example/v2/app/blobs/sha256:aa -> 404 (12 ms)");
  tty.sink({ type: "http", method: "HEAD", url: "https://r.example/v2/", status: 200, ms: 3 });
  tty.flush();
  // No plan and no blob yet: nothing to draw below the lines.
  assertEquals(output.take(), [
    [
      "persist",
      [
        "! Registry does not support cross-repository mounts",
        "HTTP HEAD https://r.example/v2/app/blobs/sha256:aa -> 404 (12 ms)",
      ].join("\n"),
    ],
  ]);
  tty.stop();
  assertEquals(output.take(), [["done"]]);
  // After stop there is no block to protect: lines go straight out, events are ignored.
  tty.writeLine("late line");
  tty.sink({ type: "notice", kind: "verifying", message: "ignored" });
  tty.stop();
  assertEquals(output.take(), [["persist", "late line"]]);
});

Deno.test("TTY renderer: colour off writes no escape codes, colour on uses SGR", () => {
  const events = (tty: ReturnType<typeof createTtyRenderer>) => {
    tty.sink({ type: "plan", image: "app:1", blobs: 3, bytes: 30 });
    tty.sink({ type: "blob-start", digest: A, size: 10, attempt: 1 });
    tty.sink({ type: "blob-progress", digest: A, done: 5, size: 10 });
    tty.sink({ type: "blob-done", digest: B, size: 10, outcome: "skipped" });
    tty.sink({ type: "blob-done", digest: C, size: 10, outcome: "uploaded" });
    tty.sink({
      type: "retry",
      subject: { kind: "blob", digest: A },
      digest: A,
      attempt: 2,
      delayMs: 10,
      reason: "reset",
    });
    tty.sink({ type: "notice", kind: "verifying", message: "note" });
    tty.stop();
  };
  const plain = setup({ color: false });
  events(plain.tty);
  const plainText = JSON.stringify(plain.output.calls);
  assert(!plainText.includes("\\u001b"), plainText);

  const colored = setup({ color: true });
  events(colored.tty);
  const [persisted, updated] = colored.output.calls;
  assertEquals(persisted, [
    "persist",
    [
      "\x1b[2m= bbbbbbbbbbbb exists, skipped\x1b[22m",
      "\x1b[32m✓\x1b[39m cccccccccccc uploaded 10 B",
      `\x1b[33m↻\x1b[39m Retrying blob ${A} in 10 ms (attempt 2): reset`,
      "\x1b[33m!\x1b[39m note",
    ].join("\n"),
  ]);
  assertEquals(updated?.[1]?.split("\n")[0], "aaaaaaaaaaaa \x1b[33mretrying (attempt 2)\x1b[39m");
  assertEquals(
    updated?.[1]?.split("\n")[1],
    "\x1b[1mtotal       \x1b[22m [\x1b[36m███████████████\x1b[39m\x1b[2m░░░░░░░░░░░░░░░\x1b[22m]  50% 10 B / 20 B",
  );
});

Deno.test("TTY renderer summarises blobs beyond maxRows in one line", () => {
  const { tty } = setup({ maxRows: 3 });
  tty.sink({ type: "plan", image: "app:1", blobs: 5, bytes: 50 });
  for (const hex of ["a", "b", "c", "d", "e"]) {
    tty.sink({ type: "blob-start", digest: digest(hex), size: 10, attempt: 1 });
  }
  assertEquals(
    tty.render(),
    [
      "aaaaaaaaaaaa [░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░]   0% 0 B / 10 B",
      "bbbbbbbbbbbb [░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░]   0% 0 B / 10 B",
      "… 3 more in flight",
      "total        [░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░]   0% 0 B / 50 B",
      "             0/5 blobs, -- B/s, ETA --:--",
    ].join("\n"),
  );
  // Exactly maxRows blobs fit without a summary line.
  tty.sink({ type: "blob-done", digest: digest("e"), size: 10, outcome: "skipped" });
  tty.sink({ type: "blob-done", digest: digest("d"), size: 10, outcome: "skipped" });
  assertEquals(tty.render().split("\n").length, 3 + 2);
  tty.stop();
});

Deno.test("TTY renderer fits narrow terminals and follows a width function", () => {
  let columns = 60;
  const { tty } = setup({ width: () => columns });
  tty.sink({ type: "plan", image: "app:1", blobs: 1, bytes: 64 * MiB });
  tty.sink({ type: "blob-start", digest: A, size: 64 * MiB, attempt: 1 });
  tty.sink({ type: "blob-progress", digest: A, done: 16 * MiB, size: 64 * MiB });
  assertEquals(
    tty.render().split("\n")[0],
    "aaaaaaaaaaaa [███░░░░░░░░░░]  25% 16.0 MiB / 64.0 MiB",
  );
  for (const line of tty.render().split("\n")) assert(line.length < 60, line);
  columns = 40;
  assertEquals(
    tty.render(),
    [
      "aaaaaaaaaaaa  25% 16.0 MiB / 64.0 MiB",
      "total         25% 16.0 MiB / 64.0 MiB",
      "0/1 blobs, -- B/s, ETA --:--",
    ].join("\n"),
  );
  for (const line of tty.render().split("\n")) assert(line.length < 40, line);
  tty.stop();
});

Deno.test("TTY renderer: ETA unknown at the start, zero-byte plans render without NaN", () => {
  const { tty } = setup();
  assertEquals(tty.render(), "");
  tty.sink({ type: "plan", image: "app:1", blobs: 2, bytes: 0 });
  assertEquals(
    tty.render(),
    [
      "total        [░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░]   0% 0 B / 0 B",
      "             0/2 blobs, -- B/s, ETA 0:00",
    ].join("\n"),
  );
  tty.sink({ type: "blob-done", digest: A, size: 0, outcome: "uploaded" });
  tty.sink({ type: "blob-done", digest: B, size: 0, outcome: "skipped" });
  assertEquals(
    tty.render(),
    [
      "total        [██████████████████████████████] 100% 0 B / 0 B",
      "             2/2 blobs, -- B/s, ETA 0:00",
    ].join("\n"),
  );
  tty.stop();

  const fresh = setup();
  fresh.tty.sink({ type: "plan", image: "app:1", blobs: 1, bytes: MiB });
  fresh.tty.sink({ type: "blob-start", digest: A, size: MiB, attempt: 1 });
  assertEquals(fresh.tty.render().split("\n")[2], "             0/1 blobs, -- B/s, ETA --:--");
  fresh.tty.stop();
});

Deno.test("TTY renderer redraws on its timer, at most once per interval, and stops cleanly", async () => {
  const output = new RecordingOutput();
  const tty = createTtyRenderer({ output, color: false, intervalMs: 20 });
  tty.sink({ type: "plan", image: "app:1", blobs: 1, bytes: 1000 });
  tty.sink({ type: "blob-start", digest: A, size: 1000, attempt: 1 });
  for (let done = 1; done <= 500; done++) {
    tty.sink({ type: "blob-progress", digest: A, done, size: 1000 });
  }
  assertEquals(output.calls.length, 0, "nothing is drawn before the first tick");
  await new Promise((resolve) => setTimeout(resolve, 60));
  // 500 events, one frame: the frame did not change after the first tick.
  assertEquals(output.calls.length, 1);
  assertEquals(output.calls[0]?.[0], "update");
  assert(
    output.calls[0]?.[1]?.startsWith("aaaaaaaaaaaa [███████████████░░░░░░░░░░░░░░░]  50% 500 B"),
  );
  tty.stop();
  assertEquals(output.calls.at(-1), ["done"]);
});

Deno.test("TTY renderer shows a blob with every byte sent as finishing, short of 100%", () => {
  const { tty } = setup();
  tty.sink({ type: "plan", image: "app:1", blobs: 2, bytes: 16 * MiB });
  tty.sink({ type: "blob-start", digest: A, size: 8 * MiB, attempt: 1 });
  tty.sink({ type: "blob-start", digest: B, size: 8 * MiB, attempt: 1 });
  tty.sink({ type: "blob-progress", digest: A, done: 8 * MiB, size: 8 * MiB });
  tty.sink({ type: "blob-progress", digest: B, done: 8 * MiB, size: 8 * MiB });
  assertEquals(
    tty.render(),
    [
      "aaaaaaaaaaaa [█████████████████████████████░]  99% 8.0 MiB sent, finishing",
      "bbbbbbbbbbbb [█████████████████████████████░]  99% 8.0 MiB sent, finishing",
      "total        [█████████████████████████████░]  99% 16.0 MiB / 16.0 MiB",
      "             0/2 blobs, -- B/s, ETA 0:00",
    ].join("\n"),
  );
  tty.sink({ type: "blob-done", digest: A, size: 8 * MiB, outcome: "uploaded" });
  tty.sink({ type: "blob-done", digest: B, size: 8 * MiB, outcome: "uploaded" });
  assertEquals(
    tty.render().split("\n")[0],
    "total        [██████████████████████████████] 100% 16.0 MiB / 16.0 MiB",
  );
  tty.stop();
});

Deno.test("TTY renderer with a pull's words: downloaded, checking, kept", async () => {
  const { PULL_WORDS } = await import("../../../src/cli/progress/tty_frame.ts");
  const { clock, output, tty } = setup({ words: PULL_WORDS });
  tty.sink({ type: "plan", image: "out.tar", blobs: 3, bytes: 30 * MiB });
  tty.sink({ type: "blob-done", digest: C, size: 10 * MiB, outcome: "skipped" });
  tty.sink({ type: "blob-start", digest: A, size: 10 * MiB, attempt: 1 });
  tty.sink({ type: "blob-progress", digest: A, done: 10 * MiB, size: 10 * MiB });
  assertEquals(
    tty.render().split("\n")[0],
    "aaaaaaaaaaaa [█████████████████████████████░]  99% 10.0 MiB received, checking",
  );
  clock.at(1000);
  tty.sink({ type: "blob-done", digest: A, size: 10 * MiB, outcome: "uploaded" });
  tty.flush();
  assertEquals(output.take()[0], [
    "persist",
    "= cccccccccccc complete from the earlier run, kept\n✓ aaaaaaaaaaaa downloaded 10.0 MiB in 1.0 s",
  ]);
  tty.stop();
});

Deno.test("TTY renderer: a resumed download says what this run moved and what was kept", async () => {
  const { PULL_WORDS } = await import("../../../src/cli/progress/tty_frame.ts");
  const { clock, output, tty } = setup({ words: PULL_WORDS });
  tty.sink({ type: "plan", image: "out.tar", blobs: 1, bytes: 300 * MiB });
  tty.sink({ type: "blob-start", digest: A, size: 300 * MiB, attempt: 1, from: 100 * MiB });
  clock.at(8000);
  tty.sink({ type: "blob-progress", digest: A, done: 300 * MiB, size: 300 * MiB });
  tty.sink({ type: "blob-done", digest: A, size: 300 * MiB, outcome: "uploaded" });
  tty.flush();
  assertEquals(
    output.take()[0],
    [
      "persist",
      "✓ aaaaaaaaaaaa downloaded 200.0 MiB in 8.0 s (100.0 MiB kept from the earlier run)",
    ],
  );
  tty.stop();
});

Deno.test("TTY renderer: a layer compressed on the way says what was sent, then its size before", () => {
  const { clock, output, tty } = setup();
  tty.sink({ type: "plan", image: "app:1", blobs: 1, bytes: 10 * MiB });
  tty.sink({ type: "blob-start", digest: A, size: 10 * MiB, attempt: 1 });
  clock.at(2000);
  tty.sink({
    type: "blob-done",
    digest: A,
    size: 10 * MiB,
    outcome: "uploaded",
    compressed: { size: 3.1 * MiB, codec: "gzip" },
  });
  tty.flush();
  assertEquals(
    output.take()[0],
    ["persist", "✓ aaaaaaaaaaaa uploaded 3.1 MiB (10.0 MiB before gzip) in 2.0 s"],
  );
  tty.stop();
});

Deno.test("TTY renderer prints each referrer a push restores above the block", () => {
  const { output, tty } = setup();
  const base = { subject: A, artifactType: "application/spdx+json", target: "r.example/app" };
  tty.sink({ type: "referrer-done", digest: B, kind: "sbom", ...base });
  tty.sink({ type: "referrer-done", digest: C, kind: "signature", ...base, dryRun: true });
  tty.stop();
  const printed = output.take().filter(([kind]) => kind === "persist").map(([, text]) => text);
  assertEquals(
    printed.join("\n"),
    [
      "✓ pushed sbom bbbbbbbbbbbb of aaaaaaaaaaaa",
      "✓ would push signature cccccccccccc of aaaaaaaaaaaa",
    ].join("\n"),
  );
});

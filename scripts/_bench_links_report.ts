/**
 * What `bench_links.ts` saves and how it is shown: the saved measurement, the markdown table
 * written into docs/benchmarks.md, and the plot (a hand-written SVG, no dependencies).
 */

/** One way of pushing. */
export interface Mode {
  key: string;
  name: string;
  /** Flags for our CLI; undefined: skopeo. */
  flags?: string[];
}

/** The links measured, fastest first. */
export const RATES = ["loopback", "1000", "300", "100", "30"];

/** One measurement, as saved. */
export interface LinkResult {
  image: string;
  rate: string;
  mode: string;
  seconds: number;
  /** User + system CPU seconds of the client's process tree. */
  cpu: number;
  /** Bytes that went through the proxy towards the registry (undefined over loopback). */
  sent?: number;
  /** Stored size of each layer, in order. */
  stored: number[];
  /** GNU gzip -1's size of each layer, in order. */
  gzip1: number[];
  /** Uncompressed size of each layer. */
  input: number[];
  /** When it was measured, and with which commit. */
  at: string;
  commit: string;
}

/** The largest ratio of a layer's stored size to GNU gzip -1's. */
export function worstLayer(r: LinkResult): number {
  return Math.max(...r.stored.map((s, i) => s / r.gzip1[i]!));
}

/** Every result as one markdown table per image, rates in order, modes in order. */
export function renderTable(all: LinkResult[], modes: Mode[]): string {
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const mb = (n: number) => (n / 1e6).toFixed(1);
  const out: string[] = [];
  for (const imageName of ["usr", "text"]) {
    const ofImage = all.filter((r) => r.image === imageName);
    if (ofImage.length === 0) continue;
    const first = ofImage[0]!;
    const layers = first.input.map((size, i) => `${mb(size)} MB (gzip -1: ${mb(first.gzip1[i]!)})`);
    out.push(`#### ${imageName === "usr" ? "/usr image" : "Text image (base64, seq output)"}\n`);
    out.push(`Layers: ${layers.join(", ")}.\n`);
    out.push(
      "| link | tool / mode | wall s | × fastest | × skopeo | client CPU s | sent MB | stored MB " +
        "| worst layer ÷ gzip -1 |",
    );
    out.push("|---|---|---|---|---|---|---|---|---|");
    for (const rate of RATES) {
      const row = ofImage.filter((r) => r.rate === rate);
      if (row.length === 0) continue;
      const fastest = Math.min(...row.map((r) => r.seconds));
      const skopeo = row.find((r) => r.mode === "skopeo")?.seconds;
      for (const mode of modes) {
        const r = row.find((x) => x.mode === mode.key);
        if (r === undefined) continue;
        const worst = worstLayer(r);
        out.push(
          `| ${rate === "loopback" ? "loopback" : `${rate} Mbit/s`} | ${mode.name} | ` +
            `${r.seconds.toFixed(2)} | ${(r.seconds / fastest).toFixed(2)} | ` +
            `${skopeo === undefined ? "–" : (r.seconds / skopeo).toFixed(2)} | ${
              r.cpu.toFixed(1)
            } | ` +
            `${r.sent === undefined ? "–" : mb(r.sent)} | ${mb(sum(r.stored))} | ` +
            `${worst.toFixed(3)}${worst > 1.03 ? " (over the floor)" : ""} |`,
        );
      }
    }
    out.push("");
  }
  const commits = [...new Set(all.map((r) => r.commit))].join(", ");
  out.push(
    `Command: \`deno run -A scripts/bench_links.ts\` (resumable; one rate at a time with ` +
      `\`--rates 100,30\`). Commit(s) measured: ${commits}. Plot: [bench_links.svg](bench_links.svg).`,
  );
  return out.join("\n");
}

/** Replaces the text between the `bench_links` markers of `path` (appends them the first time). */
export async function writeSection(path: string, body: string): Promise<void> {
  const start = "<!-- bench_links:start -->";
  const end = "<!-- bench_links:end -->";
  const text = await Deno.readTextFile(path);
  const section = `${start}\n${body}\n${end}`;
  const at = text.indexOf(start);
  const next = at < 0
    ? `${text.trimEnd()}\n\n## Push time across link speeds\n\n${section}\n`
    : text.slice(0, at) + section + text.slice(text.indexOf(end) + end.length);
  await Deno.writeTextFile(path, next);
}

const COLORS = ["#d62728", "#ff7f0e", "#bcbd22", "#2ca02c", "#1f77b4", "#9467bd", "#7f7f7f"];

/**
 * The plot: one panel per image, the links along x (slowest on the left), each mode's wall
 * time ÷ the fastest at that link along y (1 at the bottom, capped at 3), one line per mode;
 * beside each legend entry, the mode's stored bytes ÷ GNU gzip -1's on the worst layer.
 */
export function linksSvg(all: LinkResult[], modes: Mode[]): string {
  const images = ["usr", "text"].filter((i) => all.some((r) => r.image === i));
  const rates = [...RATES].reverse().filter((rate) => all.some((r) => r.rate === rate));
  const [panelW, panelH, left, top, legendW] = [420, 260, 50, 40, 290];
  const width = left + images.length * (panelW + 40) + legendW;
  const height = top + panelH + 60;
  const cap = 3;
  const x = (i: number) =>
    // 40 px in from each edge, so the labels of neighbouring panels don't run together.
    left + (rates.length === 1 ? panelW / 2 : 40 + (i * (panelW - 80)) / (rates.length - 1));
  const y = (ratio: number) => top + panelH - ((Math.min(cap, ratio) - 1) / (cap - 1)) * panelH;
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  images.forEach((image, p) => {
    const dx = p * (panelW + 40);
    const g = (s: string) => parts.push(`<g transform="translate(${dx},0)">${s}</g>`);
    const title = image === "usr" ? "/usr image" : "text image (base64, seq)";
    g(`<text x="${left}" y="${top - 20}" font-weight="bold">${title}: wall time ÷ fastest</text>`);
    for (const tick of [1, 1.5, 2, 2.5, 3]) {
      g(
        `<line x1="${left}" x2="${left + panelW}" y1="${y(tick)}" y2="${y(tick)}" stroke="#ddd"/>` +
          `<text x="${left - 6}" y="${y(tick) + 4}" text-anchor="end">${tick}${
            tick === cap ? "+" : ""
          }</text>`,
      );
    }
    rates.forEach((rate, i) => {
      const label = rate === "loopback" ? "loopback" : `${rate} Mbit/s`;
      g(`<text x="${x(i)}" y="${top + panelH + 20}" text-anchor="middle">${label}</text>`);
    });
    modes.forEach((mode, m) => {
      const points = rates.flatMap((rate, i) => {
        const row = all.filter((r) => r.image === image && r.rate === rate);
        const r = row.find((r) => r.mode === mode.key);
        if (r === undefined) return [];
        const fastest = Math.min(...row.map((r) => r.seconds));
        return [`${x(i).toFixed(1)},${y(r.seconds / fastest).toFixed(1)}`];
      });
      if (points.length === 0) return;
      const color = COLORS[m % COLORS.length];
      const width = mode.key === "default" ? 3 : 1.5;
      const dash = mode.flags === undefined ? ` stroke-dasharray="6 3"` : "";
      g(
        `<polyline fill="none" stroke="${color}" stroke-width="${width}"${dash} points="${
          points.join(" ")
        }"/>` +
          points.map((pt) => {
            const [cx, cy] = pt.split(",");
            return `<circle cx="${cx}" cy="${cy}" r="3" fill="${color}"/>`;
          }).join(""),
      );
    });
  });
  const lx = left + images.length * (panelW + 40);
  parts.push(`<text x="${lx}" y="${top - 20}" font-weight="bold">worst layer ÷ gzip -1</text>`);
  modes.forEach((mode, m) => {
    const mine = all.filter((r) => r.mode === mode.key);
    const worst = mine.length === 0 ? "" : Math.max(...mine.map(worstLayer)).toFixed(2);
    const ly = top + m * 22;
    const color = COLORS[m % COLORS.length];
    parts.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"${
        mode.flags === undefined ? ` stroke-dasharray="6 3"` : ""
      }/>` +
        `<text x="${lx + 30}" y="${ly + 4}">${esc(mode.name)} (${worst})</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { RecblocksError } from "../../src/errors/issue.js";
import { CHART, chartScales, lineChart, niceDomain, niceStep } from "../../src/report/chart.js";
import { escapeHtml, readRunDir, renderReport, writeRunReport, type ReportData } from "../../src/report/report.js";
import { main } from "../../src/cli/main.js";

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "recblocks-report-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const base = (over: Partial<ReportData> = {}): ReportData => ({ title: "run", epochs: [], notes: [], ...over });
/** The `points` attribute of each series' polyline, by series name. */
const polylines = (svg: string) => Object.fromEntries([...svg.matchAll(/<g class="series" data-series="([^"]*)"><polyline[^>]* points="([^"]*)"/g)].map((m) => [m[1], m[2]]));
const thrown = (f: () => unknown): RecblocksError => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RecblocksError);
    return e as RecblocksError;
  }
  throw new Error("expected a RecblocksError");
};

describe("escaping", () => {
  it("escapes the five HTML characters", () => {
    expect(escapeHtml(`<a href="x">Tom & 'Jerry'</a>`)).toBe("&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;");
    expect(escapeHtml(3)).toBe("3");
  });

  it("every text from the run directory is escaped in the page", () => {
    const evil = `<script>alert("x")</script>`;
    const html = renderReport(base({
      title: evil,
      runDir: `/tmp/${evil}`,
      engine: evil,
      recipe: { name: evil, description: "a & b" },
      featureSchema: { columns: [{ name: evil, dtype: "string", tags: [evil] }] },
      epochs: [{ epoch: 1, loss: 1, valid: { [`${evil}@1`]: 0.5 } }, { epoch: 2, loss: 0.5, valid: { [`${evil}@1`]: 0.6 } }],
      test: { evaluatedOn: evil, metrics: { [`${evil}@1`]: 0.3 }, baseline: { [`${evil}@1`]: 0.2 } },
      data: { splits: [{ split: evil, sessions: 3 }], totals: [[evil, evil]] },
      notes: [evil],
    }));
    expect(html).not.toContain("<script");
    expect(html).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
    expect(html).toContain("a &amp; b");
    // offline: nothing fetched from anywhere
    expect(html).not.toMatch(/<link|\b(src|href)=/i);
  });
});

describe("charts", () => {
  it("nice steps and domains", () => {
    expect(niceStep(2, 5)).toBe(0.5);
    expect(niceStep(0.19, 5)).toBeCloseTo(0.05, 12);
    expect(niceStep(7, 5)).toBe(2);
    expect(niceDomain(1, 3)).toEqual({ lo: 1, hi: 3, ticks: [1, 1.5, 2, 2.5, 3] });
    expect(niceDomain(0.12, 0.31)).toEqual({ lo: 0.1, hi: 0.35, ticks: [0.1, 0.15, 0.2, 0.25, 0.3, 0.35] });
    // a flat series gets a visible range
    expect(niceDomain(2, 2).lo).toBeLessThan(2);
    expect(niceDomain(2, 2).hi).toBeGreaterThan(2);
  });

  it("places the points of a tiny series where hand computation puts them", () => {
    // plot area: x from 64 to 364 (300 px), y from 36 (top) to 236 (bottom, 200 px)
    expect(CHART).toMatchObject({ left: 64, top: 36, plotW: 300, plotH: 200 });
    // loss 3, 2, 1 at epochs 1..3: y domain [1, 3] (step 0.5); x domain [1, 3]
    // epoch 1 -> x 64, epoch 2 -> 64 + 150 = 214, epoch 3 -> 364; loss 3 -> y 36, 2 -> 136, 1 -> 236
    const svg = lineChart({ title: "Loss", xLabel: "epoch", yLabel: "loss", series: [{ name: "train loss", points: [[1, 3], [2, 2], [3, 1]] }] });
    expect(polylines(svg)).toEqual({ "train loss": "64,36 214,136 364,236" });
    expect([...svg.matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)" r="3.5" fill="[^"]+"><title>/g)].map((m) => [Number(m[1]), Number(m[2])])).toEqual([[64, 36], [214, 136], [364, 236]]);
    // y tick labels 1, 1.5, 2, 2.5, 3 and x ticks 1, 2, 3
    const yLabels = [...svg.split('<g class="axis x-axis">')[0]!.matchAll(/text-anchor="end">([^<]+)</g)].map((m) => m[1]);
    expect(yLabels).toEqual(["1", "1.5", "2", "2.5", "3"]);
    const xLabels = [...svg.split('<g class="axis x-axis">')[1]!.split("</g>")[0]!.matchAll(/text-anchor="middle">([^<]+)</g)].map((m) => m[1]);
    expect(xLabels).toEqual(["1", "2", "3", "epoch"]);
  });

  it("two series share one scale; non-finite values are left out of the line", () => {
    // y domain [0.1, 0.35] (step 0.05): 0.12 -> 236 - 0.02/0.25*200 = 220; 0.31 -> 236 - 0.21/0.25*200 = 68
    // 0.2 -> 236 - 0.1/0.25*200 = 156; x: epoch 1 -> 64, 2 -> 364
    const svg = lineChart({ title: "Validation", xLabel: "epoch", yLabel: "value", series: [
      { name: "recall@20", points: [[1, 0.12], [2, 0.31]] },
      { name: "ndcg@20", points: [[1, 0.2], [2, NaN]] },
    ] });
    expect(polylines(svg)).toEqual({ "recall@20": "64,220 364,68", "ndcg@20": "64,156" });
    const sc = chartScales([{ name: "a", points: [[1, 0.12], [2, 0.31]] }])!;
    expect(sc.yDomain).toEqual([0.1, 0.35]);
    // legend: one entry per series, in order
    expect([...svg.split('<g class="legend">')[1]!.matchAll(/<title>([^<]+)<\/title>/g)].map((m) => m[1])).toEqual(["recall@20", "ndcg@20"]);
  });

  it("a single epoch is drawn in the middle; no finite point says so", () => {
    expect(polylines(lineChart({ title: "t", xLabel: "epoch", yLabel: "y", series: [{ name: "s", points: [[1, 5]] }] }))).toEqual({ s: "214,136" });
    const empty = lineChart({ title: "t", xLabel: "epoch", yLabel: "y", series: [{ name: "s", points: [[1, NaN]] }] });
    expect(empty).toContain("no data recorded");
    expect(empty).not.toContain("<polyline");
  });
});

describe("missing data", () => {
  it("an empty record renders with a sentence for each missing part", () => {
    const html = renderReport(base());
    expect(html).not.toContain("<svg");
    for (const s of ["No final test metrics", "No per-epoch record", "No data statistics", "Parameter count not recorded", "No feature schema", "No recipe"]) expect(html).toContain(s);
  });

  it("a run directory with only metrics.jsonl: charts, and notes for the rest", () => {
    const dir = join(tmp, "partial");
    mkdirSync(dir, { recursive: true });
    const lines = [
      // an earlier run in the same directory, then the last one (whose epoch 2 loss was NaN -> null)
      { epoch: 1, loss: 9, learningRate: 0.01, seconds: 1, examplesPerSecond: 10 },
      { epoch: 1, loss: 4, learningRate: 0.01, seconds: 1, examplesPerSecond: 100, valid: { "recall@20": 0.1, loss: 4.5, examples: 10 } },
      { epoch: 2, loss: null, learningRate: 0.01, seconds: 2, examplesPerSecond: 50, valid: { "recall@20": 0.2, loss: 4.2, examples: 10 } },
    ];
    writeFileSync(join(dir, "metrics.jsonl"), lines.map((l) => JSON.stringify(l)).join("\n") + "\nnot json\n");
    const d = readRunDir(dir);
    expect(d.epochs.map((e) => [e.epoch, e.loss])).toEqual([[1, 4], [2, undefined]]);
    expect(d.notes.join("\n")).toMatch(/summary\.json is missing/);
    expect(d.notes.join("\n")).toMatch(/model\/model\.json is missing/);
    expect(d.notes.join("\n")).toMatch(/1 earlier run/);
    expect(d.notes.join("\n")).toMatch(/1 unreadable line/);
    const html = renderReport(d);
    expect(html).toContain("No final test metrics");
    expect(polylines(html)["recall@20"]!.split(" ")).toHaveLength(2);
    expect(polylines(html)["train loss"]!.split(" ")).toHaveLength(1);
    expect(polylines(html)["valid loss"]!.split(" ")).toHaveLength(2);
  });

  it("a resumed run that re-did an epoch keeps the later record", () => {
    const dir = join(tmp, "resumed");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "metrics.jsonl"), [1, 2, 3, 3, 4].map((e, i) => JSON.stringify({ epoch: e, loss: 10 - i })).join("\n") + "\n");
    const d = readRunDir(dir);
    expect(d.epochs.map((e) => [e.epoch, e.loss])).toEqual([[1, 10], [2, 9], [3, 7], [4, 6]]);
    expect(d.notes.join("\n")).not.toMatch(/earlier run/);
  });

  it("an ALS run directory: parameters users x f + items x f, iterations, data", () => {
    const dir = join(tmp, "als");
    mkdirSync(join(dir, "model"), { recursive: true });
    writeFileSync(join(dir, "summary.json"), JSON.stringify({ recipe: "als", metrics: { "ndcg@10": 0.2 }, mostPopular: { "ndcg@10": 0.1 }, engine: "tensorflow" }));
    writeFileSync(join(dir, "model", "model.json"), JSON.stringify({ format: "recblocks-als", modelTopology: { className: "AlsModel", config: { factors: 4, name: "als" }, users: 10, items: 7, interactions: 50 }, weightsManifest: [] }));
    writeFileSync(join(dir, "model", "metrics.json"), JSON.stringify({ history: [{ iteration: 1, seconds: 0.5, loss: 3 }, { iteration: 2, seconds: 0.25, loss: 2 }], data: { users: 10, items: 7, trainInteractions: 50, testUsers: 10, split: "leave-last-out", source: "builtin:synthetic" } }));
    const d = readRunDir(dir);
    expect(d.kind).toBe("als");
    expect(d.parameters).toBe((10 + 7) * 4);
    expect(d.epochs.map((e) => e.examplesPerSecond)).toEqual([100, 200]);
    const html = renderReport(d);
    expect(html).toContain("interactions/s");
    expect(html).toContain("+100.0%");
    expect(html).toContain("No recipe");
  });
});

describe("writeRunReport and recblocks report", () => {
  const runDir = () => {
    const dir = join(tmp, "run");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "metrics.jsonl"), JSON.stringify({ epoch: 1, loss: 2 }) + "\n");
    writeFileSync(join(dir, "summary.json"), JSON.stringify({ recipe: "r", metrics: { "recall@20": 0.5, examples: 4 }, mostPopular: { "recall@20": 0.25 }, data: { rows: 10, train: 3, valid: 1, test: 1, items: 5, oovSteps: 0 } }));
    return dir;
  };

  it("writes report.html atomically (no temporary file left) and --out elsewhere", () => {
    const dir = runDir();
    const out = writeRunReport(dir, { now: new Date("2026-01-02T03:04:05Z") });
    expect(out).toBe(join(dir, "report.html"));
    expect(readdirSync(dir).filter((f) => f.includes(".tmp"))).toEqual([]);
    const html = readFileSync(out, "utf8");
    expect(html).toContain("2026-01-02T03:04:05.000Z");
    expect(html).toContain("+100.0%");
    // the same files give the same page
    expect(renderReport(readRunDir(dir, { now: new Date("2026-01-02T03:04:05Z") }))).toBe(html);
    const other = writeRunReport(dir, { out: join(tmp, "elsewhere", "r.html") });
    expect(readFileSync(other, "utf8")).toContain("Training report: r");
  });

  it("a folder that is not a run directory is an invalid_run_dir issue", () => {
    const empty = join(tmp, "empty");
    mkdirSync(empty, { recursive: true });
    expect(thrown(() => writeRunReport(empty)).issues[0]!.code).toBe("invalid_run_dir");
    expect(thrown(() => readRunDir(join(tmp, "nope"))).issues[0]!.message).toMatch(/does not exist/);
    writeFileSync(join(tmp, "file.txt"), "x");
    expect(thrown(() => readRunDir(join(tmp, "file.txt"))).issues[0]!.message).toMatch(/is a file/);
  });

  it("recblocks report: exit 0 and the file; exit 1 with the issue as JSON", async () => {
    const dir = runDir();
    const out: string[] = [];
    const spyOut = vi.spyOn(process.stdout, "write").mockImplementation((s) => (out.push(String(s)), true));
    const spyErr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      expect(await main(["report", dir, "--json", "--out", join(tmp, "cli.html")])).toBe(0);
      expect(JSON.parse(out.at(-1)!)).toEqual({ report: join(tmp, "cli.html") });
      expect(await main(["report", join(tmp, "empty"), "--json"])).toBe(1);
      expect(JSON.parse(out.at(-1)!).error.issues[0].code).toBe("invalid_run_dir");
    } finally {
      spyOut.mockRestore();
      spyErr.mockRestore();
    }
  });
});

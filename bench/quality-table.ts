/**
 * The Diginetica model-choice table from finished runs: for each run directory (as `recblocks train
 * <recipe> --out <dir>` writes it) the test P@20 / MRR@20 (summary.json), the validation P@20 / MRR@20
 * and the seconds of every epoch (metrics.jsonl), printed as a markdown table, and a chart of the
 * validation P@20 per epoch written as a standalone SVG. Optional test-per-epoch curves (from checkpoint
 * snapshots evaluated with `recblocks train <recipe> --epochs k --resume --out <copy>`) and a peer's
 * published curve go into a second chart.
 *
 *   node --import tsx bench/quality-table.ts --run gpt2=/tmp/runs/gpt2-diginetica --run xlnet-mlm=/tmp/runs/x ...
 *        [--timing gpt2=/tmp/runs/timing-gpt2 ...] [--curve "xlnet-mlm (test)=29.81,42.11,46.48"] [--valid-curve "gpt2=40.65,51.06"]
 *        [--svg docs/quality-valid.svg] [--svg-test docs/quality-test.svg]
 *
 * `--timing name=dir`: a short run of the same recipe on an otherwise idle machine (`recblocks train <recipe>
 * --epochs 1 --max-batches 100 --out dir`); its examples per second, applied to the examples of a full epoch
 * of the named run, gives the "idle s per epoch" column (warm-up of the first batches included).
 *
 * P@20 is recall@20 (one target per prefix); numbers are percentages.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { lineChart, type ChartSeries } from "../src/report/chart.js";

interface EpochLine {
  epoch: number;
  seconds: number;
  examplesPerSecond: number;
  valid?: Record<string, number>;
}

const argv = process.argv.slice(2);
const runs: { name: string; dir: string }[] = [];
const timings = new Map<string, string>();
const curves: ChartSeries[] = [];
/** Validation curves of runs whose directories are gone (figures from an earlier note). */
const extraValid: ChartSeries[] = [];
let svg = "";
let svgTest = "";
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!;
  const v = argv[i + 1];
  if (v === undefined) throw new Error(`bench/quality-table.ts: ${a} needs a value`);
  i++;
  if (a === "--run") {
    const eq = v.indexOf("=");
    runs.push({ name: v.slice(0, eq), dir: v.slice(eq + 1) });
  } else if (a === "--timing") {
    const eq = v.indexOf("=");
    timings.set(v.slice(0, eq), v.slice(eq + 1));
  } else if (a === "--curve" || a === "--valid-curve") {
    const eq = v.indexOf("=");
    const series = { name: v.slice(0, eq), points: v.slice(eq + 1).split(",").map((x, k) => [k + 1, Number(x)] as [number, number]) };
    (a === "--curve" ? curves : extraValid).push(series);
  } else if (a === "--svg") svg = v;
  else if (a === "--svg-test") svgTest = v;
  else throw new Error(`bench/quality-table.ts: unknown option ${a}`);
}
if (!runs.length) throw new Error("bench/quality-table.ts: give --run name=runDir at least once");

const pct = (x: number | undefined) => (x === undefined ? "—" : (100 * x).toFixed(2));
const rows: string[] = [
  "| recipe | test P@20 / MRR@20 | validation P@20 / MRR@20 per epoch | s per epoch (run) | idle s per epoch |",
  "|---|---|---|---|---|",
];
const validSeries: ChartSeries[] = [];
for (const r of runs) {
  const summary = JSON.parse(readFileSync(join(r.dir, "summary.json"), "utf8")) as { metrics: Record<string, number> };
  const epochs = readFileSync(join(r.dir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as EpochLine);
  const valid = epochs.map((e) => `${pct(e.valid?.["recall@20"])}/${pct(e.valid?.["mrr@20"])}`).join(", ");
  const secs = epochs.map((e) => Math.round(e.seconds)).join(", ");
  const t = timings.get(r.name);
  let idle = "—";
  if (t) {
    const timing = JSON.parse(readFileSync(join(t, "metrics.jsonl"), "utf8").trim().split("\n")[0]!) as EpochLine;
    idle = String(Math.round((epochs[0]!.seconds * epochs[0]!.examplesPerSecond) / timing.examplesPerSecond));
  }
  rows.push(`| ${r.name} | ${pct(summary.metrics["recall@20"])} / ${pct(summary.metrics["mrr@20"])} | ${valid} | ${secs} | ${idle} |`);
  validSeries.push({ name: r.name, points: epochs.map((e) => [e.epoch, 100 * (e.valid?.["recall@20"] ?? NaN)] as [number, number]) });
}
process.stdout.write(rows.join("\n") + "\n");

/** The chart as a file of its own: the report's SVG with the report's axis styles inlined. */
const standalone = (chart: string) =>
  chart.replace(/(<svg[^>]*>)/, `$1<style>text{font:12px sans-serif;fill:#222}.chart-title{font-weight:bold}.axis line{stroke:#555}.axis line.grid{stroke:#e5e5e5}</style>`) + "\n";
if (svg) {
  writeFileSync(svg, standalone(lineChart({ title: "Diginetica: validation P@20 per epoch", xLabel: "epoch", yLabel: "P@20 (%)", series: [...validSeries, ...extraValid] })));
  process.stdout.write(`wrote ${svg}\n`);
}
if (svgTest && curves.length) {
  writeFileSync(svgTest, standalone(lineChart({ title: "Diginetica: test P@20 per epoch", xLabel: "epoch", yLabel: "P@20 (%)", series: curves })));
  process.stdout.write(`wrote ${svgTest}\n`);
}

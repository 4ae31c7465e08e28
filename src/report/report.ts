/**
 * The training report: one self-contained `report.html` per run directory (no script, no network,
 * charts drawn as inline SVG). `readRunDir` gathers what a run directory holds (summary.json,
 * metrics.jsonl, model/model.json, model/recipe.json, model/feature-schema.json, model/metrics.json),
 * `renderReport` turns that into HTML (pure), `writeRunReport` writes it atomically, so
 * `recblocks report <runDir>` regenerates the same page from the files alone.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { stringify as yamlStringify } from "yaml";
import { writeFileAtomic } from "../data/atomic.js";
import { RecblocksError } from "../errors/issue.js";
import { formatValue, lineChart, type ChartSeries } from "./chart.js";
import { escapeHtml } from "./escape.js";

export { escapeHtml };

/** One epoch (ALS: one iteration) of training. */
export interface EpochRow {
  epoch: number;
  loss?: number;
  learningRate?: number;
  seconds?: number;
  examplesPerSecond?: number;
  /** Validation metrics after this epoch, keyed like "ndcg@20" (and "loss", "examples"). */
  valid?: Record<string, number>;
}

export interface FeatureColumnRow {
  name: string;
  dtype?: string;
  tags?: string[];
  cardinality?: number;
  valueCount?: { min?: number; max?: number };
  embeddingDim?: number;
}

/** Everything the report shows; every field but `title` may be missing, and the report says so. */
export interface ReportData {
  title: string;
  runDir?: string;
  /** ISO time the report was made (shown in the footer). */
  generatedAt?: string;
  kind?: string;
  engine?: string;
  parameters?: number;
  /** Parameters per top-level block ("inputs", "body/0", "head"...), from model.json's weights manifest. */
  parametersByBlock?: [string, number][];
  epochs: EpochRow[];
  /** Unit of `examplesPerSecond` ("examples/s", ALS: "interactions/s"). */
  throughputUnit?: string;
  stoppedEarly?: boolean;
  bestEpoch?: number;
  /** The resolved recipe. */
  recipe?: unknown;
  featureSchema?: { columns?: FeatureColumnRow[] } & Record<string, unknown>;
  /** Data statistics: per split, and totals, as the run recorded them. */
  data?: { splits?: { split: string; sessions?: number; users?: number; interactions?: number }[]; totals?: [string, string | number][] };
  /** Final metrics on `evaluatedOn` next to the most-popular baseline. */
  test?: { evaluatedOn?: string; metrics: Record<string, number>; baseline?: Record<string, number> };
  /** Things the run directory lacks or holds in an unreadable form. */
  notes: string[];
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const num = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);

/** Reads a JSON file of the run directory; undefined (and a note) when it is missing or malformed. */
function readJsonFile(runDir: string, rel: string, notes: string[], required = false): unknown {
  const p = join(runDir, rel);
  if (!existsSync(p)) {
    if (required) notes.push(`${rel} is missing.`);
    return undefined;
  }
  try {
    return JSON.parse(readFileSync(p, "utf8"));
  } catch (e) {
    notes.push(`${rel} could not be read: ${(e as Error).message}`);
    return undefined;
  }
}

function epochRow(r: Record<string, unknown>): EpochRow | undefined {
  const epoch = num(r.epoch) ?? num(r.iteration);
  if (epoch === undefined) return undefined;
  const out: EpochRow = { epoch };
  for (const k of ["loss", "learningRate", "seconds", "examplesPerSecond"] as const) {
    const v = r[k];
    // JSON writes NaN/Infinity as null: keep the row, mark the value missing
    if (typeof v === "number") out[k] = v;
  }
  if (isObj(r.valid)) out.valid = Object.fromEntries(Object.entries(r.valid).filter(([, v]) => typeof v === "number")) as Record<string, number>;
  return out;
}

/** The lines of metrics.jsonl of the latest run (a run directory trained twice holds both runs: epochs restart at 1). */
function readMetricsJsonl(runDir: string, notes: string[]): EpochRow[] | undefined {
  const p = join(runDir, "metrics.jsonl");
  if (!existsSync(p)) return undefined;
  const rows: EpochRow[] = [];
  let bad = 0;
  let runs = 0;
  for (const line of readFileSync(p, "utf8").split("\n")) {
    if (!line.trim()) continue;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      bad++;
      continue;
    }
    const row = isObj(rec) ? epochRow(rec) : undefined;
    if (!row) {
      bad++;
      continue;
    }
    if (rows.length && row.epoch <= rows[rows.length - 1]!.epoch) {
      // epoch 1 again: a new run in the same directory; a smaller epoch: a resumed run re-doing epochs
      if (row.epoch === 1) runs++;
      while (rows.length && rows[rows.length - 1]!.epoch >= row.epoch) rows.pop();
    }
    rows.push(row);
  }
  if (bad) notes.push(`metrics.jsonl has ${bad} unreadable line(s); they are left out.`);
  if (runs) notes.push(`metrics.jsonl holds ${runs} earlier run(s) in this directory; the report shows the last one.`);
  return rows;
}

/** Parameters per top-level block, from the weights manifest of model.json. */
function parametersByBlock(modelJson: Record<string, unknown>): [string, number][] | undefined {
  const wm = modelJson.weightsManifest;
  if (!Array.isArray(wm)) return undefined;
  const by = new Map<string, number>();
  for (const g of wm) {
    for (const w of (isObj(g) && Array.isArray(g.weights) ? g.weights : []) as { name?: string; shape?: number[] }[]) {
      if (typeof w.name !== "string" || !Array.isArray(w.shape)) continue;
      const seg = w.name.split("/");
      const key = seg[0] === "body" ? seg.slice(0, 2).join("/") : seg[0]!;
      by.set(key, (by.get(key) ?? 0) + w.shape.reduce((a, b) => a * b, 1));
    }
  }
  return [...by];
}

/** True when `dir` looks like a run directory (what `recblocks train` writes). */
export function isRunDir(dir: string): boolean {
  return ["summary.json", "metrics.jsonl", join("model", "model.json")].some((f) => existsSync(join(dir, f)));
}

function notRunDir(dir: string, message: string): RecblocksError {
  return new RecblocksError(dir, [{
    code: "invalid_run_dir", path: "", message, source: { file: dir },
    hint: "Give the folder `recblocks train <recipe> --out <dir>` wrote (it holds summary.json, metrics.jsonl and model/).",
  }], { kind: "RunError" });
}

/**
 * Gathers what a run directory holds into ReportData. Throws `invalid_run_dir` when `runDir` is not
 * a run directory at all; anything else missing becomes a note in the report.
 */
export function readRunDir(runDir: string, opts: { now?: Date } = {}): ReportData {
  const dir = resolve(runDir);
  if (!existsSync(dir)) throw notRunDir(runDir, `The run directory ${runDir} does not exist.`);
  if (!statSync(dir).isDirectory()) throw notRunDir(runDir, `${runDir} is a file, not a run directory.`);
  if (!isRunDir(dir)) throw notRunDir(runDir, `${runDir} holds none of summary.json, metrics.jsonl or model/model.json; it is not a run directory.`);
  const notes: string[] = [];
  const summary = readJsonFile(dir, "summary.json", notes, true) as Record<string, unknown> | undefined;
  const modelJson = readJsonFile(dir, "model/model.json", notes, true) as Record<string, unknown> | undefined;
  const recipe = readJsonFile(dir, "model/recipe.json", notes, true);
  const featureSchema = readJsonFile(dir, "model/feature-schema.json", notes) as ReportData["featureSchema"] | undefined;
  const modelMetrics = readJsonFile(dir, "model/metrics.json", notes) as Record<string, unknown> | undefined;
  const format = isObj(modelJson) ? modelJson.format : undefined;
  const als = format === "recblocks-als" || (isObj(recipe) && isObj(recipe.model) && recipe.model.type === "als");
  const topo = isObj(modelJson) && isObj(modelJson.modelTopology) ? modelJson.modelTopology : undefined;
  const data: ReportData = {
    title: (isObj(summary) && typeof summary.recipe === "string" ? summary.recipe : undefined) ?? (isObj(recipe) && typeof recipe.name === "string" ? recipe.name : basename(dir)),
    runDir: dir,
    generatedAt: (opts.now ?? new Date()).toISOString(),
    kind: als ? "als" : format === "recblocks-next-item" ? "next-item" : undefined,
    engine: isObj(summary) && typeof summary.engine === "string" ? summary.engine : undefined,
    epochs: [],
    notes,
    recipe,
  };
  if (isObj(summary)) {
    if (typeof summary.stoppedEarly === "boolean") data.stoppedEarly = summary.stoppedEarly;
    if (typeof summary.bestEpoch === "number") data.bestEpoch = summary.bestEpoch;
  }
  if (isObj(featureSchema)) data.featureSchema = featureSchema;
  else if (isObj(recipe) && isObj(recipe.features)) data.featureSchema = recipe.features as ReportData["featureSchema"];

  if (als) {
    const cfg = isObj(topo?.config) ? topo!.config : isObj(recipe) && isObj(recipe.model) ? recipe.model : {};
    const f = num((cfg as Record<string, unknown>).factors);
    const users = num(topo?.users);
    const items = num(topo?.items);
    if (f !== undefined && users !== undefined && items !== undefined) {
      data.parameters = (users + items) * f;
      data.parametersByBlock = [["user_factors", users * f], ["item_factors", items * f]];
    }
    const md = isObj(modelMetrics?.data) ? (modelMetrics!.data as Record<string, unknown>) : undefined;
    const hist = Array.isArray(modelMetrics?.history) ? (modelMetrics!.history as unknown[]) : undefined;
    const nnz = num(md?.trainInteractions);
    if (hist) {
      data.epochs = hist.filter(isObj).map(epochRow).filter((r): r is EpochRow => !!r);
      if (nnz !== undefined) for (const r of data.epochs) if (r.seconds) r.examplesPerSecond = nnz / r.seconds;
      data.throughputUnit = "interactions/s";
    } else notes.push("model/metrics.json has no training history.");
    if (md) {
      data.data = {
        splits: [
          { split: "train", users: num(md.users), interactions: nnz },
          { split: "test (leave-last-out)", users: num(md.testUsers), interactions: num(md.testUsers) },
        ],
        totals: [["users", num(md.users) ?? "—"], ["items", num(md.items) ?? "—"], ["split", String(md.split ?? "—")], ["source", String(md.source ?? "—")]],
      };
    }
  } else {
    data.parameters = num(topo?.parameters);
    if (isObj(modelJson)) data.parametersByBlock = parametersByBlock(modelJson);
    data.throughputUnit = "examples/s";
    const fromJsonl = readMetricsJsonl(dir, notes);
    if (fromJsonl) data.epochs = fromJsonl;
    else if (isObj(summary) && Array.isArray(summary.history)) {
      data.epochs = summary.history.filter(isObj).map(epochRow).filter((r): r is EpochRow => !!r);
      notes.push("metrics.jsonl is missing; the epochs come from summary.json.");
    } else notes.push("metrics.jsonl is missing: no per-epoch record.");
    const st = isObj(summary) && isObj(summary.data) ? summary.data : undefined;
    if (st) {
      data.data = {
        splits: [
          { split: "train", sessions: num(st.train) },
          { split: "valid", sessions: num(st.valid) },
          { split: "test", sessions: num(st.test) },
        ],
        totals: [
          ["rows read (all splits, before filters)", num(st.rows) ?? "—"],
          ["items (item vocabulary, from train)", num(st.items) ?? "—"],
          ["valid/test steps with items unseen in train", num(st.oovSteps) ?? "—"],
        ],
      };
    }
  }
  if (isObj(summary) && isObj(summary.metrics) && Object.keys(summary.metrics).length) {
    const st = isObj(summary.data) ? summary.data : undefined;
    data.test = {
      evaluatedOn: als ? "held-out last item per user" : st ? (num(st.test) ? "test split" : "validation split (the run has no test split)") : undefined,
      metrics: summary.metrics as Record<string, number>,
      baseline: isObj(summary.mostPopular) ? (summary.mostPopular as Record<string, number>) : undefined,
    };
  }
  return data;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#555}
table{border-collapse:collapse;margin:6px 0;background:#fff}
th,td{border:1px solid #ddd;padding:4px 10px;text-align:left}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.better{color:#0a7a2f}.worse{color:#b3261e}
.notes{background:#fff6e0;border:1px solid #f0d48a;padding:8px 14px;border-radius:4px}
.missing{color:#8a6d00;font-style:italic}
pre{background:#fff;border:1px solid #ddd;padding:10px;overflow:auto;max-height:480px;font-size:12.5px;white-space:pre-wrap;overflow-wrap:anywhere}
.charts{display:flex;flex-wrap:wrap;gap:12px}
svg.chart{background:#fff;border:1px solid #ddd}
svg.chart text{font:12px system-ui,sans-serif;fill:#333}
svg.chart .chart-title{font-weight:600;font-size:14px}
svg.chart .axis line{stroke:#444}svg.chart line.grid{stroke:#e6e6e6}
svg.chart .axis-label{fill:#555}
dl.kv{display:grid;grid-template-columns:max-content auto;gap:2px 16px}dl.kv dt{color:#555}dl.kv dd{margin:0}
`;

function missing(what: string): string {
  return `<p class="missing">${escapeHtml(what)}</p>`;
}

function table(head: string[], rows: string[][], numeric: boolean[] = []): string {
  const th = head.map((h, i) => `<th${numeric[i] ? ' class="n"' : ""}>${escapeHtml(h)}</th>`).join("");
  const trs = rows.map((r) => `<tr>${r.map((c, i) => `<td${numeric[i] ? ' class="n"' : ""}>${c}</td>`).join("")}</tr>`).join("");
  return `<table><thead><tr>${th}</tr></thead><tbody>${trs}</tbody></table>`;
}

/** Validation metric keys in a stable order: ranking metrics ("ndcg@20"...) first, then "loss". */
function validKeys(epochs: EpochRow[]): string[] {
  const keys = new Set<string>();
  for (const e of epochs) for (const k of Object.keys(e.valid ?? {})) if (k !== "examples") keys.add(k);
  return [...keys].sort((a, b) => Number(a === "loss") - Number(b === "loss") || a.localeCompare(b, "en", { numeric: true }));
}

function chartsSection(d: ReportData): string {
  if (!d.epochs.length) return missing("No per-epoch record in this run directory: no charts.");
  const unit = d.kind === "als" ? "iteration" : "epoch";
  const series = (name: string, f: (e: EpochRow) => number | undefined): ChartSeries => ({
    name,
    points: d.epochs.filter((e) => typeof f(e) === "number").map((e) => [e.epoch, f(e)!]),
  });
  const charts: string[] = [];
  const notes: string[] = [];
  const loss: ChartSeries[] = [];
  if (d.epochs.some((e) => typeof e.loss === "number")) loss.push(series("train loss", (e) => e.loss));
  if (d.epochs.some((e) => typeof e.valid?.loss === "number")) loss.push(series("valid loss", (e) => e.valid?.loss));
  if (loss.length) charts.push(lineChart({ id: "chart-loss", title: "Loss", xLabel: unit, yLabel: "loss", series: loss }));
  else notes.push(d.kind === "als" ? "No training loss recorded (ALS computes it only when asked to)." : "No training loss recorded.");
  const vk = validKeys(d.epochs).filter((k) => k !== "loss");
  if (vk.length) charts.push(lineChart({ id: "chart-valid", title: "Validation metrics", xLabel: unit, yLabel: "metric value", series: vk.map((k) => series(k, (e) => e.valid?.[k])) }));
  charts.push(lineChart({ id: "chart-time", title: `Seconds per ${unit}`, xLabel: unit, yLabel: "seconds", series: [series("seconds", (e) => e.seconds)] }));
  if (!vk.length) notes.push(d.kind === "als" ? "ALS records no validation metrics per iteration." : "No validation metrics per epoch (the run had no validation split).");
  return `<div class="charts">${charts.join("")}</div>${notes.map(missing).join("")}`;
}

function epochTable(d: ReportData): string {
  if (!d.epochs.length) return missing("No per-epoch record.");
  const vk = validKeys(d.epochs);
  const unit = d.throughputUnit ?? "examples/s";
  // columns the run recorded for at least one epoch
  const cols: [string, (e: EpochRow) => string][] = [
    [d.kind === "als" ? "iteration" : "epoch", (e) => `${e.epoch}${d.bestEpoch === e.epoch ? " (best)" : ""}`],
    ...(d.epochs.some((e) => e.loss !== undefined) ? [["train loss", (e: EpochRow) => formatValue(e.loss)] as [string, (e: EpochRow) => string]] : []),
    ...(d.epochs.some((e) => e.learningRate !== undefined) ? [["learning rate", (e: EpochRow) => (e.learningRate === undefined ? "—" : String(+e.learningRate.toPrecision(4)))] as [string, (e: EpochRow) => string]] : []),
    ["seconds", (e) => (e.seconds === undefined ? "—" : e.seconds.toFixed(2))],
    [unit, (e) => (e.examplesPerSecond === undefined ? "—" : Math.round(e.examplesPerSecond).toLocaleString("en-US"))],
    ...vk.map((k) => [`valid ${k}`, (e: EpochRow) => formatValue(e.valid?.[k])] as [string, (e: EpochRow) => string]),
  ];
  const head = cols.map(([h]) => h);
  const rows = d.epochs.map((e) => cols.map(([, f]) => escapeHtml(f(e))));
  const secs = d.epochs.map((e) => e.seconds).filter((s): s is number => typeof s === "number");
  const eps = d.epochs.map((e) => e.examplesPerSecond).filter((s): s is number => typeof s === "number");
  const total = secs.reduce((a, b) => a + b, 0);
  const summary = secs.length
    ? `<p>Training time ${escapeHtml(total.toFixed(1))} s over ${secs.length} ${d.kind === "als" ? "iteration" : "epoch"}(s): ${escapeHtml((total / secs.length).toFixed(2))} s each on average` +
      (eps.length ? `, ${escapeHtml(Math.round(eps.reduce((a, b) => a + b, 0) / eps.length).toLocaleString("en-US"))} ${escapeHtml(unit)} on average` : "") + ` (validation time not included).</p>`
    : "";
  return summary + table(head, rows, head.map((_, i) => i > 0));
}

function testSection(d: ReportData): string {
  if (!d.test) return missing("No final test metrics in this run directory (summary.json is missing or has none: the run may have been interrupted, or it had no test or validation data).");
  const m = d.test.metrics;
  const b = d.test.baseline ?? {};
  const keys = Object.keys(m).filter((k) => k.includes("@")).sort((x, y) => x.localeCompare(y, "en", { numeric: true }));
  const rows = keys.map((k) => {
    const v = m[k];
    const bv = b[k];
    let lift = "—";
    let cls = "";
    if (typeof v === "number" && typeof bv === "number") {
      lift = bv > 0 ? `${v >= bv ? "+" : ""}${(((v - bv) / bv) * 100).toFixed(1)}%` : v > 0 ? "+∞" : "0";
      cls = v > bv ? "better" : v < bv ? "worse" : "";
    }
    return [escapeHtml(k), escapeHtml(formatValue(v)), escapeHtml(d.test!.baseline ? formatValue(bv) : "not recorded"), `<span class="${cls}">${escapeHtml(lift)}</span>`];
  });
  const extra: string[] = [];
  if (typeof m.examples === "number") extra.push(`${formatValue(m.examples)} examples`);
  if (typeof m.loss === "number") extra.push(`loss ${formatValue(m.loss)}`);
  const head = `<p>Evaluated on: ${escapeHtml(d.test.evaluatedOn ?? "not recorded")}${extra.length ? ` — ${escapeHtml(extra.join(", "))}` : ""}.</p>`;
  return head + (rows.length ? table(["metric", "model", "most popular", "model vs most popular"], rows, [false, true, true, true]) : missing("The run recorded no ranking metric."));
}

function dataSection(d: ReportData): string {
  if (!d.data) return missing("No data statistics in this run directory (summary.json or model/metrics.json is missing them).");
  const out: string[] = [];
  const splits = d.data.splits ?? [];
  if (splits.length) {
    const cols: [string, keyof (typeof splits)[number]][] = [["sessions", "sessions"], ["users", "users"], ["interactions", "interactions"]];
    const used = cols.filter(([, k]) => splits.some((s) => s[k] !== undefined));
    out.push(table(["split", ...used.map(([h]) => h)], splits.map((s) => [escapeHtml(s.split), ...used.map(([, k]) => escapeHtml(formatValue(s[k] as number | undefined)))]), [false, ...used.map(() => true)]));
  }
  if (d.data.totals?.length) out.push(`<dl class="kv">${d.data.totals.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(typeof v === "number" ? formatValue(v) : v)}</dd>`).join("")}</dl>`);
  if (d.kind !== "als") out.push(`<p class="sub">The run records sessions per split; rows per split are not recorded.</p>`);
  return out.join("");
}

function schemaSection(d: ReportData): string {
  const cols = d.featureSchema?.columns;
  if (!Array.isArray(cols) || !cols.length) {
    const named = isObj(d.recipe) && typeof d.recipe.features === "string" ? ` The recipe names "${d.recipe.features}".` : "";
    return missing(`No feature schema in this run directory (model/feature-schema.json is missing${d.kind === "als" ? "; ALS model directories do not hold one" : ""}).${named}`);
  }
  const rows = cols.map((c) => [
    escapeHtml(c.name),
    escapeHtml(c.dtype ?? "—"),
    escapeHtml((c.tags ?? []).join(", ")),
    escapeHtml(c.cardinality === undefined ? "—" : formatValue(c.cardinality)),
    escapeHtml(c.valueCount ? `${c.valueCount.min ?? "?"}–${c.valueCount.max ?? "?"}` : "—"),
    escapeHtml(c.embeddingDim ?? "—"),
  ]);
  return table(["column", "dtype", "tags", "cardinality", "values per row", "embedding dim"], rows, [false, false, false, true, true, true]);
}

function modelSection(d: ReportData): string {
  const out: string[] = [];
  if (d.parameters !== undefined) out.push(`<p>${escapeHtml(formatValue(d.parameters))} parameters${d.kind ? ` (${escapeHtml(d.kind)} model)` : ""}.</p>`);
  else out.push(missing("Parameter count not recorded (model/model.json is missing)."));
  if (d.parametersByBlock?.length) out.push(table(["block", "parameters"], d.parametersByBlock.map(([k, v]) => [escapeHtml(k), escapeHtml(formatValue(v))]), [false, true]));
  return out.join("");
}

/** The report as one self-contained HTML page (no script, no external resource). Pure. */
export function renderReport(d: ReportData): string {
  const info: [string, string][] = [];
  if (d.kind) info.push(["model", d.kind]);
  if (d.engine) info.push(["backend", d.engine]);
  if (d.epochs.length) info.push([d.kind === "als" ? "iterations" : "epochs", String(d.epochs.length)]);
  if (d.stoppedEarly !== undefined) info.push(["stopped early", d.stoppedEarly ? `yes${d.bestEpoch !== undefined ? ` (best weights from epoch ${d.bestEpoch})` : ""}` : "no"]);
  if (d.runDir) info.push(["run directory", d.runDir]);
  const recipe = d.recipe === undefined ? missing("No recipe in this run directory (model/recipe.json is missing).") : `<pre>${escapeHtml(yamlStringify(d.recipe, { lineWidth: 0 }))}</pre>`;
  const body = [
    `<h1>Training report: ${escapeHtml(d.title)}</h1>`,
    info.length ? `<dl class="kv">${info.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join("")}</dl>` : "",
    d.notes.length ? `<div class="notes"><strong>Missing or unreadable in this run directory:</strong><ul>${d.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("")}</ul></div>` : "",
    `<h2 id="test">Final metrics</h2>`, testSection(d),
    `<h2 id="training">Training</h2>`, chartsSection(d), epochTable(d),
    `<h2 id="data">Data</h2>`, dataSection(d),
    `<h2 id="model">Model</h2>`, modelSection(d),
    `<h2 id="schema">Feature schema</h2>`, schemaSection(d),
    `<h2 id="recipe">Recipe</h2>`, recipe,
    `<p class="sub">Made by recblocks${d.generatedAt ? ` at ${escapeHtml(d.generatedAt)}` : ""}. Regenerate with <code>recblocks report ${escapeHtml(d.runDir ?? "<runDir>")}</code>.</p>`,
  ].join("\n");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(`recblocks report: ${d.title}`)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

/** Reads a run directory and writes its report (default `<runDir>/report.html`) atomically. Returns the file written. */
export function writeRunReport(runDir: string, opts: { out?: string; now?: Date } = {}): string {
  const html = renderReport(readRunDir(runDir, opts));
  const out = resolve(opts.out ?? join(runDir, "report.html"));
  writeFileAtomic(out, html);
  return out;
}

/** The hook `trainRecipe` calls at the end of a run: a report that cannot be written is logged, never fatal. */
export function reportAfterTraining(runDir: string, log?: (msg: string) => void): void {
  try {
    log?.(`report: ${writeRunReport(runDir)}`);
  } catch (e) {
    log?.(`report: not written (${(e as Error).message})`);
  }
}

/**
 * Train an ALS model from a recipe (model.type "als") and load a saved one: the entry points the
 * CLI wires into `recblocks train` and `recblocks recommend --user`.
 */
import { existsSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { RecblocksError, type Issue } from "../../src/errors/issue.js";
import { packageRoot } from "../../src/paths.js";
import { AlsModel } from "./als-model.js";
import { fitAlsParallel } from "./als-parallel.js";
import { type IterationRecord, fitAls } from "./als-trainer.js";
import { type AlsConfig, resolveAlsConfig } from "./config.js";
import { type MetricName, evaluateLeaveLastOut, popularityScores } from "./evaluate.js";
import {
  type Interactions, type ReadOptions, leaveLastOut, parseSyntheticSpec, readInteractionsFile, syntheticInteractions, toCsr,
} from "./interactions.js";
import { saveAlsModel } from "./model-io.js";

export { loadAlsModel } from "./model-io.js";

/** The parts of a recipe ALS reads (schemas/recipe.schema.json). */
export interface AlsRecipe {
  version?: number;
  name?: string;
  description?: string;
  features?: unknown;
  data: {
    train: string;
    format?: string;
    csv?: { delimiter?: string; header?: boolean };
    columns?: { user?: string; item?: string; timestamp?: string; session?: string };
    split?: { type?: string };
  };
  model: Partial<AlsConfig> & { type: "als" };
  train?: { seed?: number; epochs?: number };
  evaluate?: { metrics?: string[]; ks?: number[]; batchSize?: number };
}

export interface TrainAlsOptions {
  /** The recipe's file: data paths are relative to its folder (then to the current folder). */
  recipeFile?: string;
  /** Where to save the model directory (nothing is saved when absent). */
  outDir?: string;
  /** Overrides model.iterations (e.g. `--epochs`). */
  iterations?: number;
  /** Overrides the data source (e.g. `--data`). */
  data?: string;
  /** Overrides model.seed. */
  seed?: number;
  /** Where progress goes (default process.stderr); null for none. */
  progress?: { write(s: string): unknown; isTTY?: boolean } | null;
  /** Where Y^T Y is computed (default typed arrays; see docs/als.md for the measurement). */
  gram?: "typed" | "tfjs";
  /** Called after every iteration. */
  onIteration?: (rec: IterationRecord, total: number) => void;
}

export interface TrainAlsResult {
  model: AlsModel;
  /** Final metrics keyed like "ndcg@10" (empty without a split). */
  metrics: Record<string, number>;
  /** The most-popular baseline under the same protocol. */
  baseline: Record<string, number>;
  history: IterationRecord[];
  outDir?: string;
  data: { source: string; users: number; items: number; trainInteractions: number; testUsers: number };
}

/** Finds a data file: relative to the recipe's folder, then the current folder, then the package root. */
export function resolveDataPath(spec: string, recipeFile?: string): string {
  if (isAbsolute(spec)) return spec;
  const tried: string[] = [];
  for (const base of [recipeFile ? dirname(resolve(recipeFile)) : null, process.cwd(), packageRoot()]) {
    if (base === null) continue;
    const p = resolve(base, spec);
    tried.push(p);
    if (existsSync(p)) return p;
  }
  throw new RecblocksError(recipeFile ?? "recipe", [{
    code: "data_not_found", path: "/data/train", message: `Data file "${spec}" was not found.`, received: spec,
    expected: tried, hint: "Paths are relative to the recipe file; the current folder and the package root are tried next.",
    ...(recipeFile ? { source: { file: recipeFile } } : {}),
  }]);
}

interface FeatureColumnLike { name: string; tags?: string[] }

/** Reads the interactions a recipe names (builtin:synthetic or a delimited file). */
export function loadRecipeInteractions(recipe: AlsRecipe, opts: Pick<TrainAlsOptions, "recipeFile" | "data"> = {}): Interactions {
  const spec = opts.data ?? recipe.data.train;
  const syn = parseSyntheticSpec(spec);
  if (syn) return syntheticInteractions(syn);
  const file = resolveDataPath(spec, opts.recipeFile);
  const fmt = recipe.data.format ?? "auto";
  if (!["auto", "csv"].includes(fmt)) {
    throw new RecblocksError(opts.recipeFile ?? "recipe", [{ code: "unsupported_data_format", path: "/data/format",
      message: `ALS reads delimited interaction files (csv/tsv); data.format "${fmt}" is not supported for model type als.`,
      expected: ["auto", "csv"], received: fmt }]);
  }
  const read: ReadOptions = {};
  if (recipe.data.csv?.delimiter !== undefined) read.delimiter = recipe.data.csv.delimiter;
  if (recipe.data.csv?.header !== undefined) read.header = recipe.data.csv.header;
  // Column roles: names from data.columns or the feature schema's tags; without a header the
  // inline feature schema's column order names the fields.
  const cols = Array.isArray((recipe.features as { columns?: unknown })?.columns)
    ? ((recipe.features as { columns: FeatureColumnLike[] }).columns) : null;
  const byTag = (tags: string[]): string | undefined => cols?.find((c) => (c.tags ?? []).some((t) => tags.includes(t)))?.name;
  const user = recipe.data.columns?.user ?? recipe.data.columns?.session ?? byTag(["user-id", "session-id"]);
  const item = recipe.data.columns?.item ?? byTag(["item-id"]);
  const timestamp = recipe.data.columns?.timestamp ?? byTag(["timestamp"]);
  const value = byTag(["regression", "target", "binary"]);
  const header = read.header ?? true;
  const pos = (name: string | undefined): number | string | undefined => {
    if (name === undefined) return undefined;
    if (header) return name;
    const at = cols?.findIndex((c) => c.name === name) ?? -1;
    return at >= 0 ? at : undefined;
  };
  read.header = header;
  read.columns = {};
  if (user !== undefined) read.columns.user = pos(user);
  if (item !== undefined) read.columns.item = pos(item);
  if (timestamp !== undefined) read.columns.timestamp = pos(timestamp);
  if (value !== undefined) read.columns.value = pos(value);
  else if (cols) read.columns.value = null;
  return readInteractionsFile(file, read);
}

function progressPrinter(stream: { write(s: string): unknown; isTTY?: boolean }, t0: number) {
  return (rec: IterationRecord, total: number): void => {
    const el = (performance.now() - t0) / 1000;
    const eta = (el / rec.iteration) * (total - rec.iteration);
    const width = 20;
    const fill = Math.round((rec.iteration / total) * width);
    const bar = `[${"#".repeat(fill)}${".".repeat(width - fill)}]`;
    const loss = rec.loss !== undefined ? `  loss ${rec.loss.toPrecision(6)}` : "";
    const line = `als ${bar} iteration ${rec.iteration}/${total}  ${rec.seconds.toFixed(3)} s/it${loss}  ETA ${eta.toFixed(1)}s`;
    if (stream.isTTY) stream.write(`\r${line}${rec.iteration === total ? "\n" : ""}`);
    else stream.write(line + "\n");
  };
}

/**
 * Trains the recipe's ALS model: reads the data, splits it (data.split.type "leave-last-out", or
 * "none" to train on everything), trains with progress, evaluates top-k among unseen items
 * (evaluate.metrics at evaluate.ks) next to the most-popular baseline, and saves the model
 * directory when `outDir` is given.
 */
export async function trainAlsFromRecipe(recipe: AlsRecipe, opts: TrainAlsOptions = {}): Promise<TrainAlsResult> {
  const subject = opts.recipeFile ?? "recipe";
  const model = { ...recipe.model } as Record<string, unknown>;
  if (model.seed === undefined && recipe.train?.seed !== undefined) model.seed = recipe.train.seed;
  if (opts.seed !== undefined) model.seed = opts.seed;
  if (opts.iterations !== undefined) model.iterations = opts.iterations;
  const cfg = resolveAlsConfig(model, "/model", subject);
  const splitType = recipe.data.split?.type ?? "none";
  if (!["none", "leave-last-out"].includes(splitType)) {
    throw new RecblocksError(subject, [{ code: "unsupported_split", path: "/data/split/type",
      message: `Model type als supports data.split.type "leave-last-out" (evaluate) or "none" (train on everything); got "${splitType}".`,
      received: splitType, expected: ["leave-last-out", "none"] }]);
  }
  const issues: Issue[] = [];
  const metricNames = (recipe.evaluate?.metrics ?? ["hitrate", "ndcg", "precision", "map"]) as MetricName[];
  for (const [j, m] of metricNames.entries()) {
    if (!["hitrate", "ndcg", "precision", "map", "mrr", "recall"].includes(m)) {
      issues.push({ code: "unsupported_metric", path: `/evaluate/metrics/${j}`, message: `Metric "${m}" is not computed for model type als.`,
        received: m, expected: ["hitrate", "ndcg", "precision", "map", "mrr", "recall"] });
    }
  }
  if (issues.length) throw new RecblocksError(subject, issues);
  const ks = recipe.evaluate?.ks ?? [10];

  const data = loadRecipeInteractions(recipe, opts);
  const split = splitType === "leave-last-out" ? leaveLastOut(data) : null;
  const train = split ? split.train : toCsr(data);
  const stream = opts.progress === undefined ? process.stderr : opts.progress;
  const t0 = performance.now();
  const nnz = train.indptr[train.rows]!;
  stream?.write(`als: ${data.users.length} users, ${data.items.length} items, ${nnz} training interactions (${data.source}); `
    + `${cfg.factors} factors, ${cfg.solver}${cfg.solver === "cg" ? ` (${cfg.cgSteps} steps)` : ""}, ${cfg.iterations} iterations\n`);
  const print = stream ? progressPrinter(stream, t0) : null;
  const fitOpts = {
    gram: opts.gram,
    onIteration: (rec: IterationRecord, total: number) => {
      print?.(rec, total);
      opts.onIteration?.(rec, total);
    },
  };
  const fit = cfg.threads > 1 ? await fitAlsParallel(train, cfg, cfg.threads, fitOpts) : fitAls(train, cfg, fitOpts);
  const f = cfg.factors;
  const alsModel = new AlsModel({
    config: cfg, users: data.users, items: data.items, userFactors: Float32Array.from(fit.userFactors),
    itemFactors: Float32Array.from(fit.itemFactors), userItems: train,
  });
  let metrics: Record<string, number> = {};
  let baseline: Record<string, number> = {};
  if (split && split.testUsers.length > 0) {
    const bs = recipe.evaluate?.batchSize ?? 256;
    metrics = evaluateLeaveLastOut(alsModel.userFactors, alsModel.itemFactors, f, data.items.length, train,
      split.testUsers, split.testItems, { ks, metrics: metricNames, batchSize: bs },
      (users, out) => {
        const vec = new Float32Array(users.length * f);
        users.forEach((u, b) => vec.set(alsModel.userFactors.subarray(u * f, (u + 1) * f), b * f));
        out.set(alsModel.scoreVectors(vec, users.length));
      });
    const pop = popularityScores(train);
    const ni = data.items.length;
    baseline = evaluateLeaveLastOut(new Float32Array(0), pop, 0, ni, train, split.testUsers, split.testItems,
      { ks, metrics: metricNames, batchSize: bs }, (users, out) => { for (let b = 0; b < users.length; b++) out.set(pop, b * ni); });
    stream?.write(`als: ${Object.entries(metrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join("  ")}  `
      + `(most popular: ${Object.entries(baseline).map(([k, v]) => `${k} ${v.toFixed(4)}`).join("  ")})\n`);
  }
  const secs = fit.history.map((h) => h.seconds);
  alsModel.metrics = {
    ...metrics,
    mostPopular: baseline,
    secondsPerIteration: secs.reduce((a, b) => a + b, 0) / Math.max(1, secs.length),
    history: fit.history,
    data: { source: data.source, users: data.users.length, items: data.items.length, trainInteractions: nnz,
      testUsers: split?.testUsers.length ?? 0, split: splitType },
  };
  if (opts.outDir) {
    saveAlsModel(alsModel, opts.outDir, { recipe: { ...recipe, model: cfg } });
    stream?.write(`als: model saved to ${opts.outDir}\n`);
  }
  return {
    model: alsModel, metrics, baseline, history: fit.history, outDir: opts.outDir,
    data: { source: data.source, users: data.users.length, items: data.items.length, trainInteractions: nnz, testUsers: split?.testUsers.length ?? 0 },
  };
}

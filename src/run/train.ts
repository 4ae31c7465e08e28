/**
 * The application layer: recipe file -> data -> model -> fit -> evaluate -> model directory, as
 * `recblocks train` runs it (and code can call it). Unlike the core (src/core, recipe, data, engine,
 * train, metrics, model, io), this layer loads the built-in blocks (blocks/index.js) and the
 * prebuilt model types (ALS) by dynamic import: it is where the pieces meet.
 */
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { loadRecipe } from "../recipe/load.js";
import { loadRecipeData, type DataConfig, type RecipeData } from "../data/load.js";
import { initEngine, engineLine, type EngineInfo } from "../engine/index.js";
import { Model, type ModelConfig } from "../model/model.js";
import { popularityCounts, popularityTopK, RankingMetrics, type RankingMetricName } from "../metrics/index.js";
import { evaluationBatches, fit, type EpochRecord, type TrainSettings } from "../train/index.js";
import { prefixExamples, lastItemExamples, type Session } from "../data/batches.js";
import { saveModelDir } from "../io/model-dir.js";
import { buildItemFeatureTable, sideFeaturesOf } from "../io/item-features.js";
import { writeFileAtomic } from "../io/atomic.js";
import { checkTrainingMemory, estimateTrainingMemory } from "../train/limits.js";
import type { Recipe } from "../generated/recipe.js";
import { reportAfterTraining } from "../report/report.js";

export interface TrainRunOptions {
  /** Overrides data.train (a path or builtin:...). */
  data?: string;
  /** Where the run is written: metrics.jsonl, the model directory `model/`, summary.json. Default runs/<recipe name>. */
  out?: string;
  epochs?: number;
  seed?: number;
  backend?: string;
  threads?: number;
  /**
   * Continue from `<out>/checkpoint/` (weights, optimizer state, RNG, position, metrics so far) when
   * there is one; a run killed at any point resumes to the same result as an uninterrupted one.
   */
  resume?: boolean;
  /** At most this many training batches per epoch (smoke runs, timing); the evaluations stay whole. */
  maxBatchesPerEpoch?: number;
  /** Progress and log lines (default: process.stderr); null = silent. */
  stream?: { write(s: string): unknown; isTTY?: boolean } | null;
}

export interface TrainRunResult {
  kind: "next-item" | "als";
  /** Final metrics on the test data (or valid when there is no test), keyed like "ndcg@20". */
  metrics: Record<string, number>;
  /** The most-popular baseline under the same protocol. */
  baseline: Record<string, number>;
  history: EpochRecord[] | unknown[];
  runDir: string;
  modelDir: string;
  engine: EngineInfo;
}

/** Loads the built-in block types into the registry (once). */
export async function registerBuiltinBlocks(): Promise<void> {
  await import("../../blocks/index.js");
}

function evalProtocol(recipe: Recipe): "last-item" | "all-prefixes" {
  return (recipe.evaluate?.protocol ?? "last-item") as "last-item" | "all-prefixes";
}

/** Most-popular baseline: items ranked by training frequency, the same for every row. */
export function mostPopularMetrics(train: Session[], test: Session[], numItems: number, protocol: "last-item" | "all-prefixes", ks: number[], metrics: RankingMetricName[]): Record<string, number> {
  const counts = popularityCounts(train.map((s) => s.items), numItems);
  counts[0] = -1;
  const K = Math.max(...ks);
  const top = popularityTopK(counts, K, [0, 1]);
  const ex = protocol === "all-prefixes" ? prefixExamples(test) : lastItemExamples(test);
  const n = ex.session.length;
  const rm = new RankingMetrics(ks, metrics);
  const chunk = 4096;
  for (let a = 0; a < n; a += chunk) {
    const b = Math.min(n, a + chunk);
    const ids = new Int32Array((b - a) * K);
    const targets = new Int32Array(b - a);
    for (let r = a; r < b; r++) {
      ids.set(top, (r - a) * K);
      targets[r - a] = ex.sessions[ex.session[r]!]!.items[ex.end[r]!]!;
    }
    rm.update(ids, targets, K);
  }
  return { ...rm.result(), examples: n };
}

/** Runs a recipe end to end and writes the run directory. */
export async function trainRecipe(recipeFile: string, opts: TrainRunOptions = {}): Promise<TrainRunResult> {
  const stream = opts.stream === undefined ? process.stderr : opts.stream;
  const log = (m: string) => stream?.write(m + "\n");
  const { recipe, featureSchema } = loadRecipe(recipeFile);
  const train = { ...(recipe.train ?? {}) } as TrainSettings & { backend?: string; threads?: number };
  if (opts.epochs !== undefined) train.epochs = opts.epochs;
  if (opts.seed !== undefined) train.seed = opts.seed;
  const engine = await initEngine({
    backend: (opts.backend ?? (recipe.train as { backend?: string } | undefined)?.backend ?? undefined) as never,
    threads: opts.threads ?? (recipe.train as { threads?: number } | undefined)?.threads,
    quiet: true,
  });
  log(engineLine(engine));
  const runDir = resolve(opts.out ?? join("runs", recipe.name));
  const modelDir = join(runDir, "model");
  mkdirSync(runDir, { recursive: true });
  const model = recipe.model as unknown as Record<string, unknown>;
  if (model.type === "als") {
    const { trainAlsFromRecipe } = await import("../../blocks/factorization/recipe.js");
    const r = await trainAlsFromRecipe(recipe as never, {
      recipeFile, outDir: modelDir, data: opts.data, seed: opts.seed, iterations: opts.epochs, progress: stream,
    });
    writeFileAtomic(join(runDir, "summary.json"), JSON.stringify({ recipe: recipe.name, metrics: r.metrics, mostPopular: r.baseline, engine: engine.backend }, null, 2) + "\n");
    reportAfterTraining(runDir, log);
    return { kind: "als", metrics: r.metrics, baseline: r.baseline, history: r.history, runDir, modelDir, engine };
  }
  await registerBuiltinBlocks();
  const dataCfg = { ...(recipe.data as unknown as DataConfig) };
  // --data is a path relative to the current folder (recipe data paths are relative to the recipe)
  if (opts.data) dataCfg.train = opts.data.startsWith("builtin:") ? opts.data : resolve(opts.data);
  const t0 = performance.now();
  const data: RecipeData = await loadRecipeData(dataCfg, featureSchema.toJSON() as never, { baseDir: dirname(resolve(recipeFile)), onLog: log });
  log(`data: ${data.stats.train} train / ${data.stats.valid} valid / ${data.stats.test} test sessions, ${data.stats.items} items (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  const seed = train.seed ?? 42;
  const m = Model.fromConfig(recipe.model as unknown as ModelConfig, data.featureSchema as never);
  try {
    // refuse a model that cannot fit in memory before allocating it (model_too_large)
    checkTrainingMemory(estimateTrainingMemory(m, data.featureSchema as never, train as never, data.maxSequenceLength));
    m.build({ seed });
    log(`model: ${m.countParams().toLocaleString("en-US")} parameters, ${m.numItems.toLocaleString("en-US")} item ids`);
    const ev = recipe.evaluate ?? {};
    const ks = (ev.ks ?? [20]) as number[];
    const metricNames = (ev.metrics ?? ["ndcg", "recall"]) as RankingMetricName[];
    const protocol = evalProtocol(recipe);
    const sessionData = { train: data.train, valid: data.valid, maxSequenceLength: data.maxSequenceLength, context: data.features.context };
    const result = await fit(m, sessionData, {
      train,
      evaluate: { ...ev, protocol, ks, metrics: metricNames } as never,
      runDir,
      checkpoint: { dir: join(runDir, "checkpoint"), resume: opts.resume === true, fingerprint: { data: dataCfg, features: recipe.features ?? null, items: m.numItems } },
      progress: { stream: (stream ?? { write: () => true }) as never, quiet: stream === null },
      log,
      ...(opts.maxBatchesPerEpoch !== undefined ? { maxBatchesPerEpoch: opts.maxBatchesPerEpoch } : {}),
    });
    const evalSet = data.test ?? data.valid;
    let metrics: Record<string, number> = {};
    let baseline: Record<string, number> = {};
    if (evalSet?.length) {
      const t1 = performance.now();
      metrics = m.evaluate(evaluationBatches(evalSet, protocol, { batchSize: ev.batchSize ?? 256, maxSequenceLength: data.maxSequenceLength, context: data.features.context }), { ks, metrics: metricNames });
      baseline = mostPopularMetrics(data.train, evalSet, m.numItems, protocol, ks, metricNames);
      const fmt = (r: Record<string, number>) => Object.entries(r).filter(([k]) => k.includes("@")).map(([k, v]) => `${k} ${v.toFixed(4)}`).join("  ");
      log(`${data.test ? "test" : "valid"} (${protocol}, ${metrics.examples} examples, ${((performance.now() - t1) / 1000).toFixed(1)} s): ${fmt(metrics)}`);
      log(`most popular:                  ${fmt(baseline)}`);
    }
    const summary = { recipe: recipe.name, engine: engine.backend, epochs: result.epochs, stoppedEarly: result.stoppedEarly, bestEpoch: result.bestEpoch, metrics, mostPopular: baseline, history: result.history, data: data.stats };
    // data paths made absolute, so that `recblocks evaluate <modelDir>` finds the same files from anywhere
    const baseDir = dirname(resolve(recipeFile));
    const savedData: Record<string, unknown> = { ...(recipe.data as unknown as Record<string, unknown>) };
    for (const k of ["train", "valid", "test"]) {
      const v = savedData[k];
      if (typeof v === "string" && !v.startsWith("builtin:")) savedData[k] = resolve(baseDir, v);
    }
    if (opts.data) savedData.train = opts.data.startsWith("builtin:") ? opts.data : resolve(opts.data);
    saveModelDir(modelDir, {
      model: m,
      recipe: { ...(recipe as unknown as Record<string, unknown>), data: savedData, train: { ...(recipe.train ?? {}), ...train } },
      featureSchema: data.featureSchema as never,
      vocabularies: data.vocabularies,
      itemColumn: data.itemColumn,
      maxSequenceLength: data.maxSequenceLength,
      metrics: summary,
      // per-item values of the per-step side features (most frequent category, mean price), for recommending from item ids
      itemFeatures: buildItemFeatureTable(data.train, sideFeaturesOf(m), { itemColumn: data.itemColumn, numItems: m.numItems, vocabularies: data.vocabularies }),
    });
    writeFileAtomic(join(runDir, "summary.json"), JSON.stringify(summary, null, 2) + "\n");
    log(`saved model to ${modelDir}`);
    reportAfterTraining(runDir, log);
    return { kind: "next-item", metrics, baseline, history: result.history, runDir, modelDir, engine };
  } finally {
    m.dispose();
  }
}

/** `recblocks evaluate`: a saved model directory scored on data (its recipe's test split, or --data). */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadRecipeData, type DataConfig } from "../data/load.js";
import { initEngine, type EngineInfo } from "../engine/index.js";
import { loadModelDir, modelDirFormat, NEXT_ITEM_FORMAT } from "../io/model-dir.js";
import type { RankingMetricName } from "../metrics/index.js";
import { evaluationBatches } from "../train/index.js";
import { mostPopularMetrics, registerBuiltinBlocks } from "./train.js";

export interface EvaluateRunOptions {
  /** Data to score instead of the recipe's test (or valid) split: a path or builtin:... */
  data?: string;
  backend?: string;
  threads?: number;
  stream?: { write(s: string): unknown } | null;
}

export interface EvaluateRunResult {
  metrics: Record<string, number>;
  baseline: Record<string, number>;
  /** Where the sessions came from. */
  source: string;
  engine: EngineInfo;
}

export async function evaluateModelDir(dir: string, opts: EvaluateRunOptions = {}): Promise<EvaluateRunResult> {
  const stream = opts.stream === undefined ? process.stderr : opts.stream;
  const log = (m: string) => stream?.write(m + "\n");
  const format = modelDirFormat(dir);
  const engine = await initEngine({ backend: opts.backend as never, threads: opts.threads, quiet: true });
  if (format !== NEXT_ITEM_FORMAT) {
    // ALS: the leave-last-out metrics were computed when it was trained and are stored with it
    const m = JSON.parse(readFileSync(join(dir, "metrics.json"), "utf8")) as Record<string, unknown>;
    const metrics = Object.fromEntries(Object.entries(m).filter(([k, v]) => k.includes("@") && typeof v === "number")) as Record<string, number>;
    log(`${dir}: ${format} model; leave-last-out metrics from training (metrics.json)`);
    return { metrics, baseline: (m.mostPopular ?? {}) as Record<string, number>, source: "metrics.json", engine };
  }
  await registerBuiltinBlocks();
  const c = loadModelDir(dir);
  try {
    const recipe = c.recipe as { data: DataConfig; evaluate?: { protocol?: string; ks?: number[]; metrics?: string[]; batchSize?: number }; __file?: string };
    const cfg: DataConfig = { ...recipe.data };
    if (opts.data) {
      cfg.train = opts.data;
      delete cfg.valid;
      delete cfg.test;
      cfg.split = { type: "none" } as DataConfig["split"];
      cfg.sessions = { ...(cfg.sessions ?? {}), minItemSupport: 1 };
    }
    // the saved recipe holds absolute data paths (trainRecipe resolves them); --data is relative to the current folder
    const data = await loadRecipeData(cfg, c.featureSchema as never, { baseDir: process.cwd(), vocabularies: c.vocabularies, onLog: log });
    const sessions = opts.data ? data.train : (data.test ?? data.valid ?? []);
    const source = opts.data ? opts.data : data.test ? "the recipe's test data" : "the recipe's validation split";
    const ev = recipe.evaluate ?? {};
    const protocol = (ev.protocol ?? "last-item") as "last-item" | "all-prefixes";
    const ks = ev.ks ?? [20];
    const names = (ev.metrics ?? ["ndcg", "recall"]) as RankingMetricName[];
    const metrics = c.model.evaluate(evaluationBatches(sessions, protocol, { batchSize: ev.batchSize ?? 256, maxSequenceLength: c.maxSequenceLength, context: data.features.context }), { ks, metrics: names });
    const baseline = opts.data ? {} : mostPopularMetrics(data.train, sessions, c.model.numItems, protocol, ks, names);
    log(`${source} (${protocol}, ${metrics.examples} examples): ${Object.entries(metrics).filter(([k]) => k.includes("@")).map(([k, v]) => `${k} ${v.toFixed(4)}`).join("  ")}`);
    return { metrics, baseline, source, engine };
  } finally {
    c.model.dispose();
  }
}

/**
 * Incremental time-window training and evaluation, the protocol of the Transformers4Rec paper
 * (`recblocks train-windows`): the sessions of the recipe's data are ordered by their start time (first
 * timestamp) and cut into consecutive windows (calendar days, weeks or N seconds); the model trains on
 * window t — continuing from the weights and the optimizer state (Adam moments, step count) left by
 * window t-1, with the learning-rate schedule restarted as Transformers4Rec's `reset_lr_scheduler` does —
 * and is evaluated on window t+1; repeat. Metrics per window go to `windows.jsonl` (rewritten whole,
 * atomically, after each window) and their unweighted average over the windows (what the paper reports)
 * to `summary.json`; the model after the last training window is saved to `<out>/model`.
 *
 * Reuses trainRecipe's pieces (recipe loading, engine, data loader, Model, optimizer, schedules,
 * batches, evaluation, most-popular baseline, model directory) rather than forking it; the training
 * step is `fit`'s (src/train/loop.ts `TrainStepper`), but the epochs are looped here because `fit` owns
 * (and disposes) its optimizer, while this protocol keeps one optimizer across windows.
 */
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { loadRecipe } from "../recipe/load.js";
import { loadRecipeData, type DataConfig } from "../data/load.js";
import { batches, fullSequenceExamples, numBatches, prefixExamples, type Session } from "../data/batches.js";
import { initEngine, engineLine, type EngineInfo } from "../engine/index.js";
import { RecblocksError } from "../errors/issue.js";
import { Model, type ModelConfig } from "../model/model.js";
import type { RankingMetricName } from "../metrics/index.js";
import { accumulationSteps, evaluationBatches, nonFiniteWeights, TrainStepper, type TrainSettings } from "../train/loop.js";
import { createOptimizer, type Optimizer, type OptimizerConfig } from "../train/optimizers.js";
import { createSchedule, type ScheduleConfig } from "../train/schedules.js";
import { TrainRng } from "../train/rng.js";
import { checkTrainingMemory, estimateTrainingMemory } from "../train/limits.js";
import { saveModelDir } from "../io/model-dir.js";
import { buildItemFeatureTable, sideFeaturesOf } from "../io/item-features.js";
import { writeFileAtomic } from "../io/atomic.js";
import { mostPopularMetrics, registerBuiltinBlocks } from "./train.js";

const DAY = 86400;
const WEEK = 7 * DAY;

/** A window length: calendar days / weeks (UTC, from midnight of the first session's day) or N seconds from the first session's start. */
export interface WindowSpec {
  kind: "day" | "week" | "seconds";
  seconds: number;
}

/** Parses `day`, `week`, `N` / `Ns` (seconds), `Nm`, `Nh`, `Nd`, `Nw`. */
export function parseWindow(spec: string): WindowSpec {
  const s = String(spec).trim().toLowerCase();
  if (s === "day" || s === "daily") return { kind: "day", seconds: DAY };
  if (s === "week" || s === "weekly") return { kind: "week", seconds: WEEK };
  const m = /^(\d+(?:\.\d+)?)\s*(s|sec|seconds?|m|min|h|d|w)?$/.exec(s);
  const unit = { s: 1, sec: 1, second: 1, seconds: 1, m: 60, min: 60, h: 3600, d: DAY, w: WEEK } as Record<string, number>;
  const seconds = m ? Number(m[1]) * unit[m[2] ?? "s"]! : NaN;
  if (!(seconds > 0) || !Number.isFinite(seconds)) {
    throw new RecblocksError("--window", [{ code: "invalid_value", path: "/window", message: `--window must be day, week or a length such as 3600, 3600s, 12h or 2d; got ${JSON.stringify(spec)}.`, received: spec, expected: ["day", "week", "<N>s", "<N>h", "<N>d"] }]);
  }
  return { kind: "seconds", seconds };
}

/** One time window: [start, end) in epoch seconds and the sessions starting in it (indices, by start time). */
export interface TimeWindow {
  /** Number of the span from the origin (0-based); empty spans are skipped, so numbers may jump. */
  index: number;
  start: number;
  end: number;
  sessions: number[];
}

/**
 * Cuts sessions into consecutive windows by their start times. Origin: UTC midnight of the earliest
 * start for day and week windows, the earliest start itself for N-second windows. A session belongs to
 * the window its start falls in ([start, end)); windows without a session are left out.
 */
export function cutWindows(starts: ArrayLike<number>, w: WindowSpec): TimeWindow[] {
  const n = starts.length;
  if (n === 0) return [];
  let min = Infinity;
  for (let i = 0; i < n; i++) if (starts[i]! < min) min = starts[i]!;
  const origin = w.kind === "seconds" ? min : Math.floor(min / DAY) * DAY;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => starts[a]! - starts[b]! || a - b);
  const out: TimeWindow[] = [];
  for (const i of order) {
    const k = Math.floor((starts[i]! - origin) / w.seconds);
    let last = out[out.length - 1];
    if (!last || last.index !== k) {
      last = { index: k, start: origin + k * w.seconds, end: origin + (k + 1) * w.seconds, sessions: [] };
      out.push(last);
    }
    last.sessions.push(i);
  }
  return out;
}

/** Start time of a session (its first timestamp). */
export function sessionStart(s: Session): number {
  return s.timestamps && s.timestamps.length ? s.timestamps[0]! : NaN;
}

/** Unweighted mean over windows of every numeric key (keys missing in some windows are averaged over the windows that have them). */
export function averageMetrics(rows: Record<string, number>[]): Record<string, number> {
  const sum: Record<string, number> = {};
  const cnt: Record<string, number> = {};
  for (const r of rows) {
    for (const [k, v] of Object.entries(r)) {
      if (typeof v !== "number" || !Number.isFinite(v)) continue;
      sum[k] = (sum[k] ?? 0) + v;
      cnt[k] = (cnt[k] ?? 0) + 1;
    }
  }
  return Object.fromEntries(Object.keys(sum).map((k) => [k, sum[k]! / cnt[k]!]));
}

export interface WindowsRunOptions {
  /** day | week | N seconds (see parseWindow). */
  window: string;
  /** Number of train→evaluate steps (train on windows 1..K, evaluate on 2..K+1); default every window but the last. */
  windows?: number;
  /** Overrides data.train (a path or builtin:...). */
  data?: string;
  /** Run directory (windows.jsonl, summary.json, model/); default runs/<recipe name>-windows. */
  out?: string;
  /** Epochs per window (default the recipe's train.epochs, else 1). */
  epochs?: number;
  seed?: number;
  backend?: string;
  threads?: number;
  /** Re-initialise the weights and the optimizer at each window (a comparison; the protocol continues). */
  fromScratch?: boolean;
  /** Stop each epoch after this many batches (tests and quick runs). */
  maxBatchesPerEpoch?: number;
  stream?: { write(s: string): unknown } | null;
}

export interface WindowRecord {
  /** 1-based step: trained on window `step`, evaluated on window `step + 1`. */
  step: number;
  train: { window: number; start: string; end: string; sessions: number };
  eval: { window: number; start: string; end: string; sessions: number };
  /** Loss of the window's first batch (before any update on it), and the mean per epoch. */
  loss: { first: number; epochs: number[] };
  optimizerSteps: number;
  learningRate: number;
  seconds: number;
  /** The model after training on window t, ranked on window t+1 (evaluate.protocol). */
  metrics: Record<string, number>;
  /** Items ranked by their frequency in window t, on window t+1. */
  mostPopular: Record<string, number>;
}

export interface WindowsRunResult {
  windows: WindowRecord[];
  /** Unweighted mean over the windows of each metric (Transformers4Rec's "average over time"). */
  average: Record<string, number>;
  averageMostPopular: Record<string, number>;
  window: WindowSpec;
  runDir: string;
  modelDir: string;
  engine: EngineInfo;
}

const iso = (t: number) => new Date(t * 1000).toISOString();

/** Runs the incremental time-window protocol on a recipe (next-item models). */
export async function trainWindows(recipeFile: string, opts: WindowsRunOptions): Promise<WindowsRunResult> {
  const stream = opts.stream === undefined ? process.stderr : opts.stream;
  const log = (m: string) => stream?.write(m + "\n");
  const wspec = parseWindow(opts.window);
  const { recipe, featureSchema } = loadRecipe(recipeFile);
  const model0 = recipe.model as unknown as Record<string, unknown>;
  if (model0.type === "als") throw new RecblocksError(recipeFile, [{ code: "invalid_value", path: "/model/type", message: "train-windows trains next-item models (blocks); ALS is fitted in one pass, not incrementally.", received: "als" }], { kind: "RecipeError" });
  const train = { ...(recipe.train ?? {}) } as TrainSettings & { backend?: string; threads?: number };
  if (opts.epochs !== undefined) train.epochs = opts.epochs;
  if (opts.seed !== undefined) train.seed = opts.seed;
  if (opts.windows !== undefined && !(Number.isInteger(opts.windows) && opts.windows >= 1)) throw new RecblocksError("--windows", [{ code: "invalid_value", path: "/windows", message: `--windows must be an integer >= 1, got ${opts.windows}.`, received: opts.windows }]);
  const engine = await initEngine({ backend: (opts.backend ?? train.backend) as never, threads: opts.threads ?? train.threads, quiet: true });
  log(engineLine(engine));
  await registerBuiltinBlocks();
  const runDir = resolve(opts.out ?? join("runs", `${recipe.name}-windows`));
  const modelDir = join(runDir, "model");
  mkdirSync(runDir, { recursive: true });

  // all sessions of data.train, unsplit: the windows are the split (vocabularies from all of them, as
  // Transformers4Rec's ETL categorifies the whole data set before cutting it by day)
  const dataCfg = { ...(recipe.data as unknown as DataConfig) };
  if (opts.data) dataCfg.train = opts.data.startsWith("builtin:") ? opts.data : resolve(opts.data);
  const ignored = (["valid", "test"] as const).filter((k) => dataCfg[k]);
  if (dataCfg.split && dataCfg.split.type !== "none") ignored.push("split" as never);
  if (ignored.length) log(`train-windows: data.${ignored.join(", data.")} ignored (the time windows are the split)`);
  delete dataCfg.valid;
  delete dataCfg.test;
  dataCfg.split = { type: "none" };
  const data = await loadRecipeData(dataCfg, featureSchema.toJSON() as never, { baseDir: dirname(resolve(recipeFile)), onLog: log });
  const all = data.train;
  const starts = Float64Array.from(all, sessionStart);
  const missing = starts.findIndex((x) => !Number.isFinite(x));
  if (missing >= 0) {
    throw new RecblocksError(String(dataCfg.train), [{ code: "data_bad_config", path: "/data/columns/timestamp", message: `Session "${all[missing]!.id}" has no timestamp: time windows need one per interaction.`, hint: "Set data.columns.timestamp or tag a column `timestamp` in the feature schema." }], { kind: "DataError" });
  }
  const cut = cutWindows(starts, wspec);
  if (cut.length < 2) throw new RecblocksError(String(dataCfg.train), [{ code: "data_no_sessions", path: "/window", message: `The sessions fill ${cut.length} ${wspec.kind === "seconds" ? `${wspec.seconds}-second` : wspec.kind} window(s); the protocol needs at least 2 (train on one, evaluate on the next).`, hint: "Use a shorter --window." }], { kind: "DataError" });
  const nSteps = Math.min(cut.length - 1, opts.windows ?? Infinity);
  if (opts.windows !== undefined && opts.windows > cut.length - 1) log(`train-windows: --windows ${opts.windows} asked, the data has ${cut.length} windows: ${nSteps} step(s)`);
  log(`windows (${wspec.kind === "seconds" ? `${wspec.seconds} s` : wspec.kind}): ${cut.length} non-empty, ${nSteps} train→evaluate step(s); sessions per window: ${cut.slice(0, nSteps + 1).map((w) => w.sessions.length).join(", ")}`);

  const unused = (["earlyStopping", "validEvery", "checkpointEvery"] as const).filter((k) => train[k] !== undefined);
  if (unused.length) log(`train-windows: train.${unused.join(", train.")} not used (each window trains for train.epochs epochs; window t+1 is the evaluation)`);
  const seed = train.seed ?? 42;
  const epochs = train.epochs ?? 1;
  const batchSize = train.batchSize ?? 128;
  const ev = recipe.evaluate ?? {};
  const ks = (ev.ks ?? [20]) as number[];
  const metricNames = (ev.metrics ?? ["ndcg", "recall"]) as RankingMetricName[];
  const protocol = (ev.protocol ?? "last-item") as "last-item" | "all-prefixes";
  const L = data.maxSequenceLength;
  const context = data.features.context;
  const ocfg = { type: "adam", ...(train.optimizer ?? {}) } as OptimizerConfig;
  const baseLr = ocfg.learningRate ?? 0.001;
  const schedCfg = train.schedule && ((train.schedule.type && train.schedule.type !== "constant") || (train.schedule.warmupSteps ?? 0) > 0 || train.schedule.warmupRatio !== undefined) ? ({ type: "constant", ...train.schedule } as ScheduleConfig) : undefined;

  const newModel = () => {
    const m = Model.fromConfig(recipe.model as unknown as ModelConfig, data.featureSchema as never);
    try {
      checkTrainingMemory(estimateTrainingMemory(m, data.featureSchema as never, train as never, L));
      m.build({ seed });
    } catch (e) {
      m.dispose();
      throw e;
    }
    return m;
  };
  let m = newModel();
  let optimizer: Optimizer = createOptimizer(ocfg);
  const rng = new TrainRng(seed + 1);
  const records: WindowRecord[] = [];
  log(`model: ${m.countParams().toLocaleString("en-US")} parameters, ${m.numItems.toLocaleString("en-US")} item ids; ${epochs} epoch(s) per window`);
  try {
    for (let t = 0; t < nSteps; t++) {
      const tw = cut[t]!;
      const ew = cut[t + 1]!;
      if (opts.fromScratch && t > 0) {
        m.dispose();
        optimizer.dispose();
        m = newModel();
        optimizer = createOptimizer(ocfg);
      }
      const trainSessions = tw.sessions.map((i) => all[i]!);
      const evalSessions = ew.sessions.map((i) => all[i]!);
      const t0 = performance.now();
      const { firstLoss, epochLosses } = await trainOneWindow(m, optimizer, rng, trainSessions, {
        train, epochs, batchSize, L, context, seed: seed * 1000 + (t + 1) * 100, schedCfg, baseLr, maxBatchesPerEpoch: opts.maxBatchesPerEpoch,
        onEpoch: (e, loss, sec) => log(`window ${t + 1}/${nSteps} epoch ${e}/${epochs}: loss ${loss.toFixed(4)} (${sec.toFixed(1)} s)`),
      });
      const metrics = evalSessions.length
        ? m.evaluate(evaluationBatches(evalSessions, protocol, { batchSize: ev.batchSize ?? 256, maxSequenceLength: L, context }), { ks, metrics: metricNames })
        : {};
      const mostPopular = mostPopularMetrics(trainSessions, evalSessions, m.numItems, protocol, ks, metricNames);
      const rec: WindowRecord = {
        step: t + 1,
        train: { window: tw.index, start: iso(tw.start), end: iso(tw.end), sessions: tw.sessions.length },
        eval: { window: ew.index, start: iso(ew.start), end: iso(ew.end), sessions: ew.sessions.length },
        loss: { first: firstLoss, epochs: epochLosses },
        optimizerSteps: optimizer.iterations,
        learningRate: optimizer.learningRate(Math.max(0, optimizer.iterations - 1)),
        seconds: (performance.now() - t0) / 1000,
        metrics,
        mostPopular,
      };
      records.push(rec);
      writeFileAtomic(join(runDir, "windows.jsonl"), records.map((r) => JSON.stringify(r) + "\n").join(""));
      const fmt = (r: Record<string, number>) => Object.entries(r).filter(([k]) => k.includes("@")).map(([k, v]) => `${k} ${v.toFixed(4)}`).join("  ");
      log(`window ${t + 1}/${nSteps}: trained on ${rec.train.start.slice(0, 16)}..${rec.train.end.slice(0, 16)} (${rec.train.sessions} sessions), evaluated on ${rec.eval.start.slice(0, 16)}.. (${rec.eval.sessions} sessions, ${metrics.examples ?? 0} examples): ${fmt(metrics)}  | most popular: ${fmt(mostPopular)}`);
    }
    const average = averageMetrics(records.map((r) => r.metrics));
    const averageMostPopular = averageMetrics(records.map((r) => r.mostPopular));
    delete average.examples;
    delete averageMostPopular.examples;
    const fmt = (r: Record<string, number>) => Object.entries(r).filter(([k]) => k.includes("@")).map(([k, v]) => `${k} ${v.toFixed(4)}`).join("  ");
    log(`average over ${records.length} window(s): ${fmt(average)}`);
    log(`most popular, average:        ${fmt(averageMostPopular)}`);
    const summary = { recipe: recipe.name, protocol: "time-windows", window: { ...wspec, spec: opts.window }, engine: engine.backend, epochsPerWindow: epochs, fromScratch: opts.fromScratch === true, windows: records, average, averageMostPopular, data: data.stats };
    const savedData: Record<string, unknown> = { ...(recipe.data as unknown as Record<string, unknown>), split: { type: "none" } };
    delete savedData.valid;
    delete savedData.test;
    const baseDir = dirname(resolve(recipeFile));
    if (typeof savedData.train === "string" && !savedData.train.startsWith("builtin:")) savedData.train = resolve(baseDir, savedData.train);
    if (opts.data) savedData.train = dataCfg.train;
    saveModelDir(modelDir, {
      model: m,
      recipe: { ...(recipe as unknown as Record<string, unknown>), data: savedData, train: { ...(recipe.train ?? {}), ...train } },
      featureSchema: data.featureSchema as never,
      vocabularies: data.vocabularies,
      itemColumn: data.itemColumn,
      maxSequenceLength: L,
      metrics: summary,
      // per-item side-feature values over the sessions the model trained on (windows 1..nSteps), as train's
      itemFeatures: buildItemFeatureTable(cut.slice(0, nSteps).flatMap((w) => w.sessions.map((i) => all[i]!)), sideFeaturesOf(m), { itemColumn: data.itemColumn, numItems: m.numItems, vocabularies: data.vocabularies }),
    });
    writeFileAtomic(join(runDir, "summary.json"), JSON.stringify(summary, null, 2) + "\n");
    log(`wrote ${join(runDir, "windows.jsonl")}; saved the model after window ${records.length} to ${modelDir}`);
    return { windows: records, average, averageMostPopular, window: wspec, runDir, modelDir, engine };
  } finally {
    optimizer.dispose();
    m.dispose();
  }
}

interface WindowTrainSettings {
  train: TrainSettings;
  epochs: number;
  batchSize: number;
  L: number;
  context: Record<string, "categorical" | "continuous">;
  seed: number;
  schedCfg?: ScheduleConfig;
  baseLr: number;
  maxBatchesPerEpoch?: number;
  onEpoch?: (epoch: number, loss: number, seconds: number) => void;
}

/**
 * Trains the model on one window's sessions with an optimizer that lives across windows: the training
 * step of `fit` (masking -> loss -> gradients -> clipping -> update, NaN/Inf guard), the schedule
 * restarted over this window's steps. Returns the first batch's loss and the mean loss per epoch.
 */
export async function trainOneWindow(model: Model, optimizer: Optimizer, rng: TrainRng, sessions: Session[], o: WindowTrainSettings): Promise<{ firstLoss: number; epochLosses: number[] }> {
  const t = o.train;
  const kind = (t.examples ?? "auto") === "auto" ? (model.pooled ? "prefixes" : "sequences") : t.examples!;
  const ex = kind === "prefixes" ? prefixExamples(sessions) : fullSequenceExamples(sessions, 2);
  const epochLosses: number[] = [];
  let firstLoss = NaN;
  if (ex.session.length === 0) return { firstLoss, epochLosses };
  const perEpoch = Math.min(numBatches(ex, { batchSize: o.batchSize }), o.maxBatchesPerEpoch ?? Infinity);
  // gradient accumulation as fit's: one update per `accumulate` batches with labels, and one for what is left at an epoch's end
  const accumulate = accumulationSteps(t);
  const base = optimizer.iterations;
  if (o.schedCfg) {
    const sched = createSchedule(o.schedCfg, { learningRate: o.baseLr, totalSteps: Math.ceil(perEpoch / accumulate) * o.epochs });
    optimizer.setSchedule((step) => sched(step - base));
  }
  const vars = model.trainableVariables();
  const stepper = new TrainStepper(model, optimizer, { vars, clip: t.clip, accumulate });
  try {
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const t0 = performance.now();
      let lossSum = 0;
      let lossN = 0;
      let b = 0;
      for (const batch of batches(ex, { batchSize: o.batchSize, maxSequenceLength: o.L, shuffle: true, seed: o.seed + epoch, context: o.context })) {
        if (b >= perEpoch) break;
        b++;
        const { result: step } = stepper.step(batch, rng, (loss) => ({ code: "non_finite_loss", path: "/train", message: `The loss became ${loss} at epoch ${epoch}, step ${b} of a time window; training stopped and nothing is saved.`, received: String(loss), hint: "Lower train.optimizer.learningRate or set train.clip.globalNorm (e.g. 1)." }), b >= perEpoch);
        if (step) {
          if (Number.isNaN(firstLoss)) firstLoss = step.loss;
          lossSum += step.loss * step.numLabels;
          lossN += step.numLabels;
        }
        if (b % 20 === 0) await new Promise((r) => setImmediate(r));
      }
      stepper.flush();
      const bad = nonFiniteWeights(vars);
      if (bad) throw new RecblocksError("training", [{ code: "non_finite_weights", path: "/train", message: `Weight "${bad}" holds NaN or Infinity after epoch ${epoch} of a time window; training stopped and nothing is saved.`, hint: "Lower train.optimizer.learningRate or set train.clip.globalNorm (e.g. 1)." }]);
      const mean = lossN ? lossSum / lossN : NaN;
      epochLosses.push(mean);
      o.onEpoch?.(epoch, mean, (performance.now() - t0) / 1000);
    }
  } finally {
    stepper.dispose();
  }
  return { firstLoss, epochLosses };
}

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { RecblocksError, type Issue } from "../errors/issue.js";
import { writeFileAtomic } from "../io/atomic.js";
import { batches, fullSequenceExamples, lastItemExamples, numBatches, prefixExamples, type Session } from "../data/index.js";
import type { RankingMetricName } from "../metrics/index.js";
import type { RandomSource, SequenceBatchLike } from "../core/index.js";
import type { Model } from "../model/index.js";
import { GradientAccumulator } from "./accumulation.js";
import { clipByGlobalNorm, clipByNorm, disposeGradients } from "./clipping.js";
import { disposeCheckpoint, fingerprintOf, loadCheckpoint, saveCheckpoint, type TrainingPosition } from "./checkpoint.js";
import { EarlyStopping } from "./early-stopping.js";
import { createOptimizer, type GradientMap, type NamedTensor, type Optimizer, type OptimizerConfig } from "./optimizers.js";
import { ProgressReporter, type ProgressOptions } from "./progress.js";
import { TrainRng } from "./rng.js";
import { createSchedule, type ScheduleConfig } from "./schedules.js";

/** The recipe's `train` section (schemas/recipe.schema.json TrainConfig). */
export interface TrainSettings {
  epochs?: number;
  batchSize?: number;
  optimizer?: Partial<OptimizerConfig>;
  schedule?: Partial<ScheduleConfig>;
  clip?: { globalNorm?: number; perTensor?: number };
  seed?: number;
  /** What one training row is (recipe train.examples): auto = prefixes for pooled models, sequences otherwise. */
  examples?: "auto" | "sequences" | "prefixes";
  earlyStopping?: { metric: string; patience?: number; mode?: "min" | "max" };
  validEvery?: number;
  /**
   * Sum the gradients of this many consecutive batches (their mean: each scaled 1/N) before one optimizer
   * update (Hugging Face gradient_accumulation_steps); steps, the schedule and checkpointEvery.steps count updates.
   */
  gradientAccumulationSteps?: number;
  /** Checkpoint every N epochs (a number), or `{epochs, steps}`; 0 = never. Default: every epoch when FitOptions.checkpoint is set. */
  checkpointEvery?: number | { epochs?: number; steps?: number };
}

/** The recipe's `evaluate` section. */
export interface EvaluateSettings {
  protocol?: "last-item" | "all-prefixes";
  metrics?: RankingMetricName[];
  ks?: number[];
  batchSize?: number;
}

export interface SessionData {
  train: Session[];
  valid?: Session[];
  maxSequenceLength: number;
  /** Context features to carry in batches, with their kind (RecipeData.features.context). */
  context?: Record<string, "categorical" | "continuous">;
}

export interface FitOptions {
  train?: TrainSettings;
  evaluate?: EvaluateSettings;
  /** metrics.jsonl is appended here, one line per epoch. */
  runDir?: string;
  progress?: ProgressOptions;
  log?: (msg: string) => void;
  /** Stop each epoch after this many batches (benchmarks and quick runs; not a recipe key). */
  maxBatchesPerEpoch?: number;
  /**
   * Checkpoints (src/train/checkpoint.ts) in `dir`, every `train.checkpointEvery`; with `resume`, training
   * continues from the checkpoint found there (if any). `fingerprint`: extra things (e.g. the data config)
   * that must be the same for a checkpoint to be resumed.
   */
  checkpoint?: { dir: string; resume?: boolean; fingerprint?: unknown };
}

export interface EpochRecord {
  epoch: number;
  loss: number;
  learningRate: number;
  seconds: number;
  examplesPerSecond: number;
  /** Labels (predicted positions) trained on in the epoch, and per second. */
  labels?: number;
  labelsPerSecond?: number;
  valid?: Record<string, number>;
}

export interface FitResult {
  history: EpochRecord[];
  epochs: number;
  stoppedEarly: boolean;
  bestEpoch?: number;
  steps: number;
  /** The epoch and step training resumed from (when it did). */
  resumedFrom?: { epoch: number; stepInEpoch: number; steps: number };
}

/** Evaluation batches of a protocol: last-item (each session's last item from the ones before) or all prefixes. */
export function evaluationBatches(sessions: Session[], protocol: "last-item" | "all-prefixes", o: { batchSize: number; maxSequenceLength: number; context?: Record<string, "categorical" | "continuous"> }) {
  const ex = protocol === "all-prefixes" ? prefixExamples(sessions) : lastItemExamples(sessions);
  return batches(ex, { batchSize: o.batchSize, maxSequenceLength: o.maxSequenceLength, context: o.context });
}

/** What one training step trained on: its loss (mean over its labels) and how many labels (predicted positions) it had. */
export interface TrainStepResult {
  loss: number;
  numLabels: number;
}

/** One micro-batch's loss, label count and gradients (variable name -> dense gradient, the caller's to dispose). */
interface BatchGradients extends TrainStepResult {
  grads: Record<string, tf.Tensor>;
}

/**
 * The forward and backward pass of one batch: masking and loss (model.trainBatch) and the gradients of
 * `vars`. The loss is the only number read back; a non-finite loss throws a RecblocksError ("training")
 * with the issue `nonFinite(loss)` and disposes the gradients. Undefined when the batch had no label.
 */
function batchGradients(model: Model, batch: SequenceBatchLike, rng: RandomSource, vars: tf.Variable[], nonFinite: (loss: number) => Issue): BatchGradients | undefined {
  const tb = model.trainBatch(batch, rng);
  if (!tb) return undefined;
  const { value, grads } = tf.variableGrads(tb.loss, vars);
  const loss = (value.dataSync() as Float32Array)[0]!;
  value.dispose();
  if (!Number.isFinite(loss)) {
    disposeGradients(grads);
    throw new RecblocksError("training", [nonFinite(loss)]);
  }
  return { loss, numLabels: tb.numLabels, grads };
}

/** Clipping (per tensor, then by global norm) and the optimizer update; every gradient is disposed. */
function applyUpdate(optimizer: Optimizer, grads: GradientMap, clip?: TrainSettings["clip"]): void {
  let g: GradientMap = grads;
  const extra: GradientMap[] = [];
  if (clip?.perTensor) {
    g = clipByNorm(g, clip.perTensor);
    extra.push(g);
  }
  if (clip?.globalNorm) {
    const r = clipByGlobalNorm(g, clip.globalNorm);
    r.globalNorm.dispose();
    g = r.grads;
    extra.push(g);
  }
  try {
    optimizer.applyGradients(g);
  } finally {
    disposeGradients(grads);
    for (const e of extra) disposeGradients(e);
  }
}

/** train.gradientAccumulationSteps (default 1), checked: an integer >= 1. */
export function accumulationSteps(t: TrainSettings): number {
  const n = t.gradientAccumulationSteps ?? 1;
  if (!Number.isInteger(n) || n < 1) {
    throw new RecblocksError("training", [{ code: "invalid_value", path: "/train/gradientAccumulationSteps", message: `train.gradientAccumulationSteps must be an integer >= 1, got ${n}.`, received: n }]);
  }
  return n;
}

/**
 * Training steps as `fit` and time-window training (src/run/windows.ts) take them: each batch's masking,
 * loss and gradients (`batchGradients`) go into a GradientAccumulator, and an optimizer update (clipping,
 * `applyUpdate`) is made once `accumulate` batches with labels are in, or at an epoch's last batch.
 * A non-finite loss throws before any update. `dispose()` frees gradients not yet applied.
 */
export class TrainStepper {
  private readonly acc = new GradientAccumulator();

  constructor(
    private readonly model: Model,
    private readonly optimizer: Optimizer,
    private readonly o: { vars: tf.Variable[]; clip?: TrainSettings["clip"]; accumulate: number },
  ) {}

  /**
   * Trains on one batch: its loss and label count (undefined when it had no label), and whether an
   * optimizer update was made after it (`last`: the epoch's last batch, which always flushes).
   */
  step(batch: SequenceBatchLike, rng: RandomSource, nonFinite: (loss: number) => Issue, last: boolean): { result?: TrainStepResult; updated: boolean } {
    const mb = batchGradients(this.model, batch, rng, this.o.vars, nonFinite);
    if (mb) this.acc.add(mb.grads);
    const result = mb ? { loss: mb.loss, numLabels: mb.numLabels } : undefined;
    return { ...(result ? { result } : {}), updated: this.acc.count > 0 && (this.acc.count >= this.o.accumulate || last) ? this.flush() : false };
  }

  /** Applies what is accumulated (an epoch cut short); true when an update was made. */
  flush(): boolean {
    if (this.acc.count === 0) return false;
    applyUpdate(this.optimizer, this.acc.take(), this.o.clip);
    return true;
  }

  dispose(): void {
    this.acc.dispose();
  }
}

/**
 * Trains a built model: shuffled full sequences (masking makes the labels), the optimizer with its
 * schedule, gradient clipping, evaluation on the validation sessions every `validEvery` epochs,
 * early stopping, one metrics.jsonl line per epoch. A NaN/Inf loss stops with `non_finite_loss`
 * naming the epoch and step. The loss is the only number read back per step.
 */
export async function fit(model: Model, data: SessionData, opts: FitOptions = {}): Promise<FitResult> {
  const t = opts.train ?? {};
  const ev = opts.evaluate ?? {};
  const epochs = t.epochs ?? 10;
  const batchSize = t.batchSize ?? 128;
  const seed = t.seed ?? 42;
  const log = opts.log ?? (() => {});
  const L = data.maxSequenceLength;
  const exampleKind = (t.examples ?? "auto") === "auto" ? (model.pooled ? "prefixes" : "sequences") : t.examples!;
  if (exampleKind === "sequences" && model.pooled) {
    throw new RecblocksError("training", [{ code: "incompatible_examples", path: "/train/examples", message: "This model encodes each session into one vector and predicts one next item per row; it cannot train on whole sequences.", hint: "Set train.examples: prefixes (or auto)." }]);
  }
  const badInput = nonFiniteInput(data);
  if (badInput) throw new RecblocksError("training data", [badInput]);
  const trainEx = exampleKind === "prefixes" ? prefixExamples(data.train) : fullSequenceExamples(data.train, 2);
  if (trainEx.session.length === 0) throw new RecblocksError("training data", [{ code: "data_no_sessions", path: "/data/train", message: "No training session has 2 or more items." }]);
  const perEpoch = Math.min(numBatches(trainEx, { batchSize }), opts.maxBatchesPerEpoch ?? Infinity);
  // optimizer updates: one per `accumulate` batches, and one for a shorter group at the end of an epoch
  const accumulate = accumulationSteps(t);
  const totalSteps = Math.ceil(perEpoch / accumulate) * epochs;
  const ocfg = { type: "adam", ...(t.optimizer ?? {}) } as OptimizerConfig;
  const baseLr = ocfg.learningRate ?? 0.001;
  const sched = t.schedule && t.schedule.type && t.schedule.type !== "constant" || (t.schedule?.warmupSteps ?? 0) > 0
    ? createSchedule({ type: "constant", ...t.schedule } as ScheduleConfig, { learningRate: baseLr, totalSteps })
    : undefined;
  const optimizer = createOptimizer(ocfg, sched ? { schedule: sched } : {});
  const early = t.earlyStopping && data.valid?.length ? new EarlyStopping({ ...t.earlyStopping }, "/train/earlyStopping") : undefined;
  const rng = new TrainRng(seed + 1);
  const progress = new ProgressReporter({ epochs, ...(opts.progress ?? {}) });
  const ks = ev.ks ?? [20];
  const protocol = ev.protocol ?? "last-item";
  const history: EpochRecord[] = [];
  let steps = 0;
  let stoppedEarly = false;
  const vars = model.trainableVariables();
  const stepper = new TrainStepper(model, optimizer, { vars, clip: t.clip, accumulate });
  if (opts.runDir) mkdirSync(opts.runDir, { recursive: true });
  // checkpoints: names are the model's variable names (engine names differ between processes)
  const ck = opts.checkpoint;
  const every = t.checkpointEvery;
  const ckEpochs = typeof every === "number" ? every : (every?.epochs ?? 1);
  const ckSteps = typeof every === "object" ? (every.steps ?? 0) : 0;
  const named = model.namedVariables();
  const modelName = new Map<string, string>([...named].map(([k, v]) => [v.name, k]));
  const { epochs: _e, checkpointEvery: _c, ...sameTrain } = t as TrainSettings & { backend?: unknown; threads?: unknown };
  delete (sameTrain as { backend?: unknown }).backend;
  delete (sameTrain as { threads?: unknown }).threads;
  const fingerprint = fingerprintOf({ model: model.toRecipe(), train: sameTrain, examples: trainEx.session.length, valid: data.valid?.length ?? 0, L, extra: ck?.fingerprint ?? null, maxBatchesPerEpoch: opts.maxBatchesPerEpoch ?? null });
  let start: TrainingPosition | undefined;
  let resumedFrom: FitResult["resumedFrom"];
  if (ck?.resume) {
    const c = loadCheckpoint(ck.dir, fingerprint);
    if (!c) log(`resume: no checkpoint in ${ck.dir}; starting from the beginning`);
    else {
      try {
        restoreCheckpoint(c, named, optimizer, early, ck.dir);
      } finally {
        disposeCheckpoint(c);
      }
      start = c.meta;
      rng.state = start.rngState;
      steps = start.steps;
      stoppedEarly = start.stoppedEarly;
      history.push(...(start.history as EpochRecord[]));
      resumedFrom = { epoch: start.epoch, stepInEpoch: start.stepInEpoch, steps: start.steps };
      log(`resume: from ${ck.dir}, ${start.epoch} epoch(s) and ${start.stepInEpoch} step(s) done (global step ${start.steps})`);
    }
  }
  const writeCheckpoint = (position: TrainingPosition) => {
    if (!ck) return;
    // the live slots (no device copies); the step count is position.steps
    const renamed: NamedTensor[] = optimizer.slotTensors().map((n) => {
      const cut = n.name.lastIndexOf("/");
      return { name: `${modelName.get(n.name.slice(0, cut)) ?? n.name.slice(0, cut)}/${n.name.slice(cut + 1)}`, tensor: n.tensor };
    });
    saveCheckpoint(ck.dir, { fingerprint, position, weights: named, optimizer: renamed, best: early?.snapshotTensors() });
  };
  const firstEpoch = start ? start.epoch + 1 : 1;
  try {
    for (let epoch = firstEpoch; epoch <= epochs && !stoppedEarly; epoch++) {
      const resumeHere = start && start.stepInEpoch > 0 && epoch === start.epoch + 1 ? start : undefined;
      const t0 = performance.now() - (resumeHere?.partial?.seconds ?? 0) * 1000;
      progress.startEpoch(epoch, perEpoch);
      let lossSum = resumeHere?.partial?.lossSum ?? 0;
      let lossN = resumeHere?.partial?.lossN ?? 0;
      let examples = resumeHere?.partial?.examples ?? 0;
      let b = 0;
      for (const batch of batches(trainEx, { batchSize, maxSequenceLength: L, shuffle: true, seed: seed * 1000 + epoch, context: data.context })) {
        if (b >= perEpoch) break;
        b++;
        if (resumeHere && b <= resumeHere.stepInEpoch) continue; // done before the checkpoint
        const { result: mb, updated } = stepper.step(batch, rng, (loss) => nonFiniteLoss(loss, epoch, b, steps + 1, optimizer.learningRate(steps), ocfg.type, t.clip), b >= perEpoch);
        if (mb) {
          lossSum += mb.loss * mb.numLabels;
          lossN += mb.numLabels;
          examples += batch.batchSize;
          progress.update(b, { loss: mb.loss, examples: batch.batchSize });
        }
        if (updated) {
          steps++;
          if (ckSteps > 0 && ck && steps % ckSteps === 0 && b < perEpoch) {
            const badW = nonFiniteWeights(vars);
            if (badW) throw new RecblocksError("training", [{ ...nonFiniteLoss(NaN, epoch, b, steps, optimizer.learningRate(Math.max(0, steps - 1)), ocfg.type, t.clip), code: "non_finite_weights", message: `Weight "${badW}" holds NaN or Infinity at epoch ${epoch}, step ${b} (global step ${steps}); training stopped and nothing is saved.` }]);
            writeCheckpoint({ epoch: epoch - 1, stepInEpoch: b, steps, rngState: rng.state, partial: { lossSum, lossN, examples, seconds: (performance.now() - t0) / 1000 }, history, stoppedEarly: false, early: early?.getState() });
          }
        }
        if (b % 20 === 0) await new Promise((r) => setImmediate(r));
      }
      if (stepper.flush()) steps++;
      // weights can turn non-finite on the last update of an epoch (its loss was still finite): one read-back per epoch
      const bad = nonFiniteWeights(vars);
      if (bad) throw new RecblocksError("training", [{ ...nonFiniteLoss(NaN, epoch, b, steps, optimizer.learningRate(Math.max(0, steps - 1)), ocfg.type, t.clip), code: "non_finite_weights", message: `Weight "${bad}" holds NaN or Infinity after epoch ${epoch} (global step ${steps}); training stopped and nothing is saved.` }]);
      const seconds = (performance.now() - t0) / 1000;
      const rec: EpochRecord = {
        epoch,
        loss: lossN ? lossSum / lossN : NaN,
        learningRate: optimizer.learningRate(Math.max(0, steps - 1)),
        seconds,
        examplesPerSecond: examples / Math.max(seconds, 1e-9),
        labels: lossN,
        labelsPerSecond: lossN / Math.max(seconds, 1e-9),
      };
      if (data.valid?.length && (epoch % (t.validEvery ?? 1) === 0 || epoch === epochs)) {
        rec.valid = model.evaluate(evaluationBatches(data.valid, protocol, { batchSize: ev.batchSize ?? 256, maxSequenceLength: L, context: data.context }), {
          ks,
          metrics: ev.metrics,
        });
      }
      history.push(rec);
      progress.endEpoch({ ...(rec.valid ? Object.fromEntries(Object.entries(rec.valid).filter(([k]) => k.includes("@")).map(([k, v]) => [`valid ${k}`, v])) : {}) });
      // metrics.jsonl is rewritten whole (atomically) each epoch: a crash never leaves half a line
      if (opts.runDir) writeFileAtomic(join(opts.runDir, "metrics.jsonl"), history.map((r) => JSON.stringify(r) + "\n").join(""));
      if (early && rec.valid) {
        const st = early.update(epoch, rec.valid, vars);
        if (st.stop) {
          stoppedEarly = true;
          log(`early stopping: ${early.config.metric} has not improved for ${st.wait} epoch(s); best ${st.best.toFixed(4)} at epoch ${st.bestEpoch}`);
        }
      }
      if (ck && ckEpochs > 0 && (epoch % ckEpochs === 0 || epoch === epochs || stoppedEarly)) {
        writeCheckpoint({ epoch, stepInEpoch: 0, steps, rngState: rng.state, history, stoppedEarly, early: early?.getState() });
      }
    }
    if (early?.hasSnapshot) early.restoreBestWeights(vars);
  } finally {
    progress.close();
    optimizer.dispose();
    stepper.dispose();
    early?.dispose();
  }
  return { history, epochs: history.length, stoppedEarly, bestEpoch: early?.bestEpoch, steps, ...(resumedFrom ? { resumedFrom } : {}) };
}

/** Puts a checkpoint's weights, optimizer state and early-stopping state into the running objects. */
function restoreCheckpoint(c: NonNullable<ReturnType<typeof loadCheckpoint>>, named: Map<string, tf.Variable>, optimizer: ReturnType<typeof createOptimizer>, early: EarlyStopping | undefined, dir: string): void {
  const issues: Issue[] = [];
  for (const [name, v] of named) {
    const w = c.weights.get(name);
    if (!w) issues.push({ code: "checkpoint_mismatch", path: `/weights/${name}`, message: `The checkpoint has no weight "${name}".` });
    else if (w.shape.join(",") !== v.shape.join(",")) issues.push({ code: "checkpoint_mismatch", path: `/weights/${name}`, message: `Weight "${name}" has shape [${w.shape}] in the checkpoint but [${v.shape}] in the model.` });
  }
  if (issues.length) throw new RecblocksError(dir, issues, { kind: "CheckpointError" });
  for (const [name, v] of named) v.assign(c.weights.get(name)!);
  const state: NamedTensor[] = [];
  for (const [name, tensor] of c.optimizer) {
    const cut = name.lastIndexOf("/");
    const v = named.get(name.slice(0, cut));
    state.push({ name: v ? `${v.name}/${name.slice(cut + 1)}` : name, tensor });
  }
  const it = tf.scalar(c.meta.steps, "int32");
  try {
    optimizer.setState([...state, { name: "iterations", tensor: it }]);
  } finally {
    it.dispose();
  }
  if (early && c.meta.early) {
    let snap: Map<string, tf.Tensor> | undefined;
    if (c.best) {
      snap = new Map();
      for (const [name, t] of c.best) {
        const v = named.get(name);
        if (v) snap.set(v.name, t);
      }
    }
    early.setState(c.meta.early, snap);
  }
}

/** The issue for a NaN/Inf loss, with the likely cause. */
function nonFiniteLoss(loss: number, epoch: number, step: number, globalStep: number, lr: number, optimizer: string, clip?: { globalNorm?: number; perTensor?: number }): Issue {
  const high = optimizer === "sgd" || optimizer === "adagrad" ? lr > 1 : lr > 0.1;
  const cause = high
    ? `The learning rate (${lr} with ${optimizer}) is very high: the weights diverged.`
    : `Likely causes: a learning rate too high for this model (${lr} with ${optimizer})${clip?.globalNorm || clip?.perTensor ? "" : " without gradient clipping"}, or an extreme input value.`;
  return {
    code: "non_finite_loss",
    path: high ? "/train/optimizer/learningRate" : "/train",
    message: `The loss became ${loss} at epoch ${epoch}, step ${step} (global step ${globalStep}); training stopped and nothing is saved. ${cause}`,
    received: String(loss),
    hint: "Lower train.optimizer.learningRate, set train.clip.globalNorm (e.g. 1), or check the data for extreme continuous values. The previous model directory and checkpoint are kept.",
  };
}

/** The name of the first variable holding NaN/Inf, or undefined. One scalar read back for all of them. */
export function nonFiniteWeights(vars: tf.Variable[]): string | undefined {
  if (vars.length === 0) return undefined;
  // 0 * x is 0 for finite x and NaN for NaN/Inf: the sum is finite iff every weight is
  const total = tf.tidy(() => tf.addN(vars.map((v) => tf.sum(tf.mul(v, 0)))).dataSync()[0]!);
  if (Number.isFinite(total)) return undefined;
  for (const v of vars) {
    const x = tf.tidy(() => tf.sum(tf.mul(v, 0)).dataSync()[0]!);
    if (!Number.isFinite(x)) return v.name;
  }
  return vars[0]!.name;
}

/** A NaN/Inf continuous or context value in the training sessions (the readers reject most; this is the last guard). */
function nonFiniteInput(data: SessionData): Issue | undefined {
  for (const [which, sessions] of [["train", data.train], ["valid", data.valid ?? []]] as const) {
    for (let s = 0; s < sessions.length; s++) {
      const sess = sessions[s]!;
      for (const [name, arr] of Object.entries(sess.continuous ?? {})) {
        for (let i = 0; i < arr.length; i++) {
          if (!Number.isFinite(arr[i]!)) {
            return {
              code: "non_finite_input",
              path: `/data/${which}`,
              message: `Session "${sess.id}" (number ${s + 1} of the ${which} sessions) has ${arr[i]} in continuous feature "${name}" at step ${i + 1}; training on it would make the loss NaN.`,
              received: String(arr[i]),
              hint: "Fix or drop the row in the data (values beyond ±3.4e38 overflow float32 to Infinity).",
            };
          }
        }
      }
      for (const [name, v] of Object.entries(sess.context ?? {})) {
        if (typeof v === "number" && !Number.isFinite(v)) {
          return {
            code: "non_finite_input",
            path: `/data/${which}`,
            message: `Session "${sess.id}" (number ${s + 1} of the ${which} sessions) has ${v} in context feature "${name}"; training on it would make the loss NaN.`,
            received: String(v),
            hint: "Fix or drop the row in the data.",
          };
        }
      }
    }
  }
  return undefined;
}

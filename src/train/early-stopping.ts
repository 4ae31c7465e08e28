import * as tf from "@tensorflow/tfjs";
import { RecblocksError } from "../errors/issue.js";

export interface EarlyStoppingConfig {
  /** Metric key to watch, as in the epoch's metrics (e.g. "ndcg@20", "loss"). */
  metric: string;
  /** Stop after this many epochs in a row without improvement (0: at the first one). Default 3. */
  patience?: number;
  /** "max" for quality metrics, "min" for losses. Default: "min" if the name contains "loss", else "max". */
  mode?: "min" | "max";
  /** An improvement must beat the best by more than this. Default 0. */
  minDelta?: number;
  /** Keep a copy of the weights of the best epoch and put them back at the end. Default true. */
  restoreBest?: boolean;
}

export interface EarlyStoppingStep {
  improved: boolean;
  stop: boolean;
  best: number;
  bestEpoch: number;
  /** Epochs since the last improvement. */
  wait: number;
}

/** Early stopping counters as saved in a training checkpoint. */
export interface EarlyStoppingState {
  best: number | null;
  bestEpoch: number;
  wait: number;
  stopped: boolean;
}

/**
 * Early stopping on a chosen metric. Call `update(epoch, metrics, variables)` after each evaluation;
 * it says whether the metric improved and whether to stop. With `restoreBest`, the variables' values
 * at the best epoch are kept (cheap clones) and `restoreBestWeights(variables)` writes them back.
 * A NaN metric never counts as an improvement.
 */
export class EarlyStopping {
  readonly config: Readonly<Required<EarlyStoppingConfig>>;
  private best = NaN;
  private bestAt = 0;
  private waited = 0;
  private stoppedFlag = false;
  private snapshot = new Map<string, tf.Tensor>();

  constructor(cfg: EarlyStoppingConfig, path = "") {
    const mode = cfg.mode ?? (/loss/i.test(cfg.metric) ? "min" : "max");
    const c = { metric: cfg.metric, patience: cfg.patience ?? 3, mode, minDelta: cfg.minDelta ?? 0, restoreBest: cfg.restoreBest ?? true };
    const issues = [];
    if (typeof c.metric !== "string" || c.metric === "") issues.push({ code: "invalid_value", path: `${path}/metric`, message: "Expected a metric name such as \"ndcg@20\"." });
    if (!Number.isInteger(c.patience) || c.patience < 0) issues.push({ code: "invalid_value", path: `${path}/patience`, message: "Expected an integer >= 0.", received: c.patience });
    if (c.mode !== "min" && c.mode !== "max") issues.push({ code: "invalid_value", path: `${path}/mode`, message: 'Expected "min" or "max".', received: c.mode });
    if (!(typeof c.minDelta === "number" && c.minDelta >= 0)) issues.push({ code: "invalid_value", path: `${path}/minDelta`, message: "Expected a number >= 0.", received: c.minDelta });
    if (issues.length) throw new RecblocksError("early stopping config", issues);
    this.config = Object.freeze(c);
    this.path = path;
  }
  private readonly path: string;

  get bestValue(): number {
    return this.best;
  }
  get bestEpoch(): number {
    return this.bestAt;
  }
  get stopped(): boolean {
    return this.stoppedFlag;
  }
  /** True when a best-epoch snapshot of weights is held. */
  get hasSnapshot(): boolean {
    return this.snapshot.size > 0;
  }

  update(epoch: number, metrics: Record<string, number>, variables?: tf.Variable[]): EarlyStoppingStep {
    const { metric, mode, minDelta, patience } = this.config;
    if (!(metric in metrics)) {
      const known = Object.keys(metrics).sort();
      throw new RecblocksError("early stopping", [
        {
          code: "unknown_metric",
          path: `${this.path}/metric`,
          message: `Early stopping watches "${metric}", but the evaluation produced no such metric.`,
          received: metric,
          expected: known,
          hint: `Available metrics: ${known.join(", ") || "none"}.`,
        },
      ]);
    }
    const v = metrics[metric]!;
    const improved =
      Number.isFinite(v) && (Number.isNaN(this.best) || (mode === "max" ? v > this.best + minDelta : v < this.best - minDelta));
    if (improved) {
      this.best = v;
      this.bestAt = epoch;
      this.waited = 0;
      if (this.config.restoreBest && variables) this.takeSnapshot(variables);
    } else {
      this.waited++;
      if (this.waited >= patience) this.stoppedFlag = true; // Keras semantics: patience non-improving epochs
    }
    return { improved, stop: this.stoppedFlag, best: this.best, bestEpoch: this.bestAt, wait: this.waited };
  }

  /** Writes the best epoch's weights back into `variables` (matched by name). Returns false if there is no snapshot. */
  restoreBestWeights(variables: tf.Variable[]): boolean {
    if (this.snapshot.size === 0) return false;
    for (const v of variables) {
      const t = this.snapshot.get(v.name);
      if (t) v.assign(t);
    }
    return true;
  }

  /** The counters, for a checkpoint (the best-epoch weights are `snapshotTensors()`). */
  getState(): EarlyStoppingState {
    return { best: Number.isNaN(this.best) ? null : this.best, bestEpoch: this.bestAt, wait: this.waited, stopped: this.stoppedFlag };
  }

  /** Restores counters and (optionally) the best-epoch weights, by variable name; the tensors are cloned. */
  setState(s: EarlyStoppingState, snapshot?: Map<string, tf.Tensor>): void {
    this.best = s.best === null ? NaN : s.best;
    this.bestAt = s.bestEpoch;
    this.waited = s.wait;
    this.stoppedFlag = s.stopped;
    if (snapshot) {
      this.dispose();
      for (const [k, t] of snapshot) this.snapshot.set(k, tf.clone(t));
    }
  }

  /** The best-epoch weights held (by variable name); owned by this object. */
  snapshotTensors(): ReadonlyMap<string, tf.Tensor> {
    return this.snapshot;
  }

  dispose(): void {
    for (const t of this.snapshot.values()) t.dispose();
    this.snapshot.clear();
  }

  private takeSnapshot(variables: tf.Variable[]): void {
    this.dispose();
    for (const v of variables) this.snapshot.set(v.name, tf.clone(v));
  }
}

import * as tf from "@tensorflow/tfjs";
import {
  Block,
  BlockError,
  columnsOf,
  formatSpec,
  hasTag,
  isTensorSpec,
  type BlockContext,
  type BlockInput,
  type CallContext,
  type ColumnLike,
  type PortSpec,
  type TensorSpec,
} from "../../src/core/index.js";
import { summarize, type SummaryType } from "./sequence-summary.js";

/** What every per-session task config has (binary-classification, regression, multi-class). */
export interface TargetTaskConfig {
  type: string;
  name?: string;
  target: string;
  summaryType?: SummaryType;
  clsIndex?: number;
}

/** Streaming metrics of a task: host predictions and targets of the rows that have one. */
export interface TaskMetrics {
  update(predictions: Float32Array, targets: Float32Array): void;
  result(): Record<string, number>;
  reset(): void;
}

/**
 * A task predicting one value per session from a column of the data (Transformers4Rec PredictionTask
 * with summary_type): a [B, L, D] body output is summarised (`summaryType`, padding-aware; a [B, D] one
 * is used as is), then a linear output layer (torch Linear init, with a bias). The target of row b is
 * `targets[b]` (the Model reads the column from the batch's context features); rows whose target is
 * missing (NaN; for multi-class also the padding id 0) are left out of the loss and the metrics.
 */
export abstract class TargetTask<C extends TargetTaskConfig = TargetTaskConfig> extends Block<C> {
  /** Which kind of target (how the Model and docs describe it). */
  abstract readonly kind: "binary" | "regression" | "multi-class";
  protected kernel: tf.Variable | undefined;
  protected bias: tf.Variable | undefined;

  /** The column holding the target. */
  get target(): string {
    return this.config.target;
  }

  /** Width of the output layer (1, or the number of classes). */
  protected abstract outputWidth(col: ColumnLike | undefined, ctx: BlockContext): number;
  /** Tags one of which the target column must carry (when the feature schema lists it). */
  protected abstract readonly targetTags: string[];
  /** Mean loss of raw outputs (logits [N] / values [N] / logits [N, C]) against targets [N] of the rows kept. */
  abstract lossOf(raw: tf.Tensor, targets: tf.Tensor1D): tf.Scalar;
  /** Predictions from raw outputs: probabilities [N] / values [N] / class probabilities [N, C]. */
  abstract predictionsOf(raw: tf.Tensor): tf.Tensor;
  abstract newMetrics(): TaskMetrics;

  /** True when row b has a target. */
  hasTarget(v: number): boolean {
    return Number.isFinite(v);
  }

  computeOutputSpec(input: PortSpec, ctx: BlockContext): TensorSpec {
    const rank = isTensorSpec(input) ? input.shape.length : 0;
    if (!isTensorSpec(input) || input.dtype !== "float32" || (rank !== 3 && rank !== 2) || typeof input.shape[rank - 1] !== "number") {
      throw new BlockError(ctx.path, "incompatible_input", `${this.config.type} needs the body's output as float32 [B, L, D] (a sequence, summarised by summaryType) or [B, D], got ${formatSpec(input)}.`);
    }
    const col = this.targetColumn(ctx);
    const w = this.outputWidth(col, ctx);
    return w === 1 ? { shape: [null], dtype: "float32" } : { shape: [null, w], dtype: "float32" };
  }

  /** The target column in the feature schema (checked when the schema lists columns). */
  protected targetColumn(ctx: BlockContext): ColumnLike | undefined {
    const cols = columnsOf(ctx.schema);
    if (!cols.length) return undefined;
    const col = cols.find((c) => c.name === this.config.target);
    if (!col) {
      throw new BlockError(`${ctx.path}/target`, "unknown_feature", `The target column "${this.config.target}" is not in the feature schema.`, {
        expected: cols.filter((c) => hasTag(c, "target") || this.targetTags.some((t) => hasTag(c, t))).map((c) => c.name),
      });
    }
    if (hasTag(col, "list")) {
      throw new BlockError(`${ctx.path}/target`, "incompatible_feature", `The target column "${col.name}" is a sequence (tagged list); ${this.config.type} predicts one value per session.`, {
        hint: "Use a per-session (context) column as the target.",
      });
    }
    if (!hasTag(col, "target") && !this.targetTags.some((t) => hasTag(col, t))) {
      throw new BlockError(`${ctx.path}/target`, "incompatible_feature", `The column "${col.name}" is not tagged as a target (${["target", ...this.targetTags].join(" / ")}).`, {
        hint: `Add the tag ${this.targetTags[0]} (or target) to the column in the feature schema.`,
      });
    }
    return col;
  }

  protected override buildWeights(input: PortSpec, ctx: BlockContext): void {
    const spec = input as TensorSpec;
    const d = spec.shape[spec.shape.length - 1] as number;
    const w = this.outputWidth(this.targetColumn(ctx), ctx);
    const limit = 1 / Math.sqrt(d);
    this.kernel = this.addWeight("output/kernel", [d, w], { kind: "uniform", limit }, ctx);
    this.bias = this.addWeight("output/bias", [w], { kind: "uniform", limit }, ctx);
  }

  /** One vector per row: the summary of a sequence, or a [B, D] input as is. */
  summary(input: BlockInput, ctx: CallContext): tf.Tensor2D {
    const x = input as tf.Tensor;
    if (x.rank === 2) return x as tf.Tensor2D;
    return summarize(x as tf.Tensor3D, ctx.paddingMask, this.config.summaryType ?? "last", this.config.clsIndex ?? -1);
  }

  /** Raw outputs of every row: [B] (width 1) or [B, C]. */
  raw(input: BlockInput, ctx: CallContext): tf.Tensor {
    const z = tf.add(tf.matMul(this.summary(input, ctx), this.kernel as tf.Tensor2D), this.bias!);
    return z.shape[1] === 1 ? tf.squeeze(z, [1]) : z;
  }

  /** Predictions of every row (inference). */
  call(input: BlockInput, ctx: CallContext): tf.Tensor {
    return this.predictionsOf(this.raw(input, ctx));
  }

  /** Rows with a target and their targets. */
  keep(targets: ArrayLike<number>): { rows: Int32Array; values: Float32Array } {
    const rows: number[] = [];
    for (let b = 0; b < targets.length; b++) if (this.hasTarget(targets[b]!)) rows.push(b);
    return { rows: Int32Array.from(rows), values: Float32Array.from(rows, (b) => targets[b]!) };
  }

  /** Mean training loss over the rows with a target (undefined when none has one). Call inside a tidy. */
  targetLoss(input: BlockInput, ctx: CallContext, targets: ArrayLike<number>): tf.Scalar | undefined {
    const { rows, values } = this.keep(targets);
    if (rows.length === 0) return undefined;
    const raw = tf.gather(this.raw(input, ctx), tf.tensor1d(rows, "int32"));
    return this.lossOf(raw, tf.tensor1d(values));
  }
}

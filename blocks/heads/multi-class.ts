import * as tf from "@tensorflow/tfjs";
import { BlockError, cardinalityOf, crossEntropyPerRow, type BlockContext, type ColumnLike } from "../../src/core/index.js";
import { MultiClassMetrics } from "../../src/metrics/classification.js";
import { TargetTask, type TargetTaskConfig, type TaskMetrics } from "./target-task.js";

/** Config of `multi-class` (schemas/blocks/multi-class.schema.json). */
export interface MultiClassConfig extends TargetTaskConfig {
  type: "multi-class";
  numClasses?: number;
}

/**
 * Multi-class classification of a session (asked for upstream, Transformers4Rec #645; missing there):
 * summary -> Linear(d, C) -> softmax cross-entropy. Classes are the dense ids of a categorical target
 * column (1..C-1; 0 = padding / missing, never a class, as next-item's padding id), C = the column's
 * cardinality or `numClasses`. Metric: accuracy (top-1).
 */
export class MultiClassTask extends TargetTask<MultiClassConfig> {
  readonly kind = "multi-class" as const;
  protected readonly targetTags = ["multi-class", "multi-class-classification", "classification"];
  private classes = 0;

  constructor(config: Omit<MultiClassConfig, "type"> | MultiClassConfig) {
    super({ ...config, type: "multi-class" } as MultiClassConfig);
  }

  get numClasses(): number {
    return this.classes;
  }

  protected outputWidth(col: ColumnLike | undefined, ctx: BlockContext): number {
    const c = this.config.numClasses || (col ? cardinalityOf(col) : undefined);
    if (c === undefined || c < 2) {
      throw new BlockError(`${ctx.path}/numClasses`, "missing_cardinality", `multi-class needs the number of classes: the target column "${this.config.target}" has no cardinality in the feature schema and numClasses is not set.`, {
        hint: "Set numClasses (classes are ids 1..numClasses-1; 0 = missing), or the column's cardinality.",
      });
    }
    this.classes = c;
    return c;
  }

  override hasTarget(v: number): boolean {
    return Number.isInteger(v) && v > 0 && v < this.classes;
  }

  /** Mean softmax cross-entropy over classes 1..C-1 (the padding class 0 is left out of the softmax). */
  lossOf(raw: tf.Tensor, targets: tf.Tensor1D): tf.Scalar {
    const C = raw.shape[1]!;
    const pad = new Float32Array(C);
    pad[0] = -1e9;
    return tf.mean(crossEntropyPerRow(tf.add(raw, tf.tensor1d(pad)) as tf.Tensor2D, tf.cast(targets, "int32") as tf.Tensor1D));
  }

  predictionsOf(raw: tf.Tensor): tf.Tensor {
    const C = raw.shape[1]!;
    const pad = new Float32Array(C);
    pad[0] = -1e9;
    return tf.softmax(tf.add(raw, tf.tensor1d(pad)));
  }

  newMetrics(): TaskMetrics {
    const m = new MultiClassMetrics();
    const C = () => this.classes;
    return {
      update: (p, t) => m.update(p, C(), t),
      result: () => m.result(),
      reset: () => m.reset(),
    };
  }
}

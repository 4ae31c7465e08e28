import * as tf from "@tensorflow/tfjs";
import { BinaryClassificationMetrics } from "../../src/metrics/classification.js";
import { TargetTask, type TargetTaskConfig, type TaskMetrics } from "./target-task.js";

/** Config of `binary-classification` (schemas/blocks/binary-classification.schema.json). */
export interface BinaryClassificationConfig extends TargetTaskConfig {
  type: "binary-classification";
}

/**
 * Transformers4Rec BinaryClassificationTask: summary -> Linear(d, 1) -> sigmoid, binary cross-entropy
 * (computed from the logit, stable); targets 0/1 (missing: NaN). Metrics: auc, precision, recall,
 * accuracy (threshold 0.5).
 */
export class BinaryClassificationTask extends TargetTask<BinaryClassificationConfig> {
  readonly kind = "binary" as const;
  protected readonly targetTags = ["binary", "binary-classification", "classification"];

  constructor(config: Omit<BinaryClassificationConfig, "type"> | BinaryClassificationConfig) {
    super({ ...config, type: "binary-classification" } as BinaryClassificationConfig);
  }

  protected outputWidth(): number {
    return 1;
  }

  /** mean(softplus(z) - y·z) = mean BCE(sigmoid(z), y). */
  lossOf(raw: tf.Tensor, targets: tf.Tensor1D): tf.Scalar {
    return tf.mean(tf.sub(tf.softplus(raw), tf.mul(targets, raw)));
  }

  predictionsOf(raw: tf.Tensor): tf.Tensor {
    return tf.sigmoid(raw);
  }

  newMetrics(): TaskMetrics {
    return new BinaryClassificationMetrics(0.5);
  }
}

import * as tf from "@tensorflow/tfjs";
import { RegressionMetrics } from "../../src/metrics/classification.js";
import { TargetTask, type TargetTaskConfig, type TaskMetrics } from "./target-task.js";

/** Config of `regression` (schemas/blocks/regression.schema.json). */
export interface RegressionConfig extends TargetTaskConfig {
  type: "regression";
}

/** Transformers4Rec RegressionTask: summary -> Linear(d, 1), mean squared error. Metrics: rmse, mae, mse. */
export class RegressionTask extends TargetTask<RegressionConfig> {
  readonly kind = "regression" as const;
  protected readonly targetTags = ["regression"];

  constructor(config: Omit<RegressionConfig, "type"> | RegressionConfig) {
    super({ ...config, type: "regression" } as RegressionConfig);
  }

  protected outputWidth(): number {
    return 1;
  }

  lossOf(raw: tf.Tensor, targets: tf.Tensor1D): tf.Scalar {
    return tf.mean(tf.squaredDifference(raw, targets));
  }

  predictionsOf(raw: tf.Tensor): tf.Tensor {
    return raw;
  }

  newMetrics(): TaskMetrics {
    return new RegressionMetrics();
  }
}

import * as tf from "@tensorflow/tfjs";
import {
  Block,
  BlockError,
  activation,
  dropout,
  formatSpec,
  isTensorSpec,
  layerNorm,
  type ActivationName,
  type BlockContext,
  type BlockInput,
  type CallContext,
  type PortSpec,
  type TensorSpec,
} from "../../src/core/index.js";

/** Config of `mlp` (schemas/blocks/mlp.schema.json). */
export interface MLPConfig {
  type: "mlp";
  name?: string;
  units: number[];
  activation?: ActivationName;
  bias?: boolean;
  dropout?: number;
  normalization?: "none" | "layer-norm" | "batch-norm";
}

const BN_MOMENTUM = 0.1;
const NORM_EPS = 1e-5;

/**
 * Dense layers over the last axis: for each entry of `units`, Linear -> activation ->
 * [normalization] -> [dropout] (Transformers4Rec MLPBlock/DenseBlock). Weights are initialised
 * like torch.nn.Linear: U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
 */
export class MLPBlock extends Block<MLPConfig> {
  private layers: { kernel: tf.Variable; bias?: tf.Variable; gamma?: tf.Variable; beta?: tf.Variable; mean?: tf.Variable; variance?: tf.Variable }[] = [];

  constructor(config: MLPConfig | Omit<MLPConfig, "type">) {
    super({ ...config, type: "mlp" } as MLPConfig);
  }

  computeOutputSpec(input: PortSpec, ctx: BlockContext): TensorSpec {
    if (!isTensorSpec(input)) {
      throw new BlockError(ctx.path, "incompatible_input", `MLPBlock needs one float tensor as input, got named features ${formatSpec(input)}.`, {
        hint: "Put an aggregation (e.g. tabular-sequence-features with aggregation: concat) before it.",
      });
    }
    const d = input.shape[input.shape.length - 1];
    if (input.dtype !== "float32" || input.shape.length < 2 || typeof d !== "number") {
      throw new BlockError(ctx.path, "incompatible_input", `MLPBlock needs a float32 input of rank >= 2 with a known last dimension, got ${formatSpec(input)}.`);
    }
    const units = this.config.units;
    return { shape: [...input.shape.slice(0, -1), units[units.length - 1]!], dtype: "float32" };
  }

  protected override buildWeights(input: PortSpec, ctx: BlockContext): void {
    let fanIn = (input as TensorSpec).shape.at(-1) as number;
    this.config.units.forEach((u, i) => {
      const limit = 1 / Math.sqrt(fanIn);
      const layer: (typeof this.layers)[number] = { kernel: this.addWeight(`dense_${i}/kernel`, [fanIn, u], { kind: "uniform", limit }, ctx) };
      if (this.config.bias) layer.bias = this.addWeight(`dense_${i}/bias`, [u], { kind: "uniform", limit }, ctx);
      if (this.config.normalization === "layer-norm" || this.config.normalization === "batch-norm") {
        const p = this.config.normalization === "layer-norm" ? `layer_norm_${i}` : `batch_norm_${i}`;
        layer.gamma = this.addWeight(`${p}/gamma`, [u], { kind: "ones" }, ctx);
        layer.beta = this.addWeight(`${p}/beta`, [u], { kind: "zeros" }, ctx);
        if (this.config.normalization === "batch-norm") {
          layer.mean = this.addWeight(`${p}/moving_mean`, [u], { kind: "zeros" }, ctx, false);
          layer.variance = this.addWeight(`${p}/moving_variance`, [u], { kind: "ones" }, ctx, false);
        }
      }
      this.layers.push(layer);
      fanIn = u;
    });
  }

  call(input: BlockInput, ctx: CallContext): tf.Tensor {
    const x0 = input as tf.Tensor;
    const lead = x0.shape.slice(0, -1);
    let x: tf.Tensor = tf.reshape(x0, [-1, x0.shape[x0.shape.length - 1]!]);
    for (const layer of this.layers) {
      x = tf.matMul(x as tf.Tensor2D, layer.kernel as tf.Tensor2D);
      if (layer.bias) x = tf.add(x, layer.bias);
      x = activation(x, this.config.activation!);
      if (this.config.normalization === "layer-norm") x = layerNorm(x, layer.gamma!, layer.beta!, NORM_EPS);
      else if (this.config.normalization === "batch-norm") x = this.batchNorm(x, layer, ctx.training);
      x = dropout(x, this.config.dropout!, ctx.training, ctx.seed());
    }
    return tf.reshape(x, [...lead, x.shape[1]!]);
  }

  private batchNorm(x: tf.Tensor, layer: (typeof this.layers)[number], training: boolean): tf.Tensor {
    if (!training) return tf.batchNorm(x, layer.mean!, layer.variance!, layer.beta!, layer.gamma!, NORM_EPS);
    const { mean, variance } = tf.moments(x, 0);
    const n = x.shape[0]!;
    tf.tidy(() => {
      const unbiased = tf.mul(variance, n > 1 ? n / (n - 1) : 1);
      layer.mean!.assign(tf.add(tf.mul(layer.mean!, 1 - BN_MOMENTUM), tf.mul(mean, BN_MOMENTUM)));
      layer.variance!.assign(tf.add(tf.mul(layer.variance!, 1 - BN_MOMENTUM), tf.mul(unbiased, BN_MOMENTUM)));
    });
    return tf.batchNorm(x, mean, variance, layer.beta!, layer.gamma!, NORM_EPS);
  }
}

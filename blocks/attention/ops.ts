/**
 * Small tensor building blocks shared by the attention layers and the transformer presets:
 * seeded initialisers, dense layers over the last axis, layer norm / RMS norm, activations
 * and dropout driven by the seeded RNG. Plain functions over tf tensors; no tfjs-layers.
 */
import * as tf from "@tensorflow/tfjs";
import { makeVariable, type Initializer, type RandomSource } from "../../src/core/index.js";

/**
 * Creates one trainable variable (initialised from the seeded RNG the factory holds); the block
 * decides naming and ownership (TransformerBlock passes its `addWeight`).
 */
export type VariableFactory = (name: string, shape: number[], init: Initializer) => tf.Variable;

/** A factory over the core's `makeVariable` with a given RNG, for using the layers outside a block. */
export function variableFactory(rng: RandomSource, created?: Map<string, tf.Variable>): VariableFactory {
  return (name, shape, init) => {
    const v = makeVariable(shape, init, rng);
    created?.set(name, v);
    return v;
  };
}

/** What a forward pass needs besides the weights: training mode (dropout on/off) and the RNG. */
export interface ForwardState {
  training: boolean;
  /** Required when training with dropout > 0. */
  rng?: RandomSource;
}

/** Activations of the feed-forward networks (schema enum of transformer.activation). */
export type ActivationName = "gelu" | "gelu-tanh" | "relu" | "silu" | "tanh";
export const ACTIVATIONS: readonly ActivationName[] = ["gelu", "gelu-tanh", "relu", "silu", "tanh"];

export function normalVariable(make: VariableFactory, name: string, shape: number[], std: number): tf.Variable {
  return make(name, shape, { kind: "normal", std });
}

export function constantVariable(make: VariableFactory, name: string, shape: number[], value: 0 | 1): tf.Variable {
  return make(name, shape, { kind: value === 0 ? "zeros" : "ones" });
}

/** A dense layer over the last axis: kernel [in, out], optional bias [out]. */
export interface DenseParams {
  kernel: tf.Tensor;
  bias?: tf.Tensor;
}

export function createDense(
  make: VariableFactory, name: string, inDim: number, outDim: number, std: number, useBias = true,
): DenseParams {
  const kernel = normalVariable(make, `${name}/kernel`, [inDim, outDim], std);
  return useBias ? { kernel, bias: constantVariable(make, `${name}/bias`, [outDim], 0) } : { kernel };
}

/** x [..., in] -> [..., out] with one 2-D (fused bias) matmul. */
export function dense(x: tf.Tensor, p: DenseParams): tf.Tensor {
  const inDim = x.shape[x.shape.length - 1]!;
  const outDim = p.kernel.shape[1]!;
  const x2 = x.rank === 2 ? (x as tf.Tensor2D) : tf.reshape(x, [-1, inDim]) as tf.Tensor2D;
  const y = p.bias
    ? tf.fused.matMul({ a: x2, b: p.kernel as tf.Tensor2D, bias: p.bias })
    : tf.matMul(x2, p.kernel as tf.Tensor2D);
  return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), outDim]);
}

export interface LayerNormParams {
  gamma: tf.Variable;
  beta: tf.Variable;
}

export function createLayerNorm(make: VariableFactory, name: string, dim: number): LayerNormParams {
  return { gamma: constantVariable(make, `${name}/gamma`, [dim], 1), beta: constantVariable(make, `${name}/beta`, [dim], 0) };
}

/**
 * Layer normalisation over the last axis (biased variance, as torch.nn.LayerNorm), with a
 * hand-written gradient: one tape entry instead of a dozen, which matters on the CPU backends.
 */
export function layerNorm(x: tf.Tensor, p: LayerNormParams, eps: number): tf.Tensor {
  const d = x.shape[x.shape.length - 1];
  const f = tf.customGrad(((xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    const mean = tf.mean(xi, -1, true);
    const xc = tf.sub(xi, mean);
    const variance = tf.mean(tf.square(xc), -1, true);
    const rstd = tf.rsqrt(tf.add(variance, eps));
    const xhat = tf.mul(xc, rstd);
    save([xhat, rstd, g]);
    return {
      value: tf.add(tf.mul(xhat, g), b),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sxhat, srstd, sg] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const dxhat = tf.mul(dy, sg);
        const m1 = tf.mean(dxhat, -1, true);
        const m2 = tf.mean(tf.mul(dxhat, sxhat), -1, true);
        const dx = tf.mul(srstd, tf.sub(tf.sub(dxhat, m1), tf.mul(sxhat, m2)));
        const dy2 = tf.reshape(dy, [-1, d]);
        const dg = tf.sum(tf.mul(dy2, tf.reshape(sxhat, [-1, d])), 0);
        const db = tf.sum(dy2, 0);
        return [dx, dg, db];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x, p.gamma, p.beta);
}

export interface RmsNormParams {
  gamma: tf.Variable;
}

export function createRmsNorm(make: VariableFactory, name: string, dim: number): RmsNormParams {
  return { gamma: constantVariable(make, `${name}/gamma`, [dim], 1) };
}

/** RMS normalisation over the last axis: x / sqrt(mean(x^2) + eps) * gamma (as LLaMA's RMSNorm). */
export function rmsNorm(x: tf.Tensor, p: RmsNormParams, eps: number): tf.Tensor {
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), p.gamma);
}

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** Exact GELU, x * Phi(x) with erf (Hugging Face "gelu"), with a hand-written gradient Phi(x) + x phi(x). */
export const geluExact: (x: tf.Tensor) => tf.Tensor = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  const cdf = tf.mul(0.5, tf.add(1, tf.erf(tf.mul(x, SQRT1_2))));
  save([x, cdf]);
  return {
    value: tf.mul(x, cdf),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, scdf] = saved as [tf.Tensor, tf.Tensor];
      const pdf = tf.mul(INV_SQRT_2PI, tf.exp(tf.mul(-0.5, tf.square(sx))));
      return [tf.mul(dy, tf.add(scdf, tf.mul(sx, pdf)))];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor) => tf.Tensor;

/** GELU, tanh approximation (Hugging Face "gelu_new", GPT-2's original). */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}

export function activate(x: tf.Tensor, name: ActivationName): tf.Tensor {
  switch (name) {
    case "gelu":
      return geluExact(x);
    case "gelu-tanh":
      return geluTanh(x);
    case "relu":
      return tf.relu(x);
    case "silu":
      return tf.mul(x, tf.sigmoid(x));
    case "tanh":
      return tf.tanh(x);
  }
}

/** Inverted dropout in training only, seeded from the RNG (deterministic for a given seed). */
export function dropout(x: tf.Tensor, rate: number, state: ForwardState): tf.Tensor {
  if (!state.training || rate <= 0) return x;
  if (!state.rng) throw new Error("dropout in training needs the seeded RNG (ForwardState.rng)");
  const seed = Math.floor(state.rng.next() * 2147483647);
  return tf.dropout(x, rate, undefined, seed);
}

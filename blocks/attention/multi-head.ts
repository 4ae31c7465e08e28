/**
 * Scaled dot-product and multi-head attention over batched heads.
 *
 * Layout: heads first, [H, B, L, dHead], so that every matmul is a plain batched matmul with no
 * broadcasting (TF.js's BatchMatMul gradient does not reduce broadcast batch dimensions) and the
 * [B, L, L] attention bias broadcasts over heads. One fused [D, 3D] projection makes q, k and v.
 */
import * as tf from "@tensorflow/tfjs";
import { createDense, dense, dropout, type DenseParams, type ForwardState, type VariableFactory } from "./ops.js";

export interface MultiHeadAttentionParams {
  /** Fused query/key/value projection, kernel [dModel, 3 * dModel] (columns: q | k | v). */
  qkv: DenseParams;
  /** Output projection, kernel [dModel, dModel]. */
  out: DenseParams;
}

export interface MultiHeadAttentionInit {
  dModel: number;
  /** Standard deviation of the normal initialisation of the q/k/v kernel. */
  std: number;
  /** Standard deviation of the output kernel (defaults to std; GPT-2 scales it by 1/sqrt(2 * numLayers)). */
  outStd?: number;
  /** Biases on the projections (GPT-2 and BERT: yes; XLNet: no). */
  bias?: boolean;
}

export function createMultiHeadAttention(
  make: VariableFactory, name: string, init: MultiHeadAttentionInit,
): MultiHeadAttentionParams {
  const bias = init.bias ?? true;
  return {
    qkv: createDense(make, `${name}/qkv`, init.dModel, 3 * init.dModel, init.std, bias),
    out: createDense(make, `${name}/output`, init.dModel, init.dModel, init.outStd ?? init.std, bias),
  };
}

/** [B, L, k*H*dh] projections -> k tensors [H, B, L, dh] (one transpose for all of them). */
export function splitHeads(proj: tf.Tensor, B: number, L: number, numHeads: number, parts: number): tf.Tensor4D[] {
  const dh = proj.shape[proj.shape.length - 1] / (parts * numHeads);
  const t = tf.transpose(tf.reshape(proj, [B, L, parts, numHeads, dh]), [2, 3, 0, 1, 4]); // [parts, H, B, L, dh]
  if (parts === 1) return [tf.reshape(t, [numHeads, B, L, dh]) as tf.Tensor4D];
  return tf.unstack(t, 0) as tf.Tensor4D[];
}

/** [H, B, L, dh] -> [B, L, H*dh]. */
export function mergeHeads(x: tf.Tensor4D): tf.Tensor3D {
  const [H, B, L, dh] = x.shape;
  return tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [B, L, H * dh]) as tf.Tensor3D;
}

export interface AttentionResult {
  /** [H, B, Lq, dh] */
  context: tf.Tensor4D;
  /** [H, B, Lq, Lk] attention probabilities (before dropout), when asked for. */
  probs?: tf.Tensor4D;
}

/**
 * softmax(q kᵀ * scale + bias) v, with dropout on the probabilities in training.
 * q [H, B, Lq, dh], k and v [H, B, Lk, dh], bias [B or 1, Lq, Lk] (additive) or null.
 */
export function scaledDotProductAttention(
  q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias: tf.Tensor3D | null,
  dropoutRate: number, state: ForwardState, opts: { scale?: number; returnProbs?: boolean } = {},
): AttentionResult {
  const scale = opts.scale ?? 1 / Math.sqrt(q.shape[3]);
  let scores: tf.Tensor = tf.mul(tf.matMul(q, k, false, true), scale);
  if (bias) scores = tf.add(scores, bias);
  return attendWithScores(scores as tf.Tensor4D, v, dropoutRate, state, opts.returnProbs ?? false);
}

/** softmax over the last axis, dropout, times v. */
export function attendWithScores(
  scores: tf.Tensor4D, v: tf.Tensor4D, dropoutRate: number, state: ForwardState, returnProbs: boolean,
): AttentionResult {
  const probs = tf.softmax(scores, -1) as tf.Tensor4D;
  const context = tf.matMul(dropout(probs, dropoutRate, state) as tf.Tensor4D, v) as tf.Tensor4D;
  return returnProbs ? { context, probs } : { context };
}

export interface SelfAttentionOptions {
  numHeads: number;
  /** Dropout on the attention probabilities. */
  attentionDropout: number;
  /** Optional transform of q and k after the head split (rotary position embeddings). */
  transformQK?: (q: tf.Tensor4D, k: tf.Tensor4D) => [tf.Tensor4D, tf.Tensor4D];
  returnProbs?: boolean;
}

/**
 * Multi-head self-attention: x [B, L, D] -> output projection of the merged heads [B, L, D]
 * (no residual, no output dropout: the caller's layer decides those).
 */
export function multiHeadSelfAttention(
  x: tf.Tensor3D, p: MultiHeadAttentionParams, bias: tf.Tensor3D | null, opts: SelfAttentionOptions, state: ForwardState,
): { output: tf.Tensor3D; probs?: tf.Tensor4D } {
  const [B, L] = x.shape;
  let [q, k, v] = splitHeads(dense(x, p.qkv), B, L, opts.numHeads, 3) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
  if (opts.transformQK) [q, k] = opts.transformQK(q, k);
  const r = scaledDotProductAttention(q, k, v, bias, opts.attentionDropout, state, { returnProbs: opts.returnProbs });
  const output = dense(mergeHeads(r.context), p.out) as tf.Tensor3D;
  return r.probs ? { output, probs: r.probs } : { output };
}

/**
 * Multi-head attention from queries to a separate memory (e.g. the last item attending the whole
 * sequence): query [B, Lq, D], memory [B, Lk, D] -> [B, Lq, D]. Uses the same fused parameters:
 * q from the first D columns of the qkv kernel, k and v from the rest.
 */
export function multiHeadCrossAttention(
  query: tf.Tensor3D, memory: tf.Tensor3D, p: MultiHeadAttentionParams, bias: tf.Tensor3D | null,
  opts: SelfAttentionOptions, state: ForwardState,
): { output: tf.Tensor3D; probs?: tf.Tensor4D } {
  const [B, Lq, D] = query.shape;
  const Lk = memory.shape[1];
  const kernel = p.qkv.kernel as tf.Tensor2D;
  const qp: DenseParams = { kernel: tf.slice(kernel, [0, 0], [D, D]) };
  const kvp: DenseParams = { kernel: tf.slice(kernel, [0, D], [D, 2 * D]) };
  if (p.qkv.bias) {
    qp.bias = tf.slice(p.qkv.bias, [0], [D]);
    kvp.bias = tf.slice(p.qkv.bias, [D], [2 * D]);
  }
  let [q] = splitHeads(dense(query, qp), B, Lq, opts.numHeads, 1) as [tf.Tensor4D];
  let [k, v] = splitHeads(dense(memory, kvp), B, Lk, opts.numHeads, 2) as [tf.Tensor4D, tf.Tensor4D];
  if (opts.transformQK) [q, k] = opts.transformQK(q, k);
  const r = scaledDotProductAttention(q, k, v, bias, opts.attentionDropout, state, { returnProbs: opts.returnProbs });
  const output = dense(mergeHeads(r.context), p.out) as tf.Tensor3D;
  return r.probs ? { output, probs: r.probs } : { output };
}

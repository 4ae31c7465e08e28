import * as tf from "@tensorflow/tfjs";
import type { RandomSource } from "../../src/core/index.js";

/** Aggregations of named per-feature tensors (Transformers4Rec tabular_aggregation_registry). */
export type AggregationName = "concat" | "element-wise-sum" | "element-wise-sum-item-multi" | "stack";

/**
 * Aggregates feature tensors given in sorted name order (every one [..., d_i], same leading shape):
 * - concat: concatenation on the last axis -> [..., sum d_i]
 * - element-wise-sum: sum -> [..., d]
 * - element-wise-sum-item-multi: item ⊙ Σ others (or item ⊙ (1 + Σ others) with plusOne) -> [..., d]
 * - stack: stacked on a new last axis -> [..., d, N] (Transformers4Rec StackFeatures(axis=-1))
 */
export function aggregateFeatures(names: string[], tensors: tf.Tensor[], kind: AggregationName, itemName?: string, plusOne = false): tf.Tensor {
  switch (kind) {
    case "concat":
      return tensors.length === 1 ? tensors[0]! : tf.concat(tensors, -1);
    case "element-wise-sum":
      return tensors.length === 1 ? tensors[0]! : tf.addN(tensors);
    case "stack":
      return tf.stack(tensors, tensors[0]!.rank);
    case "element-wise-sum-item-multi": {
      const i = names.indexOf(itemName ?? "");
      if (i < 0) throw new Error(`element-wise-sum-item-multi: the item feature "${itemName}" is not among ${names.join(", ")}`);
      const others = tensors.filter((_, j) => j !== i);
      if (others.length === 0) throw new Error("element-wise-sum-item-multi needs at least one feature besides the item id");
      let sum = others.length === 1 ? others[0]! : tf.addN(others);
      if (plusOne) sum = tf.add(sum, 1);
      return tf.mul(tensors[i]!, sum);
    }
  }
}

/**
 * Soft one-hot embedding (Transformers4Rec SoftEmbedding, Li et al. 2017) of scalars x [...]:
 * w = softmax(x · kernel + bias) over P, output Σ_p w_p · table_p -> [..., dim].
 * kernel, bias: [P]; table: [P, dim].
 */
export function softEmbedding(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor, table: tf.Tensor): tf.Tensor {
  const logits = tf.add(tf.mul(tf.expandDims(x, -1), kernel), bias); // [..., P]
  const w = tf.softmax(logits, -1);
  const shape = w.shape;
  const P = shape[shape.length - 1]!;
  const dim = table.shape[1]!;
  const flat = tf.matMul(tf.reshape(w, [-1, P]), table as tf.Tensor2D);
  return tf.reshape(flat, [...shape.slice(0, -1), dim]);
}

/**
 * Bag embedding of fixed-size padded lists ids [..., K] (0 = padding inside the list): the sum or the
 * mean of the embeddings of the non-zero ids -> [..., dim]; an all-zero list gives a zero vector.
 */
export function bagEmbedding(ids: tf.Tensor, table: tf.Tensor, combiner: "mean" | "sum"): tf.Tensor {
  const valid = tf.cast(tf.notEqual(ids, 0), "float32"); // [..., K]
  const emb = tf.mul(tf.gather(table, ids), tf.expandDims(valid, -1)); // [..., K, dim]
  const sum = tf.sum(emb, -2);
  if (combiner === "sum") return sum;
  const count = tf.maximum(tf.sum(valid, -1, true), 1);
  return tf.div(sum, count);
}

/**
 * Stochastic swap noise (Transformers4Rec StochasticSwapNoise.augment) on host arrays, in place of a
 * copy: among the eligible positions (eligible[i] = 1), each is chosen with probability p; the chosen
 * ones get the first values of a random permutation of all eligible values. Returns a new array and
 * the number of replaced positions. With p = 0 or no eligible position the values are copied unchanged.
 */
export function stochasticSwapNoise<T extends Int32Array | Float32Array>(
  values: T,
  eligible: Uint8Array,
  p: number,
  rng: RandomSource,
): { values: T; replaced: number } {
  const out = values.slice() as T;
  const idx: number[] = [];
  for (let i = 0; i < values.length; i++) if (eligible[i]) idx.push(i);
  if (idx.length === 0 || p <= 0) return { values: out, replaced: 0 };
  const chosen: number[] = [];
  for (const i of idx) if (rng.next() < p) chosen.push(i);
  if (chosen.length === 0) return { values: out, replaced: 0 };
  // the pool: the eligible values in a random order (Fisher-Yates); the chosen positions take its head
  const pool = idx.map((i) => values[i]!);
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const t = pool[i]!;
    pool[i] = pool[j]!;
    pool[j] = t;
  }
  for (let k = 0; k < chosen.length; k++) out[chosen[k]!] = pool[k]!;
  return { values: out, replaced: chosen.length };
}

/**
 * Scoring against an item catalogue, shared by the Model (evaluation, top-k) and the heads: the
 * per-row softmax cross-entropy for evaluation, and an exact blocked top-k over a catalogue of the item
 * table whose extra column excludes items at no cost per query.
 */
import * as tf from "@tensorflow/tfjs";
import { pickPerRow } from "./ops.js";

/** The smallest normal float32: -log of it (87.3) caps a row's reported cross-entropy. */
export const FLT_MIN = 1.1754944e-38;

/**
 * Per-row softmax cross-entropy of scores [N, C] against class labels [N], for evaluation (no gradient):
 * -log softmax(x)[label], one Softmax kernel (excluded columns at -1e30 contribute nothing); capped at
 * 87.3 when the label's probability underflows float32.
 */
export function softmaxCrossEntropyLoss(scores: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => tf.neg(tf.log(tf.maximum(pickPerRow(tf.softmax(scores) as tf.Tensor2D, labels), FLT_MIN))) as tf.Tensor1D);
}

/** Rows 1..V-1 of the item table: the candidates (row 0 is padding). */
export function candidateRows(table: tf.Tensor2D): tf.Tensor2D {
  return tf.slice(table, [1, 0], [table.shape[0] - 1, table.shape[1]]);
}

/**
 * A catalogue prepared for top-k: the candidate item vectors with one extra column holding 0 for
 * eligible items and -1e30 for excluded ones (padding id, business-rule masks, rows added to round the
 * catalogue up to whole blocks). Scoring appends a column of ones to the queries, so an excluded item's
 * score is -1e30 straight out of the matmul: the mask costs nothing at query time and is applied
 * inside top-k.
 */
export interface Catalogue {
  /** [blocks * blockWidth, d + 1]; row r is item id r + 1. */
  matrix: tf.Tensor2D;
  numItems: number; // V - 1 real candidates
  blockWidth: number;
  numBlocks: number;
  /** Number of eligible items. */
  eligible: number;
}

export const EXCLUDED_SCORE = -1e30;

/**
 * @param table item table [V, d], row 0 = padding
 * @param eligible optional [V] 1 = may be recommended, 0 = never (index = dense item id; index 0 ignored)
 */
export function buildCatalogue(table: tf.Tensor2D, eligible?: Uint8Array, blockWidth = 128): Catalogue {
  const [V, d] = table.shape;
  const n = V - 1;
  const numBlocks = Math.ceil(n / blockWidth);
  const rows = numBlocks * blockWidth;
  const bias = new Float32Array(rows).fill(EXCLUDED_SCORE);
  let count = 0;
  for (let r = 0; r < n; r++) {
    if (!eligible || eligible[r + 1]) {
      bias[r] = 0;
      count++;
    }
  }
  const matrix = tf.tidy(() => {
    const cand = candidateRows(table);
    const padded = rows > n ? tf.concat([cand, tf.zeros([rows - n, d])], 0) : cand;
    return tf.concat([padded, tf.tensor2d(bias, [rows, 1])], 1) as tf.Tensor2D;
  });
  return { matrix, numItems: n, blockWidth, numBlocks, eligible: count };
}

/**
 * Top-k item ids (dense, 1..V-1) and scores for each query row z [B, d], best first, never an excluded
 * item. Exact: the catalogue's scores are cut into blocks; only the k blocks with the highest maxima can
 * hold the top k, so the final sort looks at k * blockWidth scores per row instead of the whole catalogue.
 * Returns fewer than k per row only when fewer than k items are eligible (k is capped at that count).
 */
export function catalogueTopK(z: tf.Tensor2D, cat: Catalogue, k: number): { ids: tf.Tensor2D; scores: tf.Tensor2D } {
  return tf.tidy(() => catalogueScoresTopK(catalogueScores(z, cat), cat, Math.min(k, cat.eligible)));
}

/** Scores [B, blocks * blockWidth] of queries z [B, d] against a catalogue (column r = item id r + 1; excluded = -1e30). */
export function catalogueScores(z: tf.Tensor2D, cat: Catalogue): tf.Tensor2D {
  return tf.tidy(() => tf.matMul(tf.concat([z, tf.ones([z.shape[0], 1])], 1), cat.matrix, false, true) as tf.Tensor2D);
}

/**
 * Top-k of catalogue scores [B, blocks * blockWidth]: item ids (dense, column + 1) and scores, best first.
 * Exact: only the k blocks with the highest maxima can hold the top k, so the final top-k looks at
 * k * blockWidth scores per row instead of the whole catalogue.
 */
export function catalogueScoresTopK(scores: tf.Tensor2D, cat: Catalogue, k: number): { ids: tf.Tensor2D; scores: tf.Tensor2D } {
  const kk = Math.max(0, Math.min(k, cat.numItems)); // never a rounding column
  return tf.tidy(() => {
    const B = scores.shape[0];
    const W = cat.blockWidth;
    if (kk === 0) return { ids: tf.zeros([B, 0], "int32") as tf.Tensor2D, scores: tf.zeros([B, 0]) as tf.Tensor2D };
    const kb = Math.min(kk, cat.numBlocks);
    const blocks = tf.reshape(scores, [B, cat.numBlocks, W]);
    const topBlocks = tf.topk(tf.max(blocks, 2), kb).indices; // [B, kb]
    // flat gathers (row offset + index) rather than gather with batchDims, which wasm gets wrong
    // (out-of-bounds reads for some shapes, e.g. [64, 1, 128])
    const rowOf = (n: number) => tf.mul(tf.range(0, B, 1, "int32").reshape([B, 1]), tf.scalar(n, "int32"));
    const blockRows = tf.reshape(tf.add(topBlocks, rowOf(cat.numBlocks)), [B * kb]);
    const cand = tf.reshape(tf.gather(tf.reshape(blocks, [B * cat.numBlocks, W]), blockRows), [B, kb * W]);
    const best = tf.topk(cand, kk);
    const Wt = tf.scalar(W, "int32");
    const blk = tf.reshape(tf.gather(tf.reshape(topBlocks, [B * kb]), tf.reshape(tf.add(tf.floorDiv(best.indices, Wt), rowOf(kb)), [B * kk])), [B, kk]);
    const ids = tf.add(tf.add(tf.mul(blk, Wt), tf.mod(best.indices, Wt)), tf.scalar(1, "int32")) as tf.Tensor2D;
    return { ids, scores: best.values as tf.Tensor2D };
  });
}

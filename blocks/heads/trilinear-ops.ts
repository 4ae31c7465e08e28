/**
 * The trilinear score of STAMP, <h_s, h_t, E_j> = (h_s * h_t) . E_j, over the items of a table whose
 * row 0 is the padding id (never a candidate), and its softmax cross-entropy fused with the output
 * layer: the [B, V] logits are made once, the native backend's SparseSoftmaxCrossEntropyWithLogits
 * turns them into the loss and (softmax - onehot) in one pass, and the backward pass is two matmuls
 * with the 1/B scale applied to the small operand. No other [B, V] tensor is made.
 */
import * as tf from "@tensorflow/tfjs";
import { candidateRows, FLT_MIN } from "../../src/core/catalogue.js";
import { pickPerRow } from "../../src/core/ops.js";

export {
  buildCatalogue, candidateRows, catalogueScores, catalogueScoresTopK, catalogueTopK, EXCLUDED_SCORE, type Catalogue,
} from "../../src/core/catalogue.js";

/**
 * Scores [B, V-1] of every candidate item (column j = item id j+1): (h_s * h_t) . E_{j+1}.
 * `z` is h_s * h_t when the caller has already formed it.
 */
export function trilinearScores(z: tf.Tensor2D, table: tf.Tensor2D): tf.Tensor2D {
  return tf.matMul(z, candidateRows(table), false, true);
}

/**
 * Mean softmax cross-entropy over all candidate items of the scores z . E_j^T, for targets given as
 * item ids (1..V-1). Differentiable w.r.t. z and the table (row 0 of the table gets a zero gradient).
 * Same maths as tf.losses.sparseSoftmaxCrossEntropy(trilinearScores(z, E)) averaged over the batch.
 *
 * One [B, V-1] tensor lives through the step: the softmax P of the logits (TensorFlow's Softmax kernel on
 * the native backend, measured ~4x faster here than its SparseSoftmaxCrossEntropyWithLogits, which also
 * writes a second [B, V-1] tensor). The one-hot part of the gradient is never formed:
 *   dz = (P·C - C[y]) / B,   dC = (Pᵀ·z - Σ_{rows with label j} z) / B,
 * with C[y] a gather and the sum an UnsortedSegmentSum. The loss of a row is -log P[y], exact unless P[y]
 * underflows float32 (a logit gap above ~87): it is then reported as 87.3 (= -log FLT_MIN); the
 * gradient stays exact.
 */
export function trilinearSoftmaxLoss(z: tf.Tensor2D, table: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  const labels = tf.sub(targets, tf.scalar(1, "int32")) as tf.Tensor1D;
  const f = tf.customGrad(((zz: tf.Tensor2D, tt: tf.Tensor2D, save: tf.GradSaveFunc) => {
    const cand = candidateRows(tt);
    const logits = tf.matMul(zz, cand, false, true);
    const p = tf.softmax(logits) as tf.Tensor2D;
    logits.dispose();
    const value = tf.neg(tf.mean(tf.log(tf.maximum(pickPerRow(p, labels), FLT_MIN)))) as tf.Scalar;
    save([zz, cand, p, labels]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [zs, cs, ps, ys] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
        const scale = tf.div(dy, tf.scalar(zs.shape[0]));
        const dz = tf.mul(tf.sub(tf.matMul(ps, cs), tf.gather(cs, ys)), scale);
        const dCand = tf.mul(tf.sub(tf.matMul(ps, zs, true, false), tf.unsortedSegmentSum(zs, ys, cs.shape[0])), scale); // [V-1, d]
        const dTable = tf.concat([tf.zeros([1, cs.shape[1]]), dCand], 0);
        return [dz, dTable];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(z, table) as tf.Scalar;
}


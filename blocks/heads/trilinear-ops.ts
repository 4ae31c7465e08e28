/**
 * The trilinear score of STAMP, <h_s, h_t, E_j> = (h_s * h_t) . E_j, over the items of a table whose
 * row 0 is the padding id (never a candidate), and its softmax cross-entropy fused with the output
 * layer: the [B, V] logits are made once, the native backend's SparseSoftmaxCrossEntropyWithLogits
 * turns them into the loss and (softmax - onehot) in one pass, and the backward pass is two matmuls
 * with the 1/B scale applied to the small operand. No other [B, V] tensor is made.
 */
import * as tf from "@tensorflow/tfjs";
import { candidateRows, softmaxCrossEntropyWithBackprop } from "../../src/core/catalogue.js";

export {
  buildCatalogue, candidateRows, catalogueScores, catalogueScoresTopK, catalogueTopK, EXCLUDED_SCORE, isNativeBackend,
  softmaxCrossEntropyWithBackprop, type Catalogue,
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
 */
export function trilinearSoftmaxLoss(z: tf.Tensor2D, table: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  const labels = tf.sub(targets, tf.scalar(1, "int32")) as tf.Tensor1D;
  const f = tf.customGrad(((zz: tf.Tensor2D, tt: tf.Tensor2D, save: tf.GradSaveFunc) => {
    const cand = candidateRows(tt);
    const logits = tf.matMul(zz, cand, false, true);
    const { loss, backprop } = softmaxCrossEntropyWithBackprop(logits as tf.Tensor2D, labels);
    logits.dispose();
    const value = tf.mean(loss) as tf.Scalar;
    save([zz, cand, backprop]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [zs, cs, bp] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
        const B = zs.shape[0];
        const scale = tf.div(dy, tf.scalar(B));
        const dz = tf.mul(tf.matMul(bp, cs), scale);
        const dCand = tf.matMul(bp, tf.mul(zs, scale) as tf.Tensor2D, true, false); // [V-1, d]
        const dTable = tf.concat([tf.zeros([1, cs.shape[1]]), dCand], 0);
        return [dz, dTable];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(z, table) as tf.Scalar;
}


/**
 * Training losses of next-item prediction over a subset of the catalogue: sampled softmax with the
 * logQ correction (Transformers4Rec `sampled_softmax`), GRU4Rec's pairwise BPR and TOP1 and their
 * softmax-weighted forms BPR-max and TOP1-max (Hidasi & Karatzoglou 2018). Each
 * takes the score of each row's positive item, pos [N], and the scores of shared negatives, neg [N, S]
 * (the same S candidate items for every row), with `hits` [N, S] (1 where a negative is the row's own
 * positive: an accidental hit, left out).
 */
import * as tf from "@tensorflow/tfjs";

/** The logit an accidental hit gets in the sampled softmax (its softmax weight is 0 in float32). */
export const HIT_LOGIT = -1e9;

/** 1 where negId[s] == label[n], as float32 [N, S] (in TF; no host read). */
export function hitMask(labels: tf.Tensor1D, negIds: tf.Tensor1D): tf.Tensor2D {
  return tf.cast(tf.equal(tf.expandDims(labels, 1), tf.expandDims(negIds, 0)), "float32") as tf.Tensor2D;
}

/**
 * log q(j) for the log-uniform sampler over items minId..V-1 (minId 1: P(j) = log(1 + 1/j) / log V) after `tries`
 * draws with replacement: q = 1 - (1 - P)^tries (0 when every item was taken: tries = Infinity).
 */
export function logInclusionProbability(ids: tf.Tensor1D, numItems: number, tries: number, minId = 1): tf.Tensor1D {
  if (tries === Infinity) return tf.zerosLike(ids).toFloat() as tf.Tensor1D;
  // P(j) = log(1 + 1/(j - minId + 1)) / log(V - minId + 1); ids below minId (the OOV id as a label) get minId's
  const rank = tf.maximum(tf.sub(tf.cast(ids, "float32"), minId - 1), 1);
  const p = tf.div(tf.log1p(tf.reciprocal(rank)), Math.log(numItems - minId + 1));
  // 1 - (1 - p)^t = -expm1(x), x = t · log1p(-p) <= 0; TF.js has no expm1: a series for small |x|
  // (1 - exp(x) would lose most digits in float32 there)
  const x = tf.mul(tf.log1p(tf.neg(p)), tries);
  const series = tf.mul(tf.neg(x), tf.add(1, tf.mul(x, tf.add(0.5, tf.div(x, 6)))));
  const q = tf.where(tf.less(tf.abs(x), 1e-3), series, tf.sub(1, tf.exp(x)));
  return tf.log(q) as tf.Tensor1D;
}

/**
 * Sampled-softmax logits [N, 1 + S]: [pos - log q(pos) | neg - log q(neg)], accidental hits at
 * HIT_LOGIT; the target of every row is column 0.
 */
export function sampledSoftmaxLogits(pos: tf.Tensor1D, neg: tf.Tensor2D, hits: tf.Tensor2D, logQPos: tf.Tensor1D, logQNeg: tf.Tensor1D): tf.Tensor2D {
  const p = tf.expandDims(tf.sub(pos, logQPos), 1);
  const n = tf.add(tf.sub(neg, tf.expandDims(logQNeg, 0)), tf.mul(hits, HIT_LOGIT));
  return tf.concat([p, n], 1) as tf.Tensor2D;
}

/** Mean cross-entropy of logits [N, C] whose target is column 0: mean(logsumexp(row) - row[0]). */
export function firstColumnCrossEntropy(logits: tf.Tensor2D): tf.Scalar {
  const first = tf.squeeze(tf.slice(logits, [0, 0], [-1, 1]), [1]);
  return tf.mean(tf.sub(tf.logSumExp(logits, 1), first));
}

/** Mean over rows with at least one valid negative of the per-row mean of `terms` [N, S] over valid (non-hit) negatives. */
function meanOverValid(terms: tf.Tensor2D, hits: tf.Tensor2D): tf.Scalar {
  const valid = tf.sub(1, hits);
  const perRow = tf.div(tf.sum(tf.mul(terms, valid), 1), tf.maximum(tf.sum(valid, 1), 1)) as tf.Tensor1D;
  return meanOverRowsWithNegatives(perRow, hits);
}

/** BPR (GRU4Rec): mean_j -log σ(pos - neg_j) = mean_j softplus(neg_j - pos) over valid negatives, then over rows. */
export function bprLoss(pos: tf.Tensor1D, neg: tf.Tensor2D, hits: tf.Tensor2D): tf.Scalar {
  return meanOverValid(tf.softplus(tf.sub(neg, tf.expandDims(pos, 1))) as tf.Tensor2D, hits);
}

/** TOP1 (GRU4Rec): mean_j σ(neg_j - pos) + σ(neg_j²) over valid negatives, then over rows. */
export function top1Loss(pos: tf.Tensor1D, neg: tf.Tensor2D, hits: tf.Tensor2D): tf.Scalar {
  const terms = tf.add(tf.sigmoid(tf.sub(neg, tf.expandDims(pos, 1))), tf.sigmoid(tf.square(neg))) as tf.Tensor2D;
  return meanOverValid(terms, hits);
}

/**
 * Softmax over each row's valid (non-hit) negatives, s [N, S] (Hidasi & Karatzoglou 2018: the weights of
 * BPR-max / TOP1-max), and its log; hits get weight 0 (log: about -1e9).
 */
function negativeSoftmax(neg: tf.Tensor2D, hits: tf.Tensor2D): { s: tf.Tensor2D; logS: tf.Tensor2D } {
  const masked = tf.add(neg, tf.mul(hits, HIT_LOGIT));
  const logS = tf.sub(masked, tf.logSumExp(masked, 1, true)) as tf.Tensor2D;
  return { s: tf.exp(logS) as tf.Tensor2D, logS };
}

/** Mean over rows with at least one valid negative of perRow [N]. */
function meanOverRowsWithNegatives(perRow: tf.Tensor1D, hits: tf.Tensor2D): tf.Scalar {
  const rowHas = tf.cast(tf.greater(tf.sum(tf.sub(1, hits), 1), 0), "float32");
  return tf.div(tf.sum(tf.mul(perRow, rowHas)), tf.maximum(tf.sum(rowHas), 1)) as tf.Scalar;
}

/**
 * BPR-max (Hidasi & Karatzoglou 2018, "Recurrent Neural Networks with Top-k Gains"): per row
 * -log Σ_j s_j σ(pos - neg_j) + λ Σ_j s_j neg_j², s = softmax of the row's valid negative scores; then the
 * mean over rows. The log-sum is taken as logsumexp_j(log s_j + log σ(pos - neg_j)) (no underflow).
 */
export function bprMaxLoss(pos: tf.Tensor1D, neg: tf.Tensor2D, hits: tf.Tensor2D, regularization = 1): tf.Scalar {
  const { s, logS } = negativeSoftmax(neg, hits);
  const logSig = tf.neg(tf.softplus(tf.sub(neg, tf.expandDims(pos, 1)))); // log σ(pos - neg_j)
  let perRow = tf.neg(tf.logSumExp(tf.add(logS, logSig), 1)) as tf.Tensor1D;
  if (regularization !== 0) perRow = tf.add(perRow, tf.mul(tf.sum(tf.mul(s, tf.square(neg)), 1), regularization));
  return meanOverRowsWithNegatives(perRow, hits);
}

/** TOP1-max (Hidasi & Karatzoglou 2018): per row Σ_j s_j (σ(neg_j - pos) + σ(neg_j²)), s as in BPR-max; then the mean over rows. */
export function top1MaxLoss(pos: tf.Tensor1D, neg: tf.Tensor2D, hits: tf.Tensor2D): tf.Scalar {
  const { s } = negativeSoftmax(neg, hits);
  const terms = tf.add(tf.sigmoid(tf.sub(neg, tf.expandDims(pos, 1))), tf.sigmoid(tf.square(neg)));
  return meanOverRowsWithNegatives(tf.sum(tf.mul(s, terms), 1) as tf.Tensor1D, hits);
}

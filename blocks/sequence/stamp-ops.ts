/**
 * STAMP (Liu et al., KDD 2018) as plain TF.js functions, as the official code computes it
 * (see docs/blocks/stamp-attention.md):
 *
 *   x_i  = E[ids_i] (optionally rescaled to L2 norm <= maxNorm), 0 at padding
 *   m_s  = mean of the real x_i            m_t = x of the last real item
 *   a_i  = w0 . sigmoid(x_i W1 + m_t W2 + m_s W3 [+ b_a])     (unnormalised, padding masked)
 *   m_a  = sum_i a_i x_i + m_s            (variant "stmp": m_a = m_s)
 *   h_s  = tanh(m_a WA [+ bA])             h_t = tanh(m_t WB [+ bB])
 *   score_j = <h_s, h_t, E_j>  (trilinear) = (h_s * h_t) . E_j
 *
 * These functions run inside the caller's tidy and are differentiable with tf.grads.
 */
import * as tf from "@tensorflow/tfjs";

export type StampVariant = "stamp" | "stmp";

/** Weights of the STAMP session encoder (the item table is separate: it is shared with the scoring). */
export interface StampWeights {
  /** [d, d] applied to every session item x_i. */
  w1?: tf.Tensor2D;
  /** [d, d] applied to the last item m_t. */
  w2?: tf.Tensor2D;
  /** [d, d] applied to the session mean m_s. */
  w3?: tf.Tensor2D;
  /** [d, 1] attention read-out. */
  w0?: tf.Tensor2D;
  /** [d] attention bias (paper only; absent in the official code). */
  ba?: tf.Tensor1D;
  /** [d, d] cell A (session). */
  wA: tf.Tensor2D;
  bA?: tf.Tensor1D;
  /** [d, d] cell B (last item). */
  wB: tf.Tensor2D;
  bB?: tf.Tensor1D;
}

export interface StampEncodeOptions {
  variant: StampVariant;
  /** Rescale looked-up vectors with a larger L2 norm to this norm (TF's embedding_lookup max_norm); null = off. */
  maxNorm: number | null;
}

/** What the encoder returns: the two MLP cells and the attention weights (for inspection and tests). */
export interface StampEncoding {
  /** h_s [B, d]. */
  hs: tf.Tensor2D;
  /** h_t [B, d]. */
  ht: tf.Tensor2D;
  /** alpha [B, L] (zeros for "stmp"), masked at padding. */
  alpha: tf.Tensor2D;
}

/**
 * TF's `clip_by_norm` per row (embedding_lookup max_norm): x * maxNorm / max(||x||, maxNorm).
 * x: [..., d].
 */
export function maxNormRows<T extends tf.Tensor>(x: T, maxNorm: number): T {
  // sqrt of a sum floored above 0, so that all-zero rows (padding) get a zero gradient, not NaN (as TF's clip_by_norm)
  const norms = tf.sqrt(tf.maximum(tf.sum(tf.square(x), -1, true), tf.scalar(1e-30)));
  return tf.mul(x, tf.div(tf.scalar(maxNorm), tf.maximum(norms, tf.scalar(maxNorm)))) as T;
}

/**
 * Looks up the session items and encodes them.
 * @param table item table [V, d] (row 0 = padding; its value is ignored: padded slots are multiplied by 0)
 * @param ids   [B, L] int32 item ids, 0 = padding, padded on either side
 * @param lastIndex [B] int32 position (0..L-1) of the last real item in each row
 * @param lengths [B] float32 number of real items per row (>= 1)
 */
export function stampEncode(
  table: tf.Tensor2D,
  ids: tf.Tensor2D,
  lastIndex: tf.Tensor1D,
  lengths: tf.Tensor1D,
  w: StampWeights,
  opts: StampEncodeOptions,
): StampEncoding {
  const [B, L] = ids.shape;
  const d = table.shape[1];
  const mask = tf.cast(tf.notEqual(ids, tf.scalar(0, "int32")), "float32"); // [B, L]
  const x = tf.reshape(tf.gather(table, tf.reshape(ids, [B * L])), [B, L, d]) as tf.Tensor3D;
  return stampEncodeEmbedded(x, mask as tf.Tensor2D, lastIndex, lengths, w, opts);
}

/**
 * The same encoder on already looked-up vectors x [B, L, d] (what an input block outputs) with the
 * padding mask [B, L] (1 = real item); padded slots are zeroed here.
 */
export function stampEncodeEmbedded(
  x0: tf.Tensor3D,
  mask: tf.Tensor2D,
  lastIndex: tf.Tensor1D,
  lengths: tf.Tensor1D,
  w: StampWeights,
  opts: StampEncodeOptions,
): StampEncoding {
  const [B, L, d] = x0.shape;
  let x = tf.reshape(x0, [B * L, d]) as tf.Tensor2D; // [B*L, d]
  if (opts.maxNorm !== null) x = maxNormRows(x, opts.maxNorm);
  x = tf.mul(x, tf.reshape(mask, [B * L, 1]));
  const x3 = tf.reshape(x, [B, L, d]) as tf.Tensor3D;
  const ms = tf.div(tf.sum(x3, 1), tf.reshape(lengths, [B, 1])) as tf.Tensor2D; // [B, d]
  const flatLast = tf.add(tf.mul(tf.range(0, B, 1, "int32"), tf.scalar(L, "int32")), lastIndex);
  const mt = tf.gather(x, flatLast) as tf.Tensor2D; // [B, d]
  let ma: tf.Tensor2D;
  let alpha: tf.Tensor2D;
  if (opts.variant === "stamp") {
    if (!w.w0 || !w.w1 || !w.w2 || !w.w3) throw new Error("stampEncode: the stamp variant needs w0, w1, w2, w3");
    let ctx = tf.add(tf.matMul(mt, w.w2), tf.matMul(ms, w.w3)) as tf.Tensor2D; // [B, d]
    if (w.ba) ctx = tf.add(ctx, w.ba);
    const pre = tf.add(tf.reshape(tf.matMul(x, w.w1), [B, L, d]), tf.reshape(ctx, [B, 1, d]));
    const e = tf.reshape(tf.matMul(tf.reshape(tf.sigmoid(pre), [B * L, d]), w.w0), [B, L]);
    alpha = tf.mul(e, mask) as tf.Tensor2D;
    // sum_i alpha_i x_i as a batched matmul [B,1,L] x [B,L,d]
    const att = tf.reshape(tf.matMul(tf.reshape(alpha, [B, 1, L]), x3), [B, d]);
    ma = tf.add(att, ms) as tf.Tensor2D;
  } else {
    alpha = tf.zeros([B, L]);
    ma = ms;
  }
  let a = tf.matMul(ma, w.wA) as tf.Tensor2D;
  if (w.bA) a = tf.add(a, w.bA);
  let b = tf.matMul(mt, w.wB) as tf.Tensor2D;
  if (w.bB) b = tf.add(b, w.bB);
  return { hs: tf.tanh(a), ht: tf.tanh(b), alpha };
}

/** Host-side helper: last-item positions and lengths of a padded [B, L] id batch. */
export function lastAndLengths(ids: Int32Array, B: number, L: number): { lastIndex: Int32Array; lengths: Float32Array } {
  const lastIndex = new Int32Array(B);
  const lengths = new Float32Array(B);
  for (let b = 0; b < B; b++) {
    let n = 0;
    let last = -1;
    for (let l = 0; l < L; l++) {
      if (ids[b * L + l] !== 0) {
        n++;
        last = l;
      }
    }
    lastIndex[b] = Math.max(last, 0);
    lengths[b] = Math.max(n, 1);
  }
  return { lastIndex, lengths };
}

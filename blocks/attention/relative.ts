/**
 * XLNet's relative positional self-attention (content stream), after Hugging Face's
 * `XLNetRelativeAttention.rel_attn_core` without memories or segments:
 *
 *   ac = (q + r_w_bias) kᵀ                       content-based term
 *   bd = rel_shift((q + r_r_bias) k_rᵀ)           position-based term, k_r = pos_emb W_r
 *   p  = softmax((ac + bd) / sqrt(dHead) + mask)
 *
 * pos_emb holds sinusoidal encodings of the relative distances klen, klen-1, ..., -qlen+1
 * (XLNet's `relative_positional_encoding` with attn_type "bi", no clamp, no bi_data), and
 * rel_shift re-indexes bd so that entry (i, j) uses distance i - j.
 */
import * as tf from "@tensorflow/tfjs";
import { attendWithScores, mergeHeads, splitHeads } from "./multi-head.js";
import {
  createDense, dense, normalVariable, type DenseParams, type ForwardState, type VariableFactory,
} from "./ops.js";

export interface RelativeAttentionParams {
  /** Fused q/k/v projection without bias, kernel [D, 3D] (XLNet's q, k, v). */
  qkv: DenseParams;
  /** Output projection without bias, kernel [D, D] (XLNet's o, transposed). */
  out: DenseParams;
  /** Projection of the position encodings, [D, D] (XLNet's r). */
  r: tf.Variable;
  /** Content bias, [H, dHead] (XLNet's r_w_bias). */
  rWBias: tf.Variable;
  /** Position bias, [H, dHead] (XLNet's r_r_bias). */
  rRBias: tf.Variable;
}

export function createRelativeAttention(
  make: VariableFactory, name: string, dModel: number, numHeads: number, std: number,
): RelativeAttentionParams {
  const dh = dModel / numHeads;
  return {
    qkv: createDense(make, `${name}/qkv`, dModel, 3 * dModel, std, false),
    out: createDense(make, `${name}/output`, dModel, dModel, std, false),
    r: normalVariable(make, `${name}/r`, [dModel, dModel], std),
    rWBias: normalVariable(make, `${name}/r_w_bias`, [numHeads, dh], std),
    rRBias: normalVariable(make, `${name}/r_r_bias`, [numHeads, dh], std),
  };
}

/**
 * Host values of XLNet's relative positional encoding for qlen = klen = L: [2L, dModel], row r
 * for the distance L - r, columns [sin(pos * invFreq) | cos(pos * invFreq)] with
 * invFreq_k = 1 / 10000^(2k / dModel). dModel must be even.
 */
export function relativePositionValues(L: number, dModel: number): Float32Array {
  const half = dModel / 2;
  const out = new Float32Array(2 * L * dModel);
  for (let r = 0; r < 2 * L; r++) {
    const pos = L - r;
    for (let k = 0; k < half; k++) {
      const angle = pos / Math.pow(10000, (2 * k) / dModel);
      out[r * dModel + k] = Math.sin(angle);
      out[r * dModel + half + k] = Math.cos(angle);
    }
  }
  return out;
}

export function relativePositionEncoding(L: number, dModel: number): tf.Tensor2D {
  return tf.tensor2d(relativePositionValues(L, dModel), [2 * L, dModel]);
}

/**
 * Hugging Face's `rel_shift_bnij` on the last two axes: x [a, b, qlen, R] -> [a, b, qlen, klen]
 * via reshape [a, b, R, qlen], drop the first row, reshape [a, b, qlen, R - 1], keep klen columns.
 * With R = klen + qlen and row r of pos_emb holding distance klen - r, out[i][j] = x[i][klen - i + j].
 */
export function relShift(x: tf.Tensor4D, klen: number): tf.Tensor4D {
  const [a, b, q, R] = x.shape;
  const y = tf.slice(tf.reshape(x, [a, b, R, q]), [0, 0, 1, 0], [a, b, R - 1, q]);
  return tf.slice(tf.reshape(y, [a, b, q, R - 1]), [0, 0, 0, 0], [a, b, q, klen]) as tf.Tensor4D;
}

/**
 * Relative self-attention: x [B, L, D], posEmb [2L, D] (dropout already applied by the caller),
 * bias [B or 1, L, L] additive or null -> output projection [B, L, D] (no residual, no dropout).
 */
export function relativeSelfAttention(
  x: tf.Tensor3D, posEmb: tf.Tensor2D, p: RelativeAttentionParams, bias: tf.Tensor3D | null,
  opts: { numHeads: number; attentionDropout: number; returnProbs?: boolean }, state: ForwardState,
): { output: tf.Tensor3D; probs?: tf.Tensor4D } {
  const [B, L, D] = x.shape;
  const H = opts.numHeads;
  const [q, k, v] = splitHeads(dense(x, p.qkv), B, L, H, 3) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
  const kr = positionKeys(posEmb, p, H, D / H);
  const r = relativeAttentionCore(q, k, v, kr, p, bias, opts, state);
  const output = dense(mergeHeads(r.context), p.out) as tf.Tensor3D;
  return r.probs ? { output, probs: r.probs } : { output };
}

/** k_r = pos_emb W_r as [H, R, dh]. */
function positionKeys(posEmb: tf.Tensor2D, p: RelativeAttentionParams, H: number, dh: number): tf.Tensor3D {
  const R = posEmb.shape[0];
  return tf.transpose(tf.reshape(tf.matMul(posEmb, p.r as tf.Tensor2D), [R, H, dh]), [1, 0, 2]) as tf.Tensor3D;
}

/** Hugging Face's `rel_attn_core`: q, k, v [H, B, L, dh], kr [H, R, dh], additive bias [B or 1, L, L]. */
function relativeAttentionCore(
  q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, kr: tf.Tensor3D, p: RelativeAttentionParams, bias: tf.Tensor3D | null,
  opts: { attentionDropout: number; returnProbs?: boolean }, state: ForwardState,
) {
  const [H, B, L, dh] = q.shape;
  const R = kr.shape[1];
  const ac = tf.matMul(tf.add(q, tf.reshape(p.rWBias, [H, 1, 1, dh])) as tf.Tensor4D, k, false, true);
  // (q + r_r_bias) as [H, B*L, dh]; one batched matmul over heads.
  const qr = tf.reshape(tf.add(q, tf.reshape(p.rRBias, [H, 1, 1, dh])), [H, B * L, dh]) as tf.Tensor3D;
  const bd = relShift(tf.reshape(tf.matMul(qr, kr, false, true), [H, B, L, R]) as tf.Tensor4D, L);
  let scores: tf.Tensor = tf.mul(tf.add(ac, bd), 1 / Math.sqrt(dh));
  if (bias) scores = tf.add(scores, bias);
  return attendWithScores(scores as tf.Tensor4D, v, opts.attentionDropout, state, opts.returnProbs ?? false);
}

/**
 * XLNet's two-stream relative attention (Hugging Face `XLNetRelativeAttention.forward` with `g` and an
 * identity `target_mapping`, no memories): keys and values come from the content stream h only.
 *   content stream: q = h W_q, bias `contentBias` (a position may see itself)
 *   query stream:   q = g W_q, bias `queryBias`   (a label never sees its own content)
 * h, g [B, L, D] -> output projections of both [B, L, D] (no residual, no dropout).
 */
export function relativeTwoStreamAttention(
  h: tf.Tensor3D, g: tf.Tensor3D, posEmb: tf.Tensor2D, p: RelativeAttentionParams,
  contentBias: tf.Tensor3D | null, queryBias: tf.Tensor3D | null,
  opts: { numHeads: number; attentionDropout: number }, state: ForwardState,
): { content: tf.Tensor3D; query: tf.Tensor3D } {
  const [B, L, D] = h.shape;
  const H = opts.numHeads;
  const [qh, k, v] = splitHeads(dense(h, p.qkv), B, L, H, 3) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
  const kernel = p.qkv.kernel as tf.Tensor2D;
  const [qg] = splitHeads(dense(g, { kernel: tf.slice(kernel, [0, 0], [D, D]) }), B, L, H, 1) as [tf.Tensor4D];
  const kr = positionKeys(posEmb, p, H, D / H);
  const ch = relativeAttentionCore(qh, k, v, kr, p, contentBias, opts, state);
  const cg = relativeAttentionCore(qg, k, v, kr, p, queryBias, opts, state);
  return {
    content: dense(mergeHeads(ch.context), p.out) as tf.Tensor3D,
    query: dense(mergeHeads(cg.context), p.out) as tf.Tensor3D,
  };
}

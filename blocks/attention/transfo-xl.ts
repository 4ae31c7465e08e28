/**
 * Transformer-XL's relative multi-head attention with a memory (Hugging Face
 * `RelPartialLearnableMultiHeadAttn`, post-layer-norm, attn_type 0), for one segment:
 *
 *   cat = [memory; h]                      keys and values over klen = mlen + qlen steps
 *   ac  = (q + r_w_bias) kᵀ                content term
 *   bd  = rel_shift((q + r_r_bias) k_rᵀ)   position term, k_r = pos_emb W_r
 *   p   = softmax((ac + bd) / sqrt(dHead) + mask)
 *
 * pos_emb holds sinusoidal encodings of the distances klen, klen-1, ..., -qlen+1 (R = klen + qlen
 * rows, the layout of XLNet's encoding); after `relShift` entry (i, j) uses the distance
 * mlen + i - j between query i of the segment and key j of [memory; segment], as Transformer-XL.
 * (Hugging Face's table holds only the distances klen-1 .. 0; the extra rows are only read at
 * masked, future, entries.) The parameters have XLNet's shapes (`createRelativeAttention`).
 */
import * as tf from "@tensorflow/tfjs";
import { attendWithScores, mergeHeads, splitHeads } from "./multi-head.js";
import { dense, type ForwardState } from "./ops.js";
import { relShift, type RelativeAttentionParams } from "./relative.js";

/** Host values [qlen + klen, dModel]: row r encodes the distance klen - r as [sin | cos] (inverse frequencies 1 / 10000^(2k/d)). */
export function memoryPositionValues(qlen: number, klen: number, dModel: number): Float32Array {
  const half = dModel / 2;
  const R = qlen + klen;
  const out = new Float32Array(R * dModel);
  for (let r = 0; r < R; r++) {
    const pos = klen - r;
    for (let k = 0; k < half; k++) {
      const angle = pos / Math.pow(10000, (2 * k) / dModel);
      out[r * dModel + k] = Math.sin(angle);
      out[r * dModel + half + k] = Math.cos(angle);
    }
  }
  return out;
}

export function memoryPositionEncoding(qlen: number, klen: number, dModel: number): tf.Tensor2D {
  return tf.tensor2d(memoryPositionValues(qlen, klen, dModel), [qlen + klen, dModel]);
}

/**
 * Additive bias [B, qlen, mlen + qlen] of one segment: a memory slot j < mlen is visible when
 * memValid[b][j]; a segment step j is visible when it is real (valid) and, if causal, not after
 * the query; a query always sees itself. memValid [B*mlen], valid [B*qlen], 1 = visible/real.
 */
export function memoryAttentionBias(
  memValid: ArrayLike<number>, valid: ArrayLike<number> | null, B: number, mlen: number, qlen: number, causal: boolean,
): tf.Tensor3D {
  const klen = mlen + qlen;
  const bias = new Float32Array(B * qlen * klen);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < qlen; i++) {
      const base = (b * qlen + i) * klen;
      for (let j = 0; j < mlen; j++) if (!memValid[b * mlen + j]) bias[base + j] = -1e9;
      for (let j = 0; j < qlen; j++) {
        const ok = j === i || ((valid === null || valid[b * qlen + j] !== 0) && (!causal || j <= i));
        if (!ok) bias[base + mlen + j] = -1e9;
      }
    }
  }
  return tf.tensor3d(bias, [B, qlen, klen]);
}

/**
 * One segment: h [B, qlen, D], memory [B, mlen, D] (mlen may be 0), posEmb [qlen + klen, D]
 * (dropout applied by the caller), bias [B, qlen, klen] -> output projection [B, qlen, D]
 * (no residual, no dropout).
 */
export function memoryRelativeAttention(
  h: tf.Tensor3D, memory: tf.Tensor3D | null, posEmb: tf.Tensor2D, p: RelativeAttentionParams, bias: tf.Tensor3D,
  opts: { numHeads: number; attentionDropout: number; returnProbs?: boolean }, state: ForwardState,
): { output: tf.Tensor3D; probs?: tf.Tensor4D } {
  const [B, qlen, D] = h.shape;
  const H = opts.numHeads;
  const dh = D / H;
  const cat = memory && memory.shape[1] > 0 ? (tf.concat([memory, h], 1) as tf.Tensor3D) : h;
  const klen = cat.shape[1];
  const kernel = p.qkv.kernel as tf.Tensor2D;
  const [q] = splitHeads(dense(h, { kernel: tf.slice(kernel, [0, 0], [D, D]) }), B, qlen, H, 1) as [tf.Tensor4D];
  const [k, v] = splitHeads(dense(cat, { kernel: tf.slice(kernel, [0, D], [D, 2 * D]) }), B, klen, H, 2) as [tf.Tensor4D, tf.Tensor4D];
  const R = posEmb.shape[0];
  const kr = tf.transpose(tf.reshape(tf.matMul(posEmb, p.r as tf.Tensor2D), [R, H, dh]), [1, 0, 2]) as tf.Tensor3D; // [H, R, dh]
  const ac = tf.matMul(tf.add(q, tf.reshape(p.rWBias, [H, 1, 1, dh])) as tf.Tensor4D, k, false, true);
  const qr = tf.reshape(tf.add(q, tf.reshape(p.rRBias, [H, 1, 1, dh])), [H, B * qlen, dh]) as tf.Tensor3D;
  const bd = relShift(tf.reshape(tf.matMul(qr, kr, false, true), [H, B, qlen, R]) as tf.Tensor4D, klen);
  const scores = tf.add(tf.mul(tf.add(ac, bd), 1 / Math.sqrt(dh)), bias) as tf.Tensor4D;
  const r = attendWithScores(scores, v, opts.attentionDropout, state, opts.returnProbs ?? false);
  const output = dense(mergeHeads(r.context), p.out) as tf.Tensor3D;
  return r.probs ? { output, probs: r.probs } : { output };
}

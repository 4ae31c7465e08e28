/**
 * Rotary position embeddings (RoPE, Su et al. 2021) as LLaMA uses them in Hugging Face's
 * `LlamaRotaryEmbedding` / `apply_rotary_pos_emb` ("rotate half" layout):
 *
 *   invFreq_i = 1 / theta^(2i / dHead),  i = 0 .. dHead/2 - 1
 *   angle(t, i) = t * invFreq_i
 *   x'[i]          = x[i] cos(angle) - x[i + dHead/2] sin(angle)
 *   x'[i + dHead/2] = x[i + dHead/2] cos(angle) + x[i] sin(angle)
 *
 * i.e. the pair (x[i], x[i + dHead/2]) is rotated by the angle t * invFreq_i. Applied to queries and
 * keys after the head split, q·k then depends on the positions only through their offset.
 */
import * as tf from "@tensorflow/tfjs";

/** Host cos/sin tables [L, dHead] (each half repeats the dHead/2 angles), positions offset .. offset+L-1. */
export function ropeTableValues(L: number, dHead: number, theta: number, offset = 0): { cos: Float32Array; sin: Float32Array } {
  if (dHead % 2 !== 0) throw new Error(`rotary position embeddings need an even head size, got ${dHead}`);
  const half = dHead / 2;
  const cos = new Float32Array(L * dHead);
  const sin = new Float32Array(L * dHead);
  for (let t = 0; t < L; t++) {
    for (let i = 0; i < half; i++) {
      const angle = (t + offset) / Math.pow(theta, (2 * i) / dHead);
      const c = Math.cos(angle), s = Math.sin(angle);
      cos[t * dHead + i] = c;
      cos[t * dHead + half + i] = c;
      sin[t * dHead + i] = s;
      sin[t * dHead + half + i] = s;
    }
  }
  return { cos, sin };
}

export interface RopeTables {
  /** [L, dHead] */
  cos: tf.Tensor2D;
  /** [L, dHead] */
  sin: tf.Tensor2D;
}

export function ropeTables(L: number, dHead: number, theta: number, offset = 0): RopeTables {
  const { cos, sin } = ropeTableValues(L, dHead, theta, offset);
  return { cos: tf.tensor2d(cos, [L, dHead]), sin: tf.tensor2d(sin, [L, dHead]) };
}

/** [..., d] -> [..., d]: concat(-x[d/2:], x[:d/2]) (Hugging Face's `rotate_half`). */
export function rotateHalf(x: tf.Tensor): tf.Tensor {
  const d = x.shape[x.shape.length - 1]!;
  const [x1, x2] = tf.split(x, [d / 2, d / 2], -1) as [tf.Tensor, tf.Tensor];
  return tf.concat([tf.neg(x2), x1], -1);
}

/** x [H, B, L, dHead] (or any [..., L, dHead]) rotated per position: x cos + rotateHalf(x) sin. */
export function applyRope(x: tf.Tensor, t: RopeTables): tf.Tensor {
  return tf.add(tf.mul(x, t.cos), tf.mul(rotateHalf(x), t.sin));
}

/** The `transformQK` hook of multi-head self-attention that rotates queries and keys. */
export function ropeTransform(t: RopeTables): (q: tf.Tensor4D, k: tf.Tensor4D) => [tf.Tensor4D, tf.Tensor4D] {
  return (q, k) => [applyRope(q, t) as tf.Tensor4D, applyRope(k, t) as tf.Tensor4D];
}

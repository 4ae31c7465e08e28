/**
 * Attention masks as additive biases, built once per batch and shared by every layer.
 *
 * Rule (all presets): query i may attend key j when key j is a real (non-padding) step and, if
 * causal, j <= i. Every position may always attend itself, as XLNet's `non_tgt_mask` has it:
 * no row is ever fully masked (no NaN, no uniform attention over the future at padding rows),
 * and outputs at real positions are exactly those of Hugging Face's models with the same mask.
 */
import * as tf from "@tensorflow/tfjs";

/** Added to the scores of forbidden pairs; exp() of it underflows to exactly 0 in float32. */
export const MASKED_SCORE = -1e9;

/** Which steps of each row are real: either a host mask or a tensor mask, both [B, L] with 1 = real. */
export type KeyPadding =
  | { kind: "none" }
  | { kind: "host"; valid: Uint8Array | Int32Array | Float32Array }
  | { kind: "tensor"; valid: tf.Tensor2D };

/** Host mask [B*L] (1 = real) from row lengths, padding on the right (default) or the left. */
export function validFromLengths(lengths: ArrayLike<number>, L: number, side: "right" | "left" = "right"): Uint8Array {
  const B = lengths.length;
  const out = new Uint8Array(B * L);
  for (let b = 0; b < B; b++) {
    const n = Math.max(0, Math.min(L, lengths[b]!));
    if (side === "right") out.fill(1, b * L, b * L + n);
    else out.fill(1, b * L + (L - n), (b + 1) * L);
  }
  return out;
}

/**
 * Additive attention bias [B, L, L] (or [1, L, L] when there is no padding): 0 where query i
 * may attend key j, MASKED_SCORE elsewhere. It broadcasts against scores laid out [H, B, L, L].
 * Returns null when nothing is masked (no padding, not causal).
 */
export function attentionBias(padding: KeyPadding, B: number, L: number, causal: boolean): tf.Tensor3D | null {
  if (padding.kind === "none") {
    if (!causal) return null;
    const bias = new Float32Array(L * L);
    for (let i = 0; i < L; i++) for (let j = i + 1; j < L; j++) bias[i * L + j] = MASKED_SCORE;
    return tf.tensor3d(bias, [1, L, L]);
  }
  if (padding.kind === "host") {
    const valid = padding.valid;
    if (valid.length !== B * L) throw new Error(`padding mask has ${valid.length} entries, expected ${B}x${L}`);
    const bias = new Float32Array(B * L * L);
    for (let b = 0; b < B; b++) {
      const row = b * L;
      for (let i = 0; i < L; i++) {
        const base = (row + i) * L;
        for (let j = 0; j < L; j++) {
          const ok = j === i || (valid[row + j]! !== 0 && (!causal || j <= i));
          if (!ok) bias[base + j] = MASKED_SCORE;
        }
      }
    }
    return tf.tensor3d(bias, [B, L, L]);
  }
  return tf.tidy(() => {
    const keyOk = tf.reshape(tf.notEqual(padding.valid, 0), [B, 1, L]);
    let allowed: tf.Tensor = keyOk;
    if (causal) allowed = tf.logicalAnd(allowed, tf.reshape(tf.cast(tf.linalg.bandPart(tf.ones([L, L]), -1, 0), "bool"), [1, L, L]));
    allowed = tf.logicalOr(allowed, tf.reshape(tf.cast(tf.eye(L), "bool"), [1, L, L]));
    return tf.mul(tf.sub(1, tf.cast(allowed, "float32")), MASKED_SCORE) as tf.Tensor3D;
  });
}

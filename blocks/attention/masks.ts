/**
 * Attention masks as additive biases, built once per batch and shared by every layer.
 *
 * Rule (all presets): query i may attend key j when key j is a real (non-padding) step and, if
 * causal, j <= i, and, with a sliding window w (longformer), |i - j| <= w. Every position may always attend itself, as XLNet's `non_tgt_mask` has it:
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
 * `window` (one-sided, longformer's attentionWindow / 2) also forbids |i - j| > window.
 * Returns null when nothing is masked (no padding, not causal, no window narrower than L).
 */
export function attentionBias(padding: KeyPadding, B: number, L: number, causal: boolean, window?: number): tf.Tensor3D | null {
  const w = window !== undefined && window < L - 1 ? window : undefined;
  const inWindow = (i: number, j: number): boolean => w === undefined || Math.abs(i - j) <= w;
  if (padding.kind === "none") {
    if (!causal && w === undefined) return null;
    const bias = new Float32Array(L * L);
    for (let i = 0; i < L; i++) for (let j = 0; j < L; j++) if ((causal && j > i) || !inWindow(i, j)) bias[i * L + j] = MASKED_SCORE;
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
          const ok = j === i || (valid[row + j]! !== 0 && (!causal || j <= i) && inWindow(i, j));
          if (!ok) bias[base + j] = MASKED_SCORE;
        }
      }
    }
    return tf.tensor3d(bias, [B, L, L]);
  }
  return tf.tidy(() => {
    const keyOk = tf.reshape(tf.notEqual(padding.valid, 0), [B, 1, L]);
    let allowed: tf.Tensor = keyOk;
    if (causal || w !== undefined) {
      const band = tf.linalg.bandPart(tf.ones([L, L]), w ?? -1, causal ? 0 : w!);
      allowed = tf.logicalAnd(allowed, tf.reshape(tf.cast(band, "bool"), [1, L, L]));
    }
    allowed = tf.logicalOr(allowed, tf.reshape(tf.cast(tf.eye(L), "bool"), [1, L, L]));
    return tf.mul(tf.sub(1, tf.cast(allowed, "float32")), MASKED_SCORE) as tf.Tensor3D;
  });
}

/**
 * XLNet's two attention biases [B, L, L] from a permutation mask (src/masking/plm.ts: permMask[b][i][j]
 * = 1 when i may not attend j) and the key padding `valid` [B*L] (1 = real step or [MASK] slot):
 * - content stream: j allowed when permMask = 0 and valid, and always j = i (XLNet's `non_tgt_mask`);
 * - query stream: j allowed when permMask = 0 and valid, never forced for j = i, so a label does not
 *   see its own content. A query row left with no key (a row without any visible item) is given its
 *   own position, so softmax never sees an all-masked row (nothing is read from such rows).
 */
export function permutationBiases(
  permMask: ArrayLike<number>, valid: ArrayLike<number>, B: number, L: number,
): { content: tf.Tensor3D; query: tf.Tensor3D } {
  if (permMask.length !== B * L * L) throw new Error(`permutation mask has ${permMask.length} entries, expected ${B}x${L}x${L}`);
  if (valid.length !== B * L) throw new Error(`padding mask has ${valid.length} entries, expected ${B}x${L}`);
  const content = new Float32Array(B * L * L);
  const query = new Float32Array(B * L * L);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < L; i++) {
      const base = (b * L + i) * L;
      let any = false;
      for (let j = 0; j < L; j++) {
        const ok = permMask[base + j] === 0 && valid[b * L + j] !== 0;
        if (ok) any = true;
        else query[base + j] = MASKED_SCORE;
        if (!ok && j !== i) content[base + j] = MASKED_SCORE;
      }
      if (!any) query[base + i] = 0;
    }
  }
  return { content: tf.tensor3d(content, [B, L, L]), query: tf.tensor3d(query, [B, L, L]) };
}

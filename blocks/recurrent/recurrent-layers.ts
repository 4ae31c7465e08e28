/**
 * GRU and LSTM layers over a padded sequence, as plain functions over tf tensors (no tfjs-layers),
 * differentiable with tf.variableGrads.
 *
 * Layout and maths follow Keras (GRU with reset_after = true, which is also PyTorch's nn.GRU and
 * cuDNN's; LSTM with gate columns i | f | g | o). The input projections of every step are computed
 * by one matmul before the loop; the loop does one [B, U] x [U, G·U] matmul and a few element-wise
 * ops per step. Padding steps (mask 0) carry the state unchanged and output zeros, so a row's
 * outputs at its real steps do not depend on where or how much padding it has, in either direction.
 */
import * as tf from "@tensorflow/tfjs";
import { initialValues, type RandomSource } from "../../src/core/index.js";

export type CellType = "gru" | "lstm";

/** Gates per cell: GRU z | r | n, LSTM i | f | g | o. */
export const GATES: Record<CellType, number> = { gru: 3, lstm: 4 };

/** The weights of one direction of one layer. */
export interface RecurrentParams {
  /** [inputDim, G·U] */
  kernel: tf.Tensor;
  /** [U, G·U] */
  recurrentKernel: tf.Tensor;
  /** [G·U], added to the input projection. */
  bias: tf.Tensor;
  /** [G·U], added to the recurrent projection (GRU only: inside r * (h Un + cn) for the candidate). */
  recurrentBias?: tf.Tensor;
}

/**
 * Runs one direction of one layer: x [B, L, D] -> hidden states [B, L, U] (zeros at padding).
 * `mask` is float32 [B, L], 1 on real steps, or null when every step is real. `reverse` runs from
 * the last step to the first (the backward direction of a bidirectional layer).
 */
export function recurrentLayer(cell: CellType, x: tf.Tensor3D, mask: tf.Tensor2D | null, p: RecurrentParams, reverse = false): tf.Tensor3D {
  const [B, L] = x.shape;
  const U = p.recurrentKernel.shape[0]!;
  const G = GATES[cell];
  // input projections of every step at once: [B·L, D] x [D, G·U] + b, then time-major steps
  const D = x.shape[2];
  const xp = tf.reshape(
    tf.fused.matMul({ a: tf.reshape(x, [B * L, D]) as tf.Tensor2D, b: p.kernel as tf.Tensor2D, bias: p.bias }),
    [B, L, G * U],
  );
  const steps = tf.unstack(tf.transpose(xp, [1, 0, 2])) as tf.Tensor2D[]; // L x [B, G·U]
  const masks = mask ? (tf.unstack(tf.expandDims(tf.transpose(mask), 2)) as tf.Tensor2D[]) : null; // L x [B, 1]
  let h: tf.Tensor2D = tf.zeros([B, U]);
  let c: tf.Tensor2D = tf.zeros([B, U]);
  const outs: tf.Tensor2D[] = new Array<tf.Tensor2D>(L);
  for (let i = 0; i < L; i++) {
    const t = reverse ? L - 1 - i : i;
    const hp = p.recurrentBias
      ? tf.fused.matMul({ a: h, b: p.recurrentKernel as tf.Tensor2D, bias: p.recurrentBias })
      : tf.matMul(h, p.recurrentKernel as tf.Tensor2D);
    let hNew: tf.Tensor2D;
    let cNew: tf.Tensor2D | undefined;
    if (cell === "gru") {
      const [xzr, xn] = tf.split(steps[t]!, [2 * U, U], 1) as [tf.Tensor2D, tf.Tensor2D];
      const [hzr, hn] = tf.split(hp, [2 * U, U], 1) as [tf.Tensor2D, tf.Tensor2D];
      const [z, r] = tf.split(tf.sigmoid(tf.add(xzr, hzr)), 2, 1) as [tf.Tensor2D, tf.Tensor2D];
      const n = tf.tanh(tf.add(xn, tf.mul(r, hn)));
      hNew = tf.add(n, tf.mul(z, tf.sub(h, n))); // (1 - z) n + z h
    } else {
      const gates = tf.add(steps[t]!, hp);
      const [ifg, g, o] = tf.split(gates, [2 * U, U, U], 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
      const [ig, fg] = tf.split(tf.sigmoid(ifg), 2, 1) as [tf.Tensor2D, tf.Tensor2D];
      const cn = tf.add(tf.mul(fg, c), tf.mul(ig, tf.tanh(g))) as tf.Tensor2D;
      cNew = cn;
      hNew = tf.mul(tf.sigmoid(o), tf.tanh(cn));
    }
    if (masks) {
      // padding: keep the previous state (h + m (h' - h) is h' on real steps, h on padding)
      const m = masks[t]!;
      h = tf.add(h, tf.mul(m, tf.sub(hNew, h))) as tf.Tensor2D;
      if (cNew) c = tf.add(c, tf.mul(m, tf.sub(cNew, c))) as tf.Tensor2D;
    } else {
      h = hNew;
      if (cNew) c = cNew;
    }
    outs[t] = h;
  }
  const out = tf.stack(outs, 1) as tf.Tensor3D;
  return mask ? (tf.mul(out, tf.expandDims(mask, 2)) as tf.Tensor3D) : out;
}

/**
 * Keras's `orthogonal` initialiser for a [U, G·U] recurrent kernel: the rows are orthonormal
 * (Gram-Schmidt on the columns of a seeded standard-normal [G·U, U] matrix, then transposed).
 */
export function orthogonalRows(rows: number, cols: number, rng: RandomSource): Float32Array {
  // columns of a [n, k] matrix with n = max, k = min; orthonormalised, then laid out as [rows, cols]
  const n = Math.max(rows, cols);
  const k = Math.min(rows, cols);
  const a = Float64Array.from(initialValues([n, k], { kind: "normal", std: 1 }, rng)); // row-major [n, k]
  for (let j = 0; j < k; j++) {
    for (let prev = 0; prev < j; prev++) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += a[i * k + j]! * a[i * k + prev]!;
      for (let i = 0; i < n; i++) a[i * k + j] = a[i * k + j]! - dot * a[i * k + prev]!;
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += a[i * k + j]! ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let i = 0; i < n; i++) a[i * k + j] = a[i * k + j]! / norm;
  }
  const out = new Float32Array(rows * cols);
  // q [n, k] has orthonormal columns; rows <= cols: out = qᵀ [k, n]; else out = q [n, k]
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = rows <= cols ? a[c * k + r]! : a[r * k + c]!;
  return out;
}

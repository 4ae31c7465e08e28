import * as tf from "@tensorflow/tfjs";
import { isIndexedSlices, type Gradient, type GradientMap, type IndexedSlices } from "./optimizers.js";

/**
 * Gradient clipping, TensorFlow's definitions (no read-back: all on the device).
 * - per tensor (`tf.clip_by_norm`, what the STAMP reference does): g · c / max(‖g‖₂, c) for each gradient;
 * - global norm (`tf.clip_by_global_norm`): every g · c / max(N, c), N = √(Σ ‖g‖₂²) over all gradients.
 * An IndexedSlices gradient is measured and scaled through its `values` (as TF does); its `indices`
 * object is passed through unchanged. The returned gradients are new tensors the caller disposes
 * (not the passed-through indices); the inputs are not disposed.
 */

function valuesOf(g: Gradient): tf.Tensor {
  return isIndexedSlices(g) ? g.values : g;
}

function withValues(g: Gradient, values: tf.Tensor): Gradient {
  return isIndexedSlices(g) ? ({ indices: (g as IndexedSlices).indices, values } as IndexedSlices) : values;
}

function mapGrads(grads: GradientMap, fn: (g: Gradient) => Gradient): GradientMap {
  if (grads instanceof Map) {
    const out = new Map<tf.Variable, Gradient>();
    for (const [v, g] of grads) out.set(v, fn(g));
    return out;
  }
  const out: Record<string, Gradient> = {};
  for (const [k, g] of Object.entries(grads)) out[k] = fn(g);
  return out;
}

function listGrads(grads: GradientMap): Gradient[] {
  return grads instanceof Map ? [...grads.values()] : Object.values(grads);
}

/** √(Σ ‖g‖₂²) over all gradients, as a scalar tensor (caller disposes). */
export function globalNorm(grads: GradientMap): tf.Scalar {
  return tf.tidy(() => {
    const list = listGrads(grads);
    if (list.length === 0) return tf.scalar(0);
    return tf.addN(list.map((g) => valuesOf(g).toFloat().square().sum())).sqrt() as tf.Scalar;
  });
}

/** Clips each gradient to L2 norm at most `clipNorm`. */
export function clipByNorm(grads: GradientMap, clipNorm: number): GradientMap {
  checkClip(clipNorm);
  return mapGrads(grads, (g) =>
    withValues(
      g,
      tf.tidy(() => {
        const x = valuesOf(g).toFloat();
        const n = x.square().sum().sqrt();
        return x.mul(tf.scalar(clipNorm).div(tf.maximum(n, clipNorm)));
      }),
    ),
  );
}

/** Scales all gradients together so that their global norm is at most `clipNorm`; also returns the norm before clipping. */
export function clipByGlobalNorm(grads: GradientMap, clipNorm: number): { grads: GradientMap; globalNorm: tf.Scalar } {
  checkClip(clipNorm);
  const norm = globalNorm(grads);
  const scale = tf.tidy(() => tf.scalar(clipNorm).div(tf.maximum(norm, clipNorm)));
  try {
    const out = mapGrads(grads, (g) => withValues(g, tf.tidy(() => valuesOf(g).toFloat().mul(scale))));
    return { grads: out, globalNorm: norm };
  } finally {
    scale.dispose();
  }
}

/** Disposes the tensors of a gradient map (for IndexedSlices: values, and indices when they are a tensor). */
export function disposeGradients(grads: GradientMap, opts: { keepIndices?: boolean } = {}): void {
  for (const g of listGrads(grads)) {
    if (isIndexedSlices(g)) {
      g.values.dispose();
      if (!opts.keepIndices && g.indices instanceof tf.Tensor) g.indices.dispose();
    } else g.dispose();
  }
}

function checkClip(c: number): void {
  if (!(typeof c === "number" && c > 0 && Number.isFinite(c))) throw new Error(`clipping: the clip norm must be a number > 0, got ${c}`);
}

/** The optimizers bench/stamp.ts can use: recblocks' (src/train; fused native or element-wise) or TF.js's own. */
import * as tf from "@tensorflow/tfjs";
import { createOptimizer, Optimizer } from "../src/train/optimizers.js";

export interface StampOptimizer {
  apply(grads: tf.NamedTensorMap): void;
}

/** TF's clip_by_norm per tensor: g * c / max(||g||, c). */
function clipPerTensor(grads: tf.NamedTensorMap, c: number | null): tf.NamedTensorMap {
  if (c === null) return grads;
  const out: tf.NamedTensorMap = {};
  for (const [k, g] of Object.entries(grads)) {
    out[k] = tf.mul(g, tf.div(tf.scalar(c), tf.maximum(tf.norm(g), tf.scalar(c))));
  }
  return out;
}

export function createStampOptimizer(kind: "native" | "recblocks" | "tfjs", lr: number, _vars: tf.Variable[], clip: number | null): StampOptimizer {
  if (kind === "tfjs") {
    const o = tf.train.adam(lr, 0.9, 0.999, 1e-8);
    return { apply: (g) => o.applyGradients(clipPerTensor(g, clip) as never) };
  }
  // recblocks' Adam: "native" runs it as TensorFlow's fused ResourceApplyAdam (src/engine NativeAdamSlots, the
  // default on the native backend), "recblocks" as its element-wise TF.js ops
  const o = createOptimizer({ type: "adam", learningRate: lr });
  return {
    apply: (g) => {
      const before = Optimizer.nativeAdam;
      Optimizer.nativeAdam = kind === "native";
      try {
        o.applyGradients(clipPerTensor(g, clip));
      } finally {
        Optimizer.nativeAdam = before;
      }
    },
  };
}

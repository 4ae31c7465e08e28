/** The optimizers bench/stamp.ts can use: recblocks' (src/train), TF.js's own, or the native fused Adam. */
import * as tf from "@tensorflow/tfjs";
import { createOptimizer } from "../src/train/optimizers.js";

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

export function createStampOptimizer(kind: "native" | "recblocks" | "tfjs", lr: number, vars: tf.Variable[], clip: number | null): StampOptimizer {
  if (kind === "tfjs") {
    const o = tf.train.adam(lr, 0.9, 0.999, 1e-8);
    return { apply: (g) => o.applyGradients(clipPerTensor(g, clip) as never) };
  }
  if (kind === "recblocks") {
    const o = createOptimizer({ type: "adam", learningRate: lr });
    return { apply: (g) => o.applyGradients(clipPerTensor(g, clip)) };
  }
  return createNativeAdam(lr, vars, clip);
}

interface NativeBackend {
  binding: Record<string, number>;
  executeMultipleOutputs(name: string, attrs: unknown[], inputs: tf.Tensor[], n: number): tf.Tensor[];
}

let handleCounter = 0;

/**
 * Adam as one fused, in-place TensorFlow kernel per variable (ResourceApplyAdam on resource variables),
 * on the native backend. The tf.Variable keeps working as usual: after each step it is re-pointed at the
 * resource's new value (ReadVariableOp aliases the buffer; the next update copies it once if still held).
 * Same maths as PyTorch's / recblocks' dense Adam: TF's rule has epsilon in the "epsilon-hat" place, so
 * it gets eps * sqrt(1 - beta2^t). Per-tensor clipping (TF's clip_by_norm) before the update.
 */
function createNativeAdam(lr: number, vars: tf.Variable[], clip: number | null, beta1 = 0.9, beta2 = 0.999, eps = 1e-8): StampOptimizer {
  if (tf.getBackend() !== "tensorflow") {
    const o = createOptimizer({ type: "adam", learningRate: lr });
    return { apply: (g) => o.applyGradients(clipPerTensor(g, clip)) };
  }
  const b = tf.backend() as unknown as NativeBackend;
  const B = b.binding;
  const typeAttr = (name: string) => ({ name, type: B.TF_ATTR_TYPE, value: B.TF_FLOAT });
  const handle = (shape: number[]) =>
    b.executeMultipleOutputs("VarHandleOp", [
      typeAttr("dtype"),
      { name: "shape", type: B.TF_ATTR_SHAPE, value: shape },
      { name: "container", type: B.TF_ATTR_STRING, value: "" },
      { name: "shared_name", type: B.TF_ATTR_STRING, value: `recblocks_adam_${process.pid}_${handleCounter++}` },
    ], [], 1)[0]!;
  const assign = (h: tf.Tensor, x: tf.Tensor) => b.executeMultipleOutputs("AssignVariableOp", [typeAttr("dtype")], [h, x], 0);
  const read = (h: tf.Tensor) => b.executeMultipleOutputs("ReadVariableOp", [typeAttr("dtype")], [h], 1)[0]!;
  const state = new Map<string, { v: tf.Variable; p: tf.Tensor; m: tf.Tensor; s: tf.Tensor }>();
  for (const v of vars) {
    const p = handle(v.shape);
    const m = handle(v.shape);
    const s = handle(v.shape);
    assign(p, v);
    tf.tidy(() => {
      assign(m, tf.zeros(v.shape));
      assign(s, tf.zeros(v.shape));
    });
    const cur = read(p);
    v.assign(cur);
    cur.dispose();
    state.set(v.name, { v, p, m, s });
  }
  let t = 0;
  const attrs = [typeAttr("T"), { name: "use_locking", type: B.TF_ATTR_BOOL, value: false }, { name: "use_nesterov", type: B.TF_ATTR_BOOL, value: false }];
  return {
    apply(grads) {
      t++;
      tf.tidy(() => {
        const sc = [tf.scalar(Math.pow(beta1, t)), tf.scalar(Math.pow(beta2, t)), tf.scalar(lr), tf.scalar(beta1), tf.scalar(beta2),
          tf.scalar(eps * Math.sqrt(1 - Math.pow(beta2, t)))];
        for (const [name, g0] of Object.entries(grads)) {
          const st = state.get(name);
          if (!st) throw new Error(`native Adam: no state for variable ${name}`);
          let g = g0;
          if (clip !== null) {
            const n = tf.norm(g).dataSync()[0]!;
            if (n > clip) g = tf.mul(g, tf.scalar(clip / n));
          }
          b.executeMultipleOutputs("ResourceApplyAdam", attrs, [st.p, st.m, st.s, ...sc, g], 0);
          const cur = read(st.p);
          st.v.assign(cur);
          cur.dispose();
        }
      });
    },
  };
}

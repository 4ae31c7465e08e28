import * as tf from "@tensorflow/tfjs";
import "./quiet.js";

/**
 * Ops recblocks offers on top of TF.js: on the native backend they run TensorFlow's fused kernels by
 * name (through tfjs-node's `executeMultipleOutputs`, registered as TF.js kernels so that tidy,
 * memory accounting and gradients work as for any op); elsewhere a TF.js composite with the same maths.
 */

const SPARSE_XENT = "RecblocksSparseSoftmaxCrossEntropy";

/** The parts of tfjs-node's NodeJSKernelBackend used here. */
interface NodeBackendLike {
  binding: { TF_ATTR_TYPE: number; TF_FLOAT: number; TF_INT32: number };
  executeMultipleOutputs(name: string, attrs: { name: string; type: number; value: unknown }[], inputs: tf.TensorInfo[], n: number): tf.TensorInfo[];
}

/** Registers the fused kernels for the `tensorflow` backend (called by initEngine once tfjs-node is loaded). */
export function registerNativeKernels(): void {
  if (tf.getKernel(SPARSE_XENT, "tensorflow")) return;
  tf.registerKernel({
    kernelName: SPARSE_XENT,
    backendName: "tensorflow",
    kernelFunc: ({ inputs, backend }) => {
      const b = backend as unknown as NodeBackendLike;
      const T = b.binding.TF_ATTR_TYPE;
      const attrs = [
        { name: "T", type: T, value: b.binding.TF_FLOAT },
        { name: "Tlabels", type: T, value: b.binding.TF_INT32 },
      ];
      return b.executeMultipleOutputs("SparseSoftmaxCrossEntropyWithLogits", attrs, [inputs.logits!, inputs.labels!], 2);
    },
  });
}

/** True when the fused native loss can run here (backend `tensorflow` with recblocks' kernels registered). */
export function hasFusedSparseSoftmaxCrossEntropy(): boolean {
  return tf.getBackend() === "tensorflow" && tf.getKernel(SPARSE_XENT, "tensorflow") !== undefined;
}

export interface SparseXentOptions {
  /** "auto" (fused on native, composite elsewhere), or force one implementation (tests, benchmarks). */
  impl?: "auto" | "fused" | "composite";
}

/**
 * Per-row softmax cross-entropy of `logits` [B, C] against integer class `labels` [B] (int32,
 * each in [0, C)): loss[i] = logsumexp(logits[i]) - logits[i, labels[i]]. Differentiable with
 * respect to `logits`; no one-hot matrix is made. On the native backend this is TensorFlow's
 * `SparseSoftmaxCrossEntropyWithLogits` (loss and gradient in one kernel).
 */
export function sparseSoftmaxCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, opts: SparseXentOptions = {}): tf.Tensor1D {
  if (logits.rank !== 2) throw new Error(`sparseSoftmaxCrossEntropy: logits must be [batch, classes], got shape [${logits.shape}]`);
  if (labels.rank !== 1 || labels.shape[0] !== logits.shape[0])
    throw new Error(`sparseSoftmaxCrossEntropy: labels must be [${logits.shape[0]}], got shape [${labels.shape}]`);
  const impl = opts.impl ?? "auto";
  const fused = impl === "fused" || (impl === "auto" && hasFusedSparseSoftmaxCrossEntropy());
  if (fused && !hasFusedSparseSoftmaxCrossEntropy())
    throw new Error(`sparseSoftmaxCrossEntropy: the fused kernel needs the tensorflow backend (current: ${tf.getBackend()})`);
  const x = logits.dtype === "float32" ? logits : tf.cast(logits, "float32");
  const y = labels.dtype === "int32" ? labels : tf.cast(labels, "int32");
  try {
    return fused ? fusedXent(x, y) : compositeXent(x, y);
  } finally {
    if (x !== logits) x.dispose();
    if (y !== labels) y.dispose();
  }
}

function fusedXent(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  const f = tf.customGrad(((lg: tf.Tensor, save: tf.GradSaveFunc) => {
    const [loss, backprop] = tf.engine().runKernel(SPARSE_XENT, { logits: lg, labels }, {}) as tf.Tensor[];
    save([backprop!]);
    return {
      value: loss!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(saved[0]!, tf.expandDims(dy, 1)),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(logits) as tf.Tensor1D;
}

function compositeXent(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  const [B, C] = logits.shape;
  const f = tf.customGrad(((lg: tf.Tensor, save: tf.GradSaveFunc) => {
    const shifted = tf.sub(lg, tf.max(lg, 1, true));
    const lse = tf.log(tf.sum(tf.exp(shifted), 1));
    // Flat index of each row's label: row * C + label; a gather, not a one-hot product.
    const flatIdx = tf.add(tf.mul(tf.range(0, B, 1, "int32"), tf.scalar(C, "int32")), labels);
    const picked = tf.gather(tf.reshape(shifted, [B * C]), flatIdx);
    save([shifted, lse, flatIdx]);
    return {
      value: tf.sub(lse, picked),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sh, l, idx] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const dyCol = tf.expandDims(dy, 1);
        const probs = tf.exp(tf.sub(sh, tf.expandDims(l, 1)));
        const atLabels = tf.reshape(tf.scatterND(tf.expandDims(idx, 1), dy, [B * C]), [B, C]);
        return tf.sub(tf.mul(probs, dyCol), atLabels);
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(logits) as tf.Tensor1D;
}

// ------------------------------------------------------------------------------ fused Adam (native)

interface NativeResourceBackend {
  binding: Record<string, number>;
  executeMultipleOutputs(name: string, attrs: unknown[], inputs: tf.Tensor[], n: number): tf.Tensor[];
}

let adamHandleCounter = 0;

/**
 * Resource variables of TensorFlow that hold a parameter and its two Adam moments during one fused
 * update. Owned by an optimizer; `destroy()` frees them.
 */
export class NativeAdamSlots {
  private readonly handles: tf.Tensor[];
  constructor(shape: number[]) {
    const b = tf.backend() as unknown as NativeResourceBackend;
    const B = b.binding;
    this.handles = [0, 1, 2].map(
      () =>
        tf.keep(
          b.executeMultipleOutputs("VarHandleOp", [
            { name: "dtype", type: B.TF_ATTR_TYPE, value: B.TF_FLOAT },
            { name: "shape", type: B.TF_ATTR_SHAPE, value: shape },
            { name: "container", type: B.TF_ATTR_STRING, value: "" },
            { name: "shared_name", type: B.TF_ATTR_STRING, value: `recblocks_adam_${process.pid}_${adamHandleCounter++}` },
          ], [], 1)[0]!,
        ),
    );
  }

  /**
   * One Adam step as TensorFlow's `ResourceApplyAdam` (one fused kernel instead of ~13 element-wise
   * ops): p, m, v are copied into the resources (aliased; TensorFlow copies on write when shared),
   * updated in place, and the tf.Variables re-pointed at the results. Same maths as recblocks' Adam:
   * TensorFlow puts epsilon in the "epsilon hat" place, so it gets eps * sqrt(1 - beta2^t).
   */
  step(p: tf.Variable, m: tf.Variable, v: tf.Variable, g: tf.Tensor, lr: number, beta1: number, beta2: number, eps: number, t: number): void {
    const b = tf.backend() as unknown as NativeResourceBackend;
    const B = b.binding;
    const dtype = [{ name: "dtype", type: B.TF_ATTR_TYPE, value: B.TF_FLOAT }];
    const [hp, hm, hv] = this.handles as [tf.Tensor, tf.Tensor, tf.Tensor];
    tf.tidy(() => {
      b.executeMultipleOutputs("AssignVariableOp", dtype, [hp, p], 0);
      b.executeMultipleOutputs("AssignVariableOp", dtype, [hm, m], 0);
      b.executeMultipleOutputs("AssignVariableOp", dtype, [hv, v], 0);
      const sc = [Math.pow(beta1, t), Math.pow(beta2, t), lr, beta1, beta2, eps * Math.sqrt(1 - Math.pow(beta2, t))].map((x) => tf.scalar(x));
      b.executeMultipleOutputs(
        "ResourceApplyAdam",
        [
          { name: "T", type: B.TF_ATTR_TYPE, value: B.TF_FLOAT },
          { name: "use_locking", type: B.TF_ATTR_BOOL, value: false },
          { name: "use_nesterov", type: B.TF_ATTR_BOOL, value: false },
        ],
        [hp, hm, hv, ...sc, g],
        0,
      );
      for (const [h, target] of [[hp, p], [hm, m], [hv, v]] as const) {
        const cur = b.executeMultipleOutputs("ReadVariableOp", dtype, [h], 1)[0]!;
        target.assign(cur);
      }
      // release the resources' references, so that each buffer has one owner (the tf.Variable) again
      for (const h of this.handles) b.executeMultipleOutputs("AssignVariableOp", dtype, [h, tf.zeros([0])], 0);
    });
  }

  destroy(): void {
    const b = tf.backend() as unknown as NativeResourceBackend;
    for (const h of this.handles) {
      try {
        b.executeMultipleOutputs("DestroyResourceOp", [{ name: "ignore_lookup_error", type: b.binding.TF_ATTR_BOOL, value: true }], [h], 0);
      } catch {
        /* already gone */
      }
      h.dispose();
    }
  }
}

/** True when Adam can run as TensorFlow's fused kernel here (native backend). */
export function hasNativeAdam(): boolean {
  return tf.getBackend() === "tensorflow";
}

// ------------------------------------------------------------------------------ stateless multinomial (native)

/**
 * One draw per row of `logits` [N, C] from softmax(logits[i]) as TensorFlow's `StatelessMultinomial`
 * (one kernel, no [N, C] intermediates in TF.js, the same draws for the same `seed` pair: no kernel
 * state, so nothing accumulates across calls). Native backend only (see `hasNativeMultinomial`).
 * Returns int32 [N] column ids.
 */
export function statelessMultinomial(logits: tf.Tensor2D, seed: [number, number]): tf.Tensor1D {
  const b = tf.backend() as unknown as NativeResourceBackend;
  const B = b.binding;
  return tf.tidy(() => {
    const out = b.executeMultipleOutputs(
      "StatelessMultinomial",
      [
        { name: "T", type: B.TF_ATTR_TYPE, value: B.TF_FLOAT },
        { name: "Tseed", type: B.TF_ATTR_TYPE, value: B.TF_INT32 },
        { name: "output_dtype", type: B.TF_ATTR_TYPE, value: B.TF_INT32 },
      ],
      [logits, tf.scalar(1, "int32"), tf.tensor1d(seed, "int32")],
      1,
    )[0]!;
    return tf.reshape(out, [logits.shape[0]]) as tf.Tensor1D;
  });
}

/** True when `statelessMultinomial` can run here (native backend). */
export function hasNativeMultinomial(): boolean {
  return tf.getBackend() === "tensorflow";
}

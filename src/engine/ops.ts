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

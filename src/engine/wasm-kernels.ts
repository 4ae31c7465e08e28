import * as tf from "@tensorflow/tfjs";

/**
 * Kernels the wasm backend lacks or runs slowly, registered by `registerWasmKernels()` (called by
 * `initEngine` when it picks wasm; idempotent). Written against the wasm backend's public parts
 * (`makeOutput`, `typedArrayFromHeap`, `disposeData`) and its own Transpose / BatchMatMul kernels.
 */

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object): boolean;
}

const WRAPPED = Symbol.for("recblocks.wasmFastPath");

/**
 * UnsortedSegmentSum (the gradient of tf.gather, so of every embedding lookup): out[s] = Σ x[i]
 * over i with segmentIds[i] == s. Ids outside [0, numSegments) are dropped, as TensorFlow's CPU
 * kernel does for negative ids.
 */
function unsortedSegmentSum(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const x = args.inputs.x!;
  const ids = args.inputs.segmentIds!;
  const numSegments = Number((args.attrs as { numSegments: number }).numSegments);
  const idRank = ids.shape.length;
  for (let d = 0; d < idRank; d++) {
    if (ids.shape[d] !== x.shape[d]) throw new Error(`UnsortedSegmentSum: segmentIds shape [${ids.shape}] must be a prefix of x shape [${x.shape}]`);
  }
  const inner = x.shape.slice(idRank).reduce((a, b) => a * b, 1);
  const outShape = [numSegments, ...x.shape.slice(idRank)];
  const out = backend.makeOutput(outShape, x.dtype);
  // Views after makeOutput: an allocation may grow (and detach) the wasm heap.
  const o = backend.typedArrayFromHeap(out);
  const xv = backend.typedArrayFromHeap(x);
  const iv = backend.typedArrayFromHeap(ids);
  o.fill(0);
  const n = iv.length;
  for (let i = 0; i < n; i++) {
    const s = iv[i]!;
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) o[dst + j] += xv[src + j]!;
  }
  return out;
}

/**
 * wasm's BatchMatMul with transposeA/transposeB is ~10x slower than a Transpose followed by a plain
 * matmul (77 ms vs 8 ms for 256x64 · (5000x64)ᵀ): do that instead. Same for _FusedMatMul.
 */
function fastTransposedMatMul(kernelName: string): void {
  const orig = tf.getKernel(kernelName, "wasm");
  const transposeK = tf.getKernel("Transpose", "wasm");
  if (!orig || !transposeK || (orig.kernelFunc as unknown as Record<symbol, boolean>)[WRAPPED]) return;
  const origFunc = orig.kernelFunc;
  const kernelFunc: tf.KernelFunc = (args) => {
    const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
    if (!attrs.transposeA && !attrs.transposeB) return origFunc(args);
    const backend = args.backend as unknown as WasmBackendLike;
    const swapLast = (t: tf.TensorInfo): tf.TensorInfo => {
      const r = t.shape.length;
      const perm = [...Array(r).keys()];
      perm[r - 2] = r - 1;
      perm[r - 1] = r - 2;
      return transposeK.kernelFunc({ inputs: { x: t }, backend: args.backend, attrs: { perm } }) as tf.TensorInfo;
    };
    const temps: tf.TensorInfo[] = [];
    const inputs = { ...args.inputs };
    if (attrs.transposeA) temps.push((inputs.a = swapLast(args.inputs.a!)));
    if (attrs.transposeB) temps.push((inputs.b = swapLast(args.inputs.b!)));
    try {
      return origFunc({ ...args, inputs, attrs: { ...args.attrs, transposeA: false, transposeB: false } });
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
  (kernelFunc as unknown as Record<symbol, boolean>)[WRAPPED] = true;
  tf.unregisterKernel(kernelName, "wasm");
  tf.registerKernel({ ...orig, kernelFunc });
}

let registered = false;

/** Registers recblocks' wasm kernels (after @tensorflow/tfjs-backend-wasm is imported). Idempotent. */
export function registerWasmKernels(): void {
  if (registered) return;
  if (!tf.getKernel("UnsortedSegmentSum", "wasm")) {
    tf.registerKernel({ kernelName: "UnsortedSegmentSum", backendName: "wasm", kernelFunc: unsortedSegmentSum as unknown as tf.KernelFunc });
  }
  fastTransposedMatMul("BatchMatMul");
  fastTransposedMatMul("_FusedMatMul");
  registered = true;
}

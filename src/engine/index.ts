// Engine: backend selection, the native TensorFlow backend, fused ops, kernels a backend lacks, seeded randomness.
export {
  initEngine,
  getEngineInfo,
  engineLine,
  parseBackendChoice,
  parseThreads,
  BACKEND_CHOICES,
  type BackendName,
  type BackendChoice,
  type EngineInfo,
  type EngineOptions,
} from "./engine.js";
export { setupStatus } from "./native.js";
export { sparseSoftmaxCrossEntropy, hasFusedSparseSoftmaxCrossEntropy, type SparseXentOptions } from "./ops.js";
export { registerWasmKernels } from "./wasm-kernels.js";
export { Rng, setSeed, getSeed, rng, normalValues, uniformValues, randomNormal, randomUniform, glorotUniform } from "./random.js";

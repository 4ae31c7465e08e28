export { mulberry32, randomInt, toRandomSource, type RandomSource } from "./rng.js";
export type {
  CausalMaskingConfig,
  MaskedMaskingConfig,
  MaskingConfig,
  MaskingConfigs,
  MaskingScheme,
  MaskingType,
  MaskMode,
  MaskOptions,
  MaskResult,
  Resolved,
} from "./types.js";
export { maskCausal, causalScheme } from "./causal.js";
export { maskMasked, maskedScheme } from "./masked.js";
export { maskPermutation, permutationScheme, samplePlmSpans, type PermutationMaskingConfig, type PlmSpan } from "./plm.js";
export { maskReplacement, replacementScheme, corruptBatch, type ReplacementMaskingConfig, type CorruptedBatch } from "./rtd.js";
export { rowSpans, baseResult, setLabel, type RowSpans } from "./rows.js";
export { maskBatch, resolveMaskingConfig, registerMaskingScheme, getMaskingScheme, maskingTypes } from "./registry.js";
export { MASKING_BY_ARCHITECTURE, CAUSAL_DECODERS, canonicalMaskingType, maskingMismatch, type MaskingArchitecture, type MaskingMismatch } from "./architectures.js";

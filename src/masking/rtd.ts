import { maskedScheme, maskMasked } from "./masked.js";
import type { RandomSource } from "./rng.js";
import type { MaskingScheme, MaskMode, MaskOptions, MaskResult, Resolved } from "./types.js";

/**
 * Replacement token detection (ELECTRA; Transformers4Rec `"rtd"` / `"replacement"`). The masking is
 * masked LM's; the model adds the generator / discriminator objective (src/model/rtd.ts).
 */
export interface ReplacementMaskingConfig {
  type: "rtd";
  /** Probability that a real item becomes a generator label (and is hidden) during training. Default 0.15. */
  mlmProbability?: number;
  /** Evaluate on the last item of each sequence only. Default true. */
  evalOnLastItemSeqOnly?: boolean;
  /** Weight of the discriminator loss in the total (ELECTRA's lambda). Default 50. */
  discriminatorLossWeight?: number;
  /**
   * Where replacement items are sampled from: `generator` (default; the generator's softmax over the
   * whole catalogue, as ELECTRA) or `batch` (the generator's softmax restricted to the items masked in
   * the batch, T4R's `sample_from_batch`).
   */
  sampleFrom?: "generator" | "batch";
}

declare module "./types.js" {
  interface MaskingConfigs {
    rtd: ReplacementMaskingConfig;
  }
}

/** Masked LM masking under the RTD config (same draws as `masked` with the same mlmProbability). */
export function maskReplacement(
  cfg: Resolved<ReplacementMaskingConfig>,
  itemIds: Int32Array,
  B: number,
  L: number,
  mode: MaskMode,
  rng: RandomSource,
  opts: MaskOptions = {},
): MaskResult {
  return maskMasked({ type: "masked", mlmProbability: cfg.mlmProbability, evalOnLastItemSeqOnly: cfg.evalOnLastItemSeqOnly }, itemIds, B, L, mode, rng, opts);
}

/** What `corruptBatch` returns: the discriminator's input ids and labels, [B*L] row-major. */
export interface CorruptedBatch {
  /** Original ids with every generator label position holding its sampled replacement. */
  inputIds: Int32Array;
  /** 1 where the sampled item differs from the original (ELECTRA: a sample equal to the original counts as original). */
  replaced: Uint8Array;
  /** Number of positions with replaced = 1. */
  numReplaced: number;
}

/**
 * Builds the discriminator's input from a training mask: `mask.inputIds` with each label position
 * (flat index `positions[k]`, label `mask.labels[positions[k]]`) set to `samples[k]`.
 */
export function corruptBatch(mask: MaskResult, positions: Int32Array, samples: Int32Array): CorruptedBatch {
  if (samples.length !== positions.length) throw new Error(`corruptBatch: ${samples.length} samples for ${positions.length} positions`);
  const inputIds = Int32Array.from(mask.inputIds);
  const replaced = new Uint8Array(inputIds.length);
  let numReplaced = 0;
  for (let k = 0; k < positions.length; k++) {
    const i = positions[k]!;
    const original = mask.labels[i]!;
    if (original === 0) throw new Error(`corruptBatch: position ${i} is not a label position`);
    const s = samples[k]!;
    inputIds[i] = s;
    if (s !== original) {
      replaced[i] = 1;
      numReplaced++;
    }
  }
  return { inputIds, replaced, numReplaced };
}

export const replacementScheme: MaskingScheme<ReplacementMaskingConfig> = {
  type: "rtd",
  aliases: ["replacement"],
  defaults: { mlmProbability: 0.15, evalOnLastItemSeqOnly: true, discriminatorLossWeight: 50, sampleFrom: "generator" },
  check(cfg) {
    // the masked LM options are checked as `masked` checks them
    const issues = maskedScheme.check({ type: "masked", mlmProbability: cfg.mlmProbability, evalOnLastItemSeqOnly: cfg.evalOnLastItemSeqOnly });
    const w = cfg.discriminatorLossWeight;
    if (typeof w !== "number" || !Number.isFinite(w) || w < 0) {
      issues.push({ key: "discriminatorLossWeight", message: "Expected a number >= 0.", expected: "discriminatorLossWeight >= 0", received: w });
    }
    if (cfg.sampleFrom !== "generator" && cfg.sampleFrom !== "batch") {
      issues.push({ key: "sampleFrom", message: 'Expected "generator" or "batch".', expected: ["generator", "batch"], received: cfg.sampleFrom });
    }
    return issues;
  },
  mask: maskReplacement,
};

import type { RandomSource } from "./rng.js";
import { baseResult, checkTargets, rowSpans, setLabel } from "./rows.js";
import type { CausalMaskingConfig, MaskingScheme, MaskMode, MaskOptions, MaskResult, Resolved } from "./types.js";

/**
 * Causal LM masking, as Transformers4Rec's `CausalLanguageModeling` (with the eval fix of PR #723).
 * Position t keeps item t; its output predicts item t+1. Per row with real items at [s, e]:
 *
 * - train (and eval with `evalOnLastItemSeqOnly: false`): labels[t] = item[t+1] for s <= t < e;
 *   the last real item and the padding are replaced by [MASK] (nothing predicts from them).
 * - train with `trainOnLastItemSeqOnly`, eval with `evalOnLastItemSeqOnly` (default): one label,
 *   labels[e-1] = item[e]; only padding is replaced by [MASK] (all real items stay visible).
 * - inference: no label; padding replaced by [MASK]; the prediction is read at position e.
 * - eval or train with `opts.targets` (prefix examples): the inference layout, with targets[b] as the
 *   label at position e.
 *
 * Causality itself comes from the model's attention mask, not from masking.
 */
export function maskCausal(
  cfg: Resolved<CausalMaskingConfig>,
  itemIds: Int32Array,
  B: number,
  L: number,
  mode: MaskMode,
  _rng: RandomSource,
  opts: MaskOptions = {},
): MaskResult {
  const spans = rowSpans(itemIds, B, L);
  const r = baseResult(itemIds, B, L);
  const targets = opts.targets;
  checkTargets(targets, B);
  const inferenceLayout = mode === "inference" || targets !== undefined;
  const lastOnly = mode === "train" ? cfg.trainOnLastItemSeqOnly : cfg.evalOnLastItemSeqOnly;
  if (inferenceLayout) r.readPositions = new Int32Array(B);

  for (let b = 0; b < B; b++) {
    const o = b * L;
    const s = spans.start[b]!;
    const e = spans.end[b]!;
    // padding is always replaced by [MASK] (T4R)
    for (let t = 0; t < L; t++) if (itemIds[o + t] === 0) r.maskInput[o + t] = 1;
    if (inferenceLayout) {
      const read = e < 0 ? 0 : e;
      r.readPositions![b] = read;
      if (targets !== undefined) setLabel(r, o + read, targets[b]!);
      else r.maskedPositions[o + read] = 1;
      continue;
    }
    if (e < 0) continue;
    if (lastOnly) {
      if (e > s) setLabel(r, o + e - 1, itemIds[o + e]!);
    } else {
      for (let t = s; t < e; t++) setLabel(r, o + t, itemIds[o + t + 1]!);
      r.maskInput[o + e] = 1; // the last real item predicts nothing: [MASK] as in T4R
    }
  }
  return r;
}

export const causalScheme: MaskingScheme<CausalMaskingConfig> = {
  type: "causal",
  aliases: ["clm"],
  defaults: { trainOnLastItemSeqOnly: false, evalOnLastItemSeqOnly: true },
  check(cfg) {
    const issues = [];
    for (const key of ["trainOnLastItemSeqOnly", "evalOnLastItemSeqOnly"] as const) {
      if (typeof cfg[key] !== "boolean") issues.push({ key, message: `Expected a boolean.`, expected: "boolean", received: cfg[key] });
    }
    return issues;
  },
  mask: maskCausal,
};

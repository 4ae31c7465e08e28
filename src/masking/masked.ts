import { randomInt, type RandomSource } from "./rng.js";
import { baseResult, checkTargets, rowSpans, setLabel } from "./rows.js";
import type { MaskedMaskingConfig, MaskingScheme, MaskMode, MaskOptions, MaskResult, Resolved } from "./types.js";

/**
 * Masked LM masking, as Transformers4Rec's `MaskedLanguageModeling` (with the inference fix of
 * PR #551). Labelled positions hold [MASK] in the input (id 0, `maskInput` 1); attention is
 * bidirectional. Per row with real items at [s, e] (n = e - s + 1):
 *
 * - train: each real item becomes a label with probability `mlmProbability`; then one real position
 *   drawn uniformly is forced to be a label; then, if every real item is a label, one of them drawn
 *   uniformly is unmasked. So a row with n >= 2 has at least one label and one visible item; a row
 *   with a single item has no label (as in T4R: nothing to predict it from).
 *   Random draws, row by row: n uniforms for the Bernoulli draws, one for the forced label, and one
 *   more only when all items became labels.
 * - eval, `evalOnLastItemSeqOnly` (default): the last real item is the only label and is [MASK]ed.
 * - eval, `evalOnLastItemSeqOnly: false`: T4R's `predict_all` (labels[t] = item[t+1] for s <= t < e,
 *   those positions [MASK]ed). Kept for parity; see docs/masking.md for why it is a weak protocol.
 * - inference: the sequence grows to L + 1: a [MASK] is inserted right after the last real item
 *   (position e + 1; padding after it moves one step right) and the prediction is read there.
 * - eval or train with `opts.targets` (prefix examples): the inference layout with targets[b] as the label at the [MASK].
 */
export function maskMasked(
  cfg: Resolved<MaskedMaskingConfig>,
  itemIds: Int32Array,
  B: number,
  L: number,
  mode: MaskMode,
  rng: RandomSource,
  opts: MaskOptions = {},
): MaskResult {
  const spans = rowSpans(itemIds, B, L);
  const targets = opts.targets;
  checkTargets(targets, B);
  if (mode === "inference" || targets !== undefined) {
    return appendMaskLayout(itemIds, B, L, spans.end, targets);
  }
  const r = baseResult(itemIds, B, L);
  const hide = (i: number, label: number): void => {
    setLabel(r, i, label);
    r.maskInput[i] = 1;
    r.inputIds[i] = 0;
  };

  if (mode === "eval") {
    for (let b = 0; b < B; b++) {
      const o = b * L;
      const s = spans.start[b]!;
      const e = spans.end[b]!;
      if (e < 0) continue;
      if (cfg.evalOnLastItemSeqOnly) hide(o + e, itemIds[o + e]!);
      else for (let t = s; t < e; t++) hide(o + t, itemIds[o + t + 1]!);
    }
    return r;
  }

  // train
  const p = cfg.mlmProbability;
  for (let b = 0; b < B; b++) {
    const o = b * L;
    const s = spans.start[b]!;
    const n = spans.length[b]!;
    if (n === 0) continue;
    let count = 0;
    for (let t = s; t < s + n; t++) {
      if (rng.next() < p) {
        r.maskedPositions[o + t] = 1;
        count++;
      }
    }
    const forced = s + randomInt(rng, n);
    if (!r.maskedPositions[o + forced]) {
      r.maskedPositions[o + forced] = 1;
      count++;
    }
    if (count === n) {
      // every real item is a label: unmask one, drawn uniformly among them (all of [s, e])
      r.maskedPositions[o + s + randomInt(rng, n)] = 0;
    }
    for (let t = s; t < s + n; t++) {
      if (r.maskedPositions[o + t]) {
        r.maskedPositions[o + t] = 0; // set again by hide() with its label
        hide(o + t, itemIds[o + t]!);
      }
    }
  }
  return r;
}

/**
 * Masked LM inference layout: [MASK] inserted after the last real item (padding after it moves one
 * step right); seqLen = L + 1. With `targets`, targets[b] is the label at row b's [MASK]. Also the
 * inference layout of permutation LM (src/masking/plm.ts), which adds its permutation mask.
 */
export function appendMaskLayout(itemIds: Int32Array, B: number, L: number, end: Int32Array, targets?: Int32Array): MaskResult {
  const L1 = L + 1;
  const n = B * L1;
  const r: MaskResult = {
    batchSize: B,
    seqLen: L1,
    inputIds: new Int32Array(n),
    maskInput: new Uint8Array(n),
    maskedPositions: new Uint8Array(n),
    labels: new Int32Array(n),
    validPositions: new Uint8Array(n),
    readPositions: new Int32Array(B),
    numLabels: 0,
    appendMask: true,
  };
  for (let b = 0; b < B; b++) {
    const src = b * L;
    const dst = b * L1;
    const m = end[b]! + 1; // insertion point
    for (let t = 0; t < m; t++) r.inputIds[dst + t] = itemIds[src + t]!;
    for (let t = m; t < L; t++) r.inputIds[dst + t + 1] = itemIds[src + t]!;
    for (let t = 0; t < L1; t++) r.validPositions[dst + t] = r.inputIds[dst + t] !== 0 ? 1 : 0;
    r.maskInput[dst + m] = 1;
    r.validPositions[dst + m] = 1;
    r.readPositions![b] = m;
    if (targets !== undefined) setLabel(r, dst + m, targets[b]!);
    else r.maskedPositions[dst + m] = 1;
  }
  return r;
}

export const maskedScheme: MaskingScheme<MaskedMaskingConfig> = {
  type: "masked",
  aliases: ["mlm"],
  defaults: { mlmProbability: 0.15, evalOnLastItemSeqOnly: true },
  check(cfg) {
    const issues = [];
    const p = cfg.mlmProbability;
    if (typeof p !== "number" || !Number.isFinite(p) || p < 0 || p > 1) {
      issues.push({ key: "mlmProbability", message: "Expected a number between 0 and 1.", expected: "0 <= mlmProbability <= 1", received: p });
    }
    if (typeof cfg.evalOnLastItemSeqOnly !== "boolean") {
      issues.push({ key: "evalOnLastItemSeqOnly", message: "Expected a boolean.", expected: "boolean", received: cfg.evalOnLastItemSeqOnly });
    }
    return issues;
  },
  mask: maskMasked,
};

import { randomInt, type RandomSource } from "./rng.js";
import { appendMaskLayout } from "./masked.js";
import { baseResult, checkTargets, rowSpans, setLabel } from "./rows.js";
import type { MaskingScheme, MaskMode, MaskOptions, MaskResult, Resolved } from "./types.js";

/**
 * Permutation language modelling (XLNet; Transformers4Rec `"plm"` / `"permutation"`): span masking
 * chooses the labels, a random factorisation order over them gives the permutation mask, and the
 * XLNet body runs two-stream attention with it (blocks/sequence/transformer.ts).
 */
export interface PermutationMaskingConfig {
  type: "permutation";
  /** Ratio of span length to the surrounding context (T4R `plm_probability`). Default 1/6. */
  plmProbability?: number;
  /** Longest span of consecutive labels drawn at once (T4R `max_span_length`). Default 5. */
  maxSpanLength?: number;
  /** Every real item is a label (but one), instead of span masking (T4R `permute_all`). Default false. */
  permuteAll?: boolean;
  /** Evaluate on the last item of each sequence only. Default true. */
  evalOnLastItemSeqOnly?: boolean;
}

declare module "./types.js" {
  interface MaskingConfigs {
    permutation: PermutationMaskingConfig;
  }
}

/** One span drawn by `samplePlmSpans`: positions [start, start + length) relative to the row's first item. */
export interface PlmSpan {
  start: number;
  length: number;
}

/**
 * Transformers4Rec's (and Hugging Face's DataCollatorForPermutationLanguageModeling's) span sampler for
 * a row of n real items: cur = 0; while cur < n { span ~ U{1..maxSpanLength}; context =
 * floor(span / plmProbability); start = cur + U{0..context - span}; if start < n mask
 * [start, start + span) clipped to n; cur += context }. Two uniforms per span (length, then start).
 * Returned spans are clipped to the row; spans may touch (start = previous end), as upstream.
 */
export function samplePlmSpans(n: number, plmProbability: number, maxSpanLength: number, rng: RandomSource): PlmSpan[] {
  const spans: PlmSpan[] = [];
  let cur = 0;
  while (cur < n) {
    const span = 1 + randomInt(rng, maxSpanLength);
    // the epsilon keeps e.g. 3 / 0.6 = 4.999... at 5, as exact decimal arithmetic would give
    const context = Math.max(span, Math.floor(span / plmProbability + 1e-9));
    const start = cur + randomInt(rng, context - span + 1);
    if (start < n) spans.push({ start, length: Math.min(span, n - start) });
    cur += context;
  }
  return spans;
}

/**
 * Permutation LM masking. Extras (row-major, 1 byte per entry):
 * - `permMask` [B, L', L']: 1 where query position i may NOT attend key position j (XLNet's / T4R's
 *   `perm_mask`; padding is handled by `validPositions`, not here).
 * - `targetMapping` [B, L', L']: XLNet's `target_mapping`; the identity, as in T4R (prediction slot i
 *   is position i; the loss only uses label positions).
 *
 * Per row with real items at [s, e] (n = e - s + 1):
 * - train: labels from `samplePlmSpans` (or every item with `permuteAll`); if none, one real position
 *   drawn uniformly becomes a label; if all are labels, one label drawn uniformly is dropped. A random
 *   factorisation order over the labels (Fisher–Yates, k - 1 uniforms) gives
 *   permMask[i][j] = isLabel[j] && order[i] <= order[j], with order = -1 for non-labels: every
 *   position sees every non-label; non-labels see no label; a label sees the labels before it in the
 *   order, and not itself. Label positions KEEP their item in the input (XLNet's content stream holds
 *   the token; its query stream, which predicts, never sees it). T4R replaces them with [MASK].
 * - eval, `evalOnLastItemSeqOnly` (default): the last item is the only label, its input is [MASK] and
 *   column e of permMask is 1 (no position sees it). Unlike T4R, no causal mask is added: the
 *   context items see each other as non-labels do in training.
 * - eval, `evalOnLastItemSeqOnly: false`: T4R's `predict_all` with its causal permMask
 *   (permMask[i][j] = j > i): position t predicts item t + 1 from items s..t; no input is hidden.
 * - inference, and eval with `opts.targets`: the sequence grows to L + 1 with a [MASK] inserted after
 *   the last item (as masked LM); permMask hides that slot from every position; the prediction is read
 *   there (T4R reads the last item's own position at inference, a known discrepancy).
 */
export function maskPermutation(
  cfg: Resolved<PermutationMaskingConfig>,
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
  if (mode === "inference" || targets !== undefined) return appendSlotLayout(itemIds, B, L, spans.end, targets);

  const r = baseResult(itemIds, B, L);
  const LL = L * L;
  const permMask = new Uint8Array(B * LL);
  const targetMapping = identityMapping(B, L);
  r.extras = { permMask, targetMapping };

  if (mode === "eval") {
    for (let b = 0; b < B; b++) {
      const o = b * L;
      const s = spans.start[b]!;
      const e = spans.end[b]!;
      if (e < 0) continue;
      if (cfg.evalOnLastItemSeqOnly) {
        setLabel(r, o + e, itemIds[o + e]!);
        r.maskInput[o + e] = 1;
        r.inputIds[o + e] = 0;
        for (let i = 0; i < L; i++) permMask[b * LL + i * L + e] = 1;
      } else {
        for (let t = s; t < e; t++) setLabel(r, o + t, itemIds[o + t + 1]!);
        for (let i = 0; i < L; i++) for (let j = i + 1; j < L; j++) permMask[b * LL + i * L + j] = 1;
      }
    }
    return r;
  }

  // train
  const isLabel = new Uint8Array(L);
  const order = new Int32Array(L);
  for (let b = 0; b < B; b++) {
    const o = b * L;
    const s = spans.start[b]!;
    const n = spans.length[b]!;
    if (n === 0) continue;
    isLabel.fill(0);
    let count = 0;
    if (cfg.permuteAll) {
      for (let t = s; t < s + n; t++) isLabel[t] = 1;
      count = n;
    } else {
      for (const sp of samplePlmSpans(n, cfg.plmProbability, cfg.maxSpanLength, rng)) {
        for (let t = s + sp.start; t < s + sp.start + sp.length; t++) {
          if (!isLabel[t]) count++;
          isLabel[t] = 1;
        }
      }
      if (count === 0) {
        isLabel[s + randomInt(rng, n)] = 1;
        count = 1;
      }
    }
    if (count === n) {
      // every real item is a label: drop one, drawn uniformly among them
      isLabel[s + randomInt(rng, n)] = 0;
      count--;
    }
    // a random factorisation order over the labels: order[t] in 0..count-1, -1 elsewhere
    const lab: number[] = [];
    for (let t = 0; t < L; t++) {
      order[t] = -1;
      if (isLabel[t]) lab.push(t);
    }
    for (let i = lab.length - 1; i > 0; i--) {
      const j = randomInt(rng, i + 1);
      const tmp = lab[i]!;
      lab[i] = lab[j]!;
      lab[j] = tmp;
    }
    lab.forEach((t, k) => (order[t] = k));
    for (const t of lab) setLabel(r, o + t, itemIds[o + t]!);
    const pm = b * LL;
    for (let i = 0; i < L; i++) {
      for (let j = 0; j < L; j++) if (isLabel[j] && order[i] <= order[j]) permMask[pm + i * L + j] = 1;
    }
  }
  return r;
}

function identityMapping(B: number, L: number): Uint8Array {
  const out = new Uint8Array(B * L * L);
  for (let b = 0; b < B; b++) for (let i = 0; i < L; i++) out[b * L * L + i * L + i] = 1;
  return out;
}

/** Inference layout: masked LM's [MASK] slot after the last item (seqLen L + 1), hidden from every position by permMask. */
function appendSlotLayout(itemIds: Int32Array, B: number, L: number, end: Int32Array, targets?: Int32Array): MaskResult {
  const r = appendMaskLayout(itemIds, B, L, end, targets);
  const L1 = L + 1;
  const LL = L1 * L1;
  const permMask = new Uint8Array(B * LL);
  for (let b = 0; b < B; b++) {
    const m = r.readPositions![b]!; // the slot
    for (let i = 0; i < L1; i++) permMask[b * LL + i * L1 + m] = 1;
  }
  r.extras = { permMask, targetMapping: identityMapping(B, L1) };
  return r;
}

export const permutationScheme: MaskingScheme<PermutationMaskingConfig> = {
  type: "permutation",
  aliases: ["plm"],
  defaults: { plmProbability: 1 / 6, maxSpanLength: 5, permuteAll: false, evalOnLastItemSeqOnly: true },
  check(cfg) {
    const issues = [];
    const p = cfg.plmProbability;
    if (typeof p !== "number" || !Number.isFinite(p) || p <= 0 || p > 1) {
      issues.push({ key: "plmProbability", message: "Expected a number in (0, 1].", expected: "0 < plmProbability <= 1", received: p });
    }
    const m = cfg.maxSpanLength;
    if (typeof m !== "number" || !Number.isInteger(m) || m < 1) {
      issues.push({ key: "maxSpanLength", message: "Expected an integer >= 1.", expected: "integer >= 1", received: m });
    }
    for (const key of ["permuteAll", "evalOnLastItemSeqOnly"] as const) {
      if (typeof cfg[key] !== "boolean") issues.push({ key, message: "Expected a boolean.", expected: "boolean", received: cfg[key] });
    }
    return issues;
  },
  mask: maskPermutation,
};

import type { MaskResult } from "./types.js";

/** Where the real (non-padding) items of each row are: [start, end] inclusive; end = -1 for an empty row. */
export interface RowSpans {
  start: Int32Array;
  end: Int32Array;
  length: Int32Array;
}

/**
 * Finds the real items of each row of a [B, L] id matrix (0 = padding). Works for right padding
 * (items first) and left padding (items last) alike, row by row. Real items must be contiguous.
 */
export function rowSpans(itemIds: Int32Array, B: number, L: number): RowSpans {
  if (!Number.isInteger(B) || !Number.isInteger(L) || B < 0 || L < 1) {
    throw new Error(`masking: batch shape must be [B >= 0, L >= 1] integers, got [${B}, ${L}]`);
  }
  if (itemIds.length !== B * L) {
    throw new Error(`masking: itemIds has ${itemIds.length} values, expected B*L = ${B}*${L} = ${B * L}`);
  }
  const start = new Int32Array(B);
  const end = new Int32Array(B);
  const length = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const o = b * L;
    let s = -1;
    let e = -1;
    let n = 0;
    for (let t = 0; t < L; t++) {
      const v = itemIds[o + t]!;
      if (v < 0) throw new Error(`masking: row ${b} position ${t} holds a negative item id (${v}); ids are >= 0, 0 = padding`);
      if (v !== 0) {
        if (s < 0) s = t;
        e = t;
        n++;
      }
    }
    if (n > 0 && n !== e - s + 1) {
      throw new Error(
        `masking: row ${b} has padding (0) between its items (positions ${s}..${e}); ` +
          "padding must be all on the right or all on the left of a row",
      );
    }
    start[b] = s < 0 ? 0 : s;
    end[b] = e;
    length[b] = n;
  }
  return { start, end, length };
}

/** A result with everything zero, `inputIds` a copy of the ids and `validPositions` = ids != 0. */
export function baseResult(itemIds: Int32Array, B: number, L: number): MaskResult {
  const validPositions = new Uint8Array(B * L);
  for (let i = 0; i < validPositions.length; i++) validPositions[i] = itemIds[i] !== 0 ? 1 : 0;
  return {
    batchSize: B,
    seqLen: L,
    inputIds: Int32Array.from(itemIds),
    maskInput: new Uint8Array(B * L),
    maskedPositions: new Uint8Array(B * L),
    labels: new Int32Array(B * L),
    validPositions,
    numLabels: 0,
    appendMask: false,
  };
}

/** Sets a label at flat index i (label != 0). */
export function setLabel(r: MaskResult, i: number, label: number): void {
  if (label === 0) return;
  if (r.labels[i] === 0) r.numLabels++;
  r.labels[i] = label;
  r.maskedPositions[i] = 1;
}

/** Checks `opts.targets` against B. */
export function checkTargets(targets: Int32Array | undefined, B: number): void {
  if (targets !== undefined && targets.length !== B) {
    throw new Error(`masking: targets has ${targets.length} values, expected one per row (B = ${B})`);
  }
}

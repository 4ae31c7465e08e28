import { Interner } from "./interner.js";

/**
 * Sessions before vocabulary mapping: every categorical value is an interned code (0..n-1 in first-seen order,
 * see `interners`), all per-step values live in flat typed arrays cut by `offsets`. No per-item objects.
 */
export interface CodedSessions {
  /** Source name for messages. */
  file: string;
  /** Name of the item-id column. */
  itemColumn: string;
  /** Session id of each session. */
  ids: string[];
  /** [S+1] start of each session in the flat per-step arrays. */
  offsets: Int32Array;
  /** Per step: interned item codes (interners[itemColumn]). */
  item: Int32Array;
  /** Per step: other categorical sequence features, interned codes (bag columns: `bags[name]` codes per step). */
  categorical: Record<string, Int32Array>;
  /**
   * Multi-hot bag columns and their size K: categorical[name] holds K codes per step, the bag's values
   * first, then BAG_PAD (-2) slots.
   */
  bags?: Record<string, number>;
  /** Per step: continuous sequence features. */
  continuous: Record<string, Float32Array>;
  /** Per step: timestamps in seconds (when there is a timestamp column). */
  timestamps?: Float64Array;
  /** Per session: categorical context features (interned codes, -1 = missing). */
  contextCategorical: Record<string, Int32Array>;
  /** Per session: continuous context features. */
  contextContinuous: Record<string, Float64Array>;
  /** Per session: user code (interners[userColumn]) or -1. */
  users?: Int32Array;
  userColumn?: string;
  sessionColumn?: string;
  /** Distinct non-missing users over all rows read (interaction logs). */
  distinctUsers?: number;
  timestampColumn?: string;
  orderColumn?: string;
  /** Interners by column name: the item column, every categorical column, the user column. */
  interners: Record<string, Interner>;
  /** Interactions read from the source (before filters). */
  rows: number;
}

export function numSessions(cs: CodedSessions): number {
  return cs.offsets.length - 1;
}

/**
 * Keeps the sessions in `order` (indices, in that order) and, per kept session, the steps
 * [start + dropFirst, end - dropLast). Sessions left empty are dropped.
 */
export function subsetSessions(cs: CodedSessions, order: ArrayLike<number>, dropLast: number | Int32Array = 0): CodedSessions {
  const S = order.length;
  let total = 0;
  const lens = new Int32Array(S);
  for (let k = 0; k < S; k++) {
    const s = order[k]!;
    const dl = typeof dropLast === "number" ? dropLast : dropLast[k]!;
    const len = Math.max(0, cs.offsets[s + 1]! - cs.offsets[s]! - dl);
    lens[k] = len;
    total += len;
  }
  const keep: number[] = [];
  for (let k = 0; k < S; k++) if (lens[k]! > 0) keep.push(k);
  const offsets = new Int32Array(keep.length + 1);
  const item = new Int32Array(total);
  const K = (n: string) => cs.bags?.[n] ?? 1;
  const cat = Object.fromEntries(Object.keys(cs.categorical).map((n) => [n, new Int32Array(total * K(n))]));
  const cont = Object.fromEntries(Object.keys(cs.continuous).map((n) => [n, new Float32Array(total)]));
  const ts = cs.timestamps ? new Float64Array(total) : undefined;
  let pos = 0;
  const sel = new Int32Array(keep.length);
  keep.forEach((k, j) => {
    const s = order[k]!;
    sel[j] = s;
    const a = cs.offsets[s]!;
    const b = a + lens[k]!;
    offsets[j] = pos;
    item.set(cs.item.subarray(a, b), pos);
    for (const n in cat) cat[n]!.set(cs.categorical[n]!.subarray(a * K(n), b * K(n)), pos * K(n));
    for (const n in cont) cont[n]!.set(cs.continuous[n]!.subarray(a, b), pos);
    if (ts) ts.set(cs.timestamps!.subarray(a, b), pos);
    pos += b - a;
  });
  offsets[keep.length] = pos;
  const pick = <T extends Int32Array | Float64Array>(arr: T): T => {
    const out = new (arr.constructor as new (n: number) => T)(keep.length);
    for (let j = 0; j < keep.length; j++) out[j] = arr[sel[j]!]!;
    return out;
  };
  return {
    ...cs,
    ids: Array.from(sel, (s) => cs.ids[s]!),
    offsets,
    item,
    categorical: cat,
    continuous: cont,
    timestamps: ts,
    contextCategorical: Object.fromEntries(Object.entries(cs.contextCategorical).map(([n, a]) => [n, pick(a)])),
    contextContinuous: Object.fromEntries(Object.entries(cs.contextContinuous).map(([n, a]) => [n, pick(a)])),
    users: cs.users ? pick(cs.users) : undefined,
  };
}

/** Keeps the steps where keep[i] is 1 (sessions left empty are dropped). */
export function filterSteps(cs: CodedSessions, keepStep: Uint8Array): CodedSessions {
  const S = numSessions(cs);
  let total = 0;
  for (let i = 0; i < keepStep.length; i++) total += keepStep[i]!;
  const item = new Int32Array(total);
  const K = (n: string) => cs.bags?.[n] ?? 1;
  const cat = Object.fromEntries(Object.keys(cs.categorical).map((n) => [n, new Int32Array(total * K(n))]));
  const cont = Object.fromEntries(Object.keys(cs.continuous).map((n) => [n, new Float32Array(total)]));
  const ts = cs.timestamps ? new Float64Array(total) : undefined;
  const newLen = new Int32Array(S);
  let pos = 0;
  for (let s = 0; s < S; s++) {
    const start = pos;
    for (let i = cs.offsets[s]!; i < cs.offsets[s + 1]!; i++) {
      if (!keepStep[i]) continue;
      item[pos] = cs.item[i]!;
      for (const n in cat) {
        const k = K(n);
        if (k === 1) cat[n]![pos] = cs.categorical[n]![i]!;
        else cat[n]!.set(cs.categorical[n]!.subarray(i * k, (i + 1) * k), pos * k);
      }
      for (const n in cont) cont[n]![pos] = cs.continuous[n]![i]!;
      if (ts) ts[pos] = cs.timestamps![i]!;
      pos++;
    }
    newLen[s] = pos - start;
  }
  const offsets = new Int32Array(S + 1);
  for (let s = 0; s < S; s++) offsets[s + 1] = offsets[s]! + newLen[s]!;
  const compact: CodedSessions = { ...cs, offsets, item, categorical: cat, continuous: cont, timestamps: ts };
  // drop sessions left empty
  const keep: number[] = [];
  for (let s = 0; s < S; s++) if (newLen[s]! > 0) keep.push(s);
  return keep.length === S ? compact : subsetSessions(compact, keep);
}

/** Empty interners for the item column and the given categorical columns. */
export function makeInterners(names: string[]): Record<string, Interner> {
  return Object.fromEntries(names.map((n) => [n, new Interner()]));
}

import { failData } from "./errors.js";
import { mulberry32, shuffleInPlace } from "./rng.js";

/** One session / user history after vocabulary mapping (contracts.md). */
export interface Session {
  id: string;
  /** Dense item ids, oldest first. */
  items: Int32Array;
  /** Per-step categorical side features (dense ids, same length as items; K per step for a bag of size K, see `bags`). */
  categorical: Record<string, Int32Array>;
  /** Multi-hot bag columns among `categorical` and their size K: K ids per step, padded with 0. */
  bags?: Record<string, number>;
  /** Per-step continuous side features. */
  continuous: Record<string, Float32Array>;
  /** Non-sequential features of the session (dense id for categorical ones, the value for continuous ones). */
  context: Record<string, number>;
  /** Per-step timestamps in seconds. */
  timestamps?: Float64Array;
}

/** A padded batch, row-major [batchSize, seqLen], 0 = padding (contracts.md). */
export interface SequenceBatch {
  batchSize: number;
  seqLen: number;
  itemIds: Int32Array;
  /** [B, L] per column, [B, L, K] for a bag column of size K. */
  categorical: Record<string, Int32Array>;
  continuous: Record<string, Float32Array>;
  context: Record<string, Int32Array | Float32Array>;
  /** [B] next item per row (prefix examples); absent for full sequences. */
  targets?: Int32Array;
  /** [B] number of real (non-pad) steps per row. */
  lengths: Int32Array;
}

/**
 * Examples as two typed arrays: row k is session `session[k]` cut at `end[k]`: input steps [0, end)
 * (the most recent `maxSequenceLength` of them), target items[end] when `withTargets`.
 */
export interface ExampleSet {
  sessions: Session[];
  session: Int32Array;
  end: Int32Array;
  withTargets: boolean;
}

/**
 * The prefix augmentation of session-based papers: every session [i1..iL] yields
 * [i1] -> i2, [i1, i2] -> i3, ..., [i1..i(L-1)] -> iL (L - 1 examples), in session order.
 */
export function prefixExamples(sessions: Session[]): ExampleSet {
  let n = 0;
  for (const s of sessions) n += Math.max(0, s.items.length - 1);
  const session = new Int32Array(n);
  const end = new Int32Array(n);
  let k = 0;
  for (let i = 0; i < sessions.length; i++) {
    const L = sessions[i]!.items.length;
    for (let t = 1; t < L; t++) {
      session[k] = i;
      end[k++] = t;
    }
  }
  return { sessions, session, end, withTargets: true };
}

/** Number of prefix examples without building them: sum over sessions of (length - 1). */
export function countPrefixExamples(sessions: Session[]): number {
  let n = 0;
  for (const s of sessions) n += Math.max(0, s.items.length - 1);
  return n;
}

/** One example per session holding its whole sequence (transformer training, masking decides the targets). */
export function fullSequenceExamples(sessions: Session[], minLength = 1): ExampleSet {
  const keep: number[] = [];
  for (let i = 0; i < sessions.length; i++) if (sessions[i]!.items.length >= minLength) keep.push(i);
  return { sessions, session: Int32Array.from(keep), end: Int32Array.from(keep, (i) => sessions[i]!.items.length), withTargets: false };
}

/** One example per session of length >= 2: all items but the last -> the last (next-item evaluation). */
export function lastItemExamples(sessions: Session[]): ExampleSet {
  const keep: number[] = [];
  for (let i = 0; i < sessions.length; i++) if (sessions[i]!.items.length >= 2) keep.push(i);
  return { sessions, session: Int32Array.from(keep), end: Int32Array.from(keep, (i) => sessions[i]!.items.length - 1), withTargets: true };
}

export interface BatchOptions {
  batchSize: number;
  /** Rows are cut to this many steps, keeping the most recent ones. */
  maxSequenceLength: number;
  /** `right` (default, as in Transformers4Rec): items first, padding after; `left`: padding first. */
  padding?: "right" | "left";
  /** Shuffle the examples (with `seed`) before cutting batches. */
  shuffle?: boolean;
  seed?: number;
  /** Drop the last batch when it is smaller than batchSize (default false: keep it). */
  dropLast?: boolean;
  /** Per-step categorical features to carry (default: all the sessions have). */
  categorical?: string[];
  /** Per-step continuous features to carry (default: all). */
  continuous?: string[];
  /** Context features to carry, with their kind (categorical -> Int32Array, continuous -> Float32Array). */
  context?: Record<string, "categorical" | "continuous">;
  /** Bag sizes of multi-hot categorical columns (default: the sessions' `bags`). */
  bags?: Record<string, number>;
}

function checkOptions(o: BatchOptions): void {
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) failData("data_bad_config", { file: "batch options", column: "batchSize" }, `batchSize must be an integer >= 1, got ${o.batchSize}.`);
  if (!Number.isInteger(o.maxSequenceLength) || o.maxSequenceLength < 1)
    failData("data_bad_config", { file: "batch options", column: "maxSequenceLength" }, `maxSequenceLength must be an integer >= 1, got ${o.maxSequenceLength}.`);
}

/** Number of batches `batches()` yields. */
export function numBatches(ex: ExampleSet, o: Pick<BatchOptions, "batchSize" | "dropLast">): number {
  const n = ex.session.length;
  return o.dropLast ? Math.floor(n / o.batchSize) : Math.ceil(n / o.batchSize);
}

/** Builds the padded batch of the given example rows. */
export function makeBatch(ex: ExampleSet, rows: ArrayLike<number>, o: BatchOptions): SequenceBatch {
  const B = rows.length;
  const L = o.maxSequenceLength;
  const first = ex.sessions[0];
  const catNames = o.categorical ?? (first ? Object.keys(first.categorical) : []);
  const contNames = o.continuous ?? (first ? Object.keys(first.continuous) : []);
  const ctx = o.context ?? {};
  const left = o.padding === "left";
  const itemIds = new Int32Array(B * L);
  const bagOf = o.bags ?? first?.bags ?? {};
  const K = (c: string) => bagOf[c] ?? 1;
  const categorical: Record<string, Int32Array> = {};
  for (const c of catNames) categorical[c] = new Int32Array(B * L * K(c));
  const continuous: Record<string, Float32Array> = {};
  for (const c of contNames) continuous[c] = new Float32Array(B * L);
  const context: Record<string, Int32Array | Float32Array> = {};
  for (const [c, kind] of Object.entries(ctx)) context[c] = kind === "categorical" ? new Int32Array(B) : new Float32Array(B);
  const targets = ex.withTargets ? new Int32Array(B) : undefined;
  const lengths = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const k = rows[b]!;
    const s = ex.sessions[ex.session[k]!]!;
    const end = ex.end[k]!;
    const start = Math.max(0, end - L);
    const len = end - start;
    lengths[b] = len;
    const at = b * L + (left ? L - len : 0);
    itemIds.set(s.items.subarray(start, end), at);
    for (const c of catNames) {
      const src = s.categorical[c];
      const k = K(c);
      if (src) categorical[c]!.set(src.subarray(start * k, end * k), at * k);
    }
    for (const c of contNames) {
      const src = s.continuous[c];
      if (src) continuous[c]!.set(src.subarray(start, end), at);
    }
    for (const c in context) context[c]![b] = s.context[c] ?? 0;
    if (targets) targets[b] = s.items[end]!;
  }
  return { batchSize: B, seqLen: L, itemIds, categorical, continuous, context, ...(targets ? { targets } : {}), lengths };
}

/** The batches of an example set, in order (or shuffled with a seed); the last partial batch is kept unless dropLast. */
export function* batches(ex: ExampleSet, o: BatchOptions): Generator<SequenceBatch> {
  checkOptions(o);
  const n = ex.session.length;
  const order = Int32Array.from({ length: n }, (_, i) => i);
  if (o.shuffle) shuffleInPlace(order, mulberry32(o.seed ?? 42));
  for (let a = 0; a < n; a += o.batchSize) {
    const b = Math.min(n, a + o.batchSize);
    if (b - a < o.batchSize && o.dropLast) break;
    yield makeBatch(ex, order.subarray(a, b), o);
  }
}

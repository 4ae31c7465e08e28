import * as tf from "@tensorflow/tfjs";
import { RecblocksError } from "../errors/issue.js";

/** Metric names (Transformers4Rec's ranking metrics; `hitrate` is `recall` under its other name). */
export type RankingMetricName = "ndcg" | "recall" | "precision" | "map" | "mrr" | "dcg" | "hitrate";
export const RANKING_METRIC_NAMES: readonly RankingMetricName[] = ["ndcg", "recall", "precision", "map", "mrr", "dcg", "hitrate"];
/** What `new RankingMetrics(ks)` computes when no names are given. */
export const DEFAULT_RANKING_METRICS: readonly RankingMetricName[] = ["ndcg", "recall", "mrr", "map", "precision"];

/**
 * How `updateFromScores` ranks the target when other items have exactly its score:
 * - "average" (default): the expected metric when ties are broken uniformly at random
 *   (the target's rank is uniform over g+1 .. g+e+1; g = items scored higher, e = other items scored equal);
 * - "optimistic": rank g+1; "pessimistic": rank g+e+1;
 * - "topk": whatever order the backend's top-k returns (lower item id first on the CPU and native
 *   backends), which is what Transformers4Rec does (torch.topk).
 * Without ties all four give the same numbers.
 */
export type TieMode = "average" | "optimistic" | "pessimistic" | "topk";

/** Items that may not be recommended: the same ids for every row, and/or per-row lists. */
export interface ExcludeSpec {
  /** Excluded for every row (e.g. [0], the padding id). */
  items?: ArrayLike<number>;
  /** Per-row exclusions, row-major [B, width], padded with -1 (e.g. the items already in the session). */
  perRow?: { ids: Int32Array; width: number };
}

export interface ScoreUpdateOptions {
  /** Excluded items. Default: `{items: [0]}` (the padding id is never a recommendation). Pass `{}` to rank every column. */
  exclude?: ExcludeSpec | ArrayLike<number>;
  ties?: TieMode;
}

/**
 * Streaming ranking metrics for next-item prediction (one target per row), at several cut-offs.
 * For a row whose target is ranked r (1-based) and a cut-off k, with hit = r <= k:
 *   recall@k = hitrate@k = hit;  precision@k = hit / k;  mrr@k = map@k = hit / r;
 *   dcg@k = ndcg@k = hit / log2(r + 1).
 * These are Transformers4Rec's definitions specialised to one relevant item (its IDCG is then 1 and
 * its MAP denominator clamp(#relevant, 1, k) is 1). A row without a hit scores 0 and counts in the
 * mean; rows whose target is 0 (padding) are skipped. `result()` is the mean over all rows seen.
 */
export class RankingMetrics {
  readonly ks: readonly number[];
  readonly names: readonly RankingMetricName[];
  private readonly maxK: number;
  private readonly sums: Float64Array; // [names.length * ks.length], name-major
  private rows = 0;

  constructor(ks: number[], names: readonly RankingMetricName[] = DEFAULT_RANKING_METRICS) {
    if (!Array.isArray(ks) || ks.length === 0) throw new Error("RankingMetrics: give at least one cut-off k");
    for (const k of ks) {
      if (!Number.isInteger(k) || k < 1) throw new Error(`RankingMetrics: cut-offs must be integers >= 1, got ${k}`);
    }
    for (const n of names) {
      if (!RANKING_METRIC_NAMES.includes(n)) {
        throw new Error(`RankingMetrics: unknown metric "${n}" (known: ${RANKING_METRIC_NAMES.join(", ")})`);
      }
    }
    this.ks = [...new Set(ks)].sort((a, b) => a - b);
    this.names = [...new Set(names)];
    this.maxK = this.ks[this.ks.length - 1]!;
    this.sums = new Float64Array(this.names.length * this.ks.length);
  }

  /** Rows accumulated so far (rows with a non-zero target). */
  get count(): number {
    return this.rows;
  }

  /** The largest cut-off: how many ranked items per row `update` needs. */
  get topK(): number {
    return this.maxK;
  }

  reset(): void {
    this.sums.fill(0);
    this.rows = 0;
  }

  /** Adds another accumulator's rows (same ks and names), e.g. from another worker. */
  merge(other: RankingMetrics): void {
    if (other.ks.join() !== this.ks.join() || other.names.join() !== this.names.join()) {
      throw new Error("RankingMetrics.merge: both must have the same cut-offs and metric names");
    }
    for (let i = 0; i < this.sums.length; i++) this.sums[i]! += other.sums[i]!;
    this.rows += other.rows;
  }

  /**
   * Adds a batch given the top-k item ids of each row, best first: `topk` is row-major [B, k],
   * `targets` is [B]; k must be >= the largest cut-off. The first occurrence of the target counts.
   */
  update(topk: Int32Array, targets: Int32Array, k: number): void {
    const B = targets.length;
    if (!Number.isInteger(k) || k < this.maxK) {
      throw new Error(`RankingMetrics.update: each row must list at least ${this.maxK} items (the largest cut-off), got k = ${k}`);
    }
    if (topk.length !== B * k) throw new Error(`RankingMetrics.update: topk has ${topk.length} ids, expected B*k = ${B}*${k}`);
    for (let b = 0; b < B; b++) {
      const target = targets[b]!;
      if (target === 0) continue;
      let rank = 0;
      const o = b * k;
      for (let i = 0; i < this.maxK; i++) {
        if (topk[o + i] === target) {
          rank = i + 1;
          break;
        }
      }
      this.addRank(rank);
    }
  }

  /** Adds a batch where every row gets the same ranked list (e.g. the most-popular baseline). */
  updateShared(list: ArrayLike<number>, targets: Int32Array): void {
    if (list.length < this.maxK) {
      throw new Error(`RankingMetrics.updateShared: the list must hold at least ${this.maxK} items, got ${list.length}`);
    }
    const rankOf = new Map<number, number>();
    for (let i = this.maxK - 1; i >= 0; i--) rankOf.set(list[i]!, i + 1);
    for (let b = 0; b < targets.length; b++) {
      const t = targets[b]!;
      if (t !== 0) this.addRank(rankOf.get(t) ?? 0);
    }
  }

  /**
   * Adds rows given the 1-based rank of each row's target; 0, negative or non-finite = not ranked (a miss).
   * Rows whose `targets` entry is 0 are skipped when `targets` is given.
   */
  updateFromRanks(ranks: ArrayLike<number>, targets?: Int32Array): void {
    if (targets && targets.length !== ranks.length) throw new Error("RankingMetrics.updateFromRanks: ranks and targets differ in length");
    for (let b = 0; b < ranks.length; b++) {
      if (targets && targets[b] === 0) continue;
      const r = ranks[b]!;
      this.addRank(Number.isFinite(r) && r >= 1 ? Math.floor(r) : 0);
    }
  }

  /**
   * Adds a batch from a score matrix [B, V] (logits; higher is better), ranking inside TF.js and
   * reading back only small arrays: the top k' scores and ids per row (k' = largest cut-off + number of
   * excluded items + 1), the target's score and a row sum (NaN check). Only rows whose target ties with
   * the last score of that window need one more count on the device (tie modes other than "topk").
   * Does not dispose `scores`. Throws if a row's scores contain NaN.
   */
  async updateFromScores(scores: tf.Tensor2D, targets: Int32Array, exclude?: ScoreUpdateOptions | ExcludeSpec | ArrayLike<number>): Promise<void> {
    const gen = this.scoreSteps(scores, targets, exclude);
    let step = gen.next();
    while (!step.done) {
      const tensors = step.value;
      try {
        const data = (await Promise.all(tensors.map((t) => t.data()))) as (Float32Array | Int32Array)[];
        step = gen.next(data);
      } finally {
        tf.dispose(tensors);
      }
    }
  }

  /** `updateFromScores` with synchronous read-back (fine on the CPU, wasm and native backends). */
  updateFromScoresSync(scores: tf.Tensor2D, targets: Int32Array, exclude?: ScoreUpdateOptions | ExcludeSpec | ArrayLike<number>): void {
    const gen = this.scoreSteps(scores, targets, exclude);
    let step = gen.next();
    while (!step.done) {
      const tensors = step.value;
      try {
        step = gen.next(tensors.map((t) => t.dataSync() as Float32Array | Int32Array));
      } finally {
        tf.dispose(tensors);
      }
    }
  }

  /** Mean of each metric over all rows seen, keyed like "ndcg@20". Throws when no row was seen. */
  result(): Record<string, number> {
    if (this.rows === 0) {
      throw new RecblocksError("evaluation", [
        {
          code: "empty_evaluation",
          path: "",
          message: "No rows with a target were evaluated, so no metric can be computed.",
          hint: "Check that the evaluation data is not empty and that its sessions have at least 2 items.",
        },
      ]);
    }
    const out: Record<string, number> = {};
    for (let n = 0; n < this.names.length; n++) {
      for (let j = 0; j < this.ks.length; j++) out[`${this.names[n]}@${this.ks[j]}`] = this.sums[n * this.ks.length + j]! / this.rows;
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------- internals

  /** One row whose target is at rank r (0 = not in the top maxK). */
  private addRank(r: number): void {
    this.rows++;
    if (r < 1 || r > this.maxK) return;
    this.addWeighted(r, 1);
  }

  /** Adds weight w times the metric values of rank r (1 <= r <= maxK) to every cut-off k >= r. */
  private addWeighted(r: number, w: number): void {
    const nk = this.ks.length;
    const disc = 1 / Math.log2(r + 1);
    for (let n = 0; n < this.names.length; n++) {
      const name = this.names[n]!;
      for (let j = 0; j < nk; j++) {
        const k = this.ks[j]!;
        if (r > k) continue;
        let v: number;
        switch (name) {
          case "recall":
          case "hitrate":
            v = 1;
            break;
          case "precision":
            v = 1 / k;
            break;
          case "mrr":
          case "map":
            v = 1 / r;
            break;
          default: // ndcg, dcg
            v = disc;
        }
        this.sums[n * nk + j]! += w * v;
      }
    }
  }

  /** A row whose rank is uniform over lo..hi (1-based, inclusive): expected metric values. */
  private addUniformRank(lo: number, hi: number): void {
    this.rows++;
    const w = 1 / (hi - lo + 1);
    const top = Math.min(hi, this.maxK);
    for (let r = lo; r <= top; r++) this.addWeighted(r, w);
  }

  /**
   * The ranking of a score batch as a generator: it yields tensors to read back and receives their
   * data, so the same code serves the async and the sync entry points.
   */
  private *scoreSteps(
    scores: tf.Tensor2D,
    targets: Int32Array,
    excludeArg?: ScoreUpdateOptions | ExcludeSpec | ArrayLike<number>,
  ): Generator<tf.Tensor[], void, (Float32Array | Int32Array)[]> {
    if (scores.rank !== 2) throw new Error(`RankingMetrics.updateFromScores: scores must be [B, V], got shape [${scores.shape}]`);
    const [B, V] = scores.shape;
    if (targets.length !== B) throw new Error(`RankingMetrics.updateFromScores: ${targets.length} targets for ${B} rows`);
    for (let b = 0; b < B; b++) {
      const t = targets[b]!;
      if (!(t >= 0 && t < V)) throw new Error(`RankingMetrics.updateFromScores: target ${t} of row ${b} is outside the ${V} scored items`);
    }
    if (B === 0) return;
    const opts = normalizeOptions(excludeArg);
    const ties = opts.ties ?? "average";
    const ex = exclusionMatrix(opts.exclude, B, V);
    const X = ex.width;
    const kq = Math.min(V, this.maxK + X + 1);

    // window: [B, kq] top scores and ids; per row the target's score and the row sum (NaN check)
    const flatTarget = new Int32Array(B);
    for (let b = 0; b < B; b++) flatTarget[b] = b * V + targets[b]!;
    const [winIds, stats] = tf.tidy(() => {
      const s = scores.toFloat();
      const top = tf.topk(s, kq, true);
      const t = s.reshape([-1]).gather(tf.tensor1d(flatTarget, "int32")).reshape([B, 1]);
      return [top.indices, tf.concat([top.values, t, s.sum(1, true)], 1)];
    });
    const [ids, st] = (yield [winIds!, stats!]) as [Int32Array, Float32Array];
    const w = kq + 2;
    const rowSum = new Float32Array(B);
    for (let b = 0; b < B; b++) rowSum[b] = st[b * w + kq + 1]!;
    checkNaN(rowSum, targets);

    const pending: { b: number; lo: number }[] = []; // rows whose tie group may run past the window
    for (let b = 0; b < B; b++) {
      const target = targets[b]!;
      if (target === 0) continue;
      if (ex.isExcluded(b, target)) {
        this.addRank(0);
        continue;
      }
      const t = st[b * w + kq]!;
      const last = st[b * w + kq - 1]!;
      if (ties === "topk") {
        let rank = 0;
        let pos = 0;
        for (let i = 0; i < kq && pos < this.maxK; i++) {
          const id = ids[b * kq + i]!;
          if (ex.isExcluded(b, id)) continue;
          pos++;
          if (id === target) {
            rank = pos;
            break;
          }
        }
        this.addRank(rank);
        continue;
      }
      if (t < last && kq < V) {
        // at least kq - X > maxK allowed items score higher: a miss in every tie mode
        this.addRank(0);
        continue;
      }
      let greater = 0;
      let equal = 0; // other allowed items with the target's score
      for (let i = 0; i < kq; i++) {
        const id = ids[b * kq + i]!;
        if (id === target || ex.isExcluded(b, id)) continue;
        const v = st[b * w + i]!;
        if (v > t) greater++;
        else if (v === t) equal++;
      }
      const lo = greater + 1;
      if (ties === "optimistic") this.addRank(lo <= this.maxK ? lo : 0);
      else if (lo > this.maxK) this.addRank(0);
      else if (t === last && kq < V) pending.push({ b, lo });
      else if (ties === "pessimistic") this.addRank(lo + equal <= this.maxK ? lo + equal : 0);
      else this.addUniformRank(lo, lo + equal);
    }
    if (pending.length === 0) return;

    // exact tie counts for the rows whose tie group reaches the end of the window
    const R = pending.length;
    const rowIdx = Int32Array.from(pending, (p) => p.b);
    const exIdx = new Int32Array(R * Math.max(1, X));
    for (let r = 0; r < R; r++) for (let j = 0; j < X; j++) exIdx[r * X + j] = rowIdx[r]! * V + Math.max(0, ex.ids[rowIdx[r]! * X + j]!);
    const tieStats = tf.tidy(() => {
      const s = scores.toFloat();
      const rows = s.gather(tf.tensor1d(rowIdx, "int32"));
      const t = s.reshape([-1]).gather(tf.tensor1d(Int32Array.from(rowIdx, (b) => flatTarget[b]!), "int32")).reshape([R, 1]);
      // #items equal to t = V − #items whose difference with t has a non-zero sign (fast on every backend;
      // a broadcast `equal` is slow on the cpu and wasm backends)
      const nonEqual = rows.sub(t.tile([1, V])).sign().abs().sum(1, true);
      const parts = [tf.scalar(V).sub(nonEqual), t];
      if (X > 0) parts.push(s.reshape([-1]).gather(tf.tensor1d(exIdx.subarray(0, R * X), "int32")).reshape([R, X]));
      return tf.concat(parts, 1);
    });
    const [ts] = (yield [tieStats]) as [Float32Array];
    const tw = 2 + X;
    for (let r = 0; r < R; r++) {
      const { b, lo } = pending[r]!;
      const t = ts[r * tw + 1]!;
      const all = ts[r * tw]!;
      if (!Number.isFinite(all)) throw new Error(`RankingMetrics: could not count the items tied with the target of row ${b} (scores ±Infinity?)`);
      let equal = all - 1;
      for (let j = 0; j < X; j++) if (ex.ids[b * X + j]! >= 0 && ts[r * tw + 2 + j] === t) equal--;
      if (ties === "pessimistic") this.addRank(lo + equal <= this.maxK ? lo + equal : 0);
      else this.addUniformRank(lo, lo + equal);
    }
  }
}

function normalizeOptions(arg?: ScoreUpdateOptions | ExcludeSpec | ArrayLike<number>): ScoreUpdateOptions {
  if (arg === undefined) return { exclude: { items: [0] } };
  if (isArrayLike(arg)) return { exclude: { items: arg } };
  if ("ties" in arg || "exclude" in arg) {
    const o = arg as ScoreUpdateOptions;
    return { ties: o.ties, exclude: o.exclude === undefined ? { items: [0] } : o.exclude };
  }
  return { exclude: arg as ExcludeSpec };
}

function isArrayLike(x: unknown): x is ArrayLike<number> {
  return Array.isArray(x) || ArrayBuffer.isView(x);
}

/** Exclusions as a [B, width] id matrix (-1 = none), deduplicated per row, with a fast membership test. */
function exclusionMatrix(
  spec: ExcludeSpec | ArrayLike<number> | undefined,
  B: number,
  V: number,
): { ids: Int32Array; width: number; isExcluded: (b: number, id: number) => boolean } {
  const s: ExcludeSpec = spec === undefined ? {} : isArrayLike(spec) ? { items: spec } : spec;
  const global = [...new Set(Array.from(s.items ?? []))].filter((i) => i >= 0 && i < V);
  const globalSet = new Set(global);
  const perRow: Set<number>[] = [];
  let width = global.length;
  if (s.perRow) {
    const { ids, width: m } = s.perRow;
    if (ids.length !== B * m) throw new Error(`RankingMetrics: exclude.perRow.ids has ${ids.length} ids, expected B*width = ${B}*${m}`);
    let most = 0;
    for (let b = 0; b < B; b++) {
      const set = new Set<number>();
      for (let j = 0; j < m; j++) {
        const id = ids[b * m + j]!;
        if (id >= 0 && id < V && !globalSet.has(id)) set.add(id);
      }
      perRow.push(set);
      most = Math.max(most, set.size);
    }
    width += most;
  }
  const mat = new Int32Array(B * width).fill(-1);
  for (let b = 0; b < B; b++) {
    let j = 0;
    for (const id of global) mat[b * width + j++] = id;
    if (perRow[b]) for (const id of perRow[b]!) mat[b * width + j++] = id;
  }
  return {
    ids: mat,
    width,
    isExcluded: (b, id) => globalSet.has(id) || (perRow[b]?.has(id) ?? false),
  };
}

function checkNaN(rowSum: Float32Array, targets: Int32Array): void {
  for (let b = 0; b < rowSum.length; b++) {
    if (targets[b] !== 0 && Number.isNaN(rowSum[b])) {
      throw new RecblocksError("evaluation", [
        {
          code: "nan_scores",
          path: `/rows/${b}`,
          message: `The model's scores for row ${b} of this batch contain NaN (or both +Infinity and -Infinity), so items cannot be ranked.`,
          hint: "The model has probably diverged: lower the learning rate, clip gradients, or check the input features for NaN.",
        },
      ]);
    }
  }
}

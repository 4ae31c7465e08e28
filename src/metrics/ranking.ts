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
   * reading back only small arrays: [B, k'] top-k ids (ties "topk") or a few numbers per row
   * (other tie modes). Does not dispose `scores`. Throws if a row's scores contain NaN.
   */
  async updateFromScores(scores: tf.Tensor2D, targets: Int32Array, exclude?: ScoreUpdateOptions | ExcludeSpec | ArrayLike<number>): Promise<void> {
    const plan = this.planScores(scores, targets, exclude);
    try {
      const data = await Promise.all(plan.tensors.map((t) => t.data()));
      plan.finish(data as (Float32Array | Int32Array)[]);
    } finally {
      for (const t of plan.tensors) t.dispose();
    }
  }

  /** `updateFromScores` with synchronous read-back (fine on the CPU, wasm and native backends). */
  updateFromScoresSync(scores: tf.Tensor2D, targets: Int32Array, exclude?: ScoreUpdateOptions | ExcludeSpec | ArrayLike<number>): void {
    const plan = this.planScores(scores, targets, exclude);
    try {
      plan.finish(plan.tensors.map((t) => t.dataSync() as Float32Array | Int32Array));
    } finally {
      for (const t of plan.tensors) t.dispose();
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

  private planScores(
    scores: tf.Tensor2D,
    targets: Int32Array,
    excludeArg?: ScoreUpdateOptions | ExcludeSpec | ArrayLike<number>,
  ): { tensors: tf.Tensor[]; finish: (data: (Float32Array | Int32Array)[]) => void } {
    if (scores.rank !== 2) throw new Error(`RankingMetrics.updateFromScores: scores must be [B, V], got shape [${scores.shape}]`);
    const [B, V] = scores.shape;
    if (targets.length !== B) throw new Error(`RankingMetrics.updateFromScores: ${targets.length} targets for ${B} rows`);
    for (let b = 0; b < B; b++) {
      const t = targets[b]!;
      if (!(t >= 0 && t < V)) throw new Error(`RankingMetrics.updateFromScores: target ${t} of row ${b} is outside the ${V} scored items`);
    }
    const opts = normalizeOptions(excludeArg);
    const ties = opts.ties ?? "average";
    const ex = exclusionMatrix(opts.exclude, B, V);
    const X = ex.width;

    if (ties === "topk") {
      const kq = Math.min(V, this.maxK + X);
      const [idx, sums] = tf.tidy(() => {
        const s = scores.toFloat();
        return [tf.topk(s, kq, true).indices, s.sum(1)];
      });
      return {
        tensors: [idx!, sums!],
        finish: (data) => {
          const top = data[0] as Int32Array;
          const rowSum = data[1] as Float32Array;
          checkNaN(rowSum, targets);
          for (let b = 0; b < B; b++) {
            const target = targets[b]!;
            if (target === 0) continue;
            if (ex.isExcluded(b, target)) {
              this.addRank(0);
              continue;
            }
            let rank = 0;
            let pos = 0;
            for (let i = 0; i < kq && pos < this.maxK; i++) {
              const id = top[b * kq + i]!;
              if (ex.isExcluded(b, id)) continue;
              pos++;
              if (id === target) {
                rank = pos;
                break;
              }
            }
            this.addRank(rank);
          }
        },
      };
    }

    // tie-aware modes: per row, the target's score t, #scores > t, #scores == t, the row sum (NaN check)
    // and the scores of the excluded items (to take them out of the counts), as one [B, 4 + X] read-back.
    const stats = tf.tidy(() => {
      const s = scores.toFloat();
      const flatIdx = new Int32Array(B);
      for (let b = 0; b < B; b++) flatIdx[b] = b * V + targets[b]!;
      const flat = s.reshape([-1]);
      const t = flat.gather(tf.tensor1d(flatIdx, "int32")).reshape([B, 1]);
      const parts: tf.Tensor[] = [
        s.greater(t).toFloat().sum(1, true),
        s.equal(t).toFloat().sum(1, true),
        s.sum(1, true),
        t,
      ];
      if (X > 0) {
        const xi = new Int32Array(B * X);
        for (let b = 0; b < B; b++) for (let j = 0; j < X; j++) xi[b * X + j] = b * V + Math.max(0, ex.ids[b * X + j]!);
        parts.push(flat.gather(tf.tensor1d(xi, "int32")).reshape([B, X]));
      }
      return tf.concat(parts, 1);
    });
    return {
      tensors: [stats],
      finish: (data) => {
        const d = data[0] as Float32Array;
        const w = 4 + X;
        const rowSum = new Float32Array(B);
        for (let b = 0; b < B; b++) rowSum[b] = d[b * w + 2]!;
        checkNaN(rowSum, targets);
        for (let b = 0; b < B; b++) {
          const target = targets[b]!;
          if (target === 0) continue;
          if (ex.isExcluded(b, target)) {
            this.addRank(0);
            continue;
          }
          let greater = d[b * w]!;
          let equal = d[b * w + 1]! - 1; // other items with the target's score
          const t = d[b * w + 3]!;
          for (let j = 0; j < X; j++) {
            if (ex.ids[b * X + j]! < 0) continue;
            const sx = d[b * w + 4 + j]!;
            if (sx > t) greater--;
            else if (sx === t) equal--;
          }
          const lo = greater + 1;
          if (ties === "optimistic") this.addRank(lo <= this.maxK ? lo : 0);
          else if (ties === "pessimistic") this.addRank(lo + equal <= this.maxK ? lo + equal : 0);
          else this.addUniformRank(lo, lo + equal);
        }
      },
    };
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

/**
 * Leave-last-out ranking evaluation for factor models: for each test user, score every item,
 * exclude the user's training items (inside the top-k), and compare the top-k with the held-out
 * item. Metrics keyed as src/metrics does: "hitrate@10", "ndcg@10", "precision@10", "map@10"
 * (MAP with one relevant item = reciprocal rank).
 */
import type { Csr } from "./csr.js";
import { topKRow } from "./topk.js";

export type MetricName = "hitrate" | "ndcg" | "precision" | "map" | "mrr" | "recall";

export interface EvalOptions {
  ks?: number[];
  metrics?: MetricName[];
  batchSize?: number;
  /** Exclude the user's training items from the ranking (default true). */
  excludeSeen?: boolean;
}

/** Accumulates per-user ranks of the single held-out item (0 = not in top maxK). */
export function rankingMetrics(ranks: Int32Array, ks: number[], metrics: MetricName[]): Record<string, number> {
  const out: Record<string, number> = {};
  const n = ranks.length;
  for (const k of ks) {
    let hit = 0;
    let ndcg = 0;
    let rr = 0;
    for (let j = 0; j < n; j++) {
      const r = ranks[j]!;
      if (r > 0 && r <= k) {
        hit++;
        ndcg += 1 / Math.log2(r + 1);
        rr += 1 / r;
      }
    }
    for (const m of metrics) {
      const v = m === "hitrate" || m === "recall" ? hit / n : m === "ndcg" ? ndcg / n : m === "precision" ? hit / n / k : rr / n;
      out[`${m}@${k}`] = n > 0 ? v : 0;
    }
  }
  return out;
}

/**
 * Scores users by X[u] . Y[i] with typed arrays in batches and returns the metrics.
 * `scoreBatch(users, out)` may replace the default dot-product scoring (e.g. TF.js matMul).
 */
export function evaluateLeaveLastOut(
  X: ArrayLike<number>, Y: ArrayLike<number>, f: number, nItems: number, train: Csr,
  testUsers: Int32Array, testItems: Int32Array, o: EvalOptions = {},
  scoreBatch?: (users: Int32Array, out: Float32Array) => void,
): Record<string, number> {
  const ks = o.ks ?? [10];
  const metrics = o.metrics ?? ["hitrate", "ndcg", "precision", "map"];
  const maxK = Math.max(...ks);
  const bs = o.batchSize ?? 256;
  const excludeSeen = o.excludeSeen ?? true;
  const ranks = new Int32Array(testUsers.length);
  const scores = new Float32Array(bs * nItems);
  const idx = new Int32Array(maxK);
  const sc = new Float32Array(maxK);
  const seen = new Uint8Array(nItems);
  for (let s = 0; s < testUsers.length; s += bs) {
    const users = testUsers.subarray(s, Math.min(s + bs, testUsers.length));
    if (scoreBatch) scoreBatch(users, scores);
    else {
      for (let b = 0; b < users.length; b++) {
        const xo = users[b]! * f;
        for (let i = 0; i < nItems; i++) {
          const yo = i * f;
          let d = 0;
          for (let a = 0; a < f; a++) d += X[xo + a]! * Y[yo + a]!;
          scores[b * nItems + i] = d;
        }
      }
    }
    for (let b = 0; b < users.length; b++) {
      const u = users[b]!;
      if (excludeSeen) for (let k = train.indptr[u]!; k < train.indptr[u + 1]!; k++) seen[train.indices[k]!] = 1;
      const got = topKRow(scores, b * nItems, nItems, maxK, excludeSeen ? (i) => seen[i] === 1 : null, idx, sc);
      const target = testItems[s + b]!;
      let rank = 0;
      for (let j = 0; j < got; j++) if (idx[j] === target) { rank = j + 1; break; }
      ranks[s + b] = rank;
      if (excludeSeen) for (let k = train.indptr[u]!; k < train.indptr[u + 1]!; k++) seen[train.indices[k]!] = 0;
    }
  }
  return rankingMetrics(ranks, ks, metrics);
}

/** The most-popular baseline under the same protocol: items ranked by training interaction count. */
export function popularityScores(train: Csr): Float32Array {
  const pop = new Float32Array(train.cols);
  for (let k = 0; k < train.indptr[train.rows]!; k++) pop[train.indices[k]!]!++;
  return pop;
}

import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { RecblocksError } from "../../src/errors/issue.js";
import { RankingMetrics, popularityCounts, popularityTopK } from "../../src/metrics/index.js";
import { mulberry32 } from "../../src/masking/index.js";

const ALL = ["ndcg", "recall", "precision", "map", "mrr", "dcg", "hitrate"] as const;
const INV_LOG2_3 = 0.6309297535714575; // 1 / log2(3): the discount of rank 2

describe("RankingMetrics.update (top-k ids)", () => {
  it("matches hand-computed values over hits, a miss, a skipped padding target and a duplicate id", () => {
    const m = new RankingMetrics([3, 1], [...ALL]);
    expect(m.ks).toEqual([1, 3]);
    // rows: hit at rank 2; miss; hit at rank 1; target 0 (skipped); duplicate ids, hit at rank 3
    const topk = Int32Array.from([5, 2, 9, 1, 7, 3, 4, 6, 8, 1, 2, 3, 3, 3, 7]);
    m.update(topk, Int32Array.from([2, 4, 4, 0, 7]), 3);
    expect(m.count).toBe(4);
    const r = m.result();
    const expected: Record<string, number> = {
      "recall@1": 0.25, "recall@3": 0.75, "hitrate@1": 0.25, "hitrate@3": 0.75,
      "precision@1": 0.25, "precision@3": 0.25,
      "mrr@1": 0.25, "mrr@3": (1 / 2 + 1 + 1 / 3) / 4, "map@1": 0.25, "map@3": (1 / 2 + 1 + 1 / 3) / 4,
      "ndcg@1": 0.25, "ndcg@3": (INV_LOG2_3 + 1 + 0.5) / 4, "dcg@1": 0.25, "dcg@3": (INV_LOG2_3 + 1 + 0.5) / 4,
    };
    expect(Object.keys(r).sort()).toEqual(Object.keys(expected).sort());
    for (const [k, v] of Object.entries(expected)) expect(r[k], k).toBeCloseTo(v, 12);
    expect(r["mrr@3"]).toBeCloseTo(0.4583333333, 9);
    expect(r["ndcg@3"]).toBeCloseTo(0.5327324384, 9);
  });

  it("streams: two batches give the mean over all rows; reset clears; merge adds", () => {
    const a = new RankingMetrics([2]);
    a.update(Int32Array.from([1, 2]), Int32Array.from([1]), 2); // rank 1
    a.update(Int32Array.from([1, 2, 3, 4]), Int32Array.from([2, 9]), 2); // row 0 [1,2]: target 2 at rank 2; row 1 [3,4]: miss
    const r = a.result();
    expect(r["recall@2"]).toBeCloseTo(2 / 3, 12);
    expect(r["mrr@2"]).toBeCloseTo((1 + 0.5) / 3, 12);
    const b = new RankingMetrics([2]);
    b.update(Int32Array.from([5, 6]), Int32Array.from([5]), 2);
    a.merge(b);
    expect(a.count).toBe(4);
    expect(a.result()["recall@2"]).toBeCloseTo(3 / 4, 12);
    a.reset();
    expect(a.count).toBe(0);
    expect(() => a.result()).toThrow(RecblocksError);
  });

  it("rejects a top-k narrower than the largest cut-off", () => {
    const m = new RankingMetrics([5, 20]);
    expect(() => m.update(new Int32Array(10), new Int32Array(1), 10)).toThrow(/at least 20/);
  });

  it("updateShared and updateFromRanks", () => {
    const m = new RankingMetrics([2], ["recall", "mrr"]);
    m.updateShared([7, 3, 9], Int32Array.from([3, 9, 7, 0]));
    expect(m.result()).toEqual({ "recall@2": 2 / 3, "mrr@2": (0.5 + 1) / 3 });
    const n = new RankingMetrics([2], ["recall", "mrr"]);
    n.updateFromRanks([2, 0, 1, Infinity, 5], Int32Array.from([1, 1, 1, 1, 0]));
    expect(n.result()).toEqual({ "recall@2": 2 / 4, "mrr@2": (0.5 + 1) / 4 });
  });
});

describe("RankingMetrics.updateFromScores (ranking inside TF.js)", () => {
  // item 0 (padding) has the best score but is excluded by default; items 2, 3, 4 tie at 0.9; target 3
  const tied = () => tf.tensor2d([[9, 0.5, 0.9, 0.9, 0.9, 0.1]]);
  const T = Int32Array.from([3]);

  it("ties 'average': expected metrics over a uniformly random order of the tied items", async () => {
    const m = new RankingMetrics([1, 3], ["recall", "mrr", "ndcg", "precision"]);
    const s = tied();
    await m.updateFromScores(s, T);
    s.dispose();
    const r = m.result(); // rank uniform over {1, 2, 3}
    expect(r["recall@1"]).toBeCloseTo(1 / 3, 7);
    expect(r["recall@3"]).toBeCloseTo(1, 7);
    expect(r["mrr@3"]).toBeCloseTo((1 + 1 / 2 + 1 / 3) / 3, 7);
    expect(r["ndcg@3"]).toBeCloseTo((1 + INV_LOG2_3 + 0.5) / 3, 7);
    expect(r["precision@3"]).toBeCloseTo(1 / 3, 7);
  });

  it("ties 'optimistic', 'pessimistic', 'topk' (lower id first), and no exclusion", async () => {
    const run = async (opts: object) => {
      const m = new RankingMetrics([1, 3], ["recall", "mrr"]);
      const s = tied();
      await m.updateFromScores(s, T, opts);
      s.dispose();
      return m.result();
    };
    expect(await run({ ties: "optimistic" })).toEqual({ "recall@1": 1, "recall@3": 1, "mrr@1": 1, "mrr@3": 1 });
    const pes = await run({ ties: "pessimistic" });
    expect(pes["recall@1"]).toBe(0);
    expect(pes["mrr@3"]).toBeCloseTo(1 / 3, 12);
    const top = await run({ ties: "topk" }); // order after excluding 0: 2, 3, 4, 1, 5 -> rank 2
    expect(top).toEqual({ "recall@1": 0, "recall@3": 1, "mrr@1": 0, "mrr@3": 0.5 });
    const all = await run({ exclude: {} }); // item 0 ranked: rank uniform over {2, 3, 4}
    expect(all["recall@1"]).toBe(0);
    expect(all["recall@3"]).toBeCloseTo(2 / 3, 7);
    expect(all["mrr@3"]).toBeCloseTo((1 / 2 + 1 / 3) / 3, 7);
    const allTopk = await run({ exclude: {}, ties: "topk" }); // 0, 2, 3 -> rank 3
    expect(allTopk["mrr@3"]).toBeCloseTo(1 / 3, 12);
  });

  it("per-row exclusions (e.g. items already seen) and an excluded target", async () => {
    const m = new RankingMetrics([1, 3], ["recall", "mrr"]);
    const s = tf.tensor2d([
      [9, 0.5, 0.9, 0.9, 0.9, 0.1],
      [0, 1, 2, 3, 4, 5],
    ]);
    // row 0 excludes item 2 -> tied with 4 only: rank uniform {1, 2}; row 1 excludes its own target 5 -> miss
    await m.updateFromScores(s, Int32Array.from([3, 5]), { exclude: { items: [0], perRow: { ids: Int32Array.from([2, -1, 5, 1]), width: 2 } } });
    const r = m.result();
    expect(r["recall@1"]).toBeCloseTo(0.5 / 2, 7);
    expect(r["recall@3"]).toBeCloseTo(1 / 2, 7);
    expect(r["mrr@3"]).toBeCloseTo((1 + 0.5) / 2 / 2, 7);
    const t = new RankingMetrics([1, 3], ["recall", "mrr"]);
    t.updateFromScoresSync(s, Int32Array.from([3, 4]), { ties: "topk", exclude: { items: [0], perRow: { ids: Int32Array.from([2, -1, 5, 1]), width: 2 } } });
    // row 0: order 3, 4, 1, 5 -> rank 1; row 1: order (5, 1 excluded) 4, 3, 2 -> rank 1
    expect(t.result()).toEqual({ "recall@1": 1, "recall@3": 1, "mrr@1": 1, "mrr@3": 1 });
    s.dispose();
  });

  it("without ties every mode agrees with a host-side sort", async () => {
    const rng = mulberry32(3);
    const B = 16;
    const V = 50;
    const vals = new Float32Array(B * V).map(() => rng.next() * 10 - 5);
    const targets = Int32Array.from({ length: B }, (_, b) => (b === 3 ? 0 : 1 + Math.floor(rng.next() * (V - 1))));
    const ref = new RankingMetrics([1, 5, 10], [...ALL]);
    const ranks: number[] = [];
    for (let b = 0; b < B; b++) {
      const row = Array.from(vals.subarray(b * V, (b + 1) * V));
      const order = row.map((v, i) => [v, i] as const).filter(([, i]) => i !== 0).sort((x, y) => y[0] - x[0]);
      ranks.push(order.findIndex(([, i]) => i === targets[b]) + 1);
    }
    ref.updateFromRanks(ranks, targets);
    const s = tf.tensor2d(vals, [B, V]);
    for (const ties of ["average", "optimistic", "pessimistic", "topk"] as const) {
      const m = new RankingMetrics([1, 5, 10], [...ALL]);
      await m.updateFromScores(s, targets, { ties });
      const r = m.result();
      for (const [k, v] of Object.entries(ref.result())) expect(r[k], `${ties} ${k}`).toBeCloseTo(v, 10);
    }
    s.dispose();
  });

  it("ties running past the top-k window are counted exactly (V larger than the window)", async () => {
    const V = 30;
    const rows: number[][] = [];
    rows.push(new Array(V).fill(0)); // A: everything ties with target 7 -> rank uniform over 1..29
    const b = new Array(V).fill(0);
    for (let i = 1; i <= 5; i++) b[i] = 1;
    rows.push(b); // B: 5 items above target 9 -> miss
    const c = new Array(V).fill(0);
    c[3] = 2;
    c[4] = 2;
    c[8] = 1;
    rows.push(c); // C: target 8 at rank 3 exactly
    const d = new Array(V).fill(0);
    d[2] = 5;
    rows.push(d); // D: target 10; 11 and 12 excluded for this row -> rank uniform over 2..27
    const s = tf.tensor2d(rows);
    const targets = Int32Array.from([7, 9, 8, 10]);
    const exclude = { items: [0], perRow: { ids: Int32Array.from([-1, -1, -1, -1, -1, -1, 11, 12]), width: 2 } };
    const m = new RankingMetrics([1, 3], ["recall", "mrr"]);
    await m.updateFromScores(s, targets, { exclude });
    const r = m.result();
    expect(r["recall@1"]).toBeCloseTo((1 / 29 + 0 + 0 + 0) / 4, 7);
    expect(r["recall@3"]).toBeCloseTo((3 / 29 + 0 + 1 + 2 / 26) / 4, 7);
    expect(r["mrr@3"]).toBeCloseTo(((1 + 1 / 2 + 1 / 3) / 29 + 0 + 1 / 3 + (1 / 2 + 1 / 3) / 26) / 4, 7);
    const p = new RankingMetrics([1, 3], ["recall", "mrr"]);
    p.updateFromScoresSync(s, targets, { exclude, ties: "pessimistic" }); // only C hits
    expect(p.result()).toEqual({ "recall@1": 0, "recall@3": 0.25, "mrr@1": 0, "mrr@3": 1 / 12 });
    const o = new RankingMetrics([1, 3], ["recall", "mrr"]);
    o.updateFromScoresSync(s, targets, { exclude, ties: "optimistic" }); // A rank 1, C rank 3, D rank 2
    expect(o.result()).toEqual({ "recall@1": 0.25, "recall@3": 0.75, "mrr@1": 0.25, "mrr@3": (1 + 1 / 3 + 1 / 2) / 4 });
    s.dispose();
  });

  it("tie-heavy random scores: every mode equals a brute-force count over the whole row", async () => {
    const rng = mulberry32(11);
    const B = 24;
    const V = 60;
    const vals = new Float32Array(B * V).map(() => Math.floor(rng.next() * 4)); // scores in {0,1,2,3}
    const targets = Int32Array.from({ length: B }, () => 1 + Math.floor(rng.next() * (V - 1)));
    const seen = Int32Array.from({ length: B * 3 }, () => (rng.next() < 0.3 ? -1 : 1 + Math.floor(rng.next() * (V - 1))));
    const ks = [1, 5, 10];
    const ref = { average: new RankingMetrics(ks, [...ALL]), optimistic: new RankingMetrics(ks, [...ALL]), pessimistic: new RankingMetrics(ks, [...ALL]) };
    for (let b = 0; b < B; b++) {
      const t = vals[b * V + targets[b]!]!;
      const excluded = new Set([0, ...Array.from(seen.subarray(b * 3, b * 3 + 3)).filter((x) => x >= 0)]);
      if (excluded.has(targets[b]!)) {
        for (const m of Object.values(ref)) m.updateFromRanks([0]);
        continue;
      }
      let g = 0;
      let e = 0;
      for (let i = 0; i < V; i++) {
        if (i === targets[b] || excluded.has(i)) continue;
        if (vals[b * V + i]! > t) g++;
        else if (vals[b * V + i] === t) e++;
      }
      ref.optimistic.updateFromRanks([g + 1]);
      ref.pessimistic.updateFromRanks([g + e + 1]);
      // average: the mean over the equally likely ranks, as rows of weight 1/(e+1) via a side accumulator
      const acc = new RankingMetrics(ks, [...ALL]);
      for (let r = g + 1; r <= g + e + 1; r++) acc.updateFromRanks([r]);
      (ref.average as unknown as { merge(o: RankingMetrics): void }).merge(scaleToOneRow(acc));
    }
    const s = tf.tensor2d(vals, [B, V]);
    for (const ties of ["average", "optimistic", "pessimistic"] as const) {
      const m = new RankingMetrics(ks, [...ALL]);
      await m.updateFromScores(s, targets, { ties, exclude: { items: [0], perRow: { ids: seen, width: 3 } } });
      const want = ref[ties].result();
      for (const [k, v] of Object.entries(m.result())) expect(v, `${ties} ${k}`).toBeCloseTo(want[k]!, 9);
    }
    s.dispose();
  });

  it("NaN scores are a located error, not a silent number", async () => {
    const m = new RankingMetrics([2]);
    const s = tf.tensor2d([[0, 1, 2], [0, NaN, 1]]);
    await expect(m.updateFromScores(s, Int32Array.from([1, 2]))).rejects.toMatchObject({ issues: [{ code: "nan_scores", path: "/rows/1" }] });
    expect(() => m.updateFromScoresSync(s, Int32Array.from([1, 2]), { ties: "topk" })).toThrow(RecblocksError);
    s.dispose();
  });

  it("does not leak tensors", async () => {
    const m = new RankingMetrics([2, 5]);
    const s = tf.randomNormal([8, 40]) as tf.Tensor2D;
    const targets = Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    await m.updateFromScores(s, targets);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      await m.updateFromScores(s, targets);
      await m.updateFromScores(s, targets, { ties: "topk", exclude: { items: [0], perRow: { ids: Int32Array.from({ length: 16 }, (_, j) => j % 7), width: 2 } } });
    }
    expect(tf.memory().numTensors).toBe(before);
    s.dispose();
  });
});

describe("most-popular baseline", () => {
  it("counts and ranks by count, smaller id first on ties, never id 0", () => {
    const counts = popularityCounts([[3, 2, 2, 0, 0], Int32Array.from([3, 1, 5]), [2, 3]], 6);
    expect(Array.from(counts)).toEqual([0, 1, 3, 3, 0, 1]);
    expect(Array.from(popularityTopK(counts, 4))).toEqual([2, 3, 1, 5]);
    expect(Array.from(popularityTopK([100, 5, 7, 7, 0, 3], 3))).toEqual([2, 3, 1]);
    expect(Array.from(popularityTopK([100, 5, 7, 7, 0, 3], 3, [2]))).toEqual([3, 1, 5]);
    expect(() => popularityCounts([[7]], 6)).toThrow(/outside/);
  });
});

/** An accumulator holding n rows, rescaled to count as one row with the mean of their values. */
function scaleToOneRow(acc: RankingMetrics): RankingMetrics {
  const a = acc as unknown as { sums: Float64Array; rows: number };
  const n = a.rows;
  for (let i = 0; i < a.sums.length; i++) a.sums[i]! /= n;
  a.rows = 1;
  return acc;
}

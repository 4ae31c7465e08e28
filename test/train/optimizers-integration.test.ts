import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { maskBatch, mulberry32 } from "../../src/masking/index.js";
import { RankingMetrics, popularityCounts, popularityTopK } from "../../src/metrics/index.js";
import { clipByGlobalNorm, disposeGradients } from "../../src/train/clipping.js";
import { createOptimizer } from "../../src/train/optimizers.js";
import { createSchedule } from "../../src/train/schedules.js";

/**
 * The pure pieces working together on a toy next-item task (item i is followed by i+1, cyclically over
 * 1..N): causal masking -> a bigram model (logits = E[x]·Wᵀ) -> clipped Adam with a warm-up/decay schedule
 * -> ranking metrics against the most-popular baseline.
 */
describe("masking + optimizer + schedule + clipping + metrics on a toy task", () => {
  it("learns the successor of each item and beats most-popular by far, with flat memory", async () => {
    const N = 20; // items 1..N, 0 = padding
    const V = N + 1;
    const L = 6;
    const B = 16;
    const rng = mulberry32(5);
    const batch = () => {
      const ids = new Int32Array(B * L);
      for (let b = 0; b < B; b++) {
        const len = 2 + Math.floor(rng.next() * (L - 1));
        let item = 1 + Math.floor(rng.next() * N);
        for (let t = 0; t < len; t++) {
          ids[b * L + t] = item;
          item = (item % N) + 1;
        }
      }
      return ids;
    };
    const E = tf.variable(tf.randomNormal([V, 8], 0, 0.1, "float32", 1), true, "toy_E");
    const W = tf.variable(tf.randomNormal([V, 8], 0, 0.1, "float32", 2), true, "toy_W");
    const steps = 150;
    const opt = createOptimizer({ type: "adam", learningRate: 0.05 }, { schedule: createSchedule({ type: "linear", warmupSteps: 10 }, { learningRate: 0.05, totalSteps: steps }) });
    const trainIds: Int32Array[] = [];
    let firstLoss = NaN;
    let lastLoss = NaN;
    let tensorsAfterFirst = 0;
    for (let s = 0; s < steps; s++) {
      const ids = batch();
      trainIds.push(ids);
      const m = maskBatch({ type: "causal" }, ids, B, L, "train", rng);
      const pos: number[] = [];
      const lab: number[] = [];
      for (let i = 0; i < m.labels.length; i++) if (m.maskedPositions[i]) (pos.push(m.inputIds[i]!), lab.push(m.labels[i]!));
      const loss = tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => {
          const h = tf.gather(E, tf.tensor1d(pos, "int32"));
          const logits = h.matMul(W, false, true);
          return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(lab, "int32"), V), logits) as tf.Scalar;
        }, [E, W]);
        const clipped = clipByGlobalNorm(grads, 1.0);
        opt.applyGradients(clipped.grads);
        disposeGradients(clipped.grads);
        return value;
      });
      const l = loss.dataSync()[0]!;
      loss.dispose();
      if (s === 0) firstLoss = l;
      if (s === 1) tensorsAfterFirst = tf.memory().numTensors;
      lastLoss = l;
    }
    expect(tf.memory().numTensors).toBe(tensorsAfterFirst);
    expect(lastLoss).toBeLessThan(firstLoss / 3);

    // evaluation: last item of each session (T4R default)
    const metrics = new RankingMetrics([1, 5]);
    const pop = new RankingMetrics([1, 5]);
    const top = popularityTopK(popularityCounts(trainIds.flatMap((ids) => Array.from({ length: B }, (_, b) => ids.subarray(b * L, (b + 1) * L))), V), 5);
    for (let e = 0; e < 4; e++) {
      const ids = batch();
      const m = maskBatch({ type: "causal" }, ids, B, L, "eval", rng);
      const pos: number[] = [];
      const lab: number[] = [];
      for (let i = 0; i < m.labels.length; i++) if (m.maskedPositions[i]) (pos.push(m.inputIds[i]!), lab.push(m.labels[i]!));
      const scores = tf.tidy(() => tf.gather(E, tf.tensor1d(pos, "int32")).matMul(W, false, true)) as tf.Tensor2D;
      await metrics.updateFromScores(scores, Int32Array.from(lab));
      scores.dispose();
      pop.updateShared(top, Int32Array.from(lab));
    }
    expect(metrics.count).toBe(64);
    expect(metrics.result()["recall@1"]).toBeGreaterThan(0.95);
    expect(pop.result()["recall@5"]).toBeLessThan(0.5);
    expect(metrics.result()["ndcg@5"]).toBeGreaterThan(pop.result()["ndcg@5"]! + 0.5);
    opt.dispose();
    tf.dispose([E, W]);
  });
});

import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import "../../../blocks/index.js";
import type { ItemEmbeddings } from "../../../blocks/features/tabular-sequence-features.js";
import { SequentialBlock } from "../../../blocks/core/sequential.js";
import { TabularSequenceFeatures } from "../../../blocks/features/tabular-sequence-features.js";
import { Head } from "../../../blocks/heads/head.js";
import { HIT_LOGIT, bprLoss, firstColumnCrossEntropy, hitMask, logInclusionProbability, sampledSoftmaxLogits, top1Loss } from "../../../blocks/heads/losses.js";
import { NextItemPredictionTask, type NextItemPredictionConfig } from "../../../blocks/heads/next-item-prediction.js";
import { LogUniformSampler } from "../../../blocks/heads/sampling.js";
import { MLPBlock } from "../../../blocks/core/mlp.js";
import { BlockContext, BlockError, CallContext, type FeatureSchemaLike, type RandomSource } from "../../../src/core/index.js";
import type { Session } from "../../../src/data/index.js";
import { mulberry32 } from "../../../src/masking/index.js";
import { Model } from "../../../src/model/model.js";
import { fit } from "../../../src/train/loop.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

/*
 * The tiny case of next-item-prediction.test.ts: V = 4 (id 0 = padding, items 1..3), d = 2,
 *   E = [[0, 0], [1, 2], [-1, 0.5], [0.5, -1]],  h = [[1, 1], [2, -1]]
 *   h·Eᵀ = [[0, 3, -0.5, -0.5], [0, 0, -2.5, 2]]      (row, item)
 */
const E = [[0, 0], [1, 2], [-1, 0.5], [0.5, -1]];
const V = 4;
const H = [[1, 1], [2, -1]];
const S = [[0, 3, -0.5, -0.5], [0, 0, -2.5, 2]];

/** A RandomSource returning the given numbers in turn (the sampler's uniforms). */
const fixed = (...u: number[]): RandomSource => {
  let i = 0;
  return { next: () => u[i++ % u.length]! };
};
const close = (got: number, want: number, tol = 1e-5) => expect(Math.abs(got - want), `${got} vs ${want}`).toBeLessThan(tol);
const softplus = (x: number) => Math.log1p(Math.exp(x));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const lse = (xs: number[]) => {
  const m = Math.max(...xs);
  return m + Math.log(xs.reduce((a, x) => a + Math.exp(x - m), 0));
};
/** Hand formulas of the log-uniform sampler for V = 4: P(j) = ln(1 + 1/j) / ln 4, q(j) = 1 - (1 - P(j))^tries. */
const P = (j: number) => Math.log(1 + 1 / j) / Math.log(4);
const q = (j: number, tries: number) => 1 - (1 - P(j)) ** tries;

function task(config: Omit<NextItemPredictionConfig, "type">, schema?: FeatureSchemaLike) {
  const table = tf.variable(tf.tensor2d(E));
  const ctx = new BlockContext({ schema, rng: mulberry32(4), path: "/model/head" });
  ctx.set("item-embeddings", { column: "item_id", table, cardinality: V, dim: 2 } satisfies ItemEmbeddings);
  ctx.set("masking", { type: "causal" });
  const t = new NextItemPredictionTask(config);
  t.build({ shape: [null, null, 2], dtype: "float32" }, ctx);
  return { t, dispose: () => (t.dispose(), table.dispose()) };
}

/** trainLoss of a task on h (one row per label: a [N, D] body output) with the sampler's uniforms `u`. */
function trainLoss(t: NextItemPredictionTask, labels: number[], u: number[]): number {
  return tf.tidy(() => {
    const ctx = new CallContext({ mode: "train", rng: fixed(...u) });
    return t.trainLoss(tf.tensor2d(H), ctx, tf.tensor1d(labels, "int32")).dataSync()[0]!;
  });
}

describe("LogUniformSampler", () => {
  it("P(j) = ln(1 + 1/j) / ln V over items 1..V-1 (T4R's (log(c+2) - log(c+1)) / log(max_id + 1), c = j - 1), summing to 1", () => {
    const s = new LogUniformSampler(V);
    close(s.probability(1), 0.5); // ln 2 / ln 4
    close(s.probability(2), Math.log(1.5) / Math.log(4)); // 0.29248
    close(s.probability(3), Math.log(4 / 3) / Math.log(4)); // 0.20752
    expect(s.probability(0)).toBe(0);
    expect(s.probability(4)).toBe(0);
    const big = new LogUniformSampler(1000);
    let sum = 0;
    for (let j = 1; j < 1000; j++) sum += big.probability(j);
    close(sum, 1, 1e-9);
    // frequency-ordered ids: the probability falls with the id
    expect(big.probability(1)).toBeGreaterThan(big.probability(2));
    expect(big.probability(10)).toBeGreaterThan(big.probability(100));
  });

  it("draws follow P (inverse CDF floor(V^u)), 200k draws within 0.005", () => {
    const s = new LogUniformSampler(V);
    const rng = mulberry32(9);
    const counts = [0, 0, 0, 0];
    const n = 200_000;
    for (let i = 0; i < n; i++) counts[s.draw(rng)]!++;
    expect(counts[0]).toBe(0);
    for (const j of [1, 2, 3]) close(counts[j]! / n, P(j), 0.005);
    // the inverse CDF by hand: 4^0.1 = 1.15 -> 1, 4^0.6 = 2.30 -> 2, 4^0.9 = 3.48 -> 3
    expect([0.1, 0.6, 0.9].map((u) => s.draw(fixed(u)))).toEqual([1, 2, 3]);
  });

  it("unique sampling: draws until n distinct ids, counts the tries; q = 1 - (1 - P)^tries", () => {
    const s = new LogUniformSampler(V);
    // 0.9 -> 3, 0.95 -> 3 (again), 0.6 -> 2: two distinct ids in three tries
    expect(s.sample(2, fixed(0.9, 0.95, 0.6))).toEqual({ ids: Int32Array.from([3, 2]), tries: 3 });
    close(s.inclusionProbability(1, 3), 0.875); // 1 - 0.5^3
    close(s.inclusionProbability(3, 3), q(3, 3));
    // asking for every item (or more) takes them all: q = 1, no correction
    const all = s.sample(5, mulberry32(1));
    expect([...all.ids]).toEqual([1, 2, 3]);
    expect([...s.logInclusion(all.ids, all.tries)]).toEqual([0, 0, 0]);
    // a realistic size: 100 distinct of 999
    const big = new LogUniformSampler(1000).sample(100, mulberry32(3));
    expect(new Set(big.ids).size).toBe(100);
    expect(big.tries).toBeGreaterThanOrEqual(100);
    expect(Math.min(...big.ids)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...big.ids)).toBeLessThanOrEqual(999);
  });

  it("minId 2 (id 1 = OOV): the same law over ids 2..V-1, id 1 never drawn", () => {
    const s = new LogUniformSampler(5, 2); // ids 2, 3, 4: P = ln2/ln4, ln(3/2)/ln4, ln(4/3)/ln4
    close(s.probability(2), 0.5);
    close(s.probability(3), Math.log(1.5) / Math.log(4));
    close(s.probability(4), Math.log(4 / 3) / Math.log(4));
    expect(s.probability(1)).toBe(0);
    expect([0.1, 0.6, 0.9].map((u) => s.draw(fixed(u)))).toEqual([2, 3, 4]);
    expect([...s.sample(9, mulberry32(1)).ids]).toEqual([2, 3, 4]);
    const got = tf.tidy(() => logInclusionProbability(tf.tensor1d([2, 3, 4], "int32"), 5, 3, 2).arraySync());
    [2, 3, 4].forEach((j, i) => close(got[i]!, Math.log(s.inclusionProbability(j, 3)), 1e-5));
  });

  it("the TF logQ (with its small-x series) equals the host formula, also for tiny probabilities", () => {
    for (const [Vn, tries] of [[4, 3], [1000, 200], [1_000_000, 150]] as const) {
      const s = new LogUniformSampler(Vn);
      const ids = [1, 2, Vn - 1, Math.floor(Vn / 2)];
      const got = tf.tidy(() => logInclusionProbability(tf.tensor1d(ids, "int32"), Vn, tries).arraySync());
      const want = s.logInclusion(ids, tries);
      ids.forEach((_, i) => close(got[i]!, want[i]!, 1e-4));
    }
  });
});

describe("sampled softmax (hand-computed)", () => {
  /*
   * labels [1, 3], negatives [3, 2] found in 3 tries (uniforms 0.9, 0.95, 0.6):
   *   row 0: pos = s(h0, E1) = 3;  neg = [s(h0,E3), s(h0,E2)] = [-0.5, -0.5]
   *   row 1: pos = s(h1, E3) = 2;  neg = [s(h1,E3), s(h1,E2)] = [2, -2.5]; negative 3 is row 1's positive: a hit
   *   logits row 0 = [3 - ln q(1), -0.5 - ln q(3), -0.5 - ln q(2)]
   *   logits row 1 = [2 - ln q(3), -1e9,           -2.5 - ln q(2)]
   *   loss = mean over rows of logsumexp(row) - row[0]
   */
  const t3 = 3;
  const row0 = [3 - Math.log(q(1, t3)), -0.5 - Math.log(q(3, t3)), -0.5 - Math.log(q(2, t3))];
  const row1 = [2 - Math.log(q(3, t3)), HIT_LOGIT, -2.5 - Math.log(q(2, t3))];
  const want = (lse(row0) - row0[0]! + lse(row1) - row1[0]!) / 2;

  it("corrected logits, accidental hit and loss from the pieces", () => {
    const logits = tf.tidy(() => {
      const labels = tf.tensor1d([1, 3], "int32");
      const neg = tf.tensor1d([3, 2], "int32");
      return sampledSoftmaxLogits(
        tf.tensor1d([S[0]![1]!, S[1]![3]!]), tf.tensor2d([[S[0]![3]!, S[0]![2]!], [S[1]![3]!, S[1]![2]!]]), hitMask(labels, neg),
        logInclusionProbability(labels, V, t3), logInclusionProbability(neg, V, t3),
      ).arraySync();
    });
    row0.forEach((v, i) => close(logits[0]![i]!, v, 1e-4));
    close(logits[1]![0]!, row1[0]!, 1e-4);
    expect(logits[1]![1]!).toBeLessThan(-1e8);
    close(logits[1]![2]!, row1[2]!, 1e-4);
    close(tf.tidy(() => firstColumnCrossEntropy(tf.tensor2d(logits)).dataSync()[0]!), want, 1e-4);
  });

  it("the head's training loss with sampledSoftmax {numSamples: 2} is that value", () => {
    const { t, dispose } = task({ weightTying: true, sampledSoftmax: { numSamples: 2 } });
    expect(t.getConfig().sampledSoftmax).toEqual({ numSamples: 2, sampler: "log-uniform" });
    close(trainLoss(t, [1, 3], [0.9, 0.95, 0.6]), want, 1e-4);
    dispose();
  });

  it("temperature divides the scores before the logQ correction", () => {
    const { t, dispose } = task({ weightTying: true, softmaxTemperature: 2, sampledSoftmax: { numSamples: 2 } });
    const r0 = [3 / 2 - Math.log(q(1, t3)), -0.25 - Math.log(q(3, t3)), -0.25 - Math.log(q(2, t3))];
    const r1 = [1 - Math.log(q(3, t3)), HIT_LOGIT, -1.25 - Math.log(q(2, t3))];
    close(trainLoss(t, [1, 3], [0.9, 0.95, 0.6]), (lse(r0) - r0[0]! + lse(r1) - r1[0]!) / 2, 1e-4);
    dispose();
  });

  it("numSamples >= the number of items: every item, no correction, equals the full softmax over items 1..V-1", () => {
    const { t, dispose } = task({ weightTying: true, sampledSoftmax: { numSamples: 10 } });
    const full = (lse(S[0]!.slice(1)) - S[0]![1]! + lse(S[1]!.slice(1)) - S[1]![3]!) / 2;
    close(trainLoss(t, [1, 3], [0.5]), full, 1e-4);
    dispose();
  });

  it("an item vocabulary with an OOV id (schema properties.vocabulary.withOov): id 1 is never a negative", () => {
    const schema: FeatureSchemaLike = { columns: [{ name: "item_id", tags: ["item-id", "categorical", "list"], cardinality: V, properties: { vocabulary: { withOov: true } } } as never] };
    const { t, dispose } = task({ weightTying: true, sampledSoftmax: { numSamples: 10 } }, schema);
    // every real item (2, 3) taken, q = 1: the softmax over items 2..3 only
    // row 0 (label 2): scores [-0.5, -0.5] -> ln 2; row 1 (label 3): scores [-2.5, 2] -> lse(-2.5, 2) - 2
    close(trainLoss(t, [2, 3], [0.5]), (Math.log(2) + lse([-2.5, 2]) - 2) / 2, 1e-4);
    dispose();
  });

  it("the accidental hit gets no gradient; an untied output layer samples its columns", () => {
    const { t, dispose } = task({ weightTying: false, sampledSoftmax: { numSamples: 2 } });
    const W = [...t.namedVariables()].find(([k]) => k.endsWith("output/kernel"))![1];
    tf.tidy(() => W.assign(tf.transpose(tf.tensor2d(E))));
    close(trainLoss(t, [1, 3], [0.9, 0.95, 0.6]), want, 1e-4);
    dispose();
    // d loss / d neg: the hit (row 1, negative 0) gets exactly 0; the others softmax / N
    const g = tf.tidy(() => {
      const labels = tf.tensor1d([1, 3], "int32");
      const negIds = tf.tensor1d([3, 2], "int32");
      const f = (neg: tf.Tensor) => firstColumnCrossEntropy(sampledSoftmaxLogits(tf.tensor1d([3, 2]), neg as tf.Tensor2D, hitMask(labels, negIds), tf.zeros([2]), tf.zeros([2])));
      return tf.grad(f)(tf.tensor2d([[-0.5, -0.5], [2, -2.5]])).arraySync() as number[][];
    });
    expect(g[1]![0]).toBe(0);
    close(g[1]![1]!, Math.exp(-2.5 - lse([2, -2.5])) / 2);
  });

  it("labelSmoothing with sampledSoftmax is refused (incompatible_config)", () => {
    let err: unknown;
    try {
      task({ weightTying: true, labelSmoothing: 0.1, sampledSoftmax: {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BlockError);
    expect((err as BlockError).issues[0]!.code).toBe("incompatible_config");
  });
});

describe("sampled / pairwise losses and rtd masking", () => {
  it("are refused together (rtd's generator trains with the full softmax)", () => {
    const schema: FeatureSchemaLike = { columns: [{ name: "item_id", tags: ["item-id", "categorical", "list"], cardinality: 12 }] };
    for (const head of [{ sampledSoftmax: { numSamples: 4 } }, { loss: "bpr" }]) {
      const m = Model.fromConfig({
        inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: 8 }, masking: { type: "rtd" } },
        body: [{ type: "transformer", architecture: "bert", dModel: 8, numHeads: 2, numLayers: 1, maxSequenceLength: 5 }],
        head: { type: "next-item-prediction", weightTying: true, ...head },
      }, schema);
      let err: unknown;
      try {
        m.build();
      } catch (e) {
        err = e;
      }
      expect((err as BlockError).issues?.[0]?.code, String(err)).toBe("incompatible_config");
      m.dispose();
    }
  });
});

describe("pairwise losses (GRU4Rec, hand-computed)", () => {
  /*
   * labels [1, 3]; in-batch negatives = the labels [1, 3], each row's own positive left out:
   *   row 0: pos 3, negative item 3 scores -0.5        row 1: pos 2, negative item 1 scores 0
   */
  it("bpr: mean softplus(neg - pos) = ((ln(1 + e^-3.5)) + ln(1 + e^-2)) / 2", () => {
    const { t, dispose } = task({ weightTying: true, loss: "bpr" });
    close(trainLoss(t, [1, 3], [0.5]), (softplus(-3.5) + softplus(-2)) / 2);
    dispose();
  });

  it("top1: mean σ(neg - pos) + σ(neg²) = ((σ(-3.5) + σ(0.25)) + (σ(-2) + σ(0))) / 2", () => {
    const { t, dispose } = task({ weightTying: true, loss: "top1" });
    close(trainLoss(t, [1, 3], [0.5]), (sigmoid(-3.5) + sigmoid(0.25) + sigmoid(-2) + sigmoid(0)) / 2);
    dispose();
  });

  it("bpr with sampled negatives too: in-batch [1, 3] + sampled [2] (uniform 0.6)", () => {
    const { t, dispose } = task({ weightTying: true, loss: "bpr", sampledSoftmax: { numSamples: 1 } });
    // row 0: negatives 3 (-0.5) and 2 (-0.5); row 1: negatives 1 (0) and 2 (-2.5)
    const want = ((softplus(-3.5) + softplus(-3.5)) / 2 + (softplus(-2) + softplus(-4.5)) / 2) / 2;
    close(trainLoss(t, [1, 3], [0.6]), want);
    dispose();
  });

  it("duplicate labels in the batch are not negatives of each other; a row without any negative is left out", () => {
    // labels [1, 1]: every in-batch negative is a hit -> loss 0 (no row has a negative)
    const { t, dispose } = task({ weightTying: true, loss: "bpr" });
    close(trainLoss(t, [1, 1], [0.5]), 0);
    dispose();
    const pos = tf.tensor1d([1, 2]);
    const neg = tf.tensor2d([[0, 5], [1, 1]]);
    const hits = tf.tensor2d([[1, 0], [1, 1]]);
    close(bprLoss(pos, neg, hits).dataSync()[0]!, softplus(4)); // only row 0, negative 5
    close(top1Loss(pos, neg, hits).dataSync()[0]!, sigmoid(4) + sigmoid(25));
    tf.dispose([pos, neg, hits]);
  });
});

describe("training with sampled softmax", () => {
  /** Sessions over 29 items where each item is followed by the next one (mod 29): easy to learn. */
  const NI = 30;
  const L = 6;
  const schema: FeatureSchemaLike = { columns: [{ name: "item_id", tags: ["item-id", "categorical", "list"], cardinality: NI }] };
  const sessions = (n: number, seed: number): Session[] => {
    const r = mulberry32(seed);
    return Array.from({ length: n }, (_, i) => {
      const a = Math.floor(r.next() * (NI - 1));
      const len = 3 + Math.floor(r.next() * (L - 2));
      return { id: `s${seed}-${i}`, items: Int32Array.from({ length: len }, (_, t) => 1 + ((a + t) % (NI - 1))), categorical: {}, continuous: {}, context: {} };
    });
  };

  for (const loss of ["cross-entropy", "bpr"] as const) {
    it(`${loss}${loss === "cross-entropy" ? " (sampled softmax, 8 of 29 items)" : " (in-batch negatives)"}: the loss falls, evaluation ranks the whole catalogue`, async () => {
      const inputs = TabularSequenceFeatures.fromSchema(schema, { embeddingDims: { item_id: 16 }, masking: { type: "causal" } });
      const head = new NextItemPredictionTask({ weightTying: true, loss, ...(loss === "cross-entropy" ? { sampledSoftmax: { numSamples: 8 } } : {}) });
      // a per-position MLP body: the next item follows from the current one, so it is enough (and fast)
      const model = new Model(new Head(new SequentialBlock([inputs, new MLPBlock({ units: [16] })]), head), { schema }).build({ seed: 3 });
      const before = model.evaluate([...evalBatches(model)], { ks: [5, NI - 1] });
      const r = await fit(model, { train: sessions(160, 1), maxSequenceLength: L }, { train: { epochs: 5, batchSize: 32, optimizer: { type: "adam", learningRate: 0.03 } }, progress: { quiet: true } as never });
      const losses = r.history.map((h) => h.loss);
      expect(losses[losses.length - 1]!).toBeLessThan(losses[0]! * 0.7);
      const after = model.evaluate([...evalBatches(model)], { ks: [5, NI - 1] });
      // every item is ranked: recall at V - 1 is 1 whatever the model; the full cross-entropy falls
      expect(after[`recall@${NI - 1}`]).toBe(1);
      expect(after["recall@5"]!).toBeGreaterThan(0.8);
      expect(after["recall@5"]!).toBeGreaterThan(before["recall@5"]!);
      expect(after.loss!).toBeLessThan(before.loss!);
      model.dispose();
    }, 90_000);
  }

  function* evalBatches(_m: Model) {
    const ss = sessions(64, 2);
    const B = ss.length;
    const itemIds = new Int32Array(B * L);
    const lengths = new Int32Array(B);
    const targets = new Int32Array(B);
    ss.forEach((s, b) => {
      const n = s.items.length - 1;
      itemIds.set(s.items.subarray(0, n), b * L);
      lengths[b] = n;
      targets[b] = s.items[n]!;
    });
    yield { batchSize: B, seqLen: L, itemIds, lengths, targets, categorical: {}, continuous: {}, context: {} };
  }
});

/**
 * BPR-max and TOP1-max (Hidasi & Karatzoglou 2018, "Recurrent Neural Networks with Top-k Gains"): values
 * on a tiny score matrix checked against numbers computed by hand (outside TF.js), the same negatives as
 * bpr / top1 in the next-item head, the recipe keys, and a short training on builtin:synthetic that
 * lowers each loss.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import "../../blocks/index.js";
import type { ItemEmbeddings } from "../../blocks/features/tabular-sequence-features.js";
import { bprMaxLoss, hitMask, top1MaxLoss } from "../../blocks/heads/losses.js";
import { NextItemPredictionTask, type NextItemPredictionConfig } from "../../blocks/heads/next-item-prediction.js";
import { BlockContext, BlockError, CallContext } from "../../src/core/index.js";
import { mulberry32 } from "../../src/masking/index.js";
import { trainRecipe } from "../../src/run/train.js";
import type { EpochRecord } from "../../src/train/loop.js";
import { smallRecipe } from "../helpers/small-model.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const close = (got: number, want: number, tol = 1e-5) => expect(Math.abs(got - want), `${got} vs ${want}`).toBeLessThan(tol);

/*
 * Two rows, three negatives each:
 *   pos = [1, 0.5]          neg = [[0.5, -1, 2], [0, 1, -0.5]]
 * Row 0: s = softmax(0.5, -1, 2) = [0.17529039, 0.03911257, 0.78559703]
 *   Σ s_j σ(1 - r_j) = 0.17529·σ(0.5) + 0.03911·σ(2) + 0.78560·σ(-1) = 0.35484096, -ln = 1.03608558
 *   Σ s_j r_j² = 0.17529·0.25 + 0.03911·1 + 0.78560·4 = 3.22532331
 *   BPR-max = 1.03608558 + 3.22532331 λ
 * The digits below were computed in double precision by a separate script (Python, math module):
 *   row 0: BPR-max(λ=1) = 4.26140889, BPR-max(λ=0.5) = 2.64874723, TOP1-max = 1.54376388
 *   row 1: BPR-max(λ=1) = 1.38977857, BPR-max(λ=0.5) = 1.05798217, TOP1-max = 1.17019693
 * and the loss is the mean over rows.
 */
const POS = [1, 0.5];
const NEG = [
  [0.5, -1, 2],
  [0, 1, -0.5],
];
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** The hand formulas, row by row, over the negatives not marked in `hits` (double precision, no TF.js). */
function byHand(hits: number[][], lambda: number): { bprMax: number; top1Max: number } {
  const b: number[] = [];
  const t: number[] = [];
  for (let i = 0; i < POS.length; i++) {
    const js = [0, 1, 2].filter((j) => !hits[i]![j]);
    if (!js.length) continue;
    const z = js.reduce((a, j) => a + Math.exp(NEG[i]![j]!), 0);
    const s = (j: number) => Math.exp(NEG[i]![j]!) / z;
    b.push(-Math.log(js.reduce((a, j) => a + s(j) * sigmoid(POS[i]! - NEG[i]![j]!), 0)) + lambda * js.reduce((a, j) => a + s(j) * NEG[i]![j]! ** 2, 0));
    t.push(js.reduce((a, j) => a + s(j) * (sigmoid(NEG[i]![j]! - POS[i]!) + sigmoid(NEG[i]![j]! ** 2)), 0));
  }
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
  return { bprMax: mean(b), top1Max: mean(t) };
}

function losses(hits: number[][], lambda = 1): { bprMax: number; top1Max: number } {
  return tf.tidy(() => {
    const pos = tf.tensor1d(POS);
    const neg = tf.tensor2d(NEG);
    const h = tf.tensor2d(hits);
    return { bprMax: bprMaxLoss(pos, neg, h, lambda).dataSync()[0]!, top1Max: top1MaxLoss(pos, neg, h).dataSync()[0]! };
  });
}

describe("BPR-max and TOP1-max on a 2 x 3 score matrix", () => {
  const none = [
    [0, 0, 0],
    [0, 0, 0],
  ];

  it("equal the hand-computed values (λ = 1 and λ = 0.5)", () => {
    // the softmax weights of row 0, by hand: e^0.5, e^-1, e^2 over their sum
    const z = Math.exp(0.5) + Math.exp(-1) + Math.exp(2);
    close(Math.exp(0.5) / z, 0.17529039);
    close(Math.exp(2) / z, 0.78559703);
    close(1.03608558 + 3.22532331, 4.26140889);
    close(1.03608558 + 0.5 * 3.22532331, 2.64874723);
    const one = losses(none, 1);
    close(one.bprMax, (4.26140889 + 1.38977857) / 2); // 2.82559373
    close(one.top1Max, (1.54376388 + 1.17019693) / 2); // 1.35698041
    close(losses(none, 0.5).bprMax, (2.64874723 + 1.05798217) / 2); // 1.85336470
    // the literal numbers and the formulas written out here agree
    close(byHand(none, 1).bprMax, 2.82559373);
    close(byHand(none, 0.5).bprMax, 1.8533647);
    close(byHand(none, 1).top1Max, 1.35698041);
  });

  it("λ = 0 leaves -ln Σ s_j σ(r_i - r_j) only", () => {
    const r0 = -Math.log(0.17529039 * sigmoid(0.5) + 0.03911257 * sigmoid(2) + 0.78559703 * sigmoid(-1));
    const zr = Math.exp(0) + Math.exp(1) + Math.exp(-0.5);
    const r1 = -Math.log((Math.exp(0) * sigmoid(0.5) + Math.exp(1) * sigmoid(-0.5) + Math.exp(-0.5) * sigmoid(1)) / zr);
    close(losses(none, 0).bprMax, (r0 + r1) / 2);
  });

  it("leave accidental hits out of the softmax and rows without a valid negative out of the mean", () => {
    // row 0's third negative is its positive: its softmax runs over the first two only
    const hit = [
      [0, 0, 1],
      [0, 0, 0],
    ];
    const got = losses(hit, 1);
    close(got.bprMax, (0.78791372 + 1.38977857) / 2); // 1.08884615
    close(got.top1Max, (0.92339817 + 1.17019693) / 2); // 1.04679755
    close(byHand(hit, 1).bprMax, 1.08884615);
    // row 0 has no valid negative: the loss is row 1's
    const all = [
      [1, 1, 1],
      [0, 0, 0],
    ];
    close(losses(all, 1).bprMax, 1.38977857);
    close(losses(all, 1).top1Max, 1.17019693);
  });

  it("has finite gradients even for large score gaps (log-sum-exp form)", () => {
    const g = tf.tidy(() => {
      const neg = tf.tensor2d([[60, -60, -60]]);
      const f = (p: tf.Tensor) => bprMaxLoss(p as tf.Tensor1D, neg, tf.zeros([1, 3]) as tf.Tensor2D, 0);
      const loss = f(tf.tensor1d([-40]));
      const grad = tf.grad(f)(tf.tensor1d([-40]));
      return [loss.dataSync()[0]!, grad.dataSync()[0]!];
    });
    // s ≈ [1, 0, 0]: -ln σ(-40 - 60) = softplus(100) ≈ 100, d/dpos = -(1 - σ(-100)) ≈ -1 (σ(-100) alone underflows nothing: log form)
    close(g[0]!, 100, 1e-3);
    close(g[1]!, -1, 1e-4);
  });
});

describe("next-item-prediction with loss bpr-max / top1-max", () => {
  /*
   * The tiny head of test/blocks/heads/losses.test.ts: V = 4, E = [[0,0],[1,2],[-1,0.5],[0.5,-1]],
   * h = [[1,1],[2,-1]] so h·Eᵀ = [[0, 3, -0.5, -0.5], [0, 0, -2.5, 2]]. Labels [1, 3]: the in-batch
   * negatives are the labels [1, 3] of both rows, each row's own label a hit:
   *   row 0: pos 3, valid negative item 3 (score -0.5); row 1: pos 2, valid negative item 1 (score 0).
   * With one valid negative s = [1]: BPR-max = softplus(r_j - r_i) + λ r_j², TOP1-max = σ(r_j - r_i) + σ(r_j²).
   */
  function task(config: Omit<NextItemPredictionConfig, "type">) {
    const table = tf.variable(tf.tensor2d([[0, 0], [1, 2], [-1, 0.5], [0.5, -1]]));
    const ctx = new BlockContext({ rng: mulberry32(4), path: "/model/head" });
    ctx.set("item-embeddings", { column: "item_id", table, cardinality: 4, dim: 2 } satisfies ItemEmbeddings);
    ctx.set("masking", { type: "causal" });
    const t = new NextItemPredictionTask(config);
    t.build({ shape: [null, null, 2], dtype: "float32" }, ctx);
    return { t, dispose: () => (t.dispose(), table.dispose()) };
  }
  const trainLoss = (t: NextItemPredictionTask) =>
    tf.tidy(() => t.trainLoss(tf.tensor2d([[1, 1], [2, -1]]), new CallContext({ mode: "train", rng: mulberry32(1) }), tf.tensor1d([1, 3], "int32")).dataSync()[0]!);
  const softplus = (x: number) => Math.log1p(Math.exp(x));

  it("uses the in-batch negatives of bpr / top1 (hand values)", () => {
    const a = task({ weightTying: true, loss: "bpr-max" });
    close(trainLoss(a.t), (softplus(-0.5 - 3) + 0.25 + softplus(0 - 2) + 0) / 2);
    a.dispose();
    const b = task({ weightTying: true, loss: "bpr-max", bprMaxRegularization: 2 });
    close(trainLoss(b.t), (softplus(-3.5) + 2 * 0.25 + softplus(-2)) / 2);
    b.dispose();
    const c = task({ weightTying: true, loss: "top1-max" });
    close(trainLoss(c.t), (sigmoid(-3.5) + sigmoid(0.25) + sigmoid(-2) + sigmoid(0)) / 2);
    c.dispose();
  });

  it("refuses bprMaxRegularization with another loss, at its JSON Pointer", () => {
    let err: unknown;
    try {
      task({ weightTying: true, loss: "bpr", bprMaxRegularization: 1 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BlockError);
    expect((err as BlockError).code).toBe("incompatible_config");
    expect((err as BlockError).path).toBe("/model/head/bprMaxRegularization");
  });

  it("hitMask marks each row's own label among the in-batch negatives", () => {
    expect(tf.tidy(() => hitMask(tf.tensor1d([1, 3], "int32"), tf.tensor1d([1, 3], "int32")).arraySync())).toEqual([
      [1, 0],
      [0, 1],
    ]);
  });
});

describe("a short training on builtin:synthetic", () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), "rb-maxloss-"));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  for (const loss of ["bpr-max", "top1-max"] as const) {
    it(`${loss}: the recipe validates and the training loss falls over 4 epochs`, async () => {
      // a per-position MLP body (the synthetic sessions' next item depends on the current one): fast
      const text = smallRecipe({ name: `tiny-${loss}`, epochs: 4, sessions: 200, learningRate: 0.03, body: "    - type: mlp\n      units: [16]\n" }).replace("    weightTying: true\n", `    weightTying: true\n    loss: ${loss}\n`);
      expect(text).toContain(`loss: ${loss}`);
      const file = join(tmp, `${loss}.yaml`);
      writeFileSync(file, text);
      const r = await trainRecipe(file, { out: join(tmp, loss), stream: null, backend: "cpu" });
      const h = r.history as EpochRecord[];
      expect(h).toHaveLength(4);
      expect(h.every((e) => Number.isFinite(e.loss))).toBe(true);
      // every epoch lower than the one before (seeded: the same numbers each run; top1-max 0.998 -> 0.935)
      for (let e = 1; e < 4; e++) expect(h[e]!.loss).toBeLessThan(h[e - 1]!.loss);
      expect(h[3]!.loss).toBeLessThan(h[0]!.loss * 0.97);
    }, 120_000);
  }
});

/**
 * train.gradientAccumulationSteps (Hugging Face gradient_accumulation_steps): N batches of b rows, each
 * gradient scaled 1/N, make the same SGD update as one batch of N·b rows (a model without dropout, rows
 * with equal label counts, so the mean loss of the big batch is the mean of the small ones); the step
 * count and the learning-rate schedule count optimizer updates, not batches.
 */
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import "../../blocks/index.js";
import type { FeatureSchemaLike } from "../../src/core/index.js";
import type { Session } from "../../src/data/index.js";
import { mulberry32 } from "../../src/masking/index.js";
import { Model } from "../../src/model/model.js";
import { GradientAccumulator } from "../../src/train/accumulation.js";
import { fit, type TrainSettings } from "../../src/train/loop.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const NI = 20;
const L = 5;
const schema: FeatureSchemaLike = { columns: [{ name: "item_id", tags: ["item-id", "categorical", "list"], cardinality: NI }] };

/** `n` sessions of exactly L items (L - 1 labels each under causal masking). */
function sessions(n: number, seed = 7): Session[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => ({ id: `s${i}`, items: Int32Array.from({ length: L }, () => 1 + Math.floor(r.next() * (NI - 1))), categorical: {}, continuous: {}, context: {} }));
}

/** A small next-item model without dropout: item embeddings -> MLP (tanh) -> tied output, built with the same seed each time. */
function model(): Model {
  return Model.fromConfig(
    {
      inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: 8 }, masking: { type: "causal" } },
      body: [{ type: "mlp", units: [8], activation: "tanh" }],
      head: { type: "next-item-prediction", weightTying: true },
    },
    schema,
  ).build({ seed: 11 });
}

const weights = (m: Model) => new Map([...m.namedVariables()].map(([k, v]) => [k, v.dataSync().slice() as Float32Array]));
const quiet = { progress: { quiet: true } as never };

async function train(data: Session[], t: TrainSettings): Promise<{ w: Map<string, Float32Array>; steps: number; lr: number[]; before: Map<string, Float32Array> }> {
  const m = model();
  const before = weights(m);
  const r = await fit(m, { train: data, maxSequenceLength: L }, { train: { epochs: 1, seed: 3, ...t }, ...quiet });
  const w = weights(m);
  m.dispose();
  return { w, steps: r.steps, lr: r.history.map((h) => h.learningRate), before };
}

function maxDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let d = 0;
  for (const [k, x] of a) {
    const y = b.get(k)!;
    for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i]! - y[i]!));
  }
  return d;
}

describe("gradient accumulation", () => {
  it("N = 2 with batch b makes the same SGD update as one batch of 2b (weights equal to 1e-5)", async () => {
    const data = sessions(8);
    const sgd = { type: "sgd" as const, learningRate: 2 };
    const small = await train(data, { batchSize: 4, gradientAccumulationSteps: 2, optimizer: sgd });
    const big = await train(data, { batchSize: 8, optimizer: sgd });
    const plain = await train(data, { batchSize: 4, optimizer: sgd });
    expect(small.steps).toBe(1);
    expect(big.steps).toBe(1);
    expect(plain.steps).toBe(2);
    // the same initial weights, and the update moved them (by much more than the tolerance)
    expect(maxDiff(small.before, big.before)).toBe(0);
    expect(maxDiff(big.w, big.before)).toBeGreaterThan(1e-2);
    expect(maxDiff(small.w, big.w)).toBeLessThan(1e-5);
    // two separate updates of batch 4 are not the same thing (so the comparison above can fail)
    expect(maxDiff(plain.w, big.w)).toBeGreaterThan(1e-3);
  }, 60_000);

  it("the linear schedule decays over optimizer updates: 2 updates of N·b equal 2 updates of 2b", async () => {
    // 16 sessions: batch 4 with N = 2 -> 4 batches, 2 updates; batch 8 -> 2 updates. totalSteps = 2 for both:
    // lr(0) = 0.4, lr(1) = 0.4 · (2 - 1) / 2 = 0.2
    const data = sessions(16, 9);
    const t: TrainSettings = { optimizer: { type: "sgd", learningRate: 0.4 }, schedule: { type: "linear" } };
    const small = await train(data, { ...t, batchSize: 4, gradientAccumulationSteps: 2 });
    const big = await train(data, { ...t, batchSize: 8 });
    expect(small.steps).toBe(2);
    expect(big.steps).toBe(2);
    // the epoch's record shows the rate of the last update, lr(1)
    expect(small.lr[0]).toBeCloseTo(0.2, 10);
    expect(big.lr[0]).toBeCloseTo(0.2, 10);
    expect(maxDiff(small.w, big.w)).toBeLessThan(1e-5);
  }, 60_000);

  it("counts optimizer steps: 8 batches per epoch with N = 4 are 2 steps, and the schedule spans 4 (not 16)", async () => {
    const data = sessions(16, 5);
    const m = model();
    const r = await fit(m, { train: data, maxSequenceLength: L }, { train: { epochs: 2, batchSize: 2, gradientAccumulationSteps: 4, optimizer: { type: "sgd", learningRate: 0.1 }, schedule: { type: "linear" } }, ...quiet });
    m.dispose();
    expect(r.steps).toBe(4);
    // linear over totalSteps 4: after epoch 1 the last update was step 1: 0.1 · 3/4; after epoch 2, step 3: 0.1 · 1/4
    expect(r.history[0]!.learningRate).toBeCloseTo(0.075, 10);
    expect(r.history[1]!.learningRate).toBeCloseTo(0.025, 10);
  }, 60_000);

  it("an epoch whose batches are not a multiple of N ends with an update of what is left", async () => {
    const m = model();
    // 10 sessions, batch 2: 5 batches; N = 2: updates after batches 2, 4 and 5
    const r = await fit(m, { train: sessions(10, 3), maxSequenceLength: L }, { train: { epochs: 1, batchSize: 2, gradientAccumulationSteps: 2, optimizer: { type: "sgd", learningRate: 0.1 } }, ...quiet });
    m.dispose();
    expect(r.steps).toBe(3);
  }, 60_000);

  it("refuses N < 1 or a fraction at /train/gradientAccumulationSteps", async () => {
    for (const n of [0, 1.5]) {
      const m = model();
      await expect(fit(m, { train: sessions(4), maxSequenceLength: L }, { train: { epochs: 1, batchSize: 2, gradientAccumulationSteps: n }, ...quiet })).rejects.toMatchObject({
        issues: [{ code: "invalid_value", path: "/train/gradientAccumulationSteps" }],
      });
      m.dispose();
    }
  });
});

describe("GradientAccumulator", () => {
  it("returns the mean of the added gradients and disposes what it no longer needs", () => {
    const acc = new GradientAccumulator();
    const before = tf.memory().numTensors;
    acc.add({ a: tf.tensor1d([1, 2]), b: tf.scalar(3) });
    acc.add({ a: tf.tensor1d([3, 6]), b: tf.scalar(-1) });
    acc.add({ a: tf.tensor1d([2, 1]), b: tf.scalar(1) });
    expect(acc.count).toBe(3);
    const g = acc.take();
    expect(acc.count).toBe(0);
    expect(Array.from(g.a!.dataSync())).toEqual([2, 3]);
    expect(g.b!.dataSync()[0]).toBeCloseTo(1, 6);
    expect(tf.memory().numTensors).toBe(before + 2);
    tf.dispose(Object.values(g));
    acc.add({ a: tf.tensor1d([5]) });
    acc.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

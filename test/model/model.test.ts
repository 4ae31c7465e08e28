import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import "../../blocks/index.js";
import { MLPBlock } from "../../blocks/core/mlp.js";
import { SequentialBlock } from "../../blocks/core/sequential.js";
import { TabularSequenceFeatures } from "../../blocks/features/tabular-sequence-features.js";
import { Head } from "../../blocks/heads/head.js";
import { NextItemPredictionTask } from "../../blocks/heads/next-item-prediction.js";
import { TransformerBlock } from "../../blocks/sequence/transformer.js";
import type { FeatureSchemaLike, SequenceBatchLike } from "../../src/core/index.js";
import { mulberry32 } from "../../src/masking/index.js";
import { RankingMetrics, type RankingMetricName } from "../../src/metrics/index.js";
import { Model, type ModelConfig } from "../../src/model/model.js";
import { createOptimizer, disposeGradients } from "../../src/train/index.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const V = 12; // item ids 1..11, 0 = padding
const L = 5;
const schema: FeatureSchemaLike = {
  columns: [
    { name: "session_id", tags: ["session-id"] },
    { name: "item_id", tags: ["item-id", "categorical", "list"], cardinality: V },
    { name: "category", tags: ["categorical", "list"], cardinality: 4 },
    { name: "price", tags: ["continuous", "list"] },
  ],
};

/** The recipe `model` section of the test model (what a user writes in YAML). */
const recipe: ModelConfig = {
  inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: 6, category: 3 }, dOutput: 8, masking: { type: "causal" } },
  body: [
    { type: "mlp", units: [8], dropout: 0.1 },
    { type: "transformer", architecture: "gpt2", dModel: 8, numHeads: 2, numLayers: 1, maxSequenceLength: L, dropout: 0.1 },
  ],
  head: { type: "next-item-prediction", weightTying: true },
};

/** The same model written in code, as docs/blocks.md shows it. */
function codeModel(): Model {
  const inputs = TabularSequenceFeatures.fromSchema(schema, {
    embeddingDims: { item_id: 6, category: 3 },
    dOutput: 8,
    masking: { type: "causal" },
  });
  const body = new SequentialBlock([
    inputs,
    new MLPBlock({ units: [8], dropout: 0.1 }),
    new TransformerBlock({ architecture: "gpt2", dModel: 8, numHeads: 2, numLayers: 1, maxSequenceLength: L, dropout: 0.1 }),
  ]);
  return new Model(new Head(body, new NextItemPredictionTask({ weightTying: true })));
}
const recipeModel = (cfg: ModelConfig = recipe) => Model.fromConfig(structuredClone(cfg), schema);

/** A deterministic batch of B right-padded sessions (lengths 1..L), with side features; `targets` for prefix examples. */
function makeBatch(B: number, seed: number, opts: { targets?: boolean; minLength?: number } = {}): SequenceBatchLike {
  const r = mulberry32(seed);
  const itemIds = new Int32Array(B * L);
  const category = new Int32Array(B * L);
  const price = new Float32Array(B * L);
  const lengths = new Int32Array(B);
  const targets = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const n = (opts.minLength ?? 1) + Math.floor(r.next() * (L - (opts.minLength ?? 1) + 1));
    lengths[b] = n;
    for (let t = 0; t < n; t++) {
      itemIds[b * L + t] = 1 + Math.floor(r.next() * (V - 1));
      category[b * L + t] = 1 + (itemIds[b * L + t]! % 3);
      price[b * L + t] = itemIds[b * L + t]! / 10;
    }
    targets[b] = 1 + Math.floor(r.next() * (V - 1));
  }
  return {
    batchSize: B, seqLen: L, itemIds, lengths, categorical: { category }, continuous: { price }, context: {},
    ...(opts.targets ? { targets } : {}),
  };
}

/** Scores [B][V] of every item id from Model.topK over the whole catalogue (id 0 is never returned: NaN). */
function allScores(model: Model, batch: SequenceBatchLike): number[][] {
  const top = model.topK(batch, V);
  expect(top.k).toBe(V - 1); // every item but the padding id
  return Array.from({ length: batch.batchSize }, (_, b) => {
    const s = new Array<number>(V).fill(NaN);
    for (let j = 0; j < top.k; j++) s[top.itemIds[b * top.k + j]!] = top.scores[b * top.k + j]!;
    return s;
  });
}

const close = (got: number[], want: number[], tol = 1e-5) => {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `index ${i}: ${got[i]} vs ${want[i]}`).toBeLessThan(tol);
};

function trainSteps(model: Model, steps: number, seed = 1): number[] {
  const opt = createOptimizer({ type: "adam", learningRate: 0.02 });
  const vars = model.trainableVariables();
  const rng = mulberry32(seed);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const tb = model.trainBatch(makeBatch(8, 100 + (s % 4), { minLength: 2 }), rng)!;
    const { value, grads } = tf.variableGrads(tb.loss, vars);
    losses.push(value.dataSync()[0]!);
    opt.applyGradients(grads);
    value.dispose();
    disposeGradients(grads);
  }
  opt.dispose();
  return losses;
}

describe("model: code and recipe build the same model", () => {
  it("same toRecipe config, parameter count, weight names and (same seed) weights, logits, loss and metrics", () => {
    const a = codeModel().build({ seed: 42 });
    const b = recipeModel().build({ seed: 42 });
    // config: the code model's recipe is the recipe, with every default filled in
    expect(a.toRecipe()).toEqual(b.toRecipe());
    expect(a.toRecipe().inputs).toMatchObject(recipe.inputs);
    expect(a.toRecipe().body[1]).toMatchObject(recipe.body[1]!);
    expect(a.countParams()).toBe(b.countParams());
    // inputs: item 12×6 + category 4×3 + dOutput (6+3+1)×8+8 + [MASK] 8; mlp 8×8+8; head projection 8×6+6
    const transformerParams = [...b.namedVariables()].filter(([k]) => k.startsWith("body/1/")).reduce((n, [, v]) => n + v.size, 0);
    expect(b.countParams()).toBe(12 * 6 + 4 * 3 + 10 * 8 + 8 + 8 + 8 * 8 + 8 + 8 * 6 + 6 + transformerParams);
    const na = a.namedVariables(), nb = b.namedVariables();
    expect([...na.keys()]).toEqual([...nb.keys()]);
    expect([...na.keys()]).toContain("head/next-item/projection/kernel");
    for (const [k, v] of na) expect(Array.from(v.dataSync()), k).toEqual(Array.from(nb.get(k)!.dataSync()));
    // identical logits on a batch
    const batch = makeBatch(6, 3);
    expect(allScores(a, batch)).toEqual(allScores(b, batch));
    // identical training loss (same masking RNG)
    const la = tf.tidy(() => a.trainBatch(makeBatch(6, 4, { minLength: 2 }), mulberry32(9))!.loss().dataSync()[0]!);
    const lb = tf.tidy(() => b.trainBatch(makeBatch(6, 4, { minLength: 2 }), mulberry32(9))!.loss().dataSync()[0]!);
    expect(la).toBe(lb);
    expect(a.evaluate([makeBatch(6, 5, { targets: true })], { ks: [3] })).toEqual(b.evaluate([makeBatch(6, 5, { targets: true })], { ks: [3] }));
    // a different seed gives different weights (the comparison above is not vacuous)
    const c = recipeModel().build({ seed: 43 });
    expect(allScores(c, batch)).not.toEqual(allScores(b, batch));
    a.dispose();
    b.dispose();
    c.dispose();
  });
});

describe("model: no tensor leaks", () => {
  it("tf.memory().numTensors is flat across 20 training steps, evaluation batches and topK calls", () => {
    const model = recipeModel().build({ seed: 1 });
    const opt = createOptimizer({ type: "adam", learningRate: 0.02 });
    const vars = model.trainableVariables();
    const rng = mulberry32(2);
    const counts: number[] = [];
    const losses: number[] = [];
    for (let s = 0; s < 20; s++) {
      const tb = model.trainBatch(makeBatch(8, 100 + (s % 4), { minLength: 2 }), rng)!;
      const { value, grads } = tf.variableGrads(tb.loss, vars);
      losses.push(value.dataSync()[0]!);
      opt.applyGradients(grads);
      value.dispose();
      disposeGradients(grads);
      counts.push(tf.memory().numTensors);
    }
    // the optimizer creates its state on the first step; after that nothing grows
    expect(new Set(counts.slice(1)).size).toBe(1);
    // and it trained: the loss on the repeated batches went down
    expect(losses.slice(-4).reduce((a, v) => a + v, 0)).toBeLessThan(losses.slice(0, 4).reduce((a, v) => a + v, 0));
    // evaluation and top-k: the first call may cache the item catalogue; then flat
    const evalBatches = [makeBatch(8, 7, { targets: true }), makeBatch(8, 8, { targets: true }), makeBatch(8, 9)];
    model.evaluate(evalBatches, { ks: [5] });
    model.topK(makeBatch(4, 10), 5);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      model.evaluate(evalBatches, { ks: [5, 10] });
      model.topK(makeBatch(4, 11 + i), 5, { exclude: () => [1, 2] });
      model.topK(makeBatch(4, 11 + i), 3, { eligible: Uint8Array.from({ length: V }, (_, j) => (j % 2 ? 1 : 0)) });
    }
    expect(tf.memory().numTensors).toBe(before);
    opt.dispose();
    model.dispose();
  });
});

describe("model: evaluate equals metrics computed by hand from the logits", () => {
  it("ndcg, recall, mrr, precision, map at several k, and the loss", () => {
    const model = recipeModel().build({ seed: 5 });
    trainSteps(model, 5);
    const names: RankingMetricName[] = ["ndcg", "recall", "mrr", "precision", "map"];
    const ks = [1, 3, 5];
    const batches = [makeBatch(7, 21, { targets: true }), makeBatch(5, 22, { targets: true })];
    const got = model.evaluate(batches, { ks, metrics: names });

    // by hand: the logits of each row (inference reads the prediction where eval with targets does)
    const sums: Record<string, number> = {};
    let rows = 0;
    let lossSum = 0;
    const viaMetrics = new RankingMetrics(ks, names);
    for (const batch of batches) {
      const scores = allScores(model, batch);
      for (let b = 0; b < batch.batchSize; b++) {
        const s = scores[b]!;
        const y = batch.targets![b]!;
        const rank = 1 + s.filter((v, j) => j > 0 && v > s[y]!).length; // 1-based rank of the target among items 1..V-1
        for (const k of ks) {
          const hit = rank <= k ? 1 : 0;
          const add = (n: string, v: number) => (sums[`${n}@${k}`] = (sums[`${n}@${k}`] ?? 0) + v);
          add("ndcg", hit / Math.log2(rank + 1));
          add("recall", hit);
          add("mrr", hit / rank);
          add("precision", hit / k);
          add("map", hit / rank);
        }
        // softmax cross-entropy over the items 1..V-1
        const items = s.slice(1);
        const m = Math.max(...items);
        lossSum += m + Math.log(items.reduce((a, v) => a + Math.exp(v - m), 0)) - s[y]!;
        rows++;
      }
      // the same ranking through src/metrics
      const ranked = new Int32Array(batch.batchSize * (V - 1));
      scores.forEach((s, b) => ranked.set(Array.from({ length: V - 1 }, (_, j) => j + 1).sort((p, q) => s[q]! - s[p]!), b * (V - 1)));
      viaMetrics.update(ranked, batch.targets!, V - 1);
    }
    expect(got.examples).toBe(12);
    for (const n of names) {
      for (const k of ks) {
        const key = `${n}@${k}`;
        expect(Math.abs(got[key]! - sums[key]! / rows), `${key}: ${got[key]} vs ${sums[key]! / rows}`).toBeLessThan(1e-6);
      }
    }
    const ref = viaMetrics.result();
    for (const [k, v] of Object.entries(ref)) expect(Math.abs(got[k]! - v), k).toBeLessThan(1e-6);
    expect(Math.abs(got.loss! - lossSum / rows)).toBeLessThan(1e-4);
    // not vacuous: some but not all targets are in the top 5
    expect(got["recall@5"]).toBeGreaterThan(0);
    expect(got["recall@1"]).toBeLessThan(1);

    // full sequences (the masking's last-item labels) give the same numbers as their prefix examples
    const full = makeBatch(6, 23, { minLength: 2 });
    const prefix: SequenceBatchLike = { ...full, itemIds: full.itemIds.slice(), lengths: full.lengths.slice(), targets: new Int32Array(6) };
    for (let b = 0; b < 6; b++) {
      const n = full.lengths[b]!;
      prefix.targets![b] = full.itemIds[b * L + n - 1]!;
      prefix.itemIds[b * L + n - 1] = 0;
      prefix.lengths[b] = n - 1;
    }
    const m1 = model.evaluate([full], { ks, metrics: names });
    const m2 = model.evaluate([prefix], { ks, metrics: names });
    for (const k of Object.keys(m2)) expect(Math.abs(m1[k]! - m2[k]!), k).toBeLessThan(1e-5);
    // and the plain (uncached) scoring path agrees with the catalogue path
    Model.catalogueTopK = false;
    try {
      const plain = model.evaluate(batches, { ks, metrics: names });
      for (const k of Object.keys(got)) expect(Math.abs(plain[k]! - got[k]!), k).toBeLessThan(1e-4);
    } finally {
      Model.catalogueTopK = true;
    }
    model.dispose();
  });
});

describe("model: toRecipe round trip", () => {
  it("the recipe of a model rebuilds the same model (through JSON); weights copied by name give the same predictions", () => {
    const a = codeModel().build({ seed: 8 });
    const cfg = JSON.parse(JSON.stringify(a.toRecipe())) as ModelConfig;
    const b = Model.fromConfig(cfg, schema).build({ seed: 8 });
    expect(b.toRecipe()).toEqual(a.toRecipe());
    expect(b.countParams()).toBe(a.countParams());
    expect([...b.namedVariables()].map(([k, v]) => [k, v.shape])).toEqual([...a.namedVariables()].map(([k, v]) => [k, v.shape]));
    const batch = makeBatch(5, 31);
    expect(allScores(b, batch)).toEqual(allScores(a, batch));
    // train one, copy its weights by name into the other: same predictions again
    trainSteps(a, 3);
    const trained = allScores(a, batch);
    expect(allScores(b, batch)).not.toEqual(trained);
    const vb = b.namedVariables();
    for (const [k, v] of a.namedVariables()) tf.tidy(() => vb.get(k)!.assign(v));
    expect(allScores(b, batch)).toEqual(trained);
    a.dispose();
    b.dispose();
  });

  it("every block type of the recipe round-trips with all its defaults", () => {
    const a = recipeModel({
      inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: 4 }, aggregation: "concat", continuousProjection: [2], layerNorm: true, masking: { type: "masked", mlmProbability: 0.3 } },
      body: [{ type: "sequential", blocks: [{ type: "mlp", units: [8], normalization: "layer-norm" }, { type: "transformer", architecture: "bert", dModel: 8, numHeads: 2, numLayers: 1, maxSequenceLength: L + 1 }] }],
      head: { type: "next-item-prediction", weightTying: false, labelSmoothing: 0.1, softmaxTemperature: 0.7, outputBias: true },
    }).build({ seed: 3 });
    const b = recipeModel(JSON.parse(JSON.stringify(a.toRecipe())) as ModelConfig).build({ seed: 3 });
    expect(b.toRecipe()).toEqual(a.toRecipe());
    const batch = makeBatch(4, 41);
    expect(allScores(b, batch)).toEqual(allScores(a, batch));
    const la = tf.tidy(() => a.trainBatch(makeBatch(6, 42, { minLength: 2 }), mulberry32(4))!.loss().dataSync()[0]!);
    const lb = tf.tidy(() => b.trainBatch(makeBatch(6, 42, { minLength: 2 }), mulberry32(4))!.loss().dataSync()[0]!);
    expect(lb).toBe(la);
    expect(Number.isFinite(la) && la > 0 && la < 10).toBe(true);
    a.dispose();
    b.dispose();
  });
});

describe("model: top-k", () => {
  it("follows the item table after it is assigned outside training (no stale catalogue)", () => {
    const model = recipeModel().build({ seed: 12 });
    const batch = makeBatch(3, 51);
    const before = allScores(model, batch); // caches the catalogue of the item table
    const table = model.namedVariables().get("inputs/embeddings/item_id")!;
    // new values for the table (as early stopping's restore or loading weights assign them)
    tf.tidy(() => table.assign(tf.neg(table)));
    const after = allScores(model, batch);
    // a twin with the same weights that never cached a catalogue
    const twin = recipeModel().build({ seed: 12 });
    const tt = twin.namedVariables().get("inputs/embeddings/item_id")!;
    tf.tidy(() => tt.assign(tf.neg(tt)));
    expect(after).toEqual(allScores(twin, batch));
    expect(after).not.toEqual(before);
    model.dispose();
    twin.dispose();
  });

  it("never returns the padding id, even when k >= V (tied and untied heads)", () => {
    for (const weightTying of [true, false]) {
      const model = recipeModel({ ...recipe, head: { type: "next-item-prediction", weightTying } }).build({ seed: 13 });
      const top = model.topK(makeBatch(4, 52), V + 5);
      expect(top.k).toBe(V - 1);
      expect(Array.from(top.itemIds).includes(0)).toBe(false);
      for (let b = 0; b < 4; b++) expect(new Set(top.itemIds.subarray(b * top.k, (b + 1) * top.k)).size).toBe(V - 1);
      model.dispose();
    }
  });
});

/**
 * The speed work must not change what a model learns: every fused or replaced path is compared with
 * the plain TF.js path it replaces, on small data, on every backend present (native tensorflow when
 * tfjs-node is built, wasm, cpu).
 * - training loss: NextItemPredictionTask.trainLoss (h·Eᵀ + native SparseSoftmaxCrossEntropyWithLogits,
 *   gradients by two matmuls) vs loss(call(...)) (logits, then the per-row cross-entropy): the loss and
 *   every gradient, for a sequence body (gpt2), a body narrower than the item table (automatic
 *   projection) and a session encoder (stamp-attention, one vector per row).
 */
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import "../../blocks/index.js";
import { NextItemPredictionTask } from "../../blocks/heads/next-item-prediction.js";
import { prefixExamples, batches, fullSequenceExamples, type Session } from "../../src/data/index.js";
import { initEngine } from "../../src/engine/index.js";
import { mulberry32 } from "../../src/masking/index.js";
import { Model } from "../../src/model/model.js";

const backends: string[] = [];
beforeAll(async () => {
  const info = await initEngine({ backend: "auto", quiet: true });
  if (info.backend === "tensorflow") backends.push("tensorflow");
  await initEngine({ backend: "wasm", quiet: true });
  backends.push("wasm");
  await initEngine({ backend: "cpu", quiet: true });
  backends.push("cpu");
});
afterAll(async () => {
  NextItemPredictionTask.fusedLoss = true;
  await tf.setBackend("cpu");
});

const V = 37;
const schema = { columns: [{ name: "item_id", tags: ["categorical", "item-id", "list"], cardinality: V }] };
const sessions: Session[] = [[3, 5, 7, 9], [2, 4], [10, 11, 12, 13, 14, 15], [36, 1, 20], [8, 8, 9]].map((items, i) => ({
  id: `s${i}`, items: Int32Array.from(items), categorical: {}, continuous: {}, context: {},
}));

const MODELS: Record<string, { cfg: Record<string, unknown>; prefixes: boolean }> = {
  "gpt2, tied": {
    cfg: { inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: 8 }, embeddingInitStd: 0.5, masking: { type: "causal" } }, body: [{ type: "transformer", architecture: "gpt2", dModel: 8, numHeads: 2, numLayers: 1, maxSequenceLength: 6, dropout: 0 }], head: { type: "next-item-prediction", weightTying: true } },
    prefixes: false,
  },
  "gpt2 narrower than the table (projection)": {
    cfg: { inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: 8 }, embeddingInitStd: 0.5, dOutput: 4, masking: { type: "causal" } }, body: [{ type: "transformer", architecture: "gpt2", dModel: 4, numHeads: 2, numLayers: 1, maxSequenceLength: 6, dropout: 0 }], head: { type: "next-item-prediction", weightTying: true } },
    prefixes: false,
  },
  "stamp-attention (one vector per row)": {
    cfg: { inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: 6 }, embeddingInitStd: 0.5, masking: { type: "causal" } }, body: [{ type: "stamp-attention", maxNorm: null, initStd: 0.5 }], head: { type: "next-item-prediction", weightTying: true } },
    prefixes: true,
  },
};

/** Loss and gradients (by variable name) of one training batch, with the fused loss on or off. */
function lossAndGrads(model: Model, fused: boolean, prefixes: boolean): { loss: number; grads: Map<string, Float32Array> } {
  NextItemPredictionTask.fusedLoss = fused;
  const ex = prefixes ? prefixExamples(sessions) : fullSequenceExamples(sessions, 2);
  const batch = batches(ex, { batchSize: 64, maxSequenceLength: 6 }).next().value!;
  const tb = model.trainBatch(batch, mulberry32(3))!;
  const named = model.namedVariables();
  const names = [...named.keys()].filter((k) => named.get(k)!.trainable);
  const { value, grads } = tf.variableGrads(tb.loss as () => tf.Scalar, names.map((n) => named.get(n)!));
  const out = new Map<string, Float32Array>();
  for (const n of names) out.set(n, grads[named.get(n)!.name]!.dataSync() as Float32Array);
  const loss = value.dataSync()[0]!;
  tf.dispose([value, ...Object.values(grads)]);
  return { loss, grads: out };
}

describe("fused training loss = plain loss, loss and gradients", () => {
  for (const [name, { cfg, prefixes }] of Object.entries(MODELS)) {
    it(`${name}, every backend`, async () => {
      for (const b of backends) {
        await tf.setBackend(b);
        const model = Model.fromConfig(cfg as never, schema as never).build({ seed: 11 });
        lossAndGrads(model, false, prefixes); // caches the head's padding mask (kept, like the model's weights)
        const before = tf.memory().numTensors;
        const fused = lossAndGrads(model, true, prefixes);
        const plain = lossAndGrads(model, false, prefixes);
        expect(tf.memory().numTensors, `${b}: no tensor leaks`).toBe(before);
        // a real loss over 36 candidates: between 0 and well above log(36) would be a bug
        expect(fused.loss, b).toBeGreaterThan(1);
        expect(Math.abs(fused.loss - plain.loss), `${b}: loss ${fused.loss} vs ${plain.loss}`).toBeLessThan(1e-5);
        let compared = 0;
        for (const [v, g] of plain.grads) {
          const f = fused.grads.get(v)!;
          const scale = Math.max(1e-3, ...Array.from(g, Math.abs));
          const worst = Math.max(...Array.from(g, (x, i) => Math.abs(x - f[i]!)));
          expect(worst / scale, `${b}: gradient of ${v}`).toBeLessThan(1e-4);
          compared++;
        }
        expect(compared).toBe(fused.grads.size);
        // the padding row gets no gradient from the output layer and is never a candidate
        const table = [...fused.grads.keys()].find((k) => k.includes("item_id"))!;
        expect(Array.from(fused.grads.get(table)!.subarray(0, 4)).every((x) => x === 0), `${b}: padding row gradient`).toBe(true);
        model.dispose();
      }
    });
  }

  it("the loss matches a hand computation: -log softmax over items 1..V-1 at the label", async () => {
    await tf.setBackend(backends[0]!);
    const { cfg } = MODELS["stamp-attention (one vector per row)"]!;
    const model = Model.fromConfig(cfg as never, schema as never).build({ seed: 11 });
    NextItemPredictionTask.fusedLoss = true;
    const ex = prefixExamples(sessions.slice(0, 1));
    const batch = batches(ex, { batchSize: 64, maxSequenceLength: 6 }).next().value!;
    const loss = tf.tidy(() => model.trainBatch(batch, mulberry32(3))!.loss().dataSync()[0]!);
    // scores of every row from the inference path (logits over all ids), then the cross-entropy by hand
    const top = model.topK(batch, V - 1);
    let sum = 0;
    for (let r = 0; r < batch.batchSize; r++) {
      const s = new Map<number, number>();
      for (let j = 0; j < top.k; j++) s.set(top.itemIds[r * top.k + j]!, top.scores[r * top.k + j]!);
      const lse = Math.log([...s.values()].reduce((a, x) => a + Math.exp(x), 0));
      sum += lse - s.get(batch.targets![r]!)!;
    }
    expect(Math.abs(loss - sum / batch.batchSize)).toBeLessThan(1e-4);
    model.dispose();
  });
});

describe("catalogue top-k (cached item table, blocked top-k) = plain logits + tf.topk", () => {
  for (const [name, { cfg, prefixes }] of Object.entries(MODELS)) {
    it(`${name}: topK ids and scores, with rules and exclusions, and evaluate's metrics and loss`, async () => {
      for (const b of backends) {
        await tf.setBackend(b);
        const model = Model.fromConfig(cfg as never, schema as never).build({ seed: 5 });
        const ex = prefixes ? prefixExamples(sessions) : fullSequenceExamples(sessions, 2);
        const batch = batches(prefixExamples(sessions), { batchSize: 64, maxSequenceLength: 6 }).next().value!;
        const eligible = new Uint8Array(V).fill(1);
        for (const id of [2, 3, 5, 8, 13, 21, 34]) eligible[id] = 0;
        const opts = { eligible, exclude: (r: number) => [batch.itemIds[r * batch.seqLen]!, 36] };
        const run = (fast: boolean) => {
          Model.catalogueTopK = fast;
          const before = tf.memory().numTensors;
          const top = model.topK(batch, 10, opts);
          const all = model.topK(batch, 100);
          const m = model.evaluate(batches(ex, { batchSize: 4, maxSequenceLength: 6 }), { ks: [3, 10], metrics: ["ndcg", "recall", "mrr"] });
          Model.catalogueTopK = true;
          return { top, all, m, leaked: tf.memory().numTensors - before };
        };
        const plain = run(false);
        run(true); // the first call builds and keeps the catalogue
        const fast = run(true);
        expect(fast.leaked, `${b}: tensors kept beyond the cached catalogue`).toBe(0);
        expect(Array.from(fast.top.itemIds), b).toEqual(Array.from(plain.top.itemIds));
        for (let i = 0; i < fast.top.scores.length; i++) expect(Math.abs(fast.top.scores[i]! - plain.top.scores[i]!)).toBeLessThan(1e-4);
        // rules and exclusions hold: no ineligible or excluded id comes back
        for (let r = 0; r < batch.batchSize; r++) {
          for (let j = 0; j < fast.top.k; j++) {
            const id = fast.top.itemIds[r * fast.top.k + j]!;
            expect(eligible[id], `${b}: row ${r} got ineligible ${id}`).toBe(1);
            expect([batch.itemIds[r * batch.seqLen]!, 36, 0]).not.toContain(id);
          }
        }
        // asked for more than there are items: every real item once, the padding id never
        expect(fast.all.k).toBe(V - 1);
        for (let r = 0; r < batch.batchSize; r++) {
          const ids = Array.from(fast.all.itemIds.subarray(r * fast.all.k, (r + 1) * fast.all.k)).sort((x, y) => x - y);
          expect(ids).toEqual(Array.from({ length: V - 1 }, (_, i) => i + 1));
        }
        for (const k of Object.keys(plain.m)) expect(Math.abs(fast.m[k]! - plain.m[k]!), `${b}: ${k}`).toBeLessThan(1e-4);
        expect(plain.m["recall@10"]).toBeGreaterThan(0);
        model.dispose();
      }
    });
  }
});

describe("Adam as TensorFlow's fused ResourceApplyAdam = recblocks' element-wise Adam", () => {
  it("same parameters and moments after 6 steps with a changing learning rate; state export unchanged; no leaks", async () => {
    if (!backends.includes("tensorflow")) return; // the fused kernel exists only on the native backend
    await tf.setBackend("tensorflow");
    const { createOptimizer, Optimizer } = await import("../../src/train/optimizers.js");
    const run = (native: boolean) => {
      Optimizer.nativeAdam = native;
      const rng = mulberry32(9);
      const vars = [tf.variable(tf.tensor2d(Array.from({ length: 12 }, () => rng.next() - 0.5), [4, 3]), true, `adam_a_${native}`), tf.variable(tf.tensor1d([0.3, -0.2, 0.1]), true, `adam_b_${native}`)];
      const opt = createOptimizer({ type: "adam", learningRate: 0.01 } as never, { schedule: (step: number) => 0.01 / (1 + step) });
      const before = tf.memory().numTensors;
      for (let step = 0; step < 6; step++) {
        const grads = new Map(vars.map((v, i) => [v, tf.tidy(() => tf.mul(tf.sin(tf.add(v, step + i)), 2))] as [tf.Variable, tf.Tensor]));
        opt.applyGradients(grads);
        for (const g of grads.values()) g.dispose();
      }
      const leaked = tf.memory().numTensors - before;
      const state = opt.getState();
      const out = { params: vars.map((v) => Array.from(v.dataSync())), state: state.map((s) => Array.from(s.tensor.dataSync())), leaked };
      tf.dispose(state.map((s) => s.tensor));
      opt.dispose();
      tf.dispose(vars);
      Optimizer.nativeAdam = true;
      return out;
    };
    const plain = run(false);
    const fused = run(true);
    // the fused run keeps its 3 resource handles per variable (6) until dispose; nothing else
    expect(fused.leaked - plain.leaked).toBe(6);
    for (let i = 0; i < plain.params.length; i++) for (let j = 0; j < plain.params[i]!.length; j++) expect(Math.abs(fused.params[i]![j]! - plain.params[i]![j]!)).toBeLessThan(1e-6);
    expect(fused.state.length).toBe(plain.state.length);
    for (let i = 0; i < plain.state.length; i++) for (let j = 0; j < plain.state[i]!.length; j++) expect(Math.abs(fused.state[i]![j]! - plain.state[i]![j]!), `state ${i}`).toBeLessThan(1e-6);
    // and the parameters really moved
    expect(Math.abs(plain.params[1]![0]! - 0.3)).toBeGreaterThan(1e-3);
  });
});

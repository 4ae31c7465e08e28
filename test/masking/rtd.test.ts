import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import "../../blocks/index.js";
import { BlockError, type SequenceBatchLike } from "../../src/core/index.js";
import { corruptBatch, maskBatch, mulberry32, resolveMaskingConfig, type RandomSource } from "../../src/masking/index.js";
import { Model } from "../../src/model/model.js";
import { binaryCrossEntropy } from "../../src/model/rtd.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const V = 13;
const schema = { columns: [{ name: "item_id", tags: ["categorical", "item-id", "list"], cardinality: V }] };
const L = 6;
const D = 8;

function tinyModel(masking: Record<string, unknown>, seed = 3, architecture = "xlnet", d = D): Model {
  return Model.fromConfig(
    {
      inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: d }, embeddingInitStd: 0.3, masking },
      body: [{ type: "transformer", architecture, dModel: d, numHeads: 2, numLayers: 1, maxSequenceLength: L + 1, dropout: 0, initializerRange: 0.2 }],
      head: { type: "next-item-prediction", weightTying: true },
    } as never,
    schema,
  ).build({ seed });
}

const batchOf = (ids: number[], B: number): SequenceBatchLike => {
  const itemIds = Int32Array.from(ids);
  const lengths = new Int32Array(B);
  for (let b = 0; b < B; b++) for (let t = 0; t < L; t++) if (itemIds[b * L + t]) lengths[b]!++;
  return { batchSize: B, seqLen: L, itemIds, categorical: {}, continuous: {}, context: {}, lengths };
};
const BATCH = batchOf([3, 4, 5, 6, 7, 0, 9, 10, 11, 12, 1, 2, 2, 3, 0, 0, 0, 0], 3);

/** A random source whose draws are recorded, to replay them. */
function recorded(seed: number): RandomSource & { values: number[] } {
  const r = mulberry32(seed);
  const values: number[] = [];
  return { values, next: () => { const v = r.next(); values.push(v); return v; } };
}

describe("rtd masking", () => {
  it("masks as masked LM (same draws), with its own options and defaults", () => {
    expect(resolveMaskingConfig({ type: "replacement" })).toEqual({ type: "rtd", mlmProbability: 0.15, evalOnLastItemSeqOnly: true, discriminatorLossWeight: 50, sampleFrom: "generator" });
    const ids = BATCH.itemIds;
    for (const mode of ["train", "eval", "inference"] as const) {
      const a = maskBatch({ type: "rtd", mlmProbability: 0.4 }, ids, 3, L, mode, mulberry32(7));
      const b = maskBatch({ type: "masked", mlmProbability: 0.4 }, ids, 3, L, mode, mulberry32(7));
      expect(a).toEqual(b);
    }
    try {
      resolveMaskingConfig({ type: "rtd", discriminatorLossWeight: -1, sampleFrom: "catalogue" } as never, "/model/inputs/masking");
      expect.unreachable();
    } catch (e) {
      expect((e as { issues: { path: string }[] }).issues.map((i) => i.path)).toEqual(["/model/inputs/masking/discriminatorLossWeight", "/model/inputs/masking/sampleFrom"]);
    }
  });

  it("corruptBatch: samples at the label positions; a position is 'replaced' only when the sample differs", () => {
    // row [3, 4, 5, 0] with labels at 0 and 2 (hidden in the input)
    const m = maskBatch({ type: "rtd" }, Int32Array.from([3, 4, 5, 0]), 1, 4, "train", { next: (() => { const s = [0.1, 0.9, 0.1, 0.0]; let i = 0; return () => s[i++]!; })() });
    expect(Array.from(m.labels)).toEqual([3, 0, 5, 0]);
    expect(Array.from(m.inputIds)).toEqual([0, 4, 0, 0]);
    const c = corruptBatch(m, Int32Array.from([0, 2]), Int32Array.from([8, 5]));
    expect(Array.from(c.inputIds)).toEqual([8, 4, 5, 0]);
    expect(Array.from(c.replaced)).toEqual([1, 0, 0, 0]);
    expect(c.numReplaced).toBe(1);
    expect(() => corruptBatch(m, Int32Array.from([1]), Int32Array.from([2]))).toThrow(/not a label position/);
  });
});

describe("rtd objective", () => {
  it("total = generator masked-LM loss + discriminatorLossWeight x discriminator BCE, checked by hand", () => {
    const model = tinyModel({ type: "rtd", mlmProbability: 0.4, discriminatorLossWeight: 50 });
    expect([...model.namedVariables().keys()].filter((k) => k.startsWith("rtd/"))).toEqual(["rtd/dense/kernel", "rtd/dense/bias", "rtd/output/kernel", "rtd/output/bias"]);
    const rng = recorded(21);
    tf.tidy(() => {
      const p = model.rtdLossParts(BATCH, rng)!;
      const total = p.total.dataSync()[0]!;
      const gen = p.generator.dataSync()[0]!;
      const disc = p.discriminator.dataSync()[0]!;
      expect(total).toBeCloseTo(gen + 50 * disc, 4);
      // the discriminator's labels: the label positions whose sample differs from the original
      const mask = maskBatch({ type: "masked", mlmProbability: 0.4 }, BATCH.itemIds, 3, L, "train", mulberry32(21));
      const positions: number[] = [];
      for (let i = 0; i < mask.labels.length; i++) if (mask.labels[i]) positions.push(i);
      expect(p.samples.length).toBe(positions.length);
      for (let i = 0; i < 3 * L; i++) {
        const k = positions.indexOf(i);
        if (k < 0) {
          expect(p.corruptedIds[i]).toBe(BATCH.itemIds[i]); // unmasked items (and padding) stay
          expect(p.replaced[i]).toBe(0);
        } else {
          expect(p.corruptedIds[i]).toBe(p.samples[k]);
          expect(p.replaced[i]).toBe(p.samples[k] !== BATCH.itemIds[i] ? 1 : 0);
          expect(p.samples[k]).toBeGreaterThan(0); // padding is never sampled
        }
      }
      // BCE by hand over the real positions: softplus(z) - y z
      const z = p.discriminatorLogits.dataSync();
      let s = 0;
      let n = 0;
      for (let i = 0; i < 3 * L; i++) {
        if (!BATCH.itemIds[i]) continue;
        s += Math.log1p(Math.exp(z[i]!)) - p.replaced[i]! * z[i]!;
        n++;
      }
      expect(disc).toBeCloseTo(s / n, 5);
    });
    // the generator part equals a masked-LM model's loss with the same weights and masks
    const mlm = tinyModel({ type: "masked", mlmProbability: 0.4 });
    for (const [k, v] of mlm.namedVariables()) v.assign(model.namedVariables().get(k)!);
    const mlmLoss = tf.tidy(() => mlm.trainBatch(BATCH, mulberry32(21))!.loss().dataSync()[0]!);
    const gen = tf.tidy(() => model.rtdLossParts(BATCH, mulberry32(21))!.generator.dataSync()[0]!);
    expect(gen).toBeCloseTo(mlmLoss, 5);
    // trainBatch's loss is the total; replaying the same draws gives the same value
    const replay = (() => { let i = 0; return { next: () => rng.values[i++]! }; })();
    const total = tf.tidy(() => model.trainBatch(BATCH, replay)!.loss().dataSync()[0]!);
    const again = tf.tidy(() => model.rtdLossParts(BATCH, mulberry32(21))!.total.dataSync()[0]!);
    expect(total).toBeCloseTo(again, 5);
    mlm.dispose();
    model.dispose();
  });

  it("discriminatorLossWeight 0 leaves the generator loss; sampleFrom batch draws only the batch's label items", () => {
    const m0 = tinyModel({ type: "rtd", mlmProbability: 0.4, discriminatorLossWeight: 0 });
    tf.tidy(() => {
      const p = m0.rtdLossParts(BATCH, mulberry32(4))!;
      expect(p.total.dataSync()[0]).toBeCloseTo(p.generator.dataSync()[0]!, 6);
    });
    m0.dispose();
    const mb = tinyModel({ type: "rtd", mlmProbability: 0.5, sampleFrom: "batch" });
    for (let seed = 0; seed < 10; seed++) {
      tf.tidy(() => {
        const mask = maskBatch({ type: "masked", mlmProbability: 0.5 }, BATCH.itemIds, 3, L, "train", mulberry32(seed));
        const labelItems = new Set(Array.from(mask.labels).filter((x) => x));
        const p = mb.rtdLossParts(BATCH, mulberry32(seed))!;
        for (const s of p.samples) expect(labelItems.has(s)).toBe(true);
      });
    }
    mb.dispose();
  });

  it("binaryCrossEntropy: mean over valid positions, stable for large logits", () => {
    const v = tf.tidy(() => binaryCrossEntropy(tf.tensor2d([[0, 100, -100, 3]]), tf.tensor2d([[1, 1, 1, 0]]), tf.tensor2d([[1, 1, 1, 0]])).dataSync()[0]!);
    expect(v).toBeCloseTo((Math.log(2) + 0 + 100) / 3, 4);
  });

  it("compatibility: rtd needs a per-position body; gpt2 refuses it; bert accepts it", () => {
    const e = (() => {
      try {
        Model.fromConfig(
          { inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: D }, masking: { type: "rtd" } }, body: [{ type: "stamp-attention" }], head: { type: "next-item-prediction", weightTying: true } } as never,
          schema,
        ).build();
      } catch (err) {
        return err as BlockError;
      }
      throw new Error("expected an error");
    })();
    expect(e).toBeInstanceOf(BlockError);
    expect([e.code, e.path]).toEqual(["incompatible_masking", "/model/inputs/masking"]);
    expect(() => tinyModel({ type: "rtd" }, 1, "gpt2")).toThrow(/gpt2 allows: causal/);
    tinyModel({ type: "rtd" }, 1, "bert").dispose();
  });
});

describe("rtd training", () => {
  it("a short training on tiny data lowers both losses; eval and top-k are masked LM's", () => {
    const model = tinyModel({ type: "rtd", mlmProbability: 0.3, discriminatorLossWeight: 50 }, 5, "xlnet", 16);
    const rng = mulberry32(9);
    const B = 32;
    const batch = (): SequenceBatchLike => {
      const ids = new Int32Array(B * L);
      for (let b = 0; b < B; b++) {
        const n = 3 + Math.floor(rng.next() * (L - 2));
        let it = 1 + Math.floor(rng.next() * 12);
        for (let t = 0; t < n; t++) {
          ids[b * L + t] = it;
          it = (it % 12) + 1;
        }
      }
      return batchOf(Array.from(ids), B);
    };
    const opt = tf.train.adam(0.02);
    const gen: number[] = [];
    const disc: number[] = [];
    for (let step = 0; step < 30; step++) {
      const b = batch();
      // the same loss as trainBatch's, with its parts recorded
      const { value, grads } = tf.variableGrads(() => {
        const p = model.rtdLossParts(b, mulberry32(step))!;
        gen.push(p.generator.dataSync()[0]!);
        disc.push(p.discriminator.dataSync()[0]!);
        return p.total;
      }, model.trainableVariables());
      opt.applyGradients(grads as Record<string, tf.Variable>);
      tf.dispose([value, ...Object.values(grads)]);
    }
    const mean = (a: number[]) => a.reduce((x, y) => x + y) / a.length;
    expect(mean(gen.slice(-5))).toBeLessThan(mean(gen.slice(0, 5)) * 0.85);
    expect(mean(disc.slice(-5))).toBeLessThan(mean(disc.slice(0, 5)));
    const m = model.evaluate([batch(), batch()], { ks: [3] });
    expect(m.examples).toBe(2 * B);
    expect(m["recall@3"]).toBeGreaterThan(0.4);
    const top = model.topK(batch(), 3);
    expect(top.itemIds.length).toBe(B * 3);
    opt.dispose();
    model.dispose();
  });
});

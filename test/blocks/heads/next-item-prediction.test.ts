import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import "../../../blocks/index.js";
import type { ItemEmbeddings } from "../../../blocks/features/tabular-sequence-features.js";
import { NextItemPredictionTask, type NextItemPredictionConfig } from "../../../blocks/heads/next-item-prediction.js";
import { BlockContext, BlockError, CallContext, createBlock, type SequenceBatchLike } from "../../../src/core/index.js";
import { mulberry32 } from "../../../src/masking/index.js";
import { Model } from "../../../src/model/model.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

/*
 * A tiny item table, V = 4 (id 0 = padding), d = 2:
 *   E = [[0, 0], [1, 2], [-1, 0.5], [0.5, -1]]
 * Hidden states h = [[1, 1], [2, -1]]:
 *   h·Eᵀ = [[0, 1 + 2, -1 + 0.5, 0.5 - 1], [0, 2 - 2, -2 - 0.5, 1 + 1]] = [[0, 3, -0.5, -0.5], [0, 0, -2.5, 2]]
 */
const E = [[0, 0], [1, 2], [-1, 0.5], [0.5, -1]];
const V = E.length;
const H = [[1, 1], [2, -1]];
const H_ET = [[0, 3, -0.5, -0.5], [0, 0, -2.5, 2]];

function withTable(): { table: tf.Variable; ctx: BlockContext } {
  const table = tf.variable(tf.tensor2d(E));
  const ctx = new BlockContext({ rng: mulberry32(4), path: "/model/head" });
  ctx.set("item-embeddings", { column: "item_id", table, cardinality: V, dim: 2 } satisfies ItemEmbeddings);
  ctx.set("masking", { type: "causal" });
  return { table, ctx };
}

function task(config: Omit<NextItemPredictionConfig, "type">, bodyDim = 2) {
  const { table, ctx } = withTable();
  const t = new NextItemPredictionTask(config);
  t.build({ shape: [null, null, bodyDim], dtype: "float32" }, ctx);
  return { t, table, dispose: () => (t.dispose(), table.dispose()) };
}

function set(t: NextItemPredictionTask, name: string, v: number[][] | number[]): void {
  const x = t.namedVariables().get(name);
  if (!x) throw new Error(`no weight ${name}; have ${[...t.namedVariables().keys()].join(", ")}`);
  tf.tidy(() => x.assign(tf.tensor(v.flat(), x.shape)));
}

const logitsOf = (t: NextItemPredictionTask, h: number[][]) => tf.tidy(() => t.logits(tf.tensor2d(h)).arraySync());
const close = (got: number[], want: number[], tol = 1e-5) => {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `index ${i}: ${got[i]} vs ${want[i]}`).toBeLessThan(tol);
};

/**
 * Log-softmax over the candidate items 1..V-1 of a row of logits [V] (the padding id 0 is never a
 * candidate nor a target, so it is not in the softmax); entry j - 1 is item j.
 */
const logSoftmax = (z: number[]) => {
  const c = z.slice(1);
  const m = Math.max(...c);
  const lse = m + Math.log(c.reduce((a, v) => a + Math.exp(v - m), 0));
  return c.map((v) => v - lse);
};
const ce = (z: number[], y: number) => -logSoftmax(z)[y - 1]!;

function blockError(f: () => unknown): BlockError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(BlockError);
    return e as BlockError;
  }
  throw new Error("expected a BlockError");
}

describe("next-item-prediction: logits", () => {
  it("weightTying: logits = h·Eᵀ with the input block's table (no weight of its own)", () => {
    const { t, dispose } = task({ weightTying: true });
    expect(t.variables()).toEqual([]);
    close(logitsOf(t, H).flat(), H_ET.flat());
    expect(t.numItems).toBe(V);
    dispose();
  });

  it("weightTying follows the table as it changes (shared, not copied)", () => {
    const { t, table, dispose } = task({ weightTying: true });
    tf.tidy(() => table.assign(tf.mul(table, 2)));
    close(logitsOf(t, H).flat(), H_ET.flat().map((v) => 2 * v));
    dispose();
  });

  it("a body size different from the item size adds a linear projection (no activation)", () => {
    const { t, dispose } = task({ weightTying: true }, 3);
    expect([...t.namedVariables()].map(([k, v]) => [k, v.shape])).toEqual([
      ["next-item/projection/kernel", [3, 2]],
      ["next-item/projection/bias", [2]],
    ]);
    set(t, "next-item/projection/kernel", [[1, 0], [0, 1], [1, -1]]);
    set(t, "next-item/projection/bias", [-1, -0.5]);
    // h3 P + b: row 0 [1, 0, -1] -> [0, 1] + b = [-1, 0.5];  row 1 [0.5, 2, 1] -> [1.5, 1] + b = [0.5, 0.5]
    // (·)Eᵀ: row 0 [0, -1 + 1, 1 + 0.25, -0.5 - 0.5] = [0, 0, 1.25, -1];  row 1 [0, 0.5 + 1, -0.5 + 0.25, 0.25 - 0.5]
    close(logitsOf(t, [[1, 0, -1], [0.5, 2, 1]]).flat(), [0, 0, 1.25, -1, 0, 1.5, -0.25, -0.25]);
    dispose();
  });

  it("without tying: a separate [d, V] output matrix, U(±1/sqrt(d)) init; outputBias adds a per-item bias", () => {
    const { t, dispose } = task({ outputBias: true });
    const names = t.namedVariables();
    expect([...names].map(([k, v]) => [k, v.shape])).toEqual([
      ["next-item/output/kernel", [2, V]],
      ["next-item/output/bias", [V]],
    ]);
    expect(Array.from(names.get("next-item/output/kernel")!.dataSync()).every((v) => Math.abs(v) <= 1 / Math.sqrt(2))).toBe(true);
    expect(Array.from(names.get("next-item/output/bias")!.dataSync())).toEqual([0, 0, 0, 0]);
    const K = [[1, 0, 2, -1], [0.5, 1, 0, 3]];
    set(t, "next-item/output/kernel", K);
    set(t, "next-item/output/bias", [0, 0.1, 0.2, 0.3]);
    // h K + b: row 0 [1.5, 1, 2, 2] + b;  row 1 [1.5, -1, 4, -5] + b
    close(logitsOf(t, H).flat(), [1.5, 1.1, 2.2, 2.3, 1.5, -0.9, 4.2, -4.7]);
    dispose();
  });

  it("softmaxTemperature divides the logits", () => {
    const { t, dispose } = task({ weightTying: true, softmaxTemperature: 2 });
    close(logitsOf(t, H).flat(), H_ET.flat().map((v) => v / 2));
    dispose();
    const cold = task({ weightTying: true, softmaxTemperature: 0.25 });
    close(logitsOf(cold.t, H).flat(), H_ET.flat().map((v) => v * 4));
    // and the loss is computed on the divided logits
    const loss = tf.tidy(() => cold.t.loss(cold.t.logits(tf.tensor2d(H)), tf.tensor1d([1, 3], "int32")).dataSync()[0]!);
    close([loss], [(ce(H_ET[0]!.map((v) => v * 4), 1) + ce(H_ET[1]!.map((v) => v * 4), 3)) / 2]);
    cold.dispose();
  });

  it("call gathers the hidden states at the flat positions the Model gives ([B, L, D] -> [N, V])", () => {
    const { t, dispose } = task({ weightTying: true });
    // B = 2, L = 2: positions 1 (b 0, t 1) and 2 (b 1, t 0)
    const out = tf.tidy(() => {
      const ctx = new CallContext({ mode: "eval", rng: mulberry32(1) });
      ctx.set("positions", tf.tensor1d([1, 2], "int32"));
      return t.call(tf.tensor3d([[[9, 9], H[0]!], [H[1]!, [7, -7]]]), ctx).arraySync();
    });
    close(out.flat(), H_ET.flat());
    // a pooled body ([B, D]) is scored row by row
    const pooled = tf.tidy(() => t.call(tf.tensor2d(H), new CallContext({ mode: "eval", rng: mulberry32(1) })).arraySync());
    close(pooled.flat(), H_ET.flat());
    dispose();
  });
});

describe("next-item-prediction: loss", () => {
  it("plain cross-entropy: the mean over rows of -log softmax(logits)[label]", () => {
    const { t, dispose } = task({ weightTying: true });
    const loss = tf.tidy(() => t.loss(t.logits(tf.tensor2d(H)), tf.tensor1d([1, 2], "int32")).dataSync()[0]!);
    // softmax over items 1..3 (not the padding id 0):
    // row 0: -log(e^3 / (e^3 + 2 e^-0.5));  row 1: -log(e^-2.5 / (1 + e^-2.5 + e^2))
    const want = (-Math.log(Math.exp(3) / (Math.exp(3) + 2 * Math.exp(-0.5))) - Math.log(Math.exp(-2.5) / (1 + Math.exp(-2.5) + Math.exp(2)))) / 2;
    close([loss], [want]);
    close([loss], [(ce(H_ET[0]!, 1) + ce(H_ET[1]!, 2)) / 2]);
    dispose();
  });

  it("label smoothing eps: (1 - eps)·CE + eps·mean over the V - 1 items of -log p_j", () => {
    for (const eps of [0.1, 0.5]) {
      const { t, dispose } = task({ weightTying: true, labelSmoothing: eps });
      const labels = [1, 3];
      const loss = tf.tidy(() => t.loss(t.logits(tf.tensor2d(H)), tf.tensor1d(labels, "int32")).dataSync()[0]!);
      // the smoothed target puts 1 - eps + eps/(V-1) on the label and eps/(V-1) on every other item
      const rowLoss = (z: number[], y: number) => -logSoftmax(z).reduce((a, lp, j) => a + ((j + 1 === y ? 1 - eps : 0) + eps / (V - 1)) * lp, 0);
      const want = (rowLoss(H_ET[0]!, 1) + rowLoss(H_ET[1]!, 3)) / 2;
      close([loss], [want]);
      // and it differs from plain cross-entropy (by eps·mean(z_y - mean_j z_j) = eps·(7/3 + 13/6)/2)
      close([loss - (ce(H_ET[0]!, 1) + ce(H_ET[1]!, 3)) / 2], [(eps * (7 / 3 + 13 / 6)) / 2]);
      dispose();
    }
  });
});

describe("next-item-prediction: labels from the masking, padding excluded (through Model)", () => {
  const schema = { columns: [{ name: "item_id", tags: ["item-id", "categorical", "list"], cardinality: V }] };
  const L = 4;
  function model(head: Record<string, unknown> = {}): Model {
    const m = Model.fromConfig(
      {
        inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: 2 }, masking: { type: "causal" } },
        body: [],
        head: { type: "next-item-prediction", weightTying: true, ...head },
      },
      schema,
    ).build({ seed: 1 });
    const vars = m.namedVariables();
    tf.tidy(() => vars.get("inputs/embeddings/item_id")!.assign(tf.tensor2d(E)));
    return m;
  }
  const batch = (rows: number[][]): SequenceBatchLike => ({
    batchSize: rows.length, seqLen: L, itemIds: Int32Array.from(rows.flat()), categorical: {}, continuous: {}, context: {},
    lengths: Int32Array.from(rows, (r) => r.filter((x) => x !== 0).length),
  });
  const lossOf = (m: Model, rows: number[][]) => {
    const tb = m.trainBatch(batch(rows), mulberry32(1))!;
    return { numLabels: tb.numLabels, loss: tf.tidy(() => tb.loss().dataSync()[0]!) };
  };
  // no body: the hidden state at position t is E[x_t]; causal labels: position t predicts x_{t+1}
  const E_ET = E.map((a) => E.map((b) => a[0]! * b[0]! + a[1]! * b[1]!));

  it("the loss is the mean over the real next-item labels only", () => {
    const m = model();
    // row 0: 1 -> 2, 2 -> 3;  row 1 (one item): no label;  row 2: 3 -> 1
    const r = lossOf(m, [[1, 2, 3, 0], [2, 0, 0, 0], [3, 1, 0, 0]]);
    expect(r.numLabels).toBe(3);
    close([r.loss], [(ce(E_ET[1]!, 2) + ce(E_ET[2]!, 3) + ce(E_ET[3]!, 1)) / 3]);
    // left padding gives the same labels and loss
    close([lossOf(m, [[0, 1, 2, 3], [0, 0, 0, 2], [0, 0, 3, 1]]).loss], [r.loss]);
    // what padding positions hold (the [MASK] vector) does not change it
    tf.tidy(() => m.namedVariables().get("inputs/masked_item_embedding")!.assign(tf.tensor1d([50, -50])));
    close([lossOf(m, [[1, 2, 3, 0], [2, 0, 0, 0], [3, 1, 0, 0]]).loss], [r.loss]);
    // a batch without any label has no training batch
    expect(m.trainBatch(batch([[2, 0, 0, 0]]), mulberry32(1))).toBeUndefined();
    m.dispose();
  });

  it("label smoothing and temperature through the Model", () => {
    const m = model({ labelSmoothing: 0.2, softmaxTemperature: 0.5 });
    const eps = 0.2;
    const rowLoss = (z: number[], y: number) => -logSoftmax(z.map((v) => v / 0.5)).reduce((a, lp, j) => a + ((j + 1 === y ? 1 - eps : 0) + eps / (V - 1)) * lp, 0);
    const r = lossOf(m, [[1, 2, 3, 0], [3, 1, 0, 0]]);
    close([r.loss], [(rowLoss(E_ET[1]!, 2) + rowLoss(E_ET[2]!, 3) + rowLoss(E_ET[3]!, 1)) / 3]);
    m.dispose();
  });
});

describe("next-item-prediction: block contract", () => {
  it("schema defaults; getConfig round-trips", () => {
    const t = new NextItemPredictionTask();
    expect(t.config).toEqual({ type: "next-item-prediction", name: "next-item", weightTying: false, softmaxTemperature: 1, labelSmoothing: 0, outputBias: false, loss: "cross-entropy" });
    const again = createBlock({ ...t.getConfig(), weightTying: true } as never);
    expect(again).toBeInstanceOf(NextItemPredictionTask);
    expect(again.getConfig()).toEqual({ ...t.getConfig(), weightTying: true });
  });

  it("computeOutputSpec is [N, V]; the real logits have that shape; no tensor leaks", () => {
    const { t, dispose } = task({ weightTying: true }, 3);
    expect(t.outputSpec).toEqual({ shape: [null, V], dtype: "float32" });
    const before = tf.memory().numTensors;
    const shape = tf.tidy(() => {
      const ctx = new CallContext({ mode: "train", rng: mulberry32(1) });
      ctx.set("positions", tf.tensor1d([0, 3, 5], "int32"));
      return t.call(tf.ones([2, 3, 3]), ctx).shape;
    });
    expect(shape).toEqual([3, V]);
    expect(tf.memory().numTensors).toBe(before);
    dispose();
  });

  it("missing item table, missing masking, or a wrong input are located BlockErrors", () => {
    const t = new NextItemPredictionTask({ weightTying: true });
    const bare = new BlockContext({ rng: mulberry32(1), path: "/model/head" });
    const e1 = blockError(() => t.computeOutputSpec({ shape: [null, null, 2], dtype: "float32" }, bare));
    expect([e1.code, e1.path]).toEqual(["missing_item_id", "/model/head"]);
    const { table, ctx } = withTable();
    const noMask = new BlockContext({ rng: mulberry32(1), path: "/model/head" });
    noMask.set("item-embeddings", ctx.get("item-embeddings"));
    const e2 = blockError(() => t.computeOutputSpec({ shape: [null, null, 2], dtype: "float32" }, noMask));
    expect([e2.code, e2.path]).toEqual(["missing_masking", "/model/head"]);
    expect(e2.issues[0]!.hint).toMatch(/masking: \{type: causal\}/);
    for (const bad of [{ shape: [null, null], dtype: "int32" }, { shape: [null, null, null], dtype: "float32" }, { item_id: { shape: [null, null], dtype: "int32" } }]) {
      expect(blockError(() => t.computeOutputSpec(bad as never, ctx)).code).toBe("incompatible_input");
    }
    table.dispose();
  });
});

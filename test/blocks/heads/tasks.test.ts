import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import "../../../blocks/index.js";
import { SequentialBlock } from "../../../blocks/core/sequential.js";
import { TabularSequenceFeatures } from "../../../blocks/features/tabular-sequence-features.js";
import { BinaryClassificationTask } from "../../../blocks/heads/binary-classification.js";
import { Head } from "../../../blocks/heads/head.js";
import { MultiClassTask } from "../../../blocks/heads/multi-class.js";
import { MultiTaskHead } from "../../../blocks/heads/multi-task.js";
import { RegressionTask } from "../../../blocks/heads/regression.js";
import { SequenceSummaryBlock } from "../../../blocks/heads/sequence-summary.js";
import type { TargetTask } from "../../../blocks/heads/target-task.js";
import { MLPBlock } from "../../../blocks/core/mlp.js";
import { BlockContext, BlockError, CallContext, createBlock, type FeatureSchemaLike, type SequenceBatchLike, type TensorSpec } from "../../../src/core/index.js";
import type { Session } from "../../../src/data/index.js";
import { mulberry32 } from "../../../src/masking/index.js";
import { auc, BinaryClassificationMetrics, MultiClassMetrics, RegressionMetrics } from "../../../src/metrics/index.js";
import { Model, type ModelConfig } from "../../../src/model/model.js";
import { fit } from "../../../src/train/loop.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const close = (got: number[], want: number[], tol = 1e-5) => {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `index ${i}: ${got[i]} vs ${want[i]}`).toBeLessThan(tol);
};

describe("sequence-summary", () => {
  /*
   * h [2, 3, 2]: row 0 = [[1, 2], [3, 4], [5, 6]] with 2 real steps (mask [1, 1, 0]),
   *              row 1 = [[7, 8], [9, 10], [11, 12]] with 3 real steps.
   */
  const H = [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 10], [11, 12]]];
  const MASK = [[1, 1, 0], [1, 1, 1]];
  const run = (cfg: ConstructorParameters<typeof SequenceSummaryBlock>[0], mask = true) => {
    const b = new SequenceSummaryBlock(cfg);
    const spec = b.computeOutputSpec({ shape: [null, 3, 2], dtype: "float32" }, new BlockContext({ rng: mulberry32(1), path: "/model/body/1" }));
    expect(spec).toEqual({ shape: [null, 2], dtype: "float32" });
    return tf.tidy(() => {
      const ctx = new CallContext({ mode: "eval", rng: mulberry32(1) });
      if (mask) ctx.set("padding-mask", tf.tensor2d(MASK));
      return (b.call(tf.tensor3d(H), ctx) as tf.Tensor2D).arraySync();
    });
  };

  it("last = each row's last real step (not the padding at L-1, as Hugging Face reads it)", () => {
    close(run({ summaryType: "last" }).flat(), [3, 4, 11, 12]);
    close(run({}).flat(), [3, 4, 11, 12]); // the default
    close(run({ summaryType: "last" }, false).flat(), [5, 6, 11, 12]); // no padding mask: every step is real
  });
  it("first = step 0", () => close(run({ summaryType: "first" }).flat(), [1, 2, 7, 8]));
  it("mean over the real steps only: row 0 (1+3)/2, (2+4)/2; row 1 (7+9+11)/3, (8+10+12)/3", () => close(run({ summaryType: "mean" }).flat(), [2, 3, 9, 10]));
  it("cls-index: >= 0 from the start, < 0 back from the last real step, clamped to the real steps", () => {
    close(run({ summaryType: "cls-index", clsIndex: 0 }).flat(), [1, 2, 7, 8]);
    close(run({ summaryType: "cls-index", clsIndex: -2 }).flat(), [1, 2, 9, 10]);
    close(run({ summaryType: "cls-index", clsIndex: 2 }).flat(), [3, 4, 11, 12]); // row 0 has only steps 0..1
    close(run({ summaryType: "cls-index", clsIndex: -5 }).flat(), [1, 2, 7, 8]);
  });
  it("gradients flow only to the step read", () => {
    const g = tf.tidy(() => {
      const b = new SequenceSummaryBlock({ summaryType: "last" });
      const ctx = new CallContext({ mode: "train", rng: mulberry32(1) });
      ctx.set("padding-mask", tf.tensor2d(MASK));
      return tf.grad((x: tf.Tensor) => tf.sum(b.call(x, ctx) as tf.Tensor))(tf.tensor3d(H)).arraySync();
    });
    expect(g).toEqual([[[0, 0], [1, 1], [0, 0]], [[0, 0], [0, 0], [1, 1]]]);
  });
  it("schema defaults, round trip, and a 2-D input is refused", () => {
    const b = createBlock({ type: "sequence-summary" } as never);
    expect(b.getConfig()).toEqual({ type: "sequence-summary", name: "sequence-summary", summaryType: "last", clsIndex: -1 });
    expect(() => new SequenceSummaryBlock().computeOutputSpec({ shape: [null, 4], dtype: "float32" }, new BlockContext({ rng: mulberry32(1), path: "/x" }))).toThrow(BlockError);
  });
});

const softplus = (x: number) => Math.log1p(Math.exp(x));

/** Schema of the task tests: items, and per-session targets (not inputs: they carry no categorical / continuous tag). */
const schema: FeatureSchemaLike = {
  columns: [
    { name: "item_id", tags: ["item-id", "categorical", "list"], cardinality: 12 },
    { name: "click", tags: ["target", "binary"] },
    { name: "spend", tags: ["target", "regression"] },
    { name: "segment", tags: ["target", "multi-class"], cardinality: 4 },
    { name: "category", tags: ["categorical", "list"], cardinality: 4 },
  ],
};

/** A task built on [B, 2] inputs with its output layer set to kernel k [2, C] and bias b [C]. */
function built<T extends TargetTask>(t: T, k: number[][], b: number[]): T {
  t.build({ shape: [null, 2], dtype: "float32" }, new BlockContext({ schema, rng: mulberry32(1), path: "/model/head" }));
  const vars = t.namedVariables();
  tf.tidy(() => {
    [...vars].find(([n]) => n.endsWith("output/kernel"))![1].assign(tf.tensor2d(k));
    [...vars].find(([n]) => n.endsWith("output/bias"))![1].assign(tf.tensor1d(b));
  });
  return t;
}
const Hrows = [[1, 1], [2, -1], [0, 1]];
const lossOf = (t: TargetTask, targets: number[]) =>
  tf.tidy(() => t.targetLoss(tf.tensor2d(Hrows), new CallContext({ mode: "train", rng: mulberry32(1) }), targets)?.dataSync()[0]);
const predOf = (t: TargetTask) => tf.tidy(() => Array.from(t.call(tf.tensor2d(Hrows), new CallContext({ mode: "eval", rng: mulberry32(1) })).dataSync()));

describe("per-session tasks (hand-computed)", () => {
  // kernel [1, -1], bias 0.5: z = h0 - h1 + 0.5 = [0.5, 3.5, -0.5]
  it("binary-classification: sigmoid(z), BCE = mean(softplus(z) - y z) over rows with a target", () => {
    const t = built(new BinaryClassificationTask({ target: "click" }), [[1], [-1]], [0.5]);
    close(predOf(t), [0.5, 3.5, -0.5].map((z) => 1 / (1 + Math.exp(-z))));
    close([lossOf(t, [1, 0, NaN])!], [(softplus(0.5) - 0.5 + softplus(3.5)) / 2]);
    expect(lossOf(t, [NaN, NaN, NaN])).toBeUndefined();
    t.dispose();
  });
  it("regression: z, MSE over rows with a target", () => {
    const t = built(new RegressionTask({ target: "spend" }), [[1], [-1]], [0.5]);
    close(predOf(t), [0.5, 3.5, -0.5]);
    close([lossOf(t, [1, NaN, 0.5])!], [((0.5 - 1) ** 2 + (-0.5 - 0.5) ** 2) / 2]);
    t.dispose();
  });
  it("multi-class: C = the column's cardinality (4), softmax over classes 1..3 (0 = missing), CE", () => {
    // logits = h · k + b with k = [[0, 1, 0, -1], [0, 0, 1, 1]], b = 0: row 0 [0, 1, 1, 0], row 1 [0, 2, -1, -3], row 2 [0, 0, 1, 1]
    const t = built(new MultiClassTask({ target: "segment" }), [[0, 1, 0, -1], [0, 0, 1, 1]], [0, 0, 0, 0]);
    expect(t.numClasses).toBe(4);
    const lse = (xs: number[]) => Math.log(xs.reduce((a, x) => a + Math.exp(x), 0));
    // targets [2, 0 (missing), 3]: row 0 CE = lse(1, 1, 0) - 1; row 2 CE = lse(0, 1, 1) - 1
    close([lossOf(t, [2, 0, 3])!], [(lse([1, 1, 0]) - 1 + lse([0, 1, 1]) - 1) / 2]);
    const p = predOf(t);
    expect(p[0]).toBeLessThan(1e-6); // class 0 never predicted
    close([p[1]! + p[2]! + p[3]!], [1]);
    t.dispose();
  });
  it("a sequence input is summarised by summaryType (mean over real steps)", () => {
    const t = new RegressionTask({ target: "spend", summaryType: "mean" });
    t.build({ shape: [null, 3, 2], dtype: "float32" }, new BlockContext({ schema, rng: mulberry32(1), path: "/model/head" }));
    tf.tidy(() => {
      [...t.namedVariables()].find(([n]) => n.endsWith("kernel"))![1].assign(tf.tensor2d([[1], [0]]));
      [...t.namedVariables()].find(([n]) => n.endsWith("bias"))![1].assign(tf.tensor1d([0]));
    });
    const ctx = new CallContext({ mode: "eval", rng: mulberry32(1) });
    const got = tf.tidy(() => {
      ctx.set("padding-mask", tf.tensor2d([[1, 1, 0], [1, 1, 1]]));
      return Array.from(t.call(tf.tensor3d([[[1, 0], [3, 0], [100, 0]], [[1, 0], [2, 0], [6, 0]]]), ctx).dataSync());
    });
    close(got, [2, 3]);
    t.dispose();
  });
  it("the target column must be in the schema, per session, and tagged as a target", () => {
    const ctx = new BlockContext({ schema, rng: mulberry32(1), path: "/model/head" });
    const spec: TensorSpec = { shape: [null, 2], dtype: "float32" };
    expect(() => new BinaryClassificationTask({ target: "nope" }).computeOutputSpec(spec, ctx)).toThrow(/not in the feature schema/);
    expect(() => new BinaryClassificationTask({ target: "category" }).computeOutputSpec(spec, ctx)).toThrow(/sequence/);
    expect(() => new RegressionTask({ target: "item_id" }).computeOutputSpec(spec, ctx)).toThrow(BlockError);
    expect(new BinaryClassificationTask({ target: "click" }).computeOutputSpec(spec, ctx)).toEqual({ shape: [null], dtype: "float32" });
    expect(new MultiClassTask({ target: "segment" }).computeOutputSpec(spec, ctx)).toEqual({ shape: [null, 4], dtype: "float32" });
  });
});

describe("task metrics (hand-computed)", () => {
  it("binary: AUC (Mann-Whitney, ties half), precision / recall / accuracy at 0.5", () => {
    // positives 0.35, 0.8; negatives 0.1, 0.4: pairs (0.35>0.1 yes, 0.35>0.4 no, 0.8>both) = 3/4
    close([auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])], [0.75]);
    close([auc([0.5, 0.5, 0.2], [1, 0, 0])], [0.75]); // (0.5 tie + 1) / 2
    expect(auc([0.1, 0.2], [1, 1])).toBeNaN();
    const m = new BinaryClassificationMetrics();
    m.update(Float32Array.from([0.1, 0.4]), Float32Array.from([0, 0]));
    m.update(Float32Array.from([0.35, 0.8]), Float32Array.from([1, 1]));
    const r = m.result();
    close([r.auc!, r.precision!, r.recall!, r.accuracy!], [0.75, 1, 0.5, 0.75]);
  });
  it("regression: rmse, mae, mse; multi-class accuracy", () => {
    const m = new RegressionMetrics();
    m.update([1, 2, 3], [1, 4, 0]); // errors 0, -2, 3
    const r = m.result();
    close([r.mse!, r.rmse!, r.mae!], [13 / 3, Math.sqrt(13 / 3), 5 / 3]);
    const a = new MultiClassMetrics();
    a.update([0, 0.7, 0.3, 0, 0.2, 0.8], 3, [1, 1]);
    expect(a.result().accuracy).toBe(0.5);
  });
});

describe("Model with per-session and multi-task heads", () => {
  const L = 5;
  const recipe = (taskWeights: number[]): ModelConfig => ({
    inputs: { type: "tabular-sequence-features", excludeFeatures: ["category"], embeddingDims: { item_id: 8 }, masking: { type: "causal" } },
    body: [{ type: "gru", units: 8 }],
    head: {
      type: "multi-task",
      taskWeights,
      tasks: [
        { type: "next-item-prediction", weightTying: true },
        { type: "binary-classification", target: "click" },
        { type: "regression", target: "spend", summaryType: "mean" },
        { type: "multi-class", target: "segment", summaryType: "first" },
      ],
    },
  });
  function batch(): SequenceBatchLike {
    const r = mulberry32(5);
    const B = 6;
    const itemIds = new Int32Array(B * L);
    const lengths = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      lengths[b] = 2 + (b % 4);
      for (let t = 0; t < lengths[b]!; t++) itemIds[b * L + t] = 1 + Math.floor(r.next() * 11);
    }
    return {
      batchSize: B, seqLen: L, itemIds, lengths, categorical: {}, continuous: {},
      context: { click: Float32Array.from([1, 0, 1, NaN, 0, 1]), spend: Float32Array.from([2, -1, 0.5, 3, NaN, 1]), segment: Int32Array.from([1, 3, 0, 2, 2, 1]) },
    };
  }
  const lossWith = (w: number[]) => {
    const m = Model.fromConfig(structuredClone(recipe(w)), schema).build({ seed: 7 });
    const v = tf.tidy(() => m.trainBatch(batch(), mulberry32(3))!.loss().dataSync()[0]!);
    m.dispose();
    return v;
  };

  it("loss = Σ wᵢ · lossᵢ (each part measured alone with the same seeded weights)", () => {
    const [ni, bin, reg, mc] = [lossWith([1, 0, 0, 0]), lossWith([0, 1, 0, 0]), lossWith([0, 0, 1, 0]), lossWith([0, 0, 0, 1])];
    for (const l of [ni, bin, reg, mc]) expect(l).toBeGreaterThan(0);
    close([lossWith([1, 0.5, 2, 3])], [ni + 0.5 * bin + 2 * reg + 3 * mc], 1e-4);
  });

  it("round trip, weight names, evaluate reports every task; topK still ranks the catalogue", () => {
    const m = Model.fromConfig(structuredClone(recipe([1, 0.5, 2, 3])), schema).build({ seed: 7 });
    expect(m.toRecipe().head).toEqual(Model.fromConfig(m.toRecipe(), schema).toRecipe().head);
    expect([...m.namedVariables().keys()].filter((k) => k.startsWith("head/"))).toEqual([
      "head/multi-task/1/binary-classification/output/kernel", "head/multi-task/1/binary-classification/output/bias",
      "head/multi-task/2/regression/output/kernel", "head/multi-task/2/regression/output/bias",
      "head/multi-task/3/multi-class/output/kernel", "head/multi-task/3/multi-class/output/bias",
    ]);
    const b = batch();
    const r = m.evaluate([{ ...b, itemIds: b.itemIds, targets: Int32Array.from([1, 2, 3, 4, 5, 6]) }], { ks: [5] });
    // metrics are named "<task name>/<metric>" (task names default to the task type)
    for (const k of ["ndcg@5", "recall@5", "binary-classification/auc", "binary-classification/precision", "binary-classification/recall", "binary-classification/accuracy", "binary-classification/loss", "regression/rmse", "regression/mae", "regression/loss", "multi-class/accuracy", "multi-class/loss", "loss"]) {
      expect(Number.isFinite(r[k]), k).toBe(true);
    }
    expect(r.examples).toBe(6);
    expect(m.topK(b, 3).k).toBe(3);
    m.dispose();
  });

  it("taskWeights of the wrong length, two tasks of one name and a missing target column are refused", () => {
    expect(() => Model.fromConfig({ ...recipe([1, 1]) }, schema).build()).toThrow(/taskWeights has 2 entries/);
    const dup = recipe([]);
    (dup.head as unknown as { tasks: unknown[] }).tasks.push({ type: "binary-classification", target: "click" });
    expect(() => Model.fromConfig(dup, schema).build()).toThrow(/named "binary-classification"/);
    const m = Model.fromConfig(recipe([]), schema).build();
    let err: unknown;
    try {
      m.trainBatch({ ...batch(), context: {} }, mulberry32(1));
    } catch (e) {
      err = e;
    }
    expect((err as BlockError).issues[0]).toMatchObject({ code: "missing_feature", message: expect.stringMatching(/no per-session column "click"/) });
    m.dispose();
  });

  it("a binary task alone trains with fit (loss falls, AUC high) and the model has no next-item part", async () => {
    // click = 1 when the session contains item 1: learnable from the items
    const r = mulberry32(11);
    const sessions: Session[] = Array.from({ length: 240 }, (_, i) => {
      const n = 2 + Math.floor(r.next() * 4);
      const items = Int32Array.from({ length: n }, () => 1 + Math.floor(r.next() * 11));
      return { id: `s${i}`, items, categorical: {}, continuous: {}, context: { click: items.includes(1) ? 1 : 0 } };
    });
    const inputs = TabularSequenceFeatures.fromSchema(schema, { embeddingDims: { item_id: 8 }, excludeFeatures: ["category"] });
    // a per-position MLP and a mean summary: "contains item 1" is a mean of per-item features
    const m = new Model(new Head(new SequentialBlock([inputs, new MLPBlock({ units: [8] })]), new BinaryClassificationTask({ target: "click", summaryType: "mean" })), { schema }).build({ seed: 2 });
    expect(m.hasNextItem).toBe(false);
    expect(() => m.task).toThrow(/no next-item-prediction task/);
    expect(m.numItems).toBe(12); // the item-id cardinality of the input block
    const res = await fit(m, { train: sessions, maxSequenceLength: L, context: { click: "continuous" } }, { train: { epochs: 8, batchSize: 32, optimizer: { type: "adam", learningRate: 0.03 } }, progress: { quiet: true } as never });
    const losses = res.history.map((h) => h.loss);
    expect(losses[losses.length - 1]!).toBeLessThan(losses[0]! * 0.5);
    const B = sessions.length;
    const itemIds = new Int32Array(B * L);
    const lengths = Int32Array.from(sessions, (s) => s.items.length);
    sessions.forEach((s, b) => itemIds.set(s.items, b * L));
    const ev = m.evaluate([{ batchSize: B, seqLen: L, itemIds, lengths, categorical: {}, continuous: {}, context: { click: Float32Array.from(sessions, (s) => s.context.click!) } }]);
    expect(ev["binary-classification/auc"]!).toBeGreaterThan(0.9);
    expect(ev.examples).toBe(B);
    m.dispose();
  }, 90_000);
});

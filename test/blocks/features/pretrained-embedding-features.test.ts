/**
 * Pre-computed embedding features (Transformers4Rec PretrainedEmbeddingFeatures): vectors looked up
 * from a frozen file matrix by an id column reach the body as the file's rows (projected by
 * hand-set weights when projected), the sequence combiners and the layer-norm normaliser by hand,
 * per-session lookups repeated over L, the table stays frozen through a training step, errors, and
 * recipes/gpt2-pretrained-item-vectors.yaml (committed fixture matrix) trains one short epoch.
 */
import * as tf from "@tensorflow/tfjs";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import "../../../blocks/index.js";
import { encodeNpy, readEmbeddingMatrix } from "../../../blocks/features/pretrained.js";
import { TabularSequenceFeatures, type TabularSequenceFeaturesConfig } from "../../../blocks/features/tabular-sequence-features.js";
import { BlockContext, BlockError, CallContext, type FeatureSchemaLike, type SequenceBatchLike } from "../../../src/core/index.js";
import { mulberry32 } from "../../../src/masking/index.js";
import { Model, type ModelConfig } from "../../../src/model/index.js";
import { loadRecipe } from "../../../src/recipe/index.js";
import { trainOneShortEpoch } from "../recipe-epoch.js";
import { loadModelDir } from "../../../src/io/model-dir.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const schema: FeatureSchemaLike = {
  columns: [
    { name: "item_id", tags: ["item-id", "categorical", "list"], cardinality: 4 },
    { name: "user", tags: ["user-id", "categorical", "context"], cardinality: 3 },
  ],
};

// item vectors (row i = item i, row 0 = padding, never used) and user vectors, dim 2
const ITEM_VEC = [[9, 9], [1, 2], [3, -1], [0, 4]];
const USER_VEC = [[9, 9], [10, 20], [-5, 5]];
const dir = mkdtempSync(join(tmpdir(), "recblocks-pef-"));
const itemFile = join(dir, "items.npy");
const userFile = join(dir, "users.json");
writeFileSync(itemFile, encodeNpy({ rows: 4, cols: 2, data: Float32Array.from(ITEM_VEC.flat()) }));
writeFileSync(userFile, JSON.stringify(USER_VEC));

const B = 2, L = 3;
const ITEMS = [[1, 2, 0], [3, 3, 1]];
const USERS = [2, 1];

function built(options: Omit<TabularSequenceFeaturesConfig, "type">) {
  const block = TabularSequenceFeatures.fromSchema(schema, { embeddingDims: { item_id: 2 }, excludeFeatures: ["user"], ...options });
  const ctx = new BlockContext({ rng: mulberry32(7), path: "/model/inputs" });
  block.build(block.expectedInputSpec(ctx), ctx);
  return block;
}

function set(block: TabularSequenceFeatures, name: string, v: number[][] | number[]): void {
  const x = block.namedVariables().get(name);
  if (!x) throw new Error(`no weight ${name}; have ${[...block.namedVariables().keys()].join(", ")}`);
  tf.tidy(() => x.assign(tf.tensor(v.flat(), x.shape)));
}

function run(block: TabularSequenceFeatures, ids = ITEMS): number[][][] {
  return tf.tidy(() => {
    const ctx = new CallContext({ mode: "eval", rng: mulberry32(1) });
    const x: Record<string, tf.Tensor> = { item_id: tf.tensor2d(ids, [B, L], "int32"), user: tf.tensor1d(USERS, "int32") };
    const inputs: Record<string, tf.Tensor> = {};
    for (const f of block.features) inputs[f.name] = x[f.name]!;
    return block.call(inputs, ctx).arraySync() as number[][][];
  });
}

const close = (got: number[], want: number[], tol = 1e-5) => {
  expect(got.length, JSON.stringify(got)).toBe(want.length);
  got.forEach((g, i) => expect(Math.abs(g - want[i]!), `${JSON.stringify(got)} vs ${JSON.stringify(want)}`).toBeLessThan(tol));
};

/** Zero the item table, so the concat output shows [0, 0 | pretrained]; names sort: item_id < item_vec. */
const pretrainedPart = (v: number[][][], b: number, t: number) => v[b]![t]!.slice(2);

describe("pretrainedEmbeddingFeatures: per-interaction vectors looked up by the item id", () => {
  it("the vector reaching the body for a known item is the file's row; padding steps get zeros", () => {
    const block = built({ pretrainedEmbeddingFeatures: { item_vec: { path: itemFile } }, aggregation: "concat" });
    expect(block.outputSpec).toEqual({ shape: [null, null, 4], dtype: "float32" });
    const w = block.namedVariables().get("inputs/pretrained_embedding_features/item_vec/table")!;
    expect(w.trainable).toBe(false);
    set(block, "inputs/embeddings/item_id", [[0, 0], [0, 0], [0, 0], [0, 0]]);
    const v = run(block);
    close(pretrainedPart(v, 0, 0), [1, 2]); // item 1
    close(pretrainedPart(v, 0, 1), [3, -1]); // item 2
    close(pretrainedPart(v, 0, 2), [0, 0]); // padding (row 0 is [9, 9] in the file: never used)
    close(pretrainedPart(v, 1, 0), [0, 4]); // item 3
    close(pretrainedPart(v, 1, 2), [1, 2]);
  });

  it("outputDim projects each vector by a Linear: row · W + b (hand-set W, b)", () => {
    const block = built({ pretrainedEmbeddingFeatures: { item_vec: { path: itemFile, outputDim: 3 } }, aggregation: "concat" });
    expect(block.outputSpec).toEqual({ shape: [null, null, 5], dtype: "float32" });
    set(block, "inputs/embeddings/item_id", [[0, 0], [0, 0], [0, 0], [0, 0]]);
    set(block, "inputs/pretrained_embedding_features/item_vec/projection/dense_0/kernel", [[1, 0, 2], [0, 1, -1]]);
    set(block, "inputs/pretrained_embedding_features/item_vec/projection/dense_0/bias", [0.5, 0, 1]);
    const v = run(block);
    // item 1 [1, 2]: [1 + 0.5, 2, 2 - 2 + 1] = [1.5, 2, 1]; item 3 [0, 4]: [0.5, 4, -4 + 1] = [0.5, 4, -3]
    close(pretrainedPart(v, 0, 0), [1.5, 2, 1]);
    close(pretrainedPart(v, 1, 0), [0.5, 4, -3]);
    close(pretrainedPart(v, 1, 1), [0.5, 4, -3]);
    // item 2 [3, -1]: [3.5, -1, 6 + 1 + 1] = [3.5, -1, 8]; the padding step stays zero (no bias)
    close(pretrainedPart(v, 0, 1), [3.5, -1, 8]);
    close(pretrainedPart(v, 0, 2), [0, 0, 0]);
  });

  it("sequenceCombiner reduces over the real steps and repeats over L (mean / sum / max / min)", () => {
    // row 0: items 1, 2 -> [1, 2], [3, -1]; row 1: items 3, 3, 1 -> [0, 4], [0, 4], [1, 2]
    const want = {
      mean: [[2, 0.5], [1 / 3, 10 / 3]],
      sum: [[4, 1], [1, 10]],
      max: [[3, 2], [1, 4]],
      min: [[1, -1], [0, 2]],
    } as const;
    for (const [combiner, rows] of Object.entries(want)) {
      const block = built({ pretrainedEmbeddingFeatures: { item_vec: { path: itemFile, sequenceCombiner: combiner as "mean" } }, aggregation: "concat" });
      set(block, "inputs/embeddings/item_id", [[0, 0], [0, 0], [0, 0], [0, 0]]);
      const v = run(block);
      for (let b = 0; b < B; b++) for (let t = 0; t < L; t++) close(pretrainedPart(v, b, t), [...rows[b]!]);
    }
  });

  it("normalizer layer-norm: (x - mean) / sqrt(var + eps) per vector (gamma 1, beta 0)", () => {
    const block = built({ pretrainedEmbeddingFeatures: { item_vec: { path: itemFile, normalizer: "layer-norm" } }, aggregation: "concat" });
    expect([...block.namedVariables().keys()]).toContain("inputs/layer_norm/item_vec/gamma");
    set(block, "inputs/embeddings/item_id", [[0, 0], [0, 0], [0, 0], [0, 0]]);
    const v = run(block);
    // [1, 2]: mean 1.5, var 0.25 -> [-0.5, 0.5] / sqrt(0.25 + 1e-5)
    const s = Math.sqrt(0.25 + 1e-5);
    close(pretrainedPart(v, 0, 0), [-0.5 / s, 0.5 / s], 1e-4);
  });

  it("a per-session lookup (a context column) gives one vector per session, repeated over L", () => {
    const block = built({ excludeFeatures: [], embeddingDims: { item_id: 2, user: 2 }, pretrainedEmbeddingFeatures: { user_vec: { path: userFile, lookup: "user" } }, aggregation: "concat" });
    // parts sorted: item_id (2) | user (2) | user_vec (2)
    expect(block.outputSpec).toEqual({ shape: [null, null, 6], dtype: "float32" });
    const v = run(block);
    for (let t = 0; t < L; t++) {
      close(v[0]![t]!.slice(4), [-5, 5]); // user 2
      close(v[1]![t]!.slice(4), [10, 20]); // user 1
    }
  });

  it("masked steps look up nothing: the masked item's vector does not leak into a combined feature", () => {
    const block = built({ pretrainedEmbeddingFeatures: { item_vec: { path: itemFile, sequenceCombiner: "sum" } }, aggregation: "concat" });
    set(block, "inputs/embeddings/item_id", [[0, 0], [0, 0], [0, 0], [0, 0]]);
    // the masking gives the model id 0 at masked steps: row 0 with item 2 masked sums item 1 only
    const v = run(block, [[1, 0, 0], [3, 3, 1]]);
    close(pretrainedPart(v, 0, 0), [1, 2]);
  });

  it("errors: a schema column without the embedding tag, an unknown lookup column, too few rows", () => {
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(BlockError);
        return (e as BlockError).issues[0]!;
      }
      throw new Error("expected a BlockError");
    };
    expect(err(() => built({ pretrainedEmbeddingFeatures: { user: { path: itemFile } } }))).toMatchObject({ code: "incompatible_feature", path: "/model/inputs/pretrainedEmbeddingFeatures/user" });
    expect(err(() => built({ pretrainedEmbeddingFeatures: { v: { path: itemFile, lookup: "user" } } }))).toMatchObject({ code: "incompatible_feature", path: "/model/inputs/pretrainedEmbeddingFeatures/v/lookup" });
    // users.json has 3 rows; items need 4
    expect(err(() => built({ pretrainedEmbeddingFeatures: { v: { path: userFile } } }))).toMatchObject({ code: "bad_pretrained_embeddings", path: "/model/inputs/pretrainedEmbeddingFeatures/v/path", received: [3, 2], expected: [4, 2] });
    expect(err(() => built({ pretrainedEmbeddingFeatures: { v: { path: itemFile, dim: 3 } } }))).toMatchObject({ code: "bad_pretrained_embeddings", expected: [4, 3] });
  });
});

const recipeFile = join(import.meta.dirname, "../../../recipes/gpt2-pretrained-item-vectors.yaml");

describe("recipes/gpt2-pretrained-item-vectors.yaml", () => {
  it("the body gets the fixture's row of each item (projected by hand-set weights), the table stays frozen through a training step", () => {
    const { recipe, featureSchema } = loadRecipe(recipeFile);
    const m = Model.fromConfig(recipe.model as unknown as ModelConfig, featureSchema as never).build({ seed: 1 });
    try {
      const file = readEmbeddingMatrix("test/fixtures/data/synthetic-item-vectors.npy");
      expect([file.rows, file.cols]).toEqual([1001, 8]);
      // the fixture's rows: sin(0.37 · i · (j + 1)) to 4 decimals
      expect(file.data[7 * 8 + 2]).toBeCloseTo(Math.round(Math.sin(0.37 * 7 * 3) * 1e4) / 1e4, 6);
      const vars = m.namedVariables();
      const table = vars.get("inputs/pretrained_embedding_features/item_vector/table")!;
      expect(table.shape).toEqual([1001, 8]);
      expect(table.trainable).toBe(false);
      expect(m.trainableVariables()).not.toContain(table);
      // projection W = [I_8 | 0] (8 -> 16), b = 0; layer-norm and the item table zeroed out of the way:
      // the 16-wide part of item 7 is [row 7, 0 ... 0] layer-normed, so compare the normalised row
      const W = Array.from({ length: 8 }, (_, i) => Array.from({ length: 16 }, (_, j) => (i === j ? 1 : 0)));
      tf.tidy(() => {
        vars.get("inputs/pretrained_embedding_features/item_vector/projection/dense_0/kernel")!.assign(tf.tensor2d(W));
        vars.get("inputs/pretrained_embedding_features/item_vector/projection/dense_0/bias")!.assign(tf.zeros([16]));
      });
      const out = tf.tidy(() => {
        const ctx = new CallContext({ mode: "inference", rng: mulberry32(1) });
        return (m.inputs.call({ item_id: tf.tensor2d([[7, 0]], [1, 2], "int32") }, ctx) as tf.Tensor).arraySync() as number[][][];
      });
      // parts sorted: item_id (48) | item_vector (16)
      const got = out[0]![0]!.slice(48);
      const raw = [...file.data.subarray(56, 64), ...new Array(8).fill(0)];
      const mean = raw.reduce((a, x) => a + x, 0) / 16;
      const sd = Math.sqrt(raw.reduce((a, x) => a + (x - mean) ** 2, 0) / 16 + 1e-5);
      close(got, raw.map((x) => (x - mean) / sd), 1e-4);
      close(out[0]![1]!.slice(48), new Array(16).fill(0)); // the padding step

      // one optimizer step: the projection moves, the frozen table does not
      const before = table.dataSync().slice();
      const kernel = vars.get("inputs/pretrained_embedding_features/item_vector/projection/dense_0/kernel")!;
      const kBefore = kernel.dataSync().slice();
      const batch: SequenceBatchLike = { batchSize: 2, seqLen: 4, itemIds: Int32Array.from([3, 7, 9, 0, 5, 6, 7, 8]), categorical: {}, continuous: {}, context: {}, lengths: Int32Array.from([3, 4]) };
      const tb = m.trainBatch(batch, mulberry32(2))!;
      const opt = tf.train.adam(0.01);
      opt.minimize(tb.loss, false, m.trainableVariables());
      expect(Array.from(table.dataSync())).toEqual(Array.from(before));
      expect(Array.from(kernel.dataSync())).not.toEqual(Array.from(kBefore));
      opt.dispose();
    } finally {
      m.dispose();
    }
  });

  it("trains one short epoch on tiny synthetic data; the saved model keeps the file's table", async () => {
    const { modelDir } = await trainOneShortEpoch(recipeFile);
    const loaded = loadModelDir(modelDir);
    try {
      const table = loaded.model.namedVariables().get("inputs/pretrained_embedding_features/item_vector/table")!;
      const file = readEmbeddingMatrix("test/fixtures/data/synthetic-item-vectors.npy");
      expect(Array.from(table.dataSync())).toEqual(Array.from(file.data.subarray(0, table.size)));
    } finally {
      loaded.model.dispose();
    }
  }, 120_000);
});

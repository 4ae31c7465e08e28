import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import "../../../blocks/index.js";
import { TabularSequenceFeatures, type TabularSequenceFeaturesConfig } from "../../../blocks/features/tabular-sequence-features.js";
import {
  BlockContext,
  BlockError,
  CallContext,
  createBlock,
  type CallMode,
  type FeatureSchemaLike,
  type SequenceBatchLike,
  type TensorSpec,
} from "../../../src/core/index.js";
import { mulberry32 } from "../../../src/masking/index.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

/*
 * A feature schema with every kind of column. Sorted names (the concat order):
 *   age (continuous context, 1) | category (categorical list, dim 3) | country (categorical context, dim 2)
 *   | item_id (item-id, dim 2) | price (continuous list, 1)          -> D = 1 + 3 + 2 + 2 + 1 = 9
 * session_id is an identifier (skipped); country has no cardinality but max 2 (-> 3 rows).
 */
const schema: FeatureSchemaLike = {
  columns: [
    { name: "session_id", tags: ["session-id", "categorical"], cardinality: 100 },
    { name: "item_id", tags: ["item-id", "categorical", "list"], cardinality: 5 },
    { name: "price", tags: ["continuous", "list"] },
    { name: "category", tags: ["categorical", "list"], cardinality: 3 },
    { name: "age", tags: ["continuous", "context"] },
    { name: "country", tags: ["categorical", "context"], max: 2 },
  ],
};
const dims = { item_id: 2, category: 3, country: 2 };

// hand-set tables (row 0 = padding)
const E_ITEM = [[0, 0], [1, 2], [3, 4], [5, 6], [7, 8]];
const E_CAT = [[0, 0, 0], [0.1, 0.2, 0.3], [0.4, 0.5, 0.6]];
const E_COUNTRY = [[0, 0], [10, 11], [20, 21]];

// one batch, B = 2, L = 3 (row 0 is right-padded)
const ITEM = [[1, 2, 0], [3, 4, 1]];
const CAT = [[1, 2, 0], [2, 2, 1]];
const PRICE = [[0.5, 1.5, 0], [2, 3, 4]];
const AGE = [30, 40];
const COUNTRY = [2, 1];
const B = 2, L = 3;

type Inputs = Record<string, tf.Tensor>;
const batchInputs = (): Inputs => ({
  item_id: tf.tensor2d(ITEM, [B, L], "int32"),
  category: tf.tensor2d(CAT, [B, L], "int32"),
  price: tf.tensor2d(PRICE, [B, L]),
  age: tf.tensor1d(AGE),
  country: tf.tensor1d(COUNTRY, "int32"),
});

function built(options: Omit<TabularSequenceFeaturesConfig, "type">, sch: FeatureSchemaLike = schema, seed = 7) {
  const block = TabularSequenceFeatures.fromSchema(sch, options);
  const ctx = new BlockContext({ rng: mulberry32(seed), path: "/model/inputs" });
  const spec = block.expectedInputSpec(ctx);
  block.build(spec, ctx);
  return { block, ctx, spec };
}

function set(block: TabularSequenceFeatures, name: string, v: number[][] | number[]): void {
  const x = block.namedVariables().get(name);
  if (!x) throw new Error(`no weight ${name}; have ${[...block.namedVariables().keys()].join(", ")}`);
  tf.tidy(() => x.assign(tf.tensor(v.flat(), x.shape)));
}

function setTables(block: TabularSequenceFeatures): void {
  set(block, "inputs/embeddings/item_id", E_ITEM);
  if (block.namedVariables().has("inputs/embeddings/category")) set(block, "inputs/embeddings/category", E_CAT);
  if (block.namedVariables().has("inputs/embeddings/country")) set(block, "inputs/embeddings/country", E_COUNTRY);
}

/** One call (inside a tidy); returns the output as nested arrays and its shape. */
function run(block: TabularSequenceFeatures, opts: { mode?: CallMode; maskInput?: number[][]; inputs?: () => Inputs } = {}) {
  return tf.tidy(() => {
    const ctx = new CallContext({ mode: opts.mode ?? "eval", rng: mulberry32(1) });
    if (opts.maskInput) ctx.set("mask-input", tf.tensor2d(opts.maskInput));
    const out = block.call((opts.inputs ?? batchInputs)(), ctx);
    return { value: out.arraySync() as number[][][], shape: out.shape, dtype: out.dtype };
  });
}

const close = (got: number[], want: number[], tol = 1e-5) => {
  expect(got.length, `length of ${JSON.stringify(got)}`).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `index ${i}: ${got[i]} vs ${want[i]}`).toBeLessThan(tol);
};
const relu = (v: number) => Math.max(0, v);
/** x [n] times W [n, m] plus b [m]. */
const affine = (x: number[], W: number[][], b: number[]) => b.map((bj, j) => x.reduce((a, xi, i) => a + xi * W[i]![j]!, bj));

function blockError(f: () => unknown): BlockError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(BlockError);
    return e as BlockError;
  }
  throw new Error("expected a BlockError");
}

/** The concat row of (b, t) assembled by hand from the tables, in sorted feature-name order. */
const concatRow = (b: number, t: number) => [AGE[b]!, ...E_CAT[CAT[b]![t]!]!, ...E_COUNTRY[COUNTRY[b]!]!, ...E_ITEM[ITEM[b]![t]!]!, PRICE[b]![t]!];

describe("tabular-sequence-features: config", () => {
  it("schema defaults fill the config; getConfig round-trips through createBlock", () => {
    const b = new TabularSequenceFeatures({});
    // (toMatchObject: the schema may grow new options; these are the defaults docs/blocks.md lists)
    expect(b.config).toMatchObject({
      type: "tabular-sequence-features", name: "inputs", categoricalTags: ["categorical"], continuousTags: ["continuous"],
      excludeFeatures: [], embeddingDims: {}, embeddingDimDefault: 64, inferEmbeddingSizes: false, inferEmbeddingSizesMultiplier: 2,
      embeddingInitStd: 0.05, continuousProjection: null, aggregation: "concat", layerNorm: false, dropout: 0, dOutput: null,
      maxSequenceLength: null, masking: null,
    });
    expect(Object.isFrozen(b.config)).toBe(true);
    const f = TabularSequenceFeatures.fromSchema(schema, { embeddingDims: dims, masking: { type: "masked", mlmProbability: 0.3 } });
    expect(f.schema).toBe(schema);
    expect(f.masking).toMatchObject({ type: "masked", mlmProbability: 0.3 });
    const again = createBlock(f.getConfig() as never) as TabularSequenceFeatures;
    expect(again).toBeInstanceOf(TabularSequenceFeatures);
    expect(again.getConfig()).toEqual(f.getConfig());
  });
});

describe("tabular-sequence-features: fromSchema tables", () => {
  it("one embedding table per categorical column, none for continuous columns or the session id", () => {
    const { block, spec } = built({ embeddingDims: dims });
    const shapes = Object.fromEntries([...block.namedVariables()].map(([k, v]) => [k, v.shape]));
    expect(shapes).toEqual({
      "inputs/embeddings/category": [3, 3],
      "inputs/embeddings/country": [3, 2], // cardinality = max + 1
      "inputs/embeddings/item_id": [5, 2],
    });
    expect(block.itemIdColumn).toBe("item_id");
    expect(block.features.map((f) => [f.name, f.kind, f.sequential, f.dim])).toEqual([
      ["age", "continuous", false, 1],
      ["category", "categorical", true, 3],
      ["country", "categorical", false, 2],
      ["item_id", "categorical", true, 2],
      ["price", "continuous", true, 1],
    ]);
    // the input port: ids int32, values float32; list columns [B, L], context columns [B]
    expect(spec).toEqual({
      age: { shape: [null], dtype: "float32" },
      category: { shape: [null, null], dtype: "int32" },
      country: { shape: [null], dtype: "int32" },
      item_id: { shape: [null, null], dtype: "int32" },
      price: { shape: [null, null], dtype: "float32" },
    });
    block.dispose();
  });

  it("excludeFeatures drops columns (never the item id); unknown names are located BlockErrors", () => {
    const { block } = built({ embeddingDims: dims, excludeFeatures: ["category", "price", "item_id"] });
    expect(block.features.map((f) => f.name)).toEqual(["age", "country", "item_id"]);
    block.dispose();
    const e = blockError(() => built({ excludeFeatures: ["price", "prize"] }));
    expect(e.code).toBe("unknown_feature");
    expect(e.path).toBe("/model/inputs/excludeFeatures/1");
    expect(e.message).toMatch(/"prize"/);
    const e2 = blockError(() => built({ embeddingDims: { itemid: 4 } }));
    expect(e2.code).toBe("unknown_feature");
    expect(e2.path).toBe("/model/inputs/embeddingDims/itemid");
  });

  it("row 0 (padding) starts at zero, contributes nothing even when non-zero, and gets no gradient", () => {
    const { block } = built({ embeddingDims: dims, embeddingInitStd: 0.5 });
    const table = block.namedVariables().get("inputs/embeddings/item_id")!;
    const rows = table.arraySync() as number[][];
    expect(rows[0]).toEqual([0, 0]);
    expect(rows.slice(1).flat().some((v) => Math.abs(v) > 1e-3)).toBe(true); // the other rows are initialised
    setTables(block);
    set(block, "inputs/embeddings/item_id", [[9, -9], ...E_ITEM.slice(1)]);
    set(block, "inputs/embeddings/category", [[7, 7, 7], ...E_CAT.slice(1)]);
    const { value } = run(block);
    // row 0, step 2 is padding: item and category slots are zero, context and price as given
    close(value[0]![2]!, [30, 0, 0, 0, 20, 21, 0, 0, 0]);
    // gradient of the sum of the output w.r.t. the item table: row r gets (number of times r is looked up) per entry
    const g = tf.tidy(() => {
      const grads = tf.variableGrads(() => tf.sum(block.call(batchInputs(), new CallContext({ mode: "train", rng: mulberry32(1) }))), [table]);
      return grads.grads[table.name]!.arraySync() as number[][];
    });
    expect(g).toEqual([[0, 0], [2, 2], [1, 1], [1, 1], [1, 1]]);
    block.dispose();
  });
});

describe("tabular-sequence-features: embedding sizes", () => {
  const one = (cols: { name: string; cardinality: number; embeddingDim?: number }[]): FeatureSchemaLike => ({
    columns: [
      { name: "item_id", tags: ["item-id", "categorical", "list"], cardinality: 10001 },
      ...cols.map((c) => ({ ...c, tags: ["categorical", "list"] })),
    ],
  });
  const tableDims = (b: TabularSequenceFeatures) => Object.fromEntries(b.features.map((f) => [f.name, f.dim]));

  it("default 64; embeddingDimDefault; per-feature embeddingDims; a column's embeddingDim", () => {
    const sch = one([{ name: "a", cardinality: 16 }, { name: "b", cardinality: 7, embeddingDim: 5 }]);
    let r = built({}, sch);
    expect(tableDims(r.block)).toEqual({ a: 64, b: 5, item_id: 64 });
    r.block.dispose();
    r = built({ embeddingDimDefault: 8 }, sch);
    expect(tableDims(r.block)).toEqual({ a: 8, b: 5, item_id: 8 });
    r.block.dispose();
    // embeddingDims wins over the default and over the column's embeddingDim
    r = built({ embeddingDimDefault: 8, embeddingDims: { b: 3, item_id: 12 } }, sch);
    expect(tableDims(r.block)).toEqual({ a: 8, b: 3, item_id: 12 });
    expect(r.block.namedVariables().get("inputs/embeddings/item_id")!.shape).toEqual([10001, 12]);
    r.block.dispose();
  });

  it("inferEmbeddingSizes: ceil(cardinality^0.25 * multiplier); explicit sizes still win", () => {
    const sch = one([{ name: "a", cardinality: 16 }, { name: "b", cardinality: 81 }, { name: "c", cardinality: 2 }]);
    // 10001^0.25 = 10.0002..., 16^0.25 = 2, 81^0.25 = 3, 2^0.25 = 1.189...
    let r = built({ inferEmbeddingSizes: true }, sch);
    expect(tableDims(r.block)).toEqual({ a: 4, b: 6, c: 3, item_id: 21 });
    r.block.dispose();
    r = built({ inferEmbeddingSizes: true, inferEmbeddingSizesMultiplier: 3, embeddingDims: { item_id: 7 } }, sch);
    expect(tableDims(r.block)).toEqual({ a: 6, b: 9, c: 4, item_id: 7 });
    r.block.dispose();
  });

  it("a categorical column without cardinality or max is a located BlockError", () => {
    const sch = { columns: [{ name: "item_id", tags: ["item-id", "categorical", "list"], cardinality: 5 }, { name: "shop", tags: ["categorical"] }] };
    const e = blockError(() => built({}, sch));
    expect(e.code).toBe("missing_cardinality");
    expect(e.path).toBe("/model/inputs");
    expect(e.message).toMatch(/"shop"/);
  });

  it("no item-id column, or no schema at all, is a BlockError", () => {
    expect(blockError(() => built({}, { columns: [{ name: "x", tags: ["categorical", "list"], cardinality: 3 }] })).code).toBe("missing_item_id");
    const b = new TabularSequenceFeatures({});
    expect(blockError(() => b.computeOutputSpec({}, new BlockContext({ rng: mulberry32(1), path: "/model/inputs" }))).code).toBe("missing_feature_schema");
  });
});

describe("tabular-sequence-features: aggregation", () => {
  it("concat: features in sorted name order; context features broadcast along the sequence; padding rows zero", () => {
    const { block, spec, ctx } = built({ embeddingDims: dims });
    setTables(block);
    const out = run(block);
    const want = block.computeOutputSpec(spec, ctx) as TensorSpec;
    expect(want).toEqual({ shape: [null, null, 9], dtype: "float32" });
    expect(out.shape).toEqual([B, L, 9]);
    expect(out.dtype).toBe("float32");
    for (let b = 0; b < B; b++) for (let t = 0; t < L; t++) close(out.value[b]![t]!, concatRow(b, t));
    // spot check one row literally: b = 1, t = 0: age 40 | cat 2 | country 1 | item 3 | price 2
    close(out.value[1]![0]!, [40, 0.4, 0.5, 0.6, 10, 11, 5, 6, 2]);
    block.dispose();
  });

  it("element-wise-sum: the sum of equal-size features", () => {
    const sch = { columns: schema.columns.filter((c) => ["item_id", "category", "country"].includes(c.name)) };
    const { block, spec, ctx } = built({ embeddingDims: { item_id: 2, category: 2, country: 2 }, aggregation: "element-wise-sum" }, sch);
    const cat2 = [[0, 0], [0.1, 0.2], [0.4, 0.5]];
    set(block, "inputs/embeddings/item_id", E_ITEM);
    set(block, "inputs/embeddings/category", cat2);
    set(block, "inputs/embeddings/country", E_COUNTRY);
    expect((block.computeOutputSpec(spec, ctx) as TensorSpec).shape).toEqual([null, null, 2]);
    const inputs = () => ({ item_id: tf.tensor2d(ITEM, [B, L], "int32"), category: tf.tensor2d(CAT, [B, L], "int32"), country: tf.tensor1d(COUNTRY, "int32") });
    const out = run(block, { inputs });
    expect(out.shape).toEqual([B, L, 2]);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < L; t++) {
        const want = [0, 1].map((j) => E_ITEM[ITEM[b]![t]!]![j]! + cat2[CAT[b]![t]!]![j]! + E_COUNTRY[COUNTRY[b]!]![j]!);
        close(out.value[b]![t]!, want);
      }
    }
    block.dispose();
  });

  it("element-wise-sum with features of different sizes is a BlockError naming them", () => {
    const e = blockError(() => built({ embeddingDims: dims, aggregation: "element-wise-sum" }));
    expect(e.code).toBe("incompatible_feature_sizes");
    expect(e.path).toBe("/model/inputs/aggregation");
    expect(e.message).toMatch(/category: 3/);
    expect(e.message).toMatch(/item_id: 2/);
    expect(e.message).toMatch(/price: 1/);
    expect(e.issues[0]!.hint).toMatch(/embeddingDims/);
  });

  it("element-wise-sum of embeddings and a continuous projection of the same size", () => {
    const sch = { columns: schema.columns.filter((c) => ["item_id", "price"].includes(c.name)) };
    const { block } = built({ embeddingDims: { item_id: 2 }, continuousProjection: [2], aggregation: "element-wise-sum" }, sch);
    set(block, "inputs/embeddings/item_id", E_ITEM);
    const W = [[1, -1]], bias = [0.5, 0.25];
    set(block, "inputs/continuous_projection/mlp/dense_0/kernel", W);
    set(block, "inputs/continuous_projection/mlp/dense_0/bias", bias);
    const out = run(block, { inputs: () => ({ item_id: tf.tensor2d(ITEM, [B, L], "int32"), price: tf.tensor2d(PRICE) }) });
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < L; t++) {
        const p = affine([PRICE[b]![t]!], W, bias).map(relu);
        close(out.value[b]![t]!, [E_ITEM[ITEM[b]![t]!]![0]! + p[0]!, E_ITEM[ITEM[b]![t]!]![1]! + p[1]!]);
      }
    }
    block.dispose();
  });
});

describe("tabular-sequence-features: continuous features", () => {
  it("continuous sequence features are one scalar per step; context scalars are repeated over the steps", () => {
    const sch = { columns: schema.columns.filter((c) => ["item_id", "price", "age"].includes(c.name)) };
    const { block } = built({ embeddingDims: { item_id: 2 } }, sch);
    set(block, "inputs/embeddings/item_id", E_ITEM);
    const out = run(block, { inputs: () => ({ item_id: tf.tensor2d(ITEM, [B, L], "int32"), price: tf.tensor2d(PRICE), age: tf.tensor1d(AGE) }) });
    expect(out.shape).toEqual([B, L, 4]); // age | item_id (2) | price
    for (let b = 0; b < B; b++) for (let t = 0; t < L; t++) close(out.value[b]![t]!, [AGE[b]!, ...E_ITEM[ITEM[b]![t]!]!, PRICE[b]![t]!]);
    block.dispose();
  });

  it("continuousProjection: all continuous features (sorted) through an MLP, one feature 'continuous_projection'", () => {
    const { block, spec, ctx } = built({ embeddingDims: dims, continuousProjection: [3, 2] });
    setTables(block);
    // first layer sees [age, price] (sorted names), 2 -> 3, then 3 -> 2, ReLU after each
    const W0 = [[0.1, -0.2, 0.05], [1, 0.5, -1]], b0 = [0, 0.1, 0.2];
    const W1 = [[1, 0], [-1, 1], [0.5, 2]], b1 = [-1, 0.5];
    set(block, "inputs/continuous_projection/mlp/dense_0/kernel", W0);
    set(block, "inputs/continuous_projection/mlp/dense_0/bias", b0);
    set(block, "inputs/continuous_projection/mlp/dense_1/kernel", W1);
    set(block, "inputs/continuous_projection/mlp/dense_1/bias", b1);
    expect((block.computeOutputSpec(spec, ctx) as TensorSpec).shape).toEqual([null, null, 9]); // cat 3 + continuous_projection 2 + country 2 + item 2
    const out = run(block);
    expect(out.shape).toEqual([B, L, 9]);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < L; t++) {
        const h = affine(affine([AGE[b]!, PRICE[b]![t]!], W0, b0).map(relu), W1, b1).map(relu);
        // sorted: category, continuous_projection, country, item_id
        close(out.value[b]![t]!, [...E_CAT[CAT[b]![t]!]!, ...h, ...E_COUNTRY[COUNTRY[b]!]!, ...E_ITEM[ITEM[b]![t]!]!]);
      }
    }
    // the check is not vacuous: the projection is not all zeros here
    expect(out.value.flat().some((r) => Math.abs(r[3]!) + Math.abs(r[4]!) > 0.1)).toBe(true);
    block.dispose();
  });
});

describe("tabular-sequence-features: dOutput, layer norm, dropout", () => {
  it("dOutput projects the aggregation with a dense layer + ReLU", () => {
    const { block, spec, ctx } = built({ embeddingDims: dims, dOutput: 2 });
    setTables(block);
    const W = Array.from({ length: 9 }, (_, i) => [0.1 * (i - 4), 0.05 * i - 0.2]);
    const bias = [0.3, -0.1];
    set(block, "inputs/projection/mlp/dense_0/kernel", W);
    set(block, "inputs/projection/mlp/dense_0/bias", bias);
    expect(block.computeOutputSpec(spec, ctx)).toEqual({ shape: [null, null, 2], dtype: "float32" });
    const out = run(block);
    expect(out.shape).toEqual([B, L, 2]);
    for (let b = 0; b < B; b++) for (let t = 0; t < L; t++) close(out.value[b]![t]!, affine(concatRow(b, t), W, bias).map(relu), 1e-4);
    block.dispose();
  });

  it("layerNorm normalises each feature of size > 1 before aggregation", () => {
    const { block } = built({ embeddingDims: dims, layerNorm: true });
    setTables(block);
    expect([...block.namedVariables().keys()].filter((k) => k.includes("layer_norm")).sort()).toEqual([
      "inputs/layer_norm/category/beta", "inputs/layer_norm/category/gamma",
      "inputs/layer_norm/country/beta", "inputs/layer_norm/country/gamma",
      "inputs/layer_norm/item_id/beta", "inputs/layer_norm/item_id/gamma",
    ]);
    const ln = (v: number[]) => {
      const m = v.reduce((a, x) => a + x, 0) / v.length;
      const s = v.reduce((a, x) => a + (x - m) ** 2, 0) / v.length;
      return v.map((x) => (x - m) / Math.sqrt(s + 1e-5));
    };
    const out = run(block);
    // b = 1, t = 0: age 40 | ln(cat 2) | ln(country 1) | ln(item 3) | price 2
    close(out.value[1]![0]!, [40, ...ln([0.4, 0.5, 0.6]), ...ln([10, 11]), ...ln([5, 6]), 2], 1e-3);
    block.dispose();
  });

  it("dropout applies in training only", () => {
    const { block } = built({ embeddingDims: dims, dropout: 0.5 });
    setTables(block);
    for (let b = 0; b < B; b++) for (let t = 0; t < L; t++) close(run(block, { mode: "eval" }).value[b]![t]!, concatRow(b, t));
    const train = run(block, { mode: "train" }).value;
    let dropped = 0;
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < L; t++) {
        const want = concatRow(b, t);
        train[b]![t]!.forEach((v, i) => {
          if (v === 0 && want[i] !== 0) dropped++;
          else expect(Math.abs(v - 2 * want[i]!)).toBeLessThan(1e-4); // inverted dropout: kept values are scaled by 1/(1-p)
        });
      }
    }
    expect(dropped).toBeGreaterThan(0);
    block.dispose();
  });
});

describe("tabular-sequence-features: masking", () => {
  it("no masking: no [MASK] weight, nothing shared but the item table", () => {
    const { block, ctx } = built({ embeddingDims: dims });
    expect([...block.namedVariables().keys()].some((k) => k.includes("masked_item_embedding"))).toBe(false);
    expect(ctx.get("masking")).toBeUndefined();
    expect(ctx.get<{ column: string; cardinality: number; dim: number }>("item-embeddings")).toMatchObject({ column: "item_id", cardinality: 5, dim: 2 });
    expect(ctx.get("item-embeddings")).toMatchObject({ table: block.itemEmbeddingTable });
    block.dispose();
  });

  it("causal: a trainable [MASK] vector of the output size replaces the positions the masking marks", () => {
    const { block, ctx } = built({ embeddingDims: dims, dOutput: 4, masking: { type: "causal" } });
    expect(ctx.get("masking")).toMatchObject({ type: "causal" });
    const m = block.namedVariables().get("inputs/masked_item_embedding")!;
    expect(m.shape).toEqual([4]); // after the dOutput projection
    expect(m.trainable).toBe(true);
    setTables(block);
    set(block, "inputs/masked_item_embedding", [9, 8, 7, 6]);
    const plain = run(block).value;
    const masked = run(block, { maskInput: [[0, 0, 1], [0, 1, 0]] }).value;
    close(masked[0]![2]!, [9, 8, 7, 6]);
    close(masked[1]![1]!, [9, 8, 7, 6]);
    for (const [b, t] of [[0, 0], [0, 1], [1, 0], [1, 2]]) close(masked[b!]![t!]!, plain[b!]![t!]!);
    block.dispose();
  });

  it("masked: the [MASK] vector gets gradient from each masked position", () => {
    const { block, ctx } = built({ embeddingDims: dims, masking: { type: "masked" } });
    expect(ctx.get("masking")).toMatchObject({ type: "masked", mlmProbability: 0.15 });
    const m = block.namedVariables().get("inputs/masked_item_embedding")!;
    expect(m.shape).toEqual([9]);
    // initialised N(0, 0.001): small but not zero
    const init = Array.from(m.dataSync());
    expect(init.every((v) => Math.abs(v) < 0.01)).toBe(true);
    expect(init.some((v) => v !== 0)).toBe(true);
    const g = tf.tidy(() => {
      const ctxc = new CallContext({ mode: "train", rng: mulberry32(1) });
      ctxc.set("mask-input", tf.tensor2d([[1, 0, 0], [0, 1, 1]]));
      const r = tf.variableGrads(() => tf.sum(block.call(batchInputs(), ctxc)), [m]);
      return Array.from(r.grads[m.name]!.dataSync());
    });
    close(g, new Array(9).fill(3)); // three masked positions
    block.dispose();
  });

  it("prepare: masked LM at inference appends a [MASK] step after the last item, side features shift with it", () => {
    const { block } = built({ embeddingDims: dims, masking: { type: "masked" } });
    const batch: SequenceBatchLike = {
      batchSize: B, seqLen: L, itemIds: Int32Array.from(ITEM.flat()), lengths: Int32Array.from([2, 3]),
      categorical: { category: Int32Array.from(CAT.flat()) }, continuous: { price: Float32Array.from(PRICE.flat()) },
      context: { age: Float32Array.from(AGE), country: Int32Array.from(COUNTRY) },
    };
    const p = block.prepare(batch, "inference", mulberry32(1));
    expect(p.seqLen).toBe(L + 1);
    expect(Array.from(p.features.item_id!.values)).toEqual([1, 2, 0, 0, 3, 4, 1, 0]);
    expect(Array.from(p.features.category!.values)).toEqual([1, 2, 0, 0, 2, 2, 1, 0]);
    expect(Array.from(p.features.price!.values)).toEqual([0.5, 1.5, 0, 0, 2, 3, 4, 0]);
    expect(p.features.age!.shape).toEqual([B]);
    expect(Array.from(p.mask!.maskInput)).toEqual([0, 0, 1, 0, 0, 0, 0, 1]);
    expect(Array.from(p.validPositions)).toEqual([1, 1, 1, 0, 1, 1, 1, 1]);
    // causal eval: the last item is the label (read from the step before), nothing appended
    const c = built({ embeddingDims: dims, masking: { type: "causal" } }).block;
    const q = c.prepare(batch, "eval", mulberry32(1));
    expect(q.seqLen).toBe(L);
    expect(Array.from(q.mask!.labels)).toEqual([2, 0, 0, 0, 1, 0]);
    block.dispose();
    c.dispose();
  });
});

describe("tabular-sequence-features: block contract", () => {
  const variants: Omit<TabularSequenceFeaturesConfig, "type">[] = [
    { embeddingDims: dims },
    { embeddingDimDefault: 4, continuousProjection: [5] },
    { embeddingDims: dims, dOutput: 6, layerNorm: true, dropout: 0.1, masking: { type: "causal" } },
    { inferEmbeddingSizes: true, masking: { type: "masked" } },
  ];

  it("computeOutputSpec equals the real output in every mode; no tensor leaks", () => {
    for (const v of variants) {
      const { block, spec, ctx } = built(v);
      const want = block.computeOutputSpec(spec, ctx) as TensorSpec;
      expect(block.outputSpec).toEqual(want);
      const before = tf.memory().numTensors;
      for (const mode of ["train", "eval", "inference"] as const) {
        const out = run(block, { mode, maskInput: v.masking ? [[0, 0, 1], [1, 0, 0]] : undefined });
        expect(out.shape.length).toBe(3);
        expect(out.shape).toEqual([B, L, want.shape[2]]);
        expect(out.dtype).toBe(want.dtype);
        expect(out.value.flat(2).every(Number.isFinite)).toBe(true);
      }
      expect(tf.memory().numTensors).toBe(before);
      block.dispose();
    }
  });

  it("inputs of the wrong kind are located BlockErrors", () => {
    const { block, spec, ctx } = built({ embeddingDims: dims });
    const e1 = blockError(() => block.computeOutputSpec({ shape: [null, null], dtype: "int32" }, ctx));
    expect(e1.code).toBe("incompatible_input");
    expect(e1.path).toBe("/model/inputs");
    const { price: _p, ...noPrice } = spec as Record<string, TensorSpec>;
    const e2 = blockError(() => block.computeOutputSpec(noPrice, ctx));
    expect(e2.code).toBe("missing_feature");
    expect(e2.message).toMatch(/"price"/);
    const e3 = blockError(() => block.computeOutputSpec({ ...spec, category: { shape: [null, null], dtype: "float32" } }, ctx));
    expect(e3.code).toBe("incompatible_input");
    expect(e3.message).toMatch(/"category" should be int32\[\?, \?\]/);
    block.dispose();
  });

  it("the same seed builds the same weights", () => {
    const a = built({ embeddingDims: dims, dOutput: 4, masking: { type: "causal" } }, schema, 11).block;
    const b = built({ embeddingDims: dims, dOutput: 4, masking: { type: "causal" } }, schema, 11).block;
    const c = built({ embeddingDims: dims, dOutput: 4, masking: { type: "causal" } }, schema, 12).block;
    const va = a.namedVariables(), vb = b.namedVariables(), vc = c.namedVariables();
    expect([...vb.keys()]).toEqual([...va.keys()]);
    for (const [k, v] of va) expect(Array.from(vb.get(k)!.dataSync())).toEqual(Array.from(v.dataSync()));
    expect(Array.from(vc.get("inputs/embeddings/item_id")!.dataSync())).not.toEqual(Array.from(va.get("inputs/embeddings/item_id")!.dataSync()));
    a.dispose();
    b.dispose();
    c.dispose();
  });
});

/**
 * Transformers4Rec input parity beyond the basics: aggregations (element-wise-sum-item-multi, stack),
 * stochastic swap noise, soft one-hot embeddings, pre-trained and shared embedding tables, multi-hot
 * bags, and TabularFeatures. Every number is worked out by hand from hand-set weights.
 */
import * as tf from "@tensorflow/tfjs";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import "../../../blocks/index.js";
import { stochasticSwapNoise } from "../../../blocks/features/feature-ops.js";
import { encodeNpy, parseNpy } from "../../../blocks/features/pretrained.js";
import { TabularFeatures } from "../../../blocks/features/tabular-features.js";
import { TabularSequenceFeatures, type TabularSequenceFeaturesConfig } from "../../../blocks/features/tabular-sequence-features.js";
import { BlockContext, BlockError, CallContext, createBlock, type CallMode, type FeatureSchemaLike, type SequenceBatchLike } from "../../../src/core/index.js";
import { mulberry32 } from "../../../src/masking/index.js";
import { Model, type ModelConfig } from "../../../src/model/index.js";
import { loadRecipe } from "../../../src/recipe/index.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

/*
 * Columns (sorted): age (continuous context) | category (categorical list, card 3) | country (categorical context, card 3)
 * | item_id (item-id, card 5) | prev_item (categorical list, card 5) | price (continuous list) | tags (categorical list, card 4)
 */
const schema: FeatureSchemaLike = {
  columns: [
    { name: "session_id", tags: ["session-id", "categorical"], cardinality: 100 },
    { name: "item_id", tags: ["item-id", "categorical", "list"], cardinality: 5 },
    { name: "prev_item", tags: ["categorical", "list"], cardinality: 5 },
    { name: "category", tags: ["categorical", "list"], cardinality: 3 },
    { name: "tags", tags: ["categorical", "list"], cardinality: 4 },
    { name: "price", tags: ["continuous", "list"] },
    { name: "age", tags: ["continuous", "context"] },
    { name: "country", tags: ["categorical", "context"], cardinality: 3 },
  ],
};
const ALL = ["age", "category", "country", "item_id", "prev_item", "price", "tags"];
const only = (...keep: string[]) => ALL.filter((n) => !keep.includes(n));

const E_ITEM = [[0, 0], [1, 2], [3, 4], [5, 6], [7, 8]];
const E_CAT = [[0, 0], [0.1, 0.2], [0.3, 0.4]];
const E_COUNTRY = [[0, 0], [10, 20], [30, 40]];
const E_TAGS = [[0, 0], [1, 0], [0, 1], [2, 2]];

const B = 2, L = 3;
const ITEM = [[1, 2, 0], [3, 4, 1]];
const PREV = [[0, 1, 0], [2, 3, 4]];
const CAT = [[1, 2, 0], [2, 2, 1]];
const PRICE = [[0.5, -1, 0], [2, 0, 1]];
const AGE = [30, 40];
const COUNTRY = [2, 1];
// multi-hot, K = 2 ids per step (0 = padding inside the list)
const TAGS = [[[1, 2], [3, 0], [0, 0]], [[2, 0], [1, 1], [3, 3]]];

const inputs = (): Record<string, tf.Tensor> => ({
  item_id: tf.tensor2d(ITEM, [B, L], "int32"),
  prev_item: tf.tensor2d(PREV, [B, L], "int32"),
  category: tf.tensor2d(CAT, [B, L], "int32"),
  tags: tf.tensor3d(TAGS, [B, L, 2], "int32"),
  price: tf.tensor2d(PRICE, [B, L]),
  age: tf.tensor1d(AGE),
  country: tf.tensor1d(COUNTRY, "int32"),
});

function built(options: Omit<TabularSequenceFeaturesConfig, "type">, seed = 7) {
  const block = TabularSequenceFeatures.fromSchema(schema, options);
  const ctx = new BlockContext({ rng: mulberry32(seed), path: "/model/inputs" });
  const spec = block.expectedInputSpec(ctx);
  block.build(spec, ctx);
  return { block, ctx, spec };
}

function set(block: { namedVariables(): Map<string, tf.Variable> }, name: string, v: number[][] | number[]): void {
  const x = block.namedVariables().get(name);
  if (!x) throw new Error(`no weight ${name}; have ${[...block.namedVariables().keys()].join(", ")}`);
  tf.tidy(() => x.assign(tf.tensor(v.flat(), x.shape)));
}

function setTables(block: TabularSequenceFeatures): void {
  const has = (n: string) => block.namedVariables().has(`inputs/embeddings/${n}`);
  if (has("item_id")) set(block, "inputs/embeddings/item_id", E_ITEM);
  if (has("category")) set(block, "inputs/embeddings/category", E_CAT);
  if (has("country")) set(block, "inputs/embeddings/country", E_COUNTRY);
  if (has("tags")) set(block, "inputs/embeddings/tags", E_TAGS);
}

function run(block: TabularSequenceFeatures, mode: CallMode = "eval") {
  return tf.tidy(() => {
    const ctx = new CallContext({ mode, rng: mulberry32(1) });
    const all = inputs();
    const x: Record<string, tf.Tensor> = {};
    for (const f of block.features) x[f.name] = all[f.name]!;
    const out = block.call(x, ctx);
    return { value: out.arraySync() as unknown as number[][][], shape: out.shape };
  });
}

const close = (got: number[], want: number[], tol = 1e-5) => {
  expect(got.length, `length of ${JSON.stringify(got)}`).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `index ${i}: ${got[i]} vs ${want[i]} in ${JSON.stringify(got)}`).toBeLessThan(tol);
};

function blockError(f: () => unknown): BlockError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(BlockError);
    return e as BlockError;
  }
  throw new Error("expected a BlockError");
}

const leakFree = (f: () => void) => {
  const before = tf.memory().numTensors;
  f();
  expect(tf.memory().numTensors).toBe(before);
};

describe("aggregation element-wise-sum-item-multi", () => {
  it("item ⊙ (sum of the other features), context features broadcast", () => {
    const { block, spec } = built({ excludeFeatures: only("item_id", "category", "country"), embeddingDims: { item_id: 2, category: 2, country: 2 }, aggregation: "element-wise-sum-item-multi" });
    expect(block.outputSpec).toEqual({ shape: [null, null, 2], dtype: "float32" });
    expect(Object.keys(spec).sort()).toEqual(["category", "country", "item_id"]);
    setTables(block);
    const { value, shape } = run(block);
    expect(shape).toEqual([B, L, 2]);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < L; t++) {
        const it = E_ITEM[ITEM[b]![t]!]!;
        const other = E_CAT[CAT[b]![t]!]!.map((c, j) => c + E_COUNTRY[COUNTRY[b]!]![j]!);
        close(value[b]![t]!, it.map((v, j) => v * other[j]!));
      }
    // hand-checked: b=0, t=0: item 1 [1, 2], category 1 [0.1, 0.2] + country 2 [30, 40] -> [30.1, 80.4]
    close(value[0]![0]!, [30.1, 80.4]);
    // padding step: the item embedding is 0, so the output is 0
    close(value[0]![2]!, [0, 0]);
  });

  it("itemMultiPlusOne: item ⊙ (1 + sum of the others), the paper's formula", () => {
    const { block } = built({ excludeFeatures: only("item_id", "category"), embeddingDims: { item_id: 2, category: 2 }, aggregation: "element-wise-sum-item-multi", itemMultiPlusOne: true });
    setTables(block);
    const { value } = run(block);
    close(value[0]![1]!, [3 * 1.3, 4 * 1.4]); // item 2 [3, 4], category 2 [0.3, 0.4]
    close(value[1]![0]!, [5 * 1.3, 6 * 1.4]); // item 3, category 2
  });

  it("needs one size for every feature and at least one feature besides the item", () => {
    const e1 = blockError(() => built({ excludeFeatures: only("item_id", "category"), embeddingDims: { item_id: 2, category: 3 }, aggregation: "element-wise-sum-item-multi" }));
    expect(e1.issues[0]).toMatchObject({ code: "incompatible_feature_sizes", path: "/model/inputs/aggregation" });
    expect(e1.issues[0]!.message).toContain("category: 3");
    const e2 = blockError(() => built({ excludeFeatures: only("item_id"), embeddingDims: { item_id: 2 }, aggregation: "element-wise-sum-item-multi" }));
    expect(e2.issues[0]).toMatchObject({ code: "incompatible_feature_sizes", path: "/model/inputs/aggregation" });
    expect(e2.issues[0]!.message).toContain("only feature");
  });
});

describe("aggregation stack", () => {
  it("stacks the features (sorted names) on a new last axis: [B, L, D, N]", () => {
    const { block } = built({ excludeFeatures: only("item_id", "category", "country"), embeddingDims: { item_id: 2, category: 2, country: 2 }, aggregation: "stack" });
    expect(block.outputSpec).toEqual({ shape: [null, null, 2, 3], dtype: "float32" });
    setTables(block);
    const { value, shape } = run(block);
    expect(shape).toEqual([B, L, 2, 3]);
    const v = value as unknown as number[][][][];
    // b=1, t=0: category 2 [0.3, 0.4], country 1 [10, 20], item 3 [5, 6] -> [[0.3, 10, 5], [0.4, 20, 6]]
    close(v[1]![0]![0]!, [0.3, 10, 5]);
    close(v[1]![0]![1]!, [0.4, 20, 6]);
  });

  it("cannot feed masking or dOutput (a 4-D tensor), nor stack different sizes", () => {
    const e = blockError(() => built({ excludeFeatures: only("item_id", "category"), embeddingDims: { item_id: 2, category: 2 }, aggregation: "stack", masking: { type: "causal" } }));
    expect(e.issues[0]).toMatchObject({ code: "incompatible_aggregation", path: "/model/inputs/aggregation" });
    const e2 = blockError(() => built({ excludeFeatures: only("item_id", "category"), embeddingDims: { item_id: 2, category: 3 }, aggregation: "stack" }));
    expect(e2.issues[0]).toMatchObject({ code: "incompatible_feature_sizes" });
  });
});

describe("soft one-hot embeddings", () => {
  const P = 2;
  function softBlock(extra: Omit<TabularSequenceFeaturesConfig, "type"> = {}) {
    const r = built({ excludeFeatures: only("item_id", "price", "age"), embeddingDims: { item_id: 2 }, softEmbeddings: { price: { cardinality: P, dim: 2, layerNorm: false } }, ...extra });
    setTables(r.block);
    set(r.block, "inputs/soft_embeddings/price/kernel", [1, -1]);
    set(r.block, "inputs/soft_embeddings/price/bias", [0, 0.5]);
    set(r.block, "inputs/soft_embeddings/price/embeddings", [[1, 0], [0, 2]]);
    return r.block;
  }
  /** softmax([x, -x + 0.5]) · [[1, 0], [0, 2]] */
  const soft = (x: number) => {
    const a = Math.exp(x), b = Math.exp(-x + 0.5);
    return [a / (a + b), (2 * b) / (a + b)];
  };

  it("w = softmax(x·kernel + bias), output Σ_p w_p E_p; padding steps are zero; scalars stay scalars", () => {
    const block = softBlock();
    expect([...block.namedVariables().keys()].sort()).toEqual([
      "inputs/embeddings/item_id", "inputs/soft_embeddings/price/bias", "inputs/soft_embeddings/price/embeddings", "inputs/soft_embeddings/price/kernel",
    ]);
    // concat order: age (1) | item_id (2) | price (2) -> 5
    expect(block.outputSpec).toEqual({ shape: [null, null, 5], dtype: "float32" });
    const { value } = run(block);
    // x = 0.5: logits [0.5, 0] -> w = [0.622459, 0.377541] -> [0.622459, 0.755081]
    close(value[0]![0]!.slice(3), [0.6224593, 0.7550813]);
    close(value[0]![0]!.slice(3), soft(0.5));
    close(value[0]![1]!.slice(3), soft(-1));
    close(value[1]![1]!.slice(3), soft(0)); // a real step with value 0 is embedded
    close(value[0]![2]!, [30, 0, 0, 0, 0]); // padding step: item and soft embedding 0, the context age broadcast
    close(value[1]![0]!, [40, 5, 6, ...soft(2)]);
  });

  it("layerNorm (default true) normalises the soft embedding; padding uses the padding mask of the context", () => {
    const r = built({ excludeFeatures: only("item_id", "price"), embeddingDims: { item_id: 2 }, softEmbeddings: { price: { cardinality: P, dim: 2 } } });
    set(r.block, "inputs/soft_embeddings/price/kernel", [1, -1]);
    set(r.block, "inputs/soft_embeddings/price/bias", [0, 0.5]);
    set(r.block, "inputs/soft_embeddings/price/embeddings", [[1, 0], [0, 2]]);
    set(r.block, "inputs/layer_norm/price/gamma", [2, 1]);
    set(r.block, "inputs/layer_norm/price/beta", [0, 0.5]);
    expect(r.block.namedVariables().has("inputs/layer_norm/item_id/gamma")).toBe(false); // only the soft feature
    const { value } = run(r.block);
    // layer norm of [a, b] = ±(a - b) / 2 / sqrt(((a - b) / 2)^2 + 1e-5) then * gamma + beta
    const ln = (v: number[]) => {
      const m = (v[0]! + v[1]!) / 2, s = Math.sqrt(((v[0]! - v[1]!) / 2) ** 2 + 1e-5);
      return [((v[0]! - m) / s) * 2, ((v[1]! - m) / s) * 1 + 0.5];
    };
    close(value[0]![0]!.slice(2), ln(soft(0.5)), 1e-4);
    close(value[1]![2]!.slice(2), ln(soft(1)), 1e-4);
  });

  it("soft columns leave continuousProjection to the scalars; a soft categorical column is refused", () => {
    const r = built({ excludeFeatures: only("item_id", "price", "age"), embeddingDims: { item_id: 2 }, softEmbeddings: { price: { dim: 3 } }, continuousProjection: [4] });
    // age -> continuous_projection (4), item_id 2, price 3 (soft, default cardinality 10)
    expect(r.block.outputSpec).toEqual({ shape: [null, null, 9], dtype: "float32" });
    expect(r.block.namedVariables().get("inputs/soft_embeddings/price/embeddings")!.shape).toEqual([10, 3]);
    const e = blockError(() => built({ softEmbeddings: { category: {} } }));
    expect(e.issues[0]).toMatchObject({ code: "incompatible_feature", path: "/model/inputs/softEmbeddings/category" });
  });
});

describe("pre-trained and shared embedding tables", () => {
  const dir = mkdtempSync(join(tmpdir(), "recblocks-pretrained-"));
  const T = [[0, 0], [0.5, 1], [1.5, 2], [2.5, 3], [3.5, 4]]; // 5 x 2, row 0 = padding
  const files = {
    npy: join(dir, "items.npy"),
    json: join(dir, "items.json"),
    csv: join(dir, "items.csv"),
    short: join(dir, "short.json"),
  };
  writeFileSync(files.npy, encodeNpy({ rows: 5, cols: 2, data: Float32Array.from(T.flat()) }));
  writeFileSync(files.json, JSON.stringify(T));
  writeFileSync(files.csv, T.map((r) => r.join(",")).join("\n") + "\n");
  writeFileSync(files.short, JSON.stringify(T.slice(1)));

  it(".npy round-trip of the reader", () => {
    const m = parseNpy(encodeNpy({ rows: 2, cols: 3, data: Float32Array.from([1, 2, 3, 4, 5, 6]) }));
    expect(m.rows).toBe(2);
    expect(m.cols).toBe(3);
    expect([...m.data]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  for (const kind of ["npy", "json", "csv"] as const) {
    it(`a ${kind} table is loaded as the item table, frozen by default, and used for lookups`, () => {
      const { block } = built({ excludeFeatures: only("item_id"), embeddingDims: { item_id: 2 }, pretrainedEmbeddings: { item_id: { path: files[kind] } } });
      const v = block.namedVariables().get("inputs/embeddings/item_id")!;
      expect(v.trainable).toBe(false);
      close(Array.from(v.dataSync()), T.flat());
      expect(block.trainableVariables()).toHaveLength(0);
      const { value } = run(block);
      close(value[1]![1]!, [3.5, 4]); // item 4
      close(value[0]![2]!, [0, 0]);
    });
  }

  it("trainable: true keeps training the table", () => {
    const { block } = built({ excludeFeatures: only("item_id"), embeddingDims: { item_id: 2 }, pretrainedEmbeddings: { item_id: { path: files.json, trainable: true } } });
    expect(block.namedVariables().get("inputs/embeddings/item_id")!.trainable).toBe(true);
  });

  it("a table of the wrong shape or a missing file is an issue located at the path", () => {
    const e = blockError(() => built({ excludeFeatures: only("item_id"), embeddingDims: { item_id: 2 }, pretrainedEmbeddings: { item_id: { path: files.short } } }));
    expect(e.issues[0]).toMatchObject({ code: "bad_pretrained_embeddings", path: "/model/inputs/pretrainedEmbeddings/item_id/path", received: [4, 2], expected: [5, 2] });
    expect(e.issues[0]!.hint).toContain("padding row 0");
    const e2 = blockError(() => built({ excludeFeatures: only("item_id"), embeddingDims: { item_id: 3 }, pretrainedEmbeddings: { item_id: { path: files.csv } } }));
    expect(e2.issues[0]).toMatchObject({ code: "bad_pretrained_embeddings", received: [5, 2], expected: [5, 3] });
    expect(e2.issues[0]!.hint).toContain("embeddingDims.item_id to 2");
    const e3 = blockError(() => built({ excludeFeatures: only("item_id"), pretrainedEmbeddings: { item_id: { path: join(dir, "nope.npy") } } }));
    expect(e3.issues[0]).toMatchObject({ code: "bad_pretrained_embeddings" });
    expect(e3.issues[0]!.message).toContain("file not found");
  });

  it("prev_item shares item_id's table: no own weight, the same rows, gradients reach the one table", () => {
    const { block } = built({ excludeFeatures: only("item_id", "prev_item"), embeddingDims: { item_id: 2 }, sharedEmbeddings: { prev_item: "item_id" } });
    expect([...block.namedVariables().keys()]).toEqual(["inputs/embeddings/item_id"]);
    setTables(block);
    const { value } = run(block);
    // concat: item_id | prev_item
    close(value[0]![1]!, [...E_ITEM[2]!, ...E_ITEM[1]!]);
    close(value[1]![2]!, [...E_ITEM[1]!, ...E_ITEM[4]!]);
    close(value[0]![0]!, [...E_ITEM[1]!, 0, 0]); // prev_item 0 = padding
    const table = block.namedVariables().get("inputs/embeddings/item_id")!;
    const g = tf.tidy(() => {
      const { grads } = tf.variableGrads(() => {
        const x = inputs();
        return tf.sum(block.call({ item_id: x.item_id!, prev_item: x.prev_item! }, new CallContext({ mode: "train", rng: mulberry32(1) })) as tf.Tensor) as tf.Scalar;
      }, [table]);
      return grads[table.name]!.arraySync() as number[][];
    });
    // row i gets one per occurrence in item_id plus one per occurrence in prev_item: item 1: 2 + 1, item 2: 1 + 1, item 3: 1 + 1, item 4: 1 + 1
    expect(g.map((r) => r[0])).toEqual([0, 3, 2, 2, 2]);
  });

  it("sharing checks: owner must be categorical, cardinality within the owner's, one size", () => {
    const big: FeatureSchemaLike = { columns: [...schema.columns.filter((c) => c.name !== "prev_item"), { name: "prev_item", tags: ["categorical", "list"], cardinality: 9 }] };
    const b = TabularSequenceFeatures.fromSchema(big, { excludeFeatures: only("item_id", "prev_item"), sharedEmbeddings: { prev_item: "item_id" } });
    const ctx = new BlockContext({ rng: mulberry32(1), path: "/model/inputs" });
    const e = blockError(() => b.expectedInputSpec(ctx));
    expect(e.issues[0]).toMatchObject({ code: "incompatible_feature", path: "/model/inputs/sharedEmbeddings/prev_item", received: 9, expected: "<= 5" });
    const e2 = blockError(() => built({ excludeFeatures: only("item_id", "prev_item", "price"), sharedEmbeddings: { prev_item: "price" } }));
    expect(e2.issues[0]).toMatchObject({ code: "incompatible_feature", path: "/model/inputs/sharedEmbeddings/prev_item" });
    const e3 = blockError(() => built({ excludeFeatures: only("item_id", "prev_item"), embeddingDims: { item_id: 2, prev_item: 4 }, sharedEmbeddings: { prev_item: "item_id" } }));
    expect(e3.issues[0]).toMatchObject({ code: "incompatible_feature", path: "/model/inputs/embeddingDims/prev_item", received: 4, expected: 2 });
  });
});

describe("multi-hot list features", () => {
  for (const combiner of ["mean", "sum"] as const) {
    it(`fixed-size padded lists [B, L, K] embedded with ${combiner}`, () => {
      const { block, spec } = built({ excludeFeatures: only("item_id", "tags"), embeddingDims: { item_id: 2, tags: 2 }, multiHot: { tags: { maxValues: 2, combiner } } });
      expect(spec.tags).toEqual({ shape: [null, null, 2], dtype: "int32" });
      setTables(block);
      const { value } = run(block);
      const bag = (ids: number[]) => {
        const real = ids.filter((i) => i !== 0);
        const s = [0, 1].map((j) => real.reduce((a, i) => a + E_TAGS[i]![j]!, 0));
        return combiner === "sum" || real.length === 0 ? s : s.map((x) => x / real.length);
      };
      for (let b = 0; b < B; b++) for (let t = 0; t < L; t++) close(value[b]![t]!.slice(2), bag(TAGS[b]![t]!));
      // by hand: [1, 2] -> mean [0.5, 0.5] / sum [1, 1]; [3, 0] -> [2, 2] both; [0, 0] -> [0, 0]; [1, 1] -> mean [1, 0] / sum [2, 0]
      close(value[0]![0]!.slice(2), combiner === "mean" ? [0.5, 0.5] : [1, 1]);
      close(value[0]![1]!.slice(2), [2, 2]);
      close(value[0]![2]!.slice(2), [0, 0]);
      close(value[1]![1]!.slice(2), combiner === "mean" ? [1, 0] : [2, 0]);
    });
  }

  it("prepare reads B*L*K values per multi-hot sequence column (and B*K per context column) and keeps them through the appended [MASK]", () => {
    const { block } = built({ excludeFeatures: only("item_id", "tags", "country"), embeddingDims: { item_id: 2, tags: 2, country: 2 }, multiHot: { tags: { maxValues: 2 }, country: { maxValues: 2 } }, masking: { type: "masked" } });
    const batch: SequenceBatchLike = {
      batchSize: B, seqLen: L, itemIds: Int32Array.from(ITEM.flat()), lengths: Int32Array.from([2, 3]),
      categorical: { tags: Int32Array.from(TAGS.flat(2)) }, continuous: {}, context: { country: Int32Array.from([1, 2, 2, 0]) },
    };
    const p = block.prepare(batch, "inference", mulberry32(1));
    // masked LM appends a [MASK] after the last item at inference: row 0 at t = 2 (L' = 4), row 1 at t = 3
    expect(p.seqLen).toBe(4);
    expect(p.features.tags!.shape).toEqual([B, 4, 2]);
    expect([...p.features.tags!.values]).toEqual([1, 2, 3, 0, 0, 0, 0, 0, 2, 0, 1, 1, 3, 3, 0, 0]);
    expect(p.features.country!.shape).toEqual([B, 2]);
    leakFree(() => {
      tf.tidy(() => {
        const { inputs: x } = TabularSequenceFeatures.toTensors(p);
        const out = block.call(x, new CallContext({ mode: "inference", rng: mulberry32(1) }));
        expect(out.shape).toEqual([B, 4, 6]);
      });
    });
    const e = blockError(() => built({ multiHot: { item_id: { maxValues: 2 } } }));
    expect(e.issues[0]).toMatchObject({ code: "incompatible_feature", path: "/model/inputs/multiHot/item_id" });
  });
});

describe("stochastic swap noise", () => {
  const seq = (xs: number[]) => {
    let i = 0;
    return { next: () => xs[i++]! };
  };

  it("chosen with probability p, filled from a random permutation of the eligible values (hand-worked draws)", () => {
    // draws: choose 0.1 (<0.5 yes), 0.9 (no), 0.3 (yes); Fisher-Yates on [5, 6, 7]: i=2 r=0 -> j=0 -> [7, 6, 5]; i=1 r=0.9 -> j=1
    const r = stochasticSwapNoise(Int32Array.from([5, 6, 7, 0]), Uint8Array.from([1, 1, 1, 0]), 0.5, seq([0.1, 0.9, 0.3, 0, 0.9]));
    expect([...r.values]).toEqual([7, 6, 6, 0]);
    expect(r.replaced).toBe(2);
    const none = stochasticSwapNoise(Float32Array.from([1, 2]), Uint8Array.from([1, 1]), 0.5, seq([0.7, 0.6]));
    expect([...none.values]).toEqual([1, 2]);
    expect(none.replaced).toBe(0);
  });

  const batch = (): SequenceBatchLike => ({
    batchSize: 4, seqLen: 5,
    itemIds: Int32Array.from([1, 2, 3, 0, 0, 4, 3, 2, 1, 4, 2, 2, 0, 0, 0, 3, 1, 4, 2, 0]),
    lengths: Int32Array.from([3, 5, 2, 4]),
    categorical: { category: Int32Array.from([1, 2, 1, 0, 0, 2, 1, 2, 1, 2, 2, 2, 0, 0, 0, 1, 1, 2, 2, 0]) },
    continuous: { price: Float32Array.from([1, 2, 3, 0, 0, 4, 5, 6, 7, 8, 9, 10, 0, 0, 0, 11, 12, 13, 14, 0]) },
    context: { age: Float32Array.from([20, 30, 40, 50]) },
  });
  const sorted = (v: ArrayLike<number>, keep: (i: number) => boolean) => Array.from(v).filter((_, i) => keep(i)).sort((a, b) => a - b);

  it("training only; padding untouched; values permuted within a feature; labels from the original items", () => {
    const cfg = { excludeFeatures: ["country", "prev_item", "tags"], embeddingDims: { item_id: 2, category: 2 }, masking: { type: "causal" as const } };
    const noisy = built({ ...cfg, stochasticSwapNoise: { replacementProbability: 1 } }).block;
    const clean = built(cfg).block;
    const b = batch();
    const p = noisy.prepare(b, "train", mulberry32(3));
    const q = clean.prepare(b, "train", mulberry32(3));
    expect([...p.mask!.labels]).toEqual([...q.mask!.labels]);
    const real = (i: number) => b.itemIds[i] !== 0;
    let changed = 0;
    for (const [name, f] of Object.entries(p.features)) {
      const orig = q.features[name]!.values;
      const isSeq = f.shape.length === 2;
      if (isSeq) for (let i = 0; i < orig.length; i++) if (!real(i)) expect(f.values[i], `${name} padding ${i}`).toBe(orig[i]);
      expect(sorted(f.values, isSeq ? real : () => true)).toEqual(sorted(orig, isSeq ? real : () => true));
      for (let i = 0; i < orig.length; i++) if (f.values[i] !== orig[i]) changed++;
    }
    expect(changed).toBeGreaterThan(10);
    const e = noisy.prepare(b, "eval", mulberry32(3));
    const e0 = clean.prepare(b, "eval", mulberry32(3));
    for (const name of Object.keys(e.features)) expect([...e.features[name]!.values]).toEqual([...e0.features[name]!.values]);
  });

  it("features limits the noise; [MASK] positions of the item input are never filled", () => {
    const noisy = built({ excludeFeatures: ["country", "prev_item", "tags"], embeddingDims: { item_id: 2, category: 2 }, masking: { type: "masked", mlmProbability: 0.5 }, stochasticSwapNoise: { replacementProbability: 1, features: ["item_id", "price"] } }).block;
    const b = batch();
    const p = noisy.prepare(b, "train", mulberry32(5));
    expect([...p.features.category!.values]).toEqual([...b.categorical.category!]);
    expect([...p.features.age!.values]).toEqual([...b.context.age!]);
    const ids = p.features.item_id!.values;
    for (let i = 0; i < ids.length; i++) if (p.mask!.maskedPositions[i]) expect(ids[i]).toBe(0);
    expect(p.mask!.maskedPositions.some((x) => x === 1)).toBe(true);
    const e = blockError(() => built({ stochasticSwapNoise: { replacementProbability: 0.1, features: ["nope"] } }));
    expect(e.issues[0]).toMatchObject({ code: "unknown_feature", path: "/model/inputs/stochasticSwapNoise/features/0" });
  });
});

describe("config and model", () => {
  it("the new options round-trip through getConfig / createBlock and are checked against the schema", () => {
    const f = TabularSequenceFeatures.fromSchema(schema, {
      aggregation: "element-wise-sum-item-multi", itemMultiPlusOne: true, softEmbeddings: { price: { cardinality: 4 } },
      sharedEmbeddings: { prev_item: "item_id" }, multiHot: { tags: { maxValues: 3, combiner: "sum" } },
      stochasticSwapNoise: { replacementProbability: 0.2 },
    });
    const again = createBlock(f.getConfig() as never) as TabularSequenceFeatures;
    expect(again.getConfig()).toEqual(f.getConfig());
    expect(f.config.stochasticSwapNoise).toEqual({ replacementProbability: 0.2, features: null });
    const e = blockError(() => built({ multiHot: { nope: { maxValues: 2 } } }));
    expect(e.issues[0]).toMatchObject({ code: "unknown_feature", path: "/model/inputs/multiHot/nope" });
  });

  it("a model with these inputs trains a step and its loss is finite, without leaking tensors", () => {
    const cfg: ModelConfig = {
      inputs: {
        type: "tabular-sequence-features", excludeFeatures: ["country", "tags"], embeddingDims: { item_id: 4, category: 4 },
        aggregation: "element-wise-sum-item-multi", sharedEmbeddings: { prev_item: "item_id" }, softEmbeddings: { price: { dim: 4 } },
        continuousProjection: [4], layerNorm: true, dropout: 0.1, stochasticSwapNoise: { replacementProbability: 0.3 }, masking: { type: "causal" },
      },
      body: [],
      head: { type: "next-item-prediction", weightTying: true },
    };
    const m = Model.fromConfig(cfg, schema).build({ seed: 3 });
    const b: SequenceBatchLike = {
      batchSize: 2, seqLen: 3, itemIds: Int32Array.from(ITEM.flat()), lengths: Int32Array.from([2, 3]),
      categorical: { category: Int32Array.from(CAT.flat()), prev_item: Int32Array.from(PREV.flat()) },
      continuous: { price: Float32Array.from(PRICE.flat()) }, context: { age: Float32Array.from(AGE) },
    };
    leakFree(() => {
      const tb = m.trainBatch(b, mulberry32(2))!;
      const loss = tf.tidy(() => tb.loss().dataSync()[0]!);
      expect(Number.isFinite(loss)).toBe(true);
      expect(loss).toBeGreaterThan(0);
    });
    m.dispose();
  });
});

describe("recipes/t4r-inputs.yaml", () => {
  it("validates and builds: item-multi of 64-wide features, soft-embedded price, per-feature layer norms", () => {
    const { recipe, featureSchema } = loadRecipe(join(import.meta.dirname, "../../../recipes/t4r-inputs.yaml"));
    const m = Model.fromConfig(recipe.model as unknown as ModelConfig, featureSchema as never).build({ seed: 1 });
    try {
      expect(m.inputs.outputSpec).toEqual({ shape: [null, null, 64], dtype: "float32" });
      const names = [...m.inputs.namedVariables().keys()].sort();
      expect(names).toEqual([
        "inputs/embeddings/category", "inputs/embeddings/item_id",
        "inputs/layer_norm/category/beta", "inputs/layer_norm/category/gamma", "inputs/layer_norm/item_id/beta", "inputs/layer_norm/item_id/gamma",
        "inputs/layer_norm/price/beta", "inputs/layer_norm/price/gamma", "inputs/masked_item_embedding",
        "inputs/soft_embeddings/price/bias", "inputs/soft_embeddings/price/embeddings", "inputs/soft_embeddings/price/kernel",
      ]);
      expect(m.inputs.namedVariables().get("inputs/soft_embeddings/price/embeddings")!.shape).toEqual([16, 64]);
    } finally {
      m.dispose();
    }
  });
});

describe("TabularFeatures (non-sequential)", () => {
  const ctxSchema: FeatureSchemaLike = {
    columns: [
      { name: "item_id", tags: ["item-id", "categorical", "list"], cardinality: 5 },
      { name: "country", tags: ["categorical", "context"], cardinality: 3 },
      { name: "age", tags: ["continuous", "context"] },
      { name: "genres", tags: ["categorical", "context"], cardinality: 4 },
      { name: "user_id", tags: ["user-id", "categorical", "context"], cardinality: 10 },
    ],
  };
  function tab(options: Record<string, unknown>) {
    const block = TabularFeatures.fromSchema(ctxSchema, options);
    const ctx = new BlockContext({ rng: mulberry32(1), path: "/context" });
    const spec = block.expectedInputSpec(ctx);
    block.build(spec, ctx);
    return { block, spec };
  }

  it("selects the non-list columns, embeds them, concatenates in name order: [B, D]", () => {
    const { block, spec } = tab({ embeddingDims: { country: 2, genres: 2 }, excludeFeatures: ["user_id"], multiHot: { genres: { maxValues: 2, combiner: "sum" } } });
    expect(spec).toEqual({ age: { shape: [null], dtype: "float32" }, country: { shape: [null], dtype: "int32" }, genres: { shape: [null, 2], dtype: "int32" } });
    expect(block.outputSpec).toEqual({ shape: [null, 5], dtype: "float32" });
    set(block, "context/embeddings/country", E_COUNTRY);
    set(block, "context/embeddings/genres", E_TAGS);
    const out = tf.tidy(() =>
      (block.call({ age: tf.tensor1d([30, 40]), country: tf.tensor1d([2, 0], "int32"), genres: tf.tensor2d([[1, 3], [0, 0]], [2, 2], "int32") }, new CallContext({ mode: "eval", rng: mulberry32(1) })) as tf.Tensor).arraySync() as number[][],
    );
    close(out[0]!, [30, 30, 40, 3, 2]);
    close(out[1]!, [40, 0, 0, 0, 0]);
  });

  it("never takes a target-tagged column as an input, even one tagged categorical or continuous", () => {
    const withTargets: FeatureSchemaLike = {
      columns: [...ctxSchema.columns, { name: "clicked", tags: ["categorical", "context", "target", "binary"], cardinality: 2 }, { name: "spend", tags: ["continuous", "context", "target", "regression"] }],
    };
    const block = TabularFeatures.fromSchema(withTargets, { embeddingDims: { country: 2, genres: 2 }, excludeFeatures: ["user_id"] });
    const spec = block.expectedInputSpec(new BlockContext({ rng: mulberry32(1), path: "/context" }));
    expect(Object.keys(spec).sort()).toEqual(["age", "country", "genres"]);
  });

  it("element-wise-sum, dOutput, batch inputs from SequenceBatch.context, round-trip", () => {
    const { block } = tab({ embeddingDims: { country: 3, genres: 3, user_id: 3 }, excludeFeatures: ["age"], aggregation: "element-wise-sum", dOutput: 4 });
    expect(block.outputSpec).toEqual({ shape: [null, 4], dtype: "float32" });
    const x = block.inputsFromBatch({ batchSize: 2, seqLen: 1, itemIds: new Int32Array(2), lengths: new Int32Array(2), categorical: {}, continuous: {}, context: { country: Int32Array.from([1, 2]), genres: Int32Array.from([3, 0]), user_id: Int32Array.from([9, 1]) } });
    leakFree(() => {
      tf.tidy(() => {
        const out = block.call(x(), new CallContext({ mode: "train", rng: mulberry32(1) })) as tf.Tensor;
        expect(out.shape).toEqual([2, 4]);
      });
    });
    const again = createBlock(block.getConfig() as never) as TabularFeatures;
    expect(again.getConfig()).toEqual(block.getConfig());
    const e = (() => {
      try {
        tab({ aggregation: "element-wise-sum", embeddingDims: { country: 2 } });
      } catch (err) {
        return err as BlockError;
      }
      throw new Error("expected an error");
    })();
    expect(e.issues[0]).toMatchObject({ code: "incompatible_feature_sizes", path: "/context/aggregation" });
  });

  it("itemEmbeddingDim makes it a model input: a pooled model learns the next item from the context alone", () => {
    const cfg: ModelConfig = {
      inputs: { type: "tabular-features", excludeFeatures: ["genres", "user_id", "age"], embeddingDims: { country: 4 }, itemEmbeddingDim: 4 },
      body: [{ type: "mlp", units: [8] }],
      head: { type: "next-item-prediction", weightTying: true },
    };
    const m = Model.fromConfig(cfg, ctxSchema).build({ seed: 1 });
    expect(m.pooled).toBe(true);
    expect([...m.namedVariables().keys()].filter((k) => k.startsWith("context/"))).toEqual(["context/embeddings/country", "context/embeddings/item_id"]);
    // country 1 -> next item 2, country 2 -> next item 3
    const batch = (withTargets: boolean): SequenceBatchLike => ({
      batchSize: 4, seqLen: 2, itemIds: Int32Array.from([1, 0, 4, 1, 1, 0, 4, 1]), lengths: Int32Array.from([1, 2, 1, 2]),
      categorical: {}, continuous: {}, context: { country: Int32Array.from([1, 2, 1, 2]) },
      ...(withTargets ? { targets: Int32Array.from([2, 3, 2, 3]) } : {}),
    });
    expect(() => m.trainBatch(batch(false), mulberry32(1))).toThrow(/prefix examples/);
    const opt = tf.train.adam(0.05);
    const vars = m.trainableVariables();
    const step = (s: number) => {
      const tb = m.trainBatch(batch(true), mulberry32(s))!;
      expect(tb.numLabels).toBe(4);
      tf.tidy(() => {
        const { grads } = tf.variableGrads(tb.loss, vars);
        opt.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
      });
    };
    step(0); // creates the optimizer's slots
    leakFree(() => {
      for (let s = 1; s < 60; s++) step(s);
    });
    const top = m.topK(batch(false), 1);
    expect([...top.itemIds]).toEqual([2, 3, 2, 3]);
    const r = m.evaluate([batch(true)], { ks: [1] });
    expect(r["recall@1"]).toBe(1);
    expect(r.examples).toBe(4);
    opt.dispose();
    m.dispose();
  });
});

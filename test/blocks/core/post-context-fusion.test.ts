/**
 * post-context-fusion (Transformers4Rec PostContextFusion, Latent Cross): the three fusion modes on
 * tiny tensors with hand-set weights and hand-computed outputs, the request of raw context columns
 * from the input block, and the recipe recipes/gpt2-context-fusion.yaml (validates, the user id
 * changes the session vector, trains one short epoch).
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import "../../../blocks/index.js";
import { PostContextFusionBlock, type FusionAggregation } from "../../../blocks/core/post-context-fusion.js";
import { INPUT_FEATURES, openFeatureRequests } from "../../../blocks/features/requested-features.js";
import { BlockContext, BlockError, CallContext, createBlock, type FeatureSchemaLike, type SequenceBatchLike, type TensorSpec } from "../../../src/core/index.js";
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
    { name: "item_id", tags: ["item-id", "categorical", "list"], cardinality: 5 },
    { name: "user", tags: ["user-id", "categorical", "context"], cardinality: 3 },
  ],
};

// seq [B=2, L=2, D=2]; user embeddings E_user (C=2); projection W [C, D], b [D]
const SEQ = [[[1, 2], [3, 4]], [[-1, 0], [2, 1]]];
const USERS = [1, 2];
const E_USER = [[0, 0], [1, 0], [0, 2]];
const W = [[1, 0], [0, -1]];
const BIAS = [0.5, 0];

function fusion(mode: FusionAggregation) {
  const block = new PostContextFusionBlock({ fusionAggregation: mode, context: { type: "tabular-features", embeddingDims: { user: 2 } } });
  const ctx = new BlockContext({ schema, rng: mulberry32(3), path: "/model/body/1" });
  const requests = openFeatureRequests(ctx);
  block.build({ shape: [null, null, 2], dtype: "float32" }, ctx);
  const vars = block.namedVariables();
  const set = (suffix: string, v: number[][] | number[]) => {
    const k = [...vars.keys()].find((n) => n.endsWith(suffix));
    if (!k) throw new Error(`no weight *${suffix}; have ${[...vars.keys()].join(", ")}`);
    tf.tidy(() => vars.get(k)!.assign(tf.tensor(v.flat(), vars.get(k)!.shape)));
  };
  set("embeddings/user", E_USER);
  if (mode !== "concat") {
    set("dense_0/kernel", W);
    set("dense_0/bias", BIAS);
  }
  const out = tf.tidy(() => {
    const c = new CallContext({ mode: "eval", rng: mulberry32(1) });
    c.set(INPUT_FEATURES, { user: tf.tensor1d(USERS, "int32"), item_id: tf.tensor2d([[1, 2], [3, 0]], [2, 2], "int32") });
    return (block.call(tf.tensor3d(SEQ), c) as tf.Tensor).arraySync() as number[][][];
  });
  return { block, out, requests, names: [...vars.keys()].sort() };
}

const close = (got: number[][][], want: number[][][]) => {
  expect(got.length).toBe(want.length);
  got.flat(2).forEach((g, i) => expect(Math.abs(g - want.flat(2)[i]!), `${JSON.stringify(got)} vs ${JSON.stringify(want)}`).toBeLessThan(1e-6));
  expect(got.flat(2)).toHaveLength(want.flat(2).length);
};

describe("post-context-fusion: the three modes by hand", () => {
  // ctx: user 1 -> [1, 0], user 2 -> [0, 2]; p = ctx W + b: row 0 [1.5, 0], row 1 [0.5, -2]
  it("elementwise-mul: seq * (1 + ctx W + b), ctx repeated over L", () => {
    const { block, out, requests, names } = fusion("elementwise-mul");
    expect(block.outputSpec).toEqual({ shape: [null, null, 2], dtype: "float32" });
    // row 0: 1 + p = [2.5, 1]; row 1: 1 + p = [1.5, -1]
    close(out, [[[2.5, 2], [7.5, 4]], [[-1.5, 0], [3, -1]]]);
    // it asked the input block for the raw context column it embeds
    expect(Object.fromEntries(requests)).toEqual({ user: { shape: [null], dtype: "int32" } satisfies TensorSpec });
    expect(names).toEqual([
      "post-context-fusion/context/context/embeddings/user",
      "post-context-fusion/projection/mlp/dense_0/bias",
      "post-context-fusion/projection/mlp/dense_0/kernel",
    ]);
  });

  it("elementwise-sum: seq + ctx W + b", () => {
    close(fusion("elementwise-sum").out, [[[2.5, 2], [4.5, 4]], [[-0.5, -2], [2.5, -1]]]);
  });

  it("concat: [seq, ctx] with ctx repeated over L, no projection", () => {
    const { block, out, names } = fusion("concat");
    expect(block.outputSpec).toEqual({ shape: [null, null, 4], dtype: "float32" });
    close(out, [[[1, 2, 1, 0], [3, 4, 1, 0]], [[-1, 0, 0, 2], [2, 1, 0, 2]]]);
    expect(names).toEqual(["post-context-fusion/context/context/embeddings/user"]);
  });

  it("needs a tabular-sequence-features input block (the request list), and a sequence input", () => {
    const b = new PostContextFusionBlock({});
    const ctx = new BlockContext({ schema, rng: mulberry32(3), path: "/model/body/1" });
    let err: unknown;
    try {
      b.build({ shape: [null, null, 2], dtype: "float32" }, ctx);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BlockError);
    expect((err as BlockError).issues[0]).toMatchObject({ code: "incompatible_input", path: "/model/body/1" });
    let err2: unknown;
    try {
      new PostContextFusionBlock({}).computeOutputSpec({ user: { shape: [null], dtype: "int32" } }, ctx);
    } catch (e) {
      err2 = e;
    }
    expect((err2 as BlockError).issues[0]).toMatchObject({ code: "incompatible_input", path: "/model/body/1" });
  });

  it("round-trips through the registry: createBlock(getConfig()) is the same block", () => {
    const b = createBlock({ type: "post-context-fusion", fusionAggregation: "concat" });
    expect(b).toBeInstanceOf(PostContextFusionBlock);
    expect(createBlock(b.getConfig() as never).getConfig()).toEqual(b.getConfig());
  });
});

const recipeFile = join(import.meta.dirname, "../../../recipes/gpt2-context-fusion.yaml");

/** Two sessions with the same items, different users. */
function batch(users: number[]): SequenceBatchLike {
  const L = 4;
  const items = [3, 7, 9, 0, 3, 7, 9, 0];
  return {
    batchSize: 2, seqLen: L, itemIds: Int32Array.from(items), categorical: {}, continuous: {},
    context: { user_id: Int32Array.from(users) }, lengths: Int32Array.from([3, 3]),
  };
}

describe("recipes/gpt2-context-fusion.yaml", () => {
  it("validates and builds: the user id is not an input of the sequence model, only of the fusion", () => {
    const { recipe, featureSchema } = loadRecipe(recipeFile);
    const m = Model.fromConfig(recipe.model as unknown as ModelConfig, featureSchema as never).build({ seed: 1 });
    try {
      expect(m.blocks[1]).toBeInstanceOf(PostContextFusionBlock);
      expect(m.blocks[1]!.outputSpec).toEqual({ shape: [null, null, 64], dtype: "float32" });
      expect(Object.keys(m.inputs.expectedInputSpec(new BlockContext({ schema: featureSchema as never, rng: mulberry32(1) })))).toEqual(["item_id"]);
      const names = [...m.namedVariables().keys()].filter((k) => k.includes("post-context-fusion")).sort();
      expect(names).toEqual([
        "body/1/post-context-fusion/context/context/embeddings/user_id",
        "body/1/post-context-fusion/projection/mlp/dense_0/bias",
        "body/1/post-context-fusion/projection/mlp/dense_0/kernel",
      ]);
      // the same items, users 1 and 2 in one batch: the context changes the session vector
      const e = m.sessionEmbeddings(batch([1, 2]), { vector: "hidden" });
      const row = (b: number) => Array.from(e.values.subarray(b * e.dim, (b + 1) * e.dim));
      const diff = row(0).reduce((s, v, j) => s + Math.abs(v - row(1)[j]!), 0);
      expect(diff).toBeGreaterThan(1e-3);
      // and the same user gives the same vector
      const same = m.sessionEmbeddings(batch([2, 2]), { vector: "hidden" });
      expect(Array.from(same.values.subarray(0, e.dim))).toEqual(Array.from(same.values.subarray(e.dim)));
      expect(Array.from(same.values.subarray(0, e.dim))).toEqual(row(1));
      // the training loss reaches the fusion's weights (the user table and the Linear)
      const tb = m.trainBatch(batch([1, 2]), mulberry32(5))!;
      const fusionVars = names.map((n) => m.namedVariables().get(n)!);
      const { value, grads } = tf.variableGrads(tb.loss, fusionVars);
      for (const n of names) {
        const g = grads[m.namedVariables().get(n)!.name]!;
        expect(tf.sum(tf.abs(g)).dataSync()[0], n).toBeGreaterThan(0);
      }
      tf.dispose([value, ...Object.values(grads)]);
    } finally {
      m.dispose();
    }
  });

  it("trains one short epoch on tiny synthetic data; the saved model loads", async () => {
    const { modelDir } = await trainOneShortEpoch(recipeFile);
    const loaded = loadModelDir(modelDir);
    expect(loaded.model.blocks[1]).toBeInstanceOf(PostContextFusionBlock);
    loaded.model.dispose();
  }, 120_000);
});

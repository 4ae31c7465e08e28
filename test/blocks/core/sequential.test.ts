import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import "../../../blocks/index.js";
import { MLPBlock } from "../../../blocks/core/mlp.js";
import { SequentialBlock } from "../../../blocks/core/sequential.js";
import { TransformerBlock } from "../../../blocks/sequence/transformer.js";
import { BlockContext, BlockError, CallContext, createBlock } from "../../../src/core/index.js";
import { mulberry32 } from "../../../src/masking/index.js";
import { Model } from "../../../src/model/model.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const ctxAt = (path: string, seed = 3) => new BlockContext({ rng: mulberry32(seed), path });
const evalCtx = () => new CallContext({ mode: "eval", rng: mulberry32(1) });

function set(b: { namedVariables(): Map<string, tf.Variable> }, name: string, v: number[][] | number[]): void {
  const x = b.namedVariables().get(name);
  if (!x) throw new Error(`no weight ${name}; have ${[...b.namedVariables().keys()].join(", ")}`);
  tf.tidy(() => x.assign(tf.tensor(v.flat(), x.shape)));
}

function blockError(f: () => unknown): BlockError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(BlockError);
    return e as BlockError;
  }
  throw new Error("expected a BlockError");
}

describe("sequential: building", () => {
  it("builds each child from the previous child's output spec", () => {
    const a = new MLPBlock({ units: [4], name: "a" });
    const b = new MLPBlock({ units: [2], name: "b" });
    const s = new SequentialBlock([a, b]);
    expect(a.built || b.built).toBe(false);
    s.build({ shape: [null, 3], dtype: "float32" }, ctxAt("/model/body/0"));
    expect(a.inputSpec).toEqual({ shape: [null, 3], dtype: "float32" });
    expect(b.inputSpec).toEqual({ shape: [null, 4], dtype: "float32" });
    expect(s.outputSpec).toEqual({ shape: [null, 2], dtype: "float32" });
    expect([...s.namedVariables()].map(([k, v]) => [k, v.shape])).toEqual([
      ["sequential/0/a/dense_0/kernel", [3, 4]],
      ["sequential/0/a/dense_0/bias", [4]],
      ["sequential/1/b/dense_0/kernel", [4, 2]],
      ["sequential/1/b/dense_0/bias", [2]],
    ]);
    expect(s.countParams()).toBe(3 * 4 + 4 + 4 * 2 + 2);
    s.dispose();
  });

  it("call runs the children in order: hand-computed", () => {
    const s = new SequentialBlock([new MLPBlock({ units: [2], activation: "linear" }), new MLPBlock({ units: [1], name: "out" })]);
    s.build({ shape: [null, 3], dtype: "float32" }, ctxAt(""));
    set(s, "sequential/0/mlp/dense_0/kernel", [[1, -1], [2, 0.5], [-1, 1]]);
    set(s, "sequential/0/mlp/dense_0/bias", [0.5, -0.5]);
    set(s, "sequential/1/out/dense_0/kernel", [[1], [2]]);
    set(s, "sequential/1/out/dense_0/bias", [6]);
    // first (linear): x W + b = [[-5.5, 0.5], [4, -1.5], [2.5, 0]]  (third row: x W = [1 + 2 - 1, -1 + 0.5 + 1] = [2, 0.5])
    // then relu(h [1, 2]^T + 6) = [[-5.5 + 1 + 6], [4 - 3 + 6], [2.5 + 0 + 6]] = [[1.5], [7], [8.5]]
    const y = tf.tidy(() => (s.call(tf.tensor2d([[1, -2, 3], [0.5, 1, -1], [1, 1, 1]]), evalCtx()) as tf.Tensor).arraySync()) as number[][];
    expect(y.map((r) => r[0])).toEqual([1.5, 7, 8.5]);
    s.dispose();
  });

  it("a config form makes its children from the registry and round-trips", () => {
    const cfg = { blocks: [{ type: "mlp", units: [4] }, { type: "mlp", units: [2], activation: "tanh" }] };
    const s = new SequentialBlock(cfg);
    expect(s.blocks.map((b) => b.constructor)).toEqual([MLPBlock, MLPBlock]);
    const full = s.getConfig();
    expect(full).toEqual({
      type: "sequential", name: "sequential",
      blocks: [
        { type: "mlp", name: "mlp", units: [4], activation: "relu", bias: true, dropout: 0, normalization: "none" },
        { type: "mlp", name: "mlp", units: [2], activation: "tanh", bias: true, dropout: 0, normalization: "none" },
      ],
    });
    const again = createBlock(full as never) as SequentialBlock;
    expect(again).toBeInstanceOf(SequentialBlock);
    expect(again.getConfig()).toEqual(full);
    // the instance form gives the same config
    expect(new SequentialBlock([new MLPBlock({ units: [4] }), new MLPBlock({ units: [2], activation: "tanh" })]).getConfig()).toEqual(full);
    // and the same seed the same weights and outputs
    s.build({ shape: [null, 3], dtype: "float32" }, ctxAt("", 9));
    again.build({ shape: [null, 3], dtype: "float32" }, ctxAt("", 9));
    const x = tf.tensor2d([[0.1, 0.2, 0.3]]);
    const ya = tf.tidy(() => Array.from((s.call(x, evalCtx()) as tf.Tensor).dataSync()));
    const yb = tf.tidy(() => Array.from((again.call(x, evalCtx()) as tf.Tensor).dataSync()));
    expect(yb).toEqual(ya);
    x.dispose();
    s.dispose();
    again.dispose();
  });

  it("needs at least one block", () => {
    expect(blockError(() => new SequentialBlock([])).code).toBe("empty_sequential");
  });
});

describe("sequential: shape mismatches are located BlockErrors", () => {
  it("the failing child is reported at <path>/blocks/<i>", () => {
    const s = new SequentialBlock([new MLPBlock({ units: [4] }), new TransformerBlock({ dModel: 8, numHeads: 2, maxSequenceLength: 5 })]);
    const e = blockError(() => s.build({ shape: [null, 5, 3], dtype: "float32" }, ctxAt("/model/body/1")));
    expect(e.path).toBe("/model/body/1/blocks/1/dModel");
    expect(e.code).toBe("incompatible_input");
    expect(e.message).toMatch(/dModel 8 but its input has size 4/);
    // computeOutputSpec (no weights) reports the same place
    const s2 = new SequentialBlock([new MLPBlock({ units: [4] }), new MLPBlock({ units: [2] })]);
    const e2 = blockError(() => s2.computeOutputSpec({ item_id: { shape: [null, null], dtype: "int32" } }, ctxAt("/model/body/0")));
    expect(e2.path).toBe("/model/body/0/blocks/0");
  });

  it("from a recipe: the path of the nested block in the recipe", () => {
    const schema = { columns: [{ name: "item_id", tags: ["item-id", "categorical", "list"], cardinality: 10 }] };
    const model = Model.fromConfig(
      {
        inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: 6 }, masking: { type: "causal" } },
        body: [{ type: "mlp", units: [6] }, { type: "sequential", blocks: [{ type: "mlp", units: [4] }, { type: "transformer", dModel: 6, numHeads: 2 }] }],
        head: { type: "next-item-prediction" },
      },
      schema,
    );
    const e = blockError(() => model.build());
    expect(e.path).toBe("/model/body/1/blocks/1/dModel");
    expect(e.message).toMatch(/\/model\/body\/1\/blocks\/1\/dModel/);
    expect(e.issues[0]!.hint).toBeTruthy();
  });

  it("a child built before for another input is refused, not silently reused", () => {
    const a = new MLPBlock({ units: [4] });
    a.build({ shape: [null, 8], dtype: "float32" }, ctxAt("/x"));
    const s = new SequentialBlock([a, new MLPBlock({ units: [2] })]);
    const e = blockError(() => s.build({ shape: [null, 3], dtype: "float32" }, ctxAt("/model/body/0")));
    expect(e.path).toBe("/model/body/0/blocks/0");
    expect(e.code).toBe("incompatible_input");
    expect(e.message).toMatch(/float32\[\?, 8\]/);
    expect(e.message).toMatch(/float32\[\?, 3\]/);
    const e2 = blockError(() => s.computeOutputSpec({ shape: [null, 3], dtype: "float32" }, ctxAt("/model/body/0")));
    expect(e2.path).toBe("/model/body/0/blocks/0");
    // the same input is fine: the built child is reused
    const ok = new SequentialBlock([a, new MLPBlock({ units: [2] })]);
    ok.build({ shape: [null, 8], dtype: "float32" }, ctxAt("/model/body/0"));
    expect(ok.outputSpec).toEqual({ shape: [null, 2], dtype: "float32" });
    ok.dispose();
  });
});

describe("sequential: contract", () => {
  it("computeOutputSpec equals the real output; no tensor leaks", () => {
    const s = new SequentialBlock([new MLPBlock({ units: [8], dropout: 0.3 }), new TransformerBlock({ dModel: 8, numHeads: 2, numLayers: 1, maxSequenceLength: 5 })]);
    s.build({ shape: [null, null, 3], dtype: "float32" }, ctxAt("/model/body/0"));
    expect(s.outputSpec).toEqual({ shape: [null, null, 8], dtype: "float32" });
    const x = tf.ones([2, 5, 3]);
    const before = tf.memory().numTensors;
    for (const mode of ["train", "eval"] as const) {
      const shape = tf.tidy(() => (s.call(x, new CallContext({ mode, rng: mulberry32(2) })) as tf.Tensor).shape);
      expect(shape).toEqual([2, 5, 8]);
    }
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    s.dispose();
  });
});

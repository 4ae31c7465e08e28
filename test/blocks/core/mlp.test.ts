import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import "../../../blocks/index.js";
import { MLPBlock, type MLPConfig } from "../../../blocks/core/mlp.js";
import { BlockContext, BlockError, CallContext, createBlock, type CallMode, type TensorSpec } from "../../../src/core/index.js";
import { mulberry32 } from "../../../src/masking/index.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

/*
 * x (2×3), W (3×2), b (2). Row-vector convention: y = x W + b.
 *   x W = [[1·1 - 2·2 + 3·(-1), 1·(-1) - 2·0.5 + 3·1], [0.5·1 + 1·2 - 1·(-1), 0.5·(-1) + 1·0.5 - 1·1]]
 *       = [[-6, 1], [3.5, -1]]
 *   x W + b = [[-5.5, 0.5], [4, -1.5]]
 */
const X = [[1, -2, 3], [0.5, 1, -1]];
const W = [[1, -1], [2, 0.5], [-1, 1]];
const BIAS = [0.5, -0.5];
const XW = [[-6, 1], [3.5, -1]];
const XWB = [[-5.5, 0.5], [4, -1.5]];

function built(config: Omit<MLPConfig, "type">, inputDim = 3, seed = 5): MLPBlock {
  const b = new MLPBlock(config);
  b.build({ shape: [null, inputDim], dtype: "float32" }, new BlockContext({ rng: mulberry32(seed), path: "/model/body/0" }));
  return b;
}

function set(b: MLPBlock, name: string, v: number[][] | number[]): void {
  const x = b.namedVariables().get(name);
  if (!x) throw new Error(`no weight ${name}; have ${[...b.namedVariables().keys()].join(", ")}`);
  tf.tidy(() => x.assign(tf.tensor(v.flat(), x.shape)));
}

function withWeights(config: Partial<Omit<MLPConfig, "type">>): MLPBlock {
  const b = built({ ...config, units: [2] });
  set(b, "mlp/dense_0/kernel", W);
  if (b.config.bias) set(b, "mlp/dense_0/bias", BIAS);
  return b;
}

function run(b: MLPBlock, mode: CallMode = "eval", x: number[][] | number[][][] = X, seed = 1): number[][] {
  return tf.tidy(() => (b.call(tf.tensor(x), new CallContext({ mode, rng: mulberry32(seed) })) as tf.Tensor).arraySync() as number[][]);
}

const close = (got: number[], want: number[], tol = 1e-5) => {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `index ${i}: ${got[i]} vs ${want[i]}`).toBeLessThan(tol);
};
const relu = (v: number) => Math.max(0, v);

describe("mlp: hand-computed values on a 2×3 input", () => {
  it("units and ReLU (the default activation)", () => {
    const b = withWeights({});
    close(run(b).flat(), XWB.flat().map(relu)); // [[0, 0.5], [4, 0]]
    close(run(b).flat(), [0, 0.5, 4, 0]);
    b.dispose();
  });

  it("activation: linear, tanh, sigmoid, gelu", () => {
    const cases: [MLPConfig["activation"], (v: number) => number][] = [
      ["linear", (v) => v],
      ["tanh", Math.tanh],
      ["sigmoid", (v) => 1 / (1 + Math.exp(-v))],
      ["gelu", (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))],
    ];
    for (const [activation, f] of cases) {
      const b = withWeights({ activation });
      close(run(b).flat(), XWB.flat().map(f));
      b.dispose();
    }
  });

  it("bias: false has no bias weight and computes x W", () => {
    const b = withWeights({ bias: false, activation: "linear" });
    expect([...b.namedVariables().keys()]).toEqual(["mlp/dense_0/kernel"]);
    close(run(b).flat(), XW.flat());
    b.dispose();
  });

  it("two layers: the second takes the first's output (ReLU between)", () => {
    const b = built({ units: [2, 1] });
    set(b, "mlp/dense_0/kernel", W);
    set(b, "mlp/dense_0/bias", BIAS);
    set(b, "mlp/dense_1/kernel", [[2], [-3]]);
    set(b, "mlp/dense_1/bias", [1]);
    // h = [[0, 0.5], [4, 0]];  h W1 + b1 = [[-1.5 + 1], [8 + 1]] -> relu [[0], [9]]
    close(run(b).flat(), [0, 9]);
    expect(b.namedVariables().get("mlp/dense_1/kernel")!.shape).toEqual([2, 1]);
    b.dispose();
  });

  it("a [B, L, D] input is the same as its rows", () => {
    const b = withWeights({ activation: "linear" });
    const y = tf.tidy(() => (b.call(tf.tensor3d([X]), new CallContext({ mode: "eval", rng: mulberry32(1) })) as tf.Tensor).arraySync()) as number[][][];
    close(y[0]!.flat(), XWB.flat());
    b.dispose();
  });
});

describe("mlp: normalization", () => {
  const ln = (v: number[]) => {
    const m = v.reduce((a, x) => a + x, 0) / v.length;
    const s = v.reduce((a, x) => a + (x - m) ** 2, 0) / v.length;
    return v.map((x) => (x - m) / Math.sqrt(s + 1e-5));
  };

  it("layer-norm after the activation, with gamma and beta", () => {
    const b = withWeights({ activation: "linear", normalization: "layer-norm" });
    set(b, "mlp/layer_norm_0/gamma", [2, 0.5]);
    set(b, "mlp/layer_norm_0/beta", [1, -1]);
    // row 0: [-5.5, 0.5] -> mean -2.5, var 9 -> [-1, 1]/sqrt(9 + 1e-5)*3;  row 1: [4, -1.5] -> [1, -1] (approx.)
    const want = XWB.map((r) => ln(r).map((z, j) => z * [2, 0.5][j]! + [1, -1][j]!));
    close(run(b).flat(), want.flat());
    close(run(b).flat(), [-1, -0.5, 3, -1.5], 1e-4);
    // activation first: ReLU then layer norm (row 0: [0, 0.5] -> [-1, 1] (approx.))
    const r = withWeights({ normalization: "layer-norm" });
    close(run(r).flat(), XWB.map((row) => ln(row.map(relu))).flat());
    b.dispose();
    r.dispose();
  });

  it("batch-norm: batch statistics in training (updating moving averages), moving statistics otherwise", () => {
    const b = withWeights({ activation: "linear", normalization: "batch-norm" });
    const names = b.namedVariables();
    expect(names.get("mlp/batch_norm_0/moving_mean")!.trainable).toBe(false);
    expect(names.get("mlp/batch_norm_0/moving_variance")!.trainable).toBe(false);
    expect(b.trainableVariables().map((v) => v.shape)).toEqual([[3, 2], [2], [2], [2]]); // kernel, bias, gamma, beta
    // eval before any training: moving mean 0, variance 1 -> y / sqrt(1 + eps)
    close(run(b, "eval").flat(), XWB.flat().map((v) => v / Math.sqrt(1 + 1e-5)));
    // train: column means [-0.75, -0.5], biased variances [22.5625, 1], unbiased [45.125, 2]
    const trainOut = run(b, "train");
    close(trainOut.flat(), [-4.75 / Math.sqrt(22.5625 + 1e-5), 1 / Math.sqrt(1 + 1e-5), 4.75 / Math.sqrt(22.5625 + 1e-5), -1 / Math.sqrt(1 + 1e-5)]);
    // moving averages with momentum 0.1 (PyTorch convention): 0.9 old + 0.1 batch (unbiased variance)
    close(Array.from(names.get("mlp/batch_norm_0/moving_mean")!.dataSync()), [-0.075, -0.05]);
    close(Array.from(names.get("mlp/batch_norm_0/moving_variance")!.dataSync()), [0.9 + 4.5125, 0.9 + 0.2], 1e-4);
    // eval now uses them
    const mm = [-0.075, -0.05], mv = [5.4125, 1.1];
    close(run(b, "eval").flat(), XWB.flatMap((r) => r.map((v, j) => (v - mm[j]!) / Math.sqrt(mv[j]! + 1e-5))), 1e-4);
    b.dispose();
  });
});

describe("mlp: dropout", () => {
  it("identity outside training; in training each value is dropped or scaled by 1/(1-p), seeded", () => {
    const b = withWeights({ activation: "linear", dropout: 0.5 });
    close(run(b, "eval").flat(), XWB.flat());
    close(run(b, "inference").flat(), XWB.flat());
    let dropped = 0;
    let kept = 0;
    for (let seed = 1; seed <= 8; seed++) {
      run(b, "train", X, seed).flat().forEach((v, i) => {
        if (v === 0) dropped++;
        else {
          kept++;
          expect(Math.abs(v - 2 * XWB.flat()[i]!)).toBeLessThan(1e-5);
        }
      });
    }
    expect(dropped).toBeGreaterThan(4); // 32 values, p = 0.5
    expect(kept).toBeGreaterThan(4);
    // the same call seed gives the same mask
    expect(run(b, "train", X, 3)).toEqual(run(b, "train", X, 3));
    b.dispose();
  });
});

describe("mlp: block contract", () => {
  it("schema defaults; getConfig round-trips; weight names and init U(±1/sqrt(fanIn))", () => {
    const m = new MLPBlock({ units: [4] });
    expect(m.config).toEqual({ type: "mlp", name: "mlp", units: [4], activation: "relu", bias: true, dropout: 0, normalization: "none" });
    const again = createBlock(m.getConfig() as never);
    expect(again).toBeInstanceOf(MLPBlock);
    expect(again.getConfig()).toEqual(m.getConfig());
    const b = built({ units: [50, 7], name: "proj" }, 16);
    expect([...b.namedVariables()].map(([k, v]) => [k, v.shape])).toEqual([
      ["proj/dense_0/kernel", [16, 50]],
      ["proj/dense_0/bias", [50]],
      ["proj/dense_1/kernel", [50, 7]],
      ["proj/dense_1/bias", [7]],
    ]);
    const k0 = Array.from(b.namedVariables().get("proj/dense_0/kernel")!.dataSync());
    expect(Math.max(...k0.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(16));
    expect(Math.max(...k0.map(Math.abs))).toBeGreaterThan(0.8 / Math.sqrt(16));
    const k1 = Array.from(b.namedVariables().get("proj/dense_1/kernel")!.dataSync());
    expect(Math.max(...k1.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(50));
    expect(b.countParams()).toBe(16 * 50 + 50 + 50 * 7 + 7);
    b.dispose();
  });

  it("computeOutputSpec equals the real output shape ([B, D] and [B, L, D]); no tensor leaks", () => {
    const b = built({ units: [4, 3], normalization: "batch-norm", dropout: 0.2 }, 3);
    const ctx = new BlockContext({ rng: mulberry32(1), path: "/model/body/0" });
    expect(b.outputSpec).toEqual({ shape: [null, 3], dtype: "float32" });
    const s3 = b.computeOutputSpec({ shape: [null, 5, 3], dtype: "float32" }, ctx) as TensorSpec;
    expect(s3).toEqual({ shape: [null, 5, 3], dtype: "float32" });
    const before = tf.memory().numTensors;
    for (const mode of ["train", "eval"] as const) {
      const y2 = run(b, mode);
      expect([y2.length, y2[0]!.length]).toEqual([2, 3]);
      const y3 = tf.tidy(() => b.call(tf.ones([2, 5, 3]), new CallContext({ mode, rng: mulberry32(1) })).shape);
      expect(y3).toEqual([2, 5, 3]);
    }
    expect(tf.memory().numTensors).toBe(before);
    b.dispose();
  });

  it("inputs it cannot take are BlockErrors at the block's path", () => {
    const m = new MLPBlock({ units: [4] });
    const ctx = new BlockContext({ rng: mulberry32(1), path: "/model/body/2" });
    const cases = [
      { item_id: { shape: [null, null], dtype: "int32" } },
      { shape: [null, null], dtype: "int32" },
      { shape: [null, null], dtype: "float32" },
      { shape: [null], dtype: "float32" },
    ] as const;
    for (const input of cases) {
      let err: unknown;
      try {
        m.computeOutputSpec(input as never, ctx);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(input)).toBeInstanceOf(BlockError);
      expect((err as BlockError).code).toBe("incompatible_input");
      expect((err as BlockError).path).toBe("/model/body/2");
    }
  });
});

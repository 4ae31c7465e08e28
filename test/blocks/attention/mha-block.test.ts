import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import "../../../blocks/index.js";
import { MultiHeadAttentionBlock } from "../../../blocks/attention/mha-block.js";
import { BlockContext, BlockError, CallContext, createBlock, type SequenceBatchLike, type TensorSpec } from "../../../src/core/index.js";
import type { Session } from "../../../src/data/batches.js";
import { mulberry32 } from "../../../src/masking/index.js";
import { Model } from "../../../src/model/model.js";
import { fit } from "../../../src/train/loop.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
const close = (got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5) => {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `index ${i}: ${got[i]} vs ${want[i]}`).toBeLessThan(tol);
};
const softmax = (s: number[]) => {
  const e = s.map((v) => Math.exp(v));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
};

function built(config: Record<string, unknown>, inputDim: number, masking?: { type: string }): MultiHeadAttentionBlock {
  const b = new MultiHeadAttentionBlock(config);
  const ctx = new BlockContext({ rng: mulberry32(5), path: "/model/body/0" });
  if (masking) ctx.set("masking", masking);
  b.build({ shape: [null, null, inputDim], dtype: "float32" }, ctx);
  return b;
}

/** Sets q/k/v/output kernels ([D, D] each) and zero biases. */
function setKernels(b: MultiHeadAttentionBlock, k: { q: number[][]; k: number[][]; v: number[][]; o: number[][] }): void {
  const vars = b.namedVariables();
  const qkv = k.q.map((row, i) => [...row, ...k.k[i]!, ...k.v[i]!]);
  tf.tidy(() => vars.get(`${b.name}/attention/qkv/kernel`)!.assign(tf.tensor2d(qkv)));
  tf.tidy(() => vars.get(`${b.name}/attention/output/kernel`)!.assign(tf.tensor2d(k.o)));
  for (const [name, v] of vars) if (name.endsWith("/bias") && name.includes("/attention/")) tf.tidy(() => v.assign(tf.zeros(v.shape)));
}

/** One forward pass; `last` gives each row's read step (flat positions b·L + t are made here). */
function run(b: MultiHeadAttentionBlock, x: number[][][] | tf.Tensor3D, opts: { valid?: number[][]; last?: number[]; mode?: "eval" | "train" } = {}): number[][] | number[][][] {
  return tf.tidy(() => {
    const ctx = new CallContext({ mode: opts.mode ?? "eval", rng: mulberry32(1) });
    const xt = x instanceof tf.Tensor ? x : tf.tensor3d(x);
    if (opts.valid) ctx.set("padding-mask", tf.tensor2d(opts.valid));
    if (opts.last) ctx.set("positions", tf.tensor1d(opts.last.map((t, r) => r * xt.shape[1] + t), "int32"));
    return (b.call(xt, ctx) as tf.Tensor).arraySync() as number[][] | number[][][];
  });
}

const I2 = [[1, 0], [0, 1]];
const Z2 = [[0, 0], [0, 0]];

describe("multi-head-attention: hand-computed outputs", () => {
  // q = k = 0: every allowed key gets the same weight, so with v = output = I the output is the mean
  // of the allowed inputs. x = [1, 0], [0, 2], [3, -1], then a padding step holding junk.
  const x = [[[1, 0], [0, 2], [3, -1], [50, 50]]];
  const valid = [[1, 1, 1, 0]];
  const plain = { numHeads: 1, residual: false, layerNorm: false };

  it("padding mask: real positions average the three real steps; padding attends them and itself", () => {
    const b = built({ ...plain, causal: false }, 2);
    setKernels(b, { q: Z2, k: Z2, v: I2, o: I2 });
    const out = run(b, x, { valid }) as number[][][];
    close(out[0]!.slice(0, 3).flat(), [4 / 3, 1 / 3, 4 / 3, 1 / 3, 4 / 3, 1 / 3]);
    close(out[0]![3]!, [54 / 4, 51 / 4]);
    // without a padding mask the junk step is averaged in everywhere
    close((run(b, x) as number[][][])[0]![0]!, [54 / 4, 51 / 4]);
    b.dispose();
  });

  it("causal mask: position t averages steps 0..t", () => {
    const b = built({ ...plain, causal: true }, 2);
    expect(b.causal).toBe(true);
    setKernels(b, { q: Z2, k: Z2, v: I2, o: I2 });
    const out = run(b, x, { valid }) as number[][][];
    close(out[0]!.slice(0, 3).flat(), [1, 0, 0.5, 1, 4 / 3, 1 / 3]);
    b.dispose();
  });

  it("query: last: the last real step attends the real steps -> one vector per row", () => {
    const b = built({ ...plain, query: "last" }, 2);
    setKernels(b, { q: Z2, k: Z2, v: I2, o: I2 });
    const out = run(b, [x[0]!, [[0, 0], [2, 2], [4, 0], [0, 0]]], { valid: [[1, 1, 1, 0], [0, 1, 1, 0]], last: [2, 2] }) as number[][];
    close(out.flat(), [4 / 3, 1 / 3, 3, 1]);
    b.dispose();
  });

  it("two heads with q = k = v = output = I: per-dimension softmax attention", () => {
    // D = 2, 2 heads of size 1 (scale 1): head h attends with the scalars x_t[h]
    const b = built({ ...plain, numHeads: 2, causal: false }, 2);
    setKernels(b, { q: I2, k: I2, v: I2, o: I2 });
    const xs = [[1, 2], [3, -1]];
    const out = run(b, [xs]) as number[][][];
    const head = (h: number, t: number) => {
      const w = softmax(xs.map((k) => xs[t]![h]! * k[h]!)); // scores q_t k_j
      return w[0]! * xs[0]![h]! + w[1]! * xs[1]![h]!;
    };
    // t = 0: head 0 scores [1, 3], head 1 scores [4, -2];  t = 1: head 0 [3, 9], head 1 [-2, 1]
    close(out[0]!.flat(), [head(0, 0), head(1, 0), head(0, 1), head(1, 1)]);
    expect(Math.abs(head(0, 0) - (1 + 3 * Math.exp(2)) / (1 + Math.exp(2)))).toBeLessThan(1e-12);
    b.dispose();
  });

  it("residual and layer norm: LayerNorm(x + Attention(x))", () => {
    const b = built({ numHeads: 1, causal: true, residual: true, layerNorm: true, layerNormEps: 1e-5 }, 3);
    const Z3 = [[0, 0, 0], [0, 0, 0], [0, 0, 0]];
    const I3 = [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
    setKernels(b, { q: Z3, k: Z3, v: I3, o: I3 });
    const xs = [[1, 0, 2], [0, 3, -1]];
    const out = run(b, [xs]) as number[][][];
    const ln = (v: number[]) => {
      const m = v.reduce((a, c) => a + c, 0) / v.length;
      const s = v.reduce((a, c) => a + (c - m) ** 2, 0) / v.length;
      return v.map((c) => (c - m) / Math.sqrt(s + 1e-5));
    };
    // t = 0: x0 + x0 = [2, 0, 4];  t = 1: x1 + mean(x0, x1) = [0.5, 4.5, -0.5]
    close(out[0]!.flat(), [...ln([2, 0, 4]), ...ln([0.5, 4.5, -0.5])]);
    b.dispose();
  });
});

const B = 3, L = 5, D = 8;
const input = (seed: number) => tf.randomNormal([B, L, D], 0, 1, "float32", seed) as tf.Tensor3D;

describe("multi-head-attention: random weights", () => {
  const cfg = { numHeads: 2, initializerRange: 0.5 };

  it("causal (default with causal masking): perturbing future steps does not change earlier outputs", () => {
    const b = built(cfg, D, { type: "causal" });
    expect(b.causal).toBe(true);
    const x = input(1);
    const a = run(b, x) as number[][][];
    const xp = tf.tidy(() => tf.tensor3d((x.arraySync() as number[][][]).map((row) => row.map((s, t) => (t >= 3 ? s.map((v) => 2 * v + 1) : s)))));
    const p = run(b, xp) as number[][][];
    for (let r = 0; r < B; r++) {
      for (let t = 0; t < 3; t++) expect(maxDiff(a[r]![t]!, p[r]![t]!)).toBeLessThan(1e-5);
      expect(maxDiff(a[r]![3]!, p[r]![3]!)).toBeGreaterThan(1e-3);
    }
    // not causal with masked LM: the first step sees the last
    const bi = built(cfg, D, { type: "masked" });
    expect(bi.causal).toBe(false);
    const c = run(bi, x) as number[][][], cp = run(bi, xp) as number[][][];
    expect(maxDiff(c[0]![0]!, cp[0]![0]!)).toBeGreaterThan(1e-3);
    tf.dispose([x, xp]);
    b.dispose();
    bi.dispose();
  });

  it("padding: junk on padding and more padding change nothing at real steps; query last = self at the last step", () => {
    const b = built(cfg, D, { type: "masked" });
    const last = built({ ...cfg, query: "last" }, D, { type: "masked" });
    // same weights in both
    const wa = b.namedVariables(), wb = last.namedVariables();
    for (const [k, v] of wa) tf.tidy(() => wb.get(k)!.assign(v));
    const x = input(2);
    const rows = x.arraySync() as number[][][];
    const real = rows[0]!.slice(0, 3);
    const junk = Array.from({ length: D }, (_, i) => 9 - 2 * i);
    const ref = (run(b, [real]) as number[][][])[0]!;
    const out = run(b, [[...real, junk, junk], [junk, junk, ...real], [junk, ...real, junk]], { valid: [[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [0, 1, 1, 1, 0]] }) as number[][][];
    close(out[0]!.slice(0, 3).flat(), ref.flat());
    close(out[1]!.slice(2).flat(), ref.flat());
    close(out[2]!.slice(1, 4).flat(), ref.flat());
    const pooled = run(last, [[...real, junk, junk], [junk, junk, ...real]], { valid: [[1, 1, 1, 0, 0], [0, 0, 1, 1, 1]], last: [2, 4] }) as number[][];
    close(pooled[0]!, ref[2]!);
    close(pooled[1]!, ref[2]!);
    x.dispose();
    b.dispose();
    last.dispose();
  });
});

describe("multi-head-attention: block contract", () => {
  const ctx = () => new BlockContext({ rng: mulberry32(1), path: "/model/body/0" });
  const err = (f: () => unknown): BlockError => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(BlockError);
      return e as BlockError;
    }
    throw new Error("expected a BlockError");
  };

  it("defaults, round trip, output specs, no leaks", () => {
    const b = new MultiHeadAttentionBlock();
    expect(b.config).toEqual({
      type: "multi-head-attention", name: "multi-head-attention", query: "self", dModel: null, numHeads: 1, causal: null,
      dropout: 0, residual: true, layerNorm: true, layerNormEps: 1e-5, bias: true, initializerRange: 0.02,
    });
    const again = createBlock(b.getConfig() as never);
    expect(again).toBeInstanceOf(MultiHeadAttentionBlock);
    expect(again.getConfig()).toEqual(b.getConfig());
    expect(b.computeOutputSpec({ shape: [null, 7, 4], dtype: "float32" }, ctx())).toEqual({ shape: [null, 7, 4], dtype: "float32" });
    expect(new MultiHeadAttentionBlock({ query: "last" }).computeOutputSpec({ shape: [null, 7, 4], dtype: "float32" }, ctx())).toEqual({ shape: [null, 4], dtype: "float32" });
    const m = built({ numHeads: 2, dropout: 0.3 }, D);
    expect([...m.namedVariables().keys()].sort()).toEqual([
      "multi-head-attention/attention/output/bias", "multi-head-attention/attention/output/kernel",
      "multi-head-attention/attention/qkv/bias", "multi-head-attention/attention/qkv/kernel",
      "multi-head-attention/layer_norm/beta", "multi-head-attention/layer_norm/gamma",
    ]);
    const x = input(3);
    const before = tf.memory().numTensors;
    const ev = run(m, x, { valid: [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 1, 1]] }) as number[][][];
    const tr = run(m, x, { valid: [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 1, 1]], mode: "train" }) as number[][][];
    expect([ev.length, ev[0]!.length, ev[0]![0]!.length]).toEqual([B, L, D]);
    expect(maxDiff(ev.flat(2), tr.flat(2))).toBeGreaterThan(1e-4); // dropout in training only
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    m.dispose();
  });

  it("errors: dModel, numHeads, causal: false with causal masking, query last without one position per row", () => {
    const spec = { shape: [null, null, 8], dtype: "float32" } as TensorSpec;
    const e1 = err(() => new MultiHeadAttentionBlock({ dModel: 16 }).computeOutputSpec(spec, ctx()));
    expect([e1.code, e1.path]).toEqual(["incompatible_input", "/model/body/0/dModel"]);
    expect(err(() => new MultiHeadAttentionBlock({ numHeads: 3 }).computeOutputSpec(spec, ctx())).path).toBe("/model/body/0/numHeads");
    const c = ctx();
    c.set("masking", { type: "causal" });
    expect(err(() => new MultiHeadAttentionBlock({ causal: false }).computeOutputSpec(spec, c)).code).toBe("incompatible_masking");
    const b = built({ query: "last" }, D);
    const x = input(4);
    expect(() => run(b, x, { last: [1] })).toThrow(/one next item per session/);
    x.dispose();
    b.dispose();
  });
});

describe("multi-head-attention in a Model", () => {
  const V = 10;
  const schema = { columns: [{ name: "item_id", tags: ["categorical", "item-id", "list"], cardinality: V }] };
  const make = (body: Record<string, unknown>[]) =>
    Model.fromConfig(
      {
        inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: 8 }, embeddingInitStd: 0.3, masking: { type: "causal" } },
        body,
        head: { type: "next-item-prediction", weightTying: true },
      } as never,
      schema,
    ).build({ seed: 4 });

  it("gradients reach every weight: gru then self-attention (sequence) and query-last attention (pooled)", () => {
    const batch: SequenceBatchLike = {
      batchSize: 2, seqLen: 4, itemIds: Int32Array.from([3, 5, 7, 0, 9, 2, 4, 6]), categorical: {}, continuous: {}, context: {},
      lengths: Int32Array.from([3, 4]), targets: Int32Array.from([1, 8]),
    };
    for (const query of ["self", "last"]) {
      const model = make([{ type: "gru", units: 8 }, { type: "multi-head-attention", numHeads: 2, query, initializerRange: 0.3 }]);
      expect(model.pooled).toBe(query === "last");
      const tb = model.trainBatch(batch, mulberry32(1))!;
      const vars = [...model.namedVariables()].filter(([k, v]) => v.trainable && !k.endsWith("masked_item_embedding"));
      const { value, grads } = tf.variableGrads(tb.loss, vars.map(([, v]) => v));
      expect(Number.isFinite(value.dataSync()[0]!)).toBe(true);
      for (const [k, v] of vars) expect(tf.tidy(() => tf.max(tf.abs(grads[v.name]!)).dataSync()[0]!), `${query}: ${k}`).toBeGreaterThan(0);
      tf.dispose([value, ...Object.values(grads)]);
      model.dispose();
    }
  });

  it("query: last trains on prefix examples with fit (pooled model)", async () => {
    const model = make([{ type: "multi-head-attention", query: "last", numHeads: 2 }]);
    const sessions: Session[] = [[1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 6], [1, 2, 3]].map((items, i) => ({ id: `s${i}`, items: Int32Array.from(items), categorical: {}, continuous: {}, context: {} }));
    const r = await fit(model, { train: sessions, maxSequenceLength: 4 }, { train: { epochs: 3, batchSize: 16, optimizer: { type: "adam", learningRate: 0.05 } } as never, progress: { quiet: true } as never });
    const losses = r.history.map((h) => h.loss);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[2]!).toBeLessThan(losses[0]!);
    model.dispose();
  });
});

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import "../../../blocks/index.js";
import { GRUBlock } from "../../../blocks/recurrent/gru.js";
import { LSTMBlock } from "../../../blocks/recurrent/lstm.js";
import { orthogonalRows } from "../../../blocks/recurrent/recurrent-layers.js";
import { Block, BlockContext, BlockError, CallContext, createBlock, type SequenceBatchLike, type TensorSpec } from "../../../src/core/index.js";
import { loadModelDir, saveModelDir } from "../../../src/io/model-dir.js";
import { mulberry32 } from "../../../src/masking/index.js";
import { Model } from "../../../src/model/model.js";

let tmp: string;
beforeAll(async () => {
  await tf.setBackend("cpu");
  tmp = mkdtempSync(join(tmpdir(), "recblocks-gru-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const sig = (z: number) => 1 / (1 + Math.exp(-z));
const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
const close = (got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5) => {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `index ${i}: ${got[i]} vs ${want[i]}`).toBeLessThan(tol);
};

function built<B extends Block>(b: B, inputDim: number, masking?: { type: string }): B {
  const ctx = new BlockContext({ rng: mulberry32(5), path: "/model/body/0" });
  if (masking) ctx.set("masking", masking);
  b.build({ shape: [null, null, inputDim], dtype: "float32" }, ctx);
  return b;
}

function setWeights(b: Block, values: Record<string, number[][] | number[]>): void {
  const vars = b.namedVariables();
  for (const [k, v] of Object.entries(values)) {
    const x = vars.get(`${b.name}/${k}`);
    if (!x) throw new Error(`no weight ${k}; have ${[...vars.keys()].join(", ")}`);
    tf.tidy(() => x.assign(tf.tensor(v.flat(), x.shape as number[])));
  }
}

/** One forward pass (in a tidy) with an optional [B, L] padding mask. */
function run(b: Block, x: number[][][] | tf.Tensor3D, valid?: number[][], mode: "eval" | "train" = "eval"): number[][][] {
  return tf.tidy(() => {
    const ctx = new CallContext({ mode, rng: mulberry32(1) });
    if (valid) ctx.set("padding-mask", tf.tensor2d(valid));
    const xt = x instanceof tf.Tensor ? x : tf.tensor3d(x);
    return (b.call(xt, ctx) as tf.Tensor).arraySync() as number[][][];
  });
}

/*
 * A hand-sized GRU: input 2, units 2, row-vector convention (x W), kernel columns z | r | n.
 *   Wz = [[0.5, 0], [0, -0.5]]  Wr = I  Wn = [[0, 1], [1, 0]]       b = z [0, 0.5], r [0, 0], n [0.5, 0]
 *   Uz = I  Ur = [[0, 1], [1, 0]]  Un = [[1, 1], [0, 1]]              c = z [0, 0], r [0, 0], n [1, -1]
 * The matrices are not all symmetric, so a transposed weight changes the answer.
 */
const GRU_W = {
  "layer_0/kernel": [[0.5, 0, 1, 0, 0, 1], [0, -0.5, 0, 1, 1, 0]],
  "layer_0/bias": [0, 0.5, 0, 0, 0.5, 0],
  "layer_0/recurrent_kernel": [[1, 0, 0, 1, 1, 1], [0, 1, 1, 0, 0, 1]],
  "layer_0/recurrent_bias": [0, 0, 0, 0, 1, -1],
};
// step 1, x1 = [1, 2], h0 = 0:
//   z1 = sig(x Wz + bz) = sig([0.5, -1] + [0, 0.5]) = sig([0.5, -0.5]);  r1 = sig([1, 2])
//   n1 = tanh(x Wn + bn + r1 * (0 Un + cn)) = tanh([2.5 + r1_0, 1 - r1_1]);  h1 = (1 - z1) n1
const z1 = [sig(0.5), sig(-0.5)];
const r1 = [sig(1), sig(2)];
const n1 = [Math.tanh(2.5 + r1[0]!), Math.tanh(1 - r1[1]!)];
const h1 = [(1 - z1[0]!) * n1[0]!, (1 - z1[1]!) * n1[1]!];
// step 2, x2 = [-1, 0.5]:  x Wz + bz = [-0.5, 0.25], h1 Uz = h1;  x Wr = [-1, 0.5], h1 Ur = [h1_1, h1_0]
//   x Wn + bn = [1, -1];  h1 Un + cn = [h1_0 + 1, h1_0 + h1_1 - 1]
const z2 = [sig(-0.5 + h1[0]!), sig(0.25 + h1[1]!)];
const r2 = [sig(-1 + h1[1]!), sig(0.5 + h1[0]!)];
const n2 = [Math.tanh(1 + r2[0]! * (h1[0]! + 1)), Math.tanh(-1 + r2[1]! * (h1[0]! + h1[1]! - 1))];
const h2 = [0, 1].map((j) => (1 - z2[j]!) * n2[j]! + z2[j]! * h1[j]!);
const X1 = [1, 2];
const X2 = [-1, 0.5];

describe("gru: hand-computed forward pass", () => {
  it("one and two steps match the hand computation", () => {
    const b = built(new GRUBlock({ units: 2 }), 2);
    setWeights(b, GRU_W);
    const out = run(b, [[X1, X2]]);
    close(out[0]![0]!, h1);
    close(out[0]![1]!, h2);
    b.dispose();
  });

  it("padding carries the state and outputs zeros; left, right and more padding give the same states", () => {
    const b = built(new GRUBlock({ units: 2 }), 2);
    setWeights(b, GRU_W);
    const junk = [7, -3]; // what padding holds after the input block ([MASK] vector): must be ignored
    const out = run(b, [[X1, X2, junk, junk], [junk, X1, X2, junk], [junk, junk, X1, X2]], [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]);
    close(out[0]!.flat(), [...h1, ...h2, 0, 0, 0, 0]);
    close(out[1]!.flat(), [0, 0, ...h1, ...h2, 0, 0]);
    close(out[2]!.flat(), [0, 0, 0, 0, ...h1, ...h2]);
    // without the mask, the junk does change the left-padded row (the check above is not vacuous)
    const noMask = run(b, [[junk, junk, X1, X2]]);
    expect(maxDiff(noMask[0]![3]!, h2)).toBeGreaterThan(1e-3);
    b.dispose();
  });

  it("lstm: two steps match the hand computation (units 1, gates i | f | g | o)", () => {
    const b = built(new LSTMBlock({ units: 1 }), 1);
    // default forget bias is 1 (Keras unit_forget_bias)
    expect(Array.from(b.namedVariables().get("lstm/layer_0/bias")!.dataSync())).toEqual([0, 1, 0, 0]);
    setWeights(b, { "layer_0/kernel": [[1, 2, -1, 0.5]], "layer_0/recurrent_kernel": [[0.5, -0.5, 1, 2]], "layer_0/bias": [0, 1, 0, 0] });
    // x1 = 1, h0 = c0 = 0: pre = [1, 3, -1, 0.5];  c1 = sig(1) tanh(-1);  h1 = sig(0.5) tanh(c1)
    const c1 = sig(1) * Math.tanh(-1);
    const hh1 = sig(0.5) * Math.tanh(c1);
    // x2 = -2: pre = [-2 + 0.5 h1, -4 + 1 - 0.5 h1, 2 + h1, -1 + 2 h1]
    const c2 = sig(-3 - 0.5 * hh1) * c1 + sig(-2 + 0.5 * hh1) * Math.tanh(2 + hh1);
    const hh2 = sig(-1 + 2 * hh1) * Math.tanh(c2);
    close(run(b, [[[1], [-2]]])[0]!.flat(), [hh1, hh2]);
    // left padding: the same (the cell state is carried too)
    close(run(b, [[[9], [1], [-2]]], [[0, 1, 1]])[0]!.flat(), [0, hh1, hh2]);
    b.dispose();
  });

  it("orthogonal recurrent kernels: rows are orthonormal", () => {
    const q = orthogonalRows(4, 12, mulberry32(3));
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 4; j++) {
        let dot = 0;
        for (let k = 0; k < 12; k++) dot += q[i * 12 + k]! * q[j * 12 + k]!;
        expect(Math.abs(dot - (i === j ? 1 : 0))).toBeLessThan(1e-5);
      }
    }
  });
});

const Bn = 3, L = 6, D = 5;
const input = (seed: number) => tf.randomNormal([Bn, L, D], 0, 1, "float32", seed) as tf.Tensor3D;
const perturbFrom = (x: tf.Tensor3D, from: number) =>
  tf.tidy(() => tf.tensor3d((x.arraySync() as number[][][]).map((row) => row.map((step, t) => (t >= from ? step.map((z) => 3 * z - 2) : step)))));

describe("gru / lstm: causality and padding on random weights", () => {
  for (const [name, make] of [["gru", () => new GRUBlock({ units: 4, numLayers: 2 })], ["lstm", () => new LSTMBlock({ units: 4, numLayers: 2 })]] as const) {
    it(`${name}: perturbing future steps does not change earlier outputs`, () => {
      const b = built(make(), D, { type: "causal" });
      const x = input(3);
      const a = run(b, x);
      for (const t of [1, 4]) {
        const xp = perturbFrom(x, t);
        const p = run(b, xp);
        for (let r = 0; r < Bn; r++) {
          for (let u = 0; u < t; u++) expect(maxDiff(a[r]![u]!, p[r]![u]!)).toBeLessThan(1e-6);
          expect(maxDiff(a[r]![t]!, p[r]![t]!)).toBeGreaterThan(1e-3);
        }
        xp.dispose();
      }
      x.dispose();
      b.dispose();
    });

    it(`${name}: the same real steps with more padding, on either side, give the same outputs`, () => {
      const b = built(make(), D);
      const x = input(4);
      const rows = x.arraySync() as number[][][];
      const junk = Array.from({ length: D }, (_, i) => 5 - i);
      // row 0 has 3 real steps: as is (L=3), right padded to 6, left padded to 6, padded both sides
      const real = rows[0]!.slice(0, 3);
      const ref = run(b, [real])[0]!;
      const padded = run(
        b,
        [[...real, junk, junk, junk], [junk, junk, junk, ...real], [junk, ...real, junk, junk]],
        [[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1], [0, 1, 1, 1, 0, 0]],
      );
      close(padded[0]!.slice(0, 3).flat(), ref.flat());
      close(padded[1]!.slice(3).flat(), ref.flat());
      close(padded[2]!.slice(1, 4).flat(), ref.flat());
      expect(Math.max(...padded[1]!.slice(0, 3).flat().map(Math.abs))).toBe(0);
      x.dispose();
      b.dispose();
    });
  }

  it("bidirectional: [forward | backward] states, the backward one starts at the last real step", () => {
    const b = built(new GRUBlock({ units: 3, bidirectional: true }), D, { type: "masked" });
    expect((b.outputSpec as TensorSpec).shape).toEqual([null, null, 6]);
    const x = input(5);
    const rows = x.arraySync() as number[][][];
    const real = rows[0]!.slice(0, 4);
    const junk = Array.from({ length: D }, () => -2);
    const ref = run(b, [real])[0]!;
    const left = run(b, [[junk, junk, ...real]], [[0, 0, 1, 1, 1, 1]])[0]!;
    close(left.slice(2).flat(), ref.flat());
    // the backward half at step 0 depends on the last step; the forward half does not
    const changed = run(b, [[...real.slice(0, 3), real[3]!.map((v) => v + 1)]])[0]!;
    expect(maxDiff(changed[0]!.slice(0, 3), ref[0]!.slice(0, 3))).toBeLessThan(1e-6);
    expect(maxDiff(changed[0]!.slice(3), ref[0]!.slice(3))).toBeGreaterThan(1e-4);
    x.dispose();
    b.dispose();
  });
});

describe("gru / lstm: block contract", () => {
  const ctx = () => new BlockContext({ rng: mulberry32(1), path: "/model/body/0" });

  it("schema defaults fill the config; getConfig round-trips; the same seed builds the same weights", () => {
    expect(new GRUBlock().config).toEqual({ type: "gru", name: "gru", units: 100, numLayers: 1, dropout: 0, bidirectional: false });
    expect(new LSTMBlock().config).toEqual({ type: "lstm", name: "lstm", units: 100, numLayers: 1, dropout: 0, bidirectional: false });
    for (const make of [() => new GRUBlock({ units: 4, numLayers: 2, name: "enc" }), () => new LSTMBlock({ units: 4, numLayers: 2, name: "enc" })]) {
      const a = built(make(), D);
      const b = createBlock(a.getConfig() as never);
      expect(b.constructor).toBe(a.constructor);
      expect(b.getConfig()).toEqual(a.getConfig());
      built(b, D);
      expect([...b.namedVariables().keys()]).toEqual([...a.namedVariables().keys()]);
      const x = input(1);
      expect(maxDiff(run(a, x).flat(2), run(b, x).flat(2))).toBe(0);
      x.dispose();
      a.dispose();
      b.dispose();
    }
    const g = built(new GRUBlock({ units: 4, numLayers: 2, bidirectional: true }), D);
    expect(Object.fromEntries([...g.namedVariables()].map(([k, v]) => [k, v.shape]))).toEqual({
      "gru/layer_0/kernel": [5, 12], "gru/layer_0/recurrent_kernel": [4, 12], "gru/layer_0/bias": [12], "gru/layer_0/recurrent_bias": [12],
      "gru/layer_0_backward/kernel": [5, 12], "gru/layer_0_backward/recurrent_kernel": [4, 12], "gru/layer_0_backward/bias": [12], "gru/layer_0_backward/recurrent_bias": [12],
      "gru/layer_1/kernel": [8, 12], "gru/layer_1/recurrent_kernel": [4, 12], "gru/layer_1/bias": [12], "gru/layer_1/recurrent_bias": [12],
      "gru/layer_1_backward/kernel": [8, 12], "gru/layer_1_backward/recurrent_kernel": [4, 12], "gru/layer_1_backward/bias": [12], "gru/layer_1_backward/recurrent_bias": [12],
    });
    g.dispose();
  });

  it("computeOutputSpec equals the real output shape; dropout only in training; no tensor leaks", () => {
    const b = built(new GRUBlock({ units: 4, numLayers: 2, dropout: 0.5 }), D);
    const spec = b.computeOutputSpec({ shape: [Bn, L, D], dtype: "float32" }, ctx());
    const x = input(2);
    const before = tf.memory().numTensors;
    const valid = [[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1]];
    const ev = run(b, x, valid, "eval");
    const tr = run(b, x, valid, "train");
    expect([ev.length, ev[0]!.length, ev[0]![0]!.length]).toEqual(spec.shape);
    expect(maxDiff(ev.flat(2), run(b, x, valid, "eval").flat(2))).toBe(0);
    expect(maxDiff(ev.flat(2), tr.flat(2))).toBeGreaterThan(1e-3);
    expect(tr.flat(2).every(Number.isFinite)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    b.dispose();
  });

  it("errors: a non-sequence input; bidirectional with causal masking", () => {
    let e: unknown;
    try {
      new GRUBlock().computeOutputSpec({ shape: [null, 8], dtype: "float32" }, ctx());
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(BlockError);
    expect([(e as BlockError).code, (e as BlockError).path]).toEqual(["incompatible_input", "/model/body/0"]);
    const schema = { columns: [{ name: "item_id", tags: ["categorical", "item-id", "list"], cardinality: 10 }] };
    const m = Model.fromConfig(
      {
        inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: 4 }, masking: { type: "causal" } },
        body: [{ type: "lstm", units: 4, bidirectional: true }],
        head: { type: "next-item-prediction", weightTying: true },
      } as never,
      schema,
    );
    e = undefined;
    try {
      m.build();
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(BlockError);
    expect([(e as BlockError).code, (e as BlockError).path]).toEqual(["incompatible_masking", "/model/body/0/bidirectional"]);
  });
});

describe("gru / lstm in a Model", () => {
  const V = 12;
  const schema = { columns: [{ name: "item_id", tags: ["categorical", "item-id", "list"], cardinality: V }] };
  const makeModel = (body: Record<string, unknown>, masking: Record<string, unknown> = { type: "causal" }, dim = 6) =>
    Model.fromConfig(
      {
        inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: dim }, embeddingInitStd: 0.5, masking },
        body: [body],
        head: { type: "next-item-prediction", weightTying: true },
      } as never,
      schema,
    ).build({ seed: 9 });
  const batch = (rows: number[][]): SequenceBatchLike => ({
    batchSize: rows.length, seqLen: rows[0]!.length, itemIds: Int32Array.from(rows.flat()), categorical: {}, continuous: {}, context: {},
    lengths: Int32Array.from(rows, (r) => r.filter((v) => v !== 0).length),
  });

  it("gradients reach every weight (gru: 2 layers, units != embedding size so the tied head projects; bidirectional lstm with masked LM)", () => {
    for (const [body, masking] of [
      [{ type: "gru", units: 4, numLayers: 2, dropout: 0.1 }, { type: "causal" }],
      [{ type: "lstm", units: 4, numLayers: 2, bidirectional: true }, { type: "masked", mlmProbability: 0.5 }],
    ] as const) {
      const model = makeModel(body, masking);
      const names = [...model.namedVariables().keys()];
      if (body.type === "gru") expect(names.some((n) => n.startsWith("head/") && n.endsWith("/projection/kernel")), names.join(", ")).toBe(true);
      const tb = model.trainBatch(batch([[3, 5, 7, 2, 0, 0], [11, 2, 4, 6, 8, 9], [0, 0, 1, 5, 3, 10]]), mulberry32(2))!;
      expect(tb).toBeDefined();
      const vars = model.namedVariables();
      const { value, grads } = tf.variableGrads(tb.loss, [...vars.values()].filter((v) => v.trainable));
      expect(Number.isFinite(value.dataSync()[0]!)).toBe(true);
      for (const [k, v] of vars) {
        if (!v.trainable) continue;
        const g = grads[v.name];
        expect(g, k).toBeDefined();
        const size = tf.tidy(() => tf.max(tf.abs(g!)).dataSync()[0]!);
        // causal: [MASK] sits only on padding and on the last item, which no label reads from -> no gradient
        if (k.endsWith("masked_item_embedding") && masking.type === "causal") expect(size, k).toBe(0);
        else expect(size, k).toBeGreaterThan(0);
      }
      tf.dispose([value, ...Object.values(grads)]);
      model.dispose();
    }
  });

  it("left-, right- and more-padded sessions get the same recommendations", () => {
    const model = makeModel({ type: "gru", units: 6 });
    const scores = (rows: number[][]) => {
      const top = model.topK(batch(rows), V - 1);
      return Array.from({ length: rows.length }, (_, r) => {
        const out = new Array<number>(V).fill(0);
        for (let j = 0; j < top.k; j++) out[top.itemIds[r * top.k + j]!] = top.scores[r * top.k + j]!;
        return out;
      });
    };
    const [a, b, c] = scores([[4, 2, 9, 0, 0, 0], [0, 0, 0, 4, 2, 9], [0, 4, 2, 9, 0, 0]]);
    const d = scores([[4, 2, 9]])[0]!;
    close(b!, a!);
    close(c!, a!);
    close(d, a!);
    model.dispose();
  });

  it("save / load gives the same predictions", () => {
    const model = makeModel({ type: "lstm", units: 6, numLayers: 2 });
    const b = batch([[3, 5, 7, 0, 0], [11, 2, 4, 6, 8]]);
    const dir = join(tmp, "lstm-model");
    saveModelDir(dir, { model, recipe: { name: "t" }, featureSchema: schema as never, vocabularies: {}, itemColumn: "item_id", maxSequenceLength: 5, metrics: {} });
    const loaded = loadModelDir(dir);
    const other = Model.fromConfig(model.toRecipe(), schema).build({ seed: 10 });
    const x = model.topK(b, 11), y = loaded.model.topK(b, 11), z = other.topK(b, 11);
    expect(Array.from(y.itemIds)).toEqual(Array.from(x.itemIds));
    expect(maxDiff(Array.from(y.scores), Array.from(x.scores))).toBeLessThan(1e-6);
    expect(maxDiff(Array.from(z.scores), Array.from(x.scores))).toBeGreaterThan(1e-3);
    expect(loaded.model.toRecipe()).toEqual(model.toRecipe());
    for (const m of [model, loaded.model, other]) m.dispose();
  });
});

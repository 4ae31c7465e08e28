/**
 * The presets added for Transformers4Rec parity (roberta, electra, albert) and the modern decoder
 * (llama): shapes, causality, padding, gradients, and the maths each one adds (ALBERT's sharing and
 * factorised embeddings, RoBERTa's position offset, RMSNorm, rotary positions, SwiGLU) against
 * hand-computed values.
 */
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import "../../../blocks/index.js";
import { validFromLengths, type KeyPadding } from "../../../blocks/attention/masks.js";
import { createRmsNorm, rmsNorm, variableFactory } from "../../../blocks/attention/ops.js";
import { applyRope, ropeTables, ropeTableValues } from "../../../blocks/attention/rope.js";
import { TransformerBlock } from "../../../blocks/sequence/transformer.js";
import {
  MORE_ARCHITECTURES, createTransformerParams, defaultFeedForwardSize, inputSize, layerSchedule, maxInputLength, swiGlu, transformerForward,
  type Architecture, type TransformerParams, type TransformerSettings,
} from "../../../blocks/sequence/transformer-layers.js";
import { BlockContext, BlockError, CallContext, createBlock } from "../../../src/core/index.js";
import { Rng } from "../../../src/engine/random.js";
import { mulberry32 } from "../../../src/masking/index.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const B = 3, L = 6, D = 8, E = 6;
/** Settings of a small preset; albert and electra get factorised embeddings (E = 6 -> D = 8). */
const settings = (architecture: Architecture, over: Partial<TransformerSettings> = {}): TransformerSettings => ({
  architecture, dModel: D, numHeads: 2, numLayers: 2, maxSequenceLength: L, dropout: 0.2, activation: "gelu",
  feedForwardSize: defaultFeedForwardSize(architecture, D), layerNormEps: 1e-5, initializerRange: 0.3,
  ...(architecture === "albert" || architecture === "electra" ? { embeddingSize: E } : {}),
  ...over,
});
const build = (s: TransformerSettings, seed = 1) => {
  const made = new Map<string, tf.Variable>();
  const params = createTransformerParams(s, variableFactory(new Rng(seed), made));
  return { params, made };
};
const input = (seed: number, dim = D) => tf.randomNormal([B, L, dim], 0, 1, "float32", seed) as tf.Tensor3D;
const rows = (t: tf.Tensor) => t.arraySync() as number[][][];
const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
const eval_ = { training: false };
const fwd = (p: TransformerParams, s: TransformerSettings, x: tf.Tensor3D, causal: boolean, padding: KeyPadding = { kind: "none" }) =>
  rows(tf.tidy(() => transformerForward(p, s, x, { padding, causal }, eval_).output));
/** x with positions >= from replaced by other values. */
const perturbFrom = (x: tf.Tensor3D, from: number) =>
  tf.tidy(() => tf.tensor3d(rows(x).map((row) => row.map((step, t) => (t >= from ? step.map((z) => 3 * z - 2) : step)))));
const count = (made: Map<string, tf.Variable>) => [...made.values()].reduce((n, v) => n + v.size, 0);

describe.each(MORE_ARCHITECTURES)("%s preset", (arch) => {
  const causalByDefault = arch === "llama" || arch === "transfo-xl";
  const dIn = inputSize(settings(arch));

  it("maps [B, L, D_in] to [B, L, dModel] without leaking tensors", () => {
    const s = settings(arch);
    const { params } = build(s);
    const x = input(1, dIn);
    const before = tf.memory().numTensors;
    for (const training of [false, true]) {
      const out = tf.tidy(() => transformerForward(params, s, x, { padding: { kind: "none" }, causal: causalByDefault }, { training, rng: new Rng(2) }).output);
      expect(out.shape).toEqual([B, L, D]);
      expect(Array.from(out.dataSync()).every(Number.isFinite)).toBe(true);
      out.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it(causalByDefault ? "is causal: perturbing future items leaves earlier outputs unchanged" : "is bidirectional: earlier outputs depend on later items", () => {
    const b = new TransformerBlock({ architecture: arch, dModel: D, numHeads: 2, numLayers: 2, maxSequenceLength: L, initializerRange: 0.3, ...(dIn !== D ? { embeddingSize: dIn } : {}) });
    const ctx = new BlockContext({ rng: mulberry32(5), path: "/model/body/0" });
    ctx.set("masking", { type: causalByDefault ? "causal" : "masked" });
    b.build({ shape: [null, null, dIn], dtype: "float32" }, ctx);
    expect(b.causal).toBe(causalByDefault);
    const run = (xx: tf.Tensor3D) => rows(tf.tidy(() => b.call(xx, new CallContext({ mode: "eval", rng: mulberry32(1) })) as tf.Tensor));
    const x = input(3, dIn);
    const a = run(x);
    for (const t of [1, 3, L - 1]) {
      const p = run(perturbFrom(x, t));
      for (let r = 0; r < B; r++) {
        if (causalByDefault) for (let u = 0; u < t; u++) expect(maxDiff(a[r]![u]!, p[r]![u]!)).toBeLessThan(1e-5);
        else expect(maxDiff(a[r]![0]!, p[r]![0]!)).toBeGreaterThan(1e-4);
        expect(maxDiff(a[r]![t]!, p[r]![t]!)).toBeGreaterThan(1e-3);
      }
    }
    b.dispose();
  });

  if (!causalByDefault) {
    it("is causal with causal masking (as bert)", () => {
      const s = settings(arch);
      const { params } = build(s);
      const x = input(4, dIn);
      const a = fwd(params, s, x, true), p = fwd(params, s, perturbFrom(x, 2), true);
      for (let r = 0; r < B; r++) for (let u = 0; u < 2; u++) expect(maxDiff(a[r]![u]!, p[r]![u]!)).toBeLessThan(1e-5);
    });
  }

  for (const causal of [false, true]) {
    it(`padding (${causal ? "causal" : "bidirectional"}): real outputs do not depend on padding contents, right or left`, () => {
      const s = settings(arch);
      const { params } = build(s);
      for (const side of ["right", "left"] as const) {
        const valid = validFromLengths([6, 3, 1], L, side);
        const x = input(5, dIn);
        const xPad = tf.tensor3d(rows(x).map((row, b) => row.map((step, t) => (valid[b * L + t] ? step : step.map((z) => -5 * z + 2)))));
        const a = fwd(params, s, x, causal, { kind: "host", valid }), p = fwd(params, s, xPad, causal, { kind: "host", valid });
        const c = fwd(params, s, xPad, causal, { kind: "tensor", valid: tf.tensor2d(Array.from(valid), [B, L]) });
        const n = fwd(params, s, x, causal);
        let changedWithoutMask = false;
        for (let r = 0; r < B; r++) for (let t = 0; t < L; t++) {
          if (!valid[r * L + t]) continue;
          expect(maxDiff(a[r]![t]!, p[r]![t]!)).toBeLessThan(1e-5);
          expect(maxDiff(p[r]![t]!, c[r]![t]!)).toBeLessThan(1e-5);
          if (maxDiff(a[r]![t]!, n[r]![t]!) > 1e-4) changedWithoutMask = true;
        }
        if (!causal || side === "left") expect(changedWithoutMask).toBe(true);
      }
    });
  }

  it("dropout: only in training, reproducible from the seed", () => {
    const s = settings(arch);
    const { params } = build(s);
    const x = input(18, dIn);
    const run = (training: boolean, seed: number) =>
      Array.from(tf.tidy(() => transformerForward(params, s, x, { padding: { kind: "none" }, causal: causalByDefault }, { training, rng: new Rng(seed) }).output).dataSync());
    expect(run(false, 1)).toEqual(run(false, 2));
    expect(run(true, 7)).toEqual(run(true, 7));
    expect(maxDiff(run(true, 7), run(true, 8))).toBeGreaterThan(1e-3);
    expect(maxDiff(run(true, 7), run(false, 7))).toBeGreaterThan(1e-3);
  });

  it("getConfig round-trips through createBlock: same weight names, same seed, same outputs", () => {
    const config = { architecture: arch, name: "enc", dModel: D, numHeads: 2, numLayers: 2, maxSequenceLength: L, initializerRange: 0.3, ...(dIn !== D ? { embeddingSize: dIn } : {}) };
    const make = (c: Record<string, unknown>) => {
      const b = createBlock(c as never) as TransformerBlock;
      const ctx = new BlockContext({ rng: mulberry32(5), path: "/model/body/0" });
      ctx.set("masking", { type: causalByDefault ? "causal" : "masked" });
      b.build({ shape: [null, null, dIn], dtype: "float32" }, ctx);
      return b;
    };
    const a = make({ type: "transformer", ...config });
    const b = make(a.getConfig() as never);
    expect(b.getConfig()).toEqual(a.getConfig());
    expect([...b.namedVariables().keys()]).toEqual([...a.namedVariables().keys()]);
    const x = input(17, dIn);
    const run = (blk: TransformerBlock) => Array.from(tf.tidy(() => (blk.call(x, new CallContext({ mode: "eval", rng: mulberry32(1) })) as tf.Tensor).dataSync()));
    expect(maxDiff(run(a), run(b))).toBe(0);
    a.dispose();
    b.dispose();
  });

  it("gradients reach every weight and the input (training, with dropout and padding)", () => {
    const s = settings(arch, { dropout: 0.1, numLayers: 3 });
    const { params, made } = build(s);
    const x = input(6, dIn);
    const w = tf.randomNormal([B, L, D], 0, 1, "float32", 7);
    const valid = validFromLengths([6, 4, 2], L);
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() =>
      tf.sum(tf.mul(transformerForward(params, s, x, { padding: { kind: "host", valid }, causal: causalByDefault }, { training: true, rng: new Rng(3) }).output, w)) as tf.Scalar,
    );
    expect(Number.isFinite(value.dataSync()[0])).toBe(true);
    for (const [name, v] of made) {
      const g = grads[v.name];
      expect(g, name).toBeDefined();
      const norm = tf.tidy(() => tf.norm(g!).dataSync()[0]!);
      expect(Number.isFinite(norm), name).toBe(true);
      expect(norm, name).toBeGreaterThan(0);
    }
    const dx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(transformerForward(params, s, xx as tf.Tensor3D, { padding: { kind: "none" }, causal: causalByDefault }, eval_).output, w)))(x);
    expect(tf.tidy(() => tf.norm(dx).dataSync()[0])).toBeGreaterThan(0);
    value.dispose(); dx.dispose();
    for (const g of Object.values(grads)) g.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe("albert: cross-layer sharing and factorised embeddings", () => {
  it("holds one layer's weights + the E -> dModel projection + E-sized positions and norm, whatever numLayers", () => {
    const F = 4 * D;
    const oneLayer =
      D * 3 * D + 3 * D + // fused q/k/v with bias
      D * D + D + // attention output
      2 * D + // attention layer norm
      D * F + F + F * D + D + // feed-forward
      2 * D; // feed-forward layer norm
    const projection = E * D + D;
    const embeddings = (L + 2) * E + 2 * E; // positions (maxSequenceLength + 2 rows) and the input layer norm, in E
    expect(oneLayer).toBe(872); // 8*24+24 + 64+8 + 16 + 256+32 + 256+8 + 16
    expect(projection + embeddings).toBe(56 + 48 + 12);
    for (const numLayers of [1, 2, 6]) {
      const { made } = build(settings("albert", { numLayers }));
      expect(count(made)).toBe(oneLayer + projection + embeddings);
      expect([...made.keys()].filter((k) => k.startsWith("shared_layer_0/")).length).toBe(12);
      expect([...made.keys()].some((k) => k.startsWith("shared_layer_1/"))).toBe(false);
    }
    // bert-style electra with the same sizes: numLayers sets of layer weights
    expect(count(build(settings("electra", { numLayers: 6 })).made)).toBe(6 * oneLayer + projection + embeddings);
    // numHiddenGroups sets: Hugging Face's group index floor(i / (numLayers / groups))
    expect(count(build(settings("albert", { numLayers: 4, numHiddenGroups: 2 })).made)).toBe(2 * oneLayer + projection + embeddings);
    expect(layerSchedule({ architecture: "albert", numLayers: 4, numHiddenGroups: 2 })).toEqual([0, 0, 1, 1]);
    expect(layerSchedule({ architecture: "albert", numLayers: 3 })).toEqual([0, 0, 0]);
    // ALBERT always projects, even when embeddingSize = dModel (embedding_hidden_mapping_in); ELECTRA only when they differ
    expect(build(settings("albert", { embeddingSize: undefined })).params.inputProjection).toBeDefined();
    expect(build(settings("electra", { embeddingSize: undefined })).params.inputProjection).toBeUndefined();
  });

  it("applies the shared layer at every depth: equal to a bert-style stack of copies; changing the shared weight changes every layer", () => {
    const s = settings("albert", { numLayers: 3 });
    const { params } = build(s);
    const shared = params.layers[0]!;
    const copy = () => {
      const c = (v: tf.Tensor) => tf.variable(v.clone());
      return {
        attention: { qkv: { kernel: c(shared.attention.qkv.kernel), bias: c(shared.attention.qkv.bias!) }, out: { kernel: c(shared.attention.out.kernel), bias: c(shared.attention.out.bias!) } },
        attentionNorm: { gamma: c(shared.attentionNorm.gamma), beta: c(shared.attentionNorm.beta) },
        feedForwardInner: { kernel: c(shared.feedForwardInner.kernel), bias: c(shared.feedForwardInner.bias!) },
        feedForwardOutput: { kernel: c(shared.feedForwardOutput.kernel), bias: c(shared.feedForwardOutput.bias!) },
        feedForwardNorm: { gamma: c(shared.feedForwardNorm.gamma), beta: c(shared.feedForwardNorm.beta) },
      };
    };
    const copies = [copy(), copy(), copy()];
    const stacked: TransformerParams = { ...params, layers: copies };
    const sElectra = settings("electra", { numLayers: 3 });
    const x = input(8, E);
    const a = fwd(params, s, x, false);
    expect(maxDiff(a.flat(2), fwd(stacked, sElectra, x, false).flat(2))).toBeLessThan(1e-6);

    // the gradient of the shared weight is the sum of the gradients of its three applications
    const w = tf.randomNormal([B, L, D], 0, 1, "float32", 9);
    const gShared = tf.grad((k: tf.Tensor) => {
      const p: TransformerParams = { ...params, layers: [{ ...shared, feedForwardInner: { kernel: k, bias: shared.feedForwardInner.bias! } }] };
      return tf.sum(tf.mul(transformerForward(p, s, x, { padding: { kind: "none" }, causal: false }, eval_).output, w));
    })(shared.feedForwardInner.kernel);
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(transformerForward(stacked, sElectra, x, { padding: { kind: "none" }, causal: false }, eval_).output, w)) as tf.Scalar,
      copies.map((c) => c.feedForwardInner.kernel as tf.Variable));
    const perLayer = copies.map((c) => grads[(c.feedForwardInner.kernel as tf.Variable).name]!);
    for (const g of perLayer) expect(tf.norm(g).dataSync()[0]).toBeGreaterThan(1e-6);
    expect(maxDiff(Array.from(gShared.dataSync()), Array.from(tf.addN(perLayer).dataSync()))).toBeLessThan(1e-4);

    // changing the shared weight = changing it in every layer of the stack, not only in the first
    const changed = tf.tidy(() => tf.mul(shared.attention.out.kernel, -1.5));
    (shared.attention.out.kernel as tf.Variable).assign(changed);
    const a2 = fwd(params, s, x, false);
    (copies[0]!.attention.out.kernel as tf.Variable).assign(changed);
    const firstOnly = fwd(stacked, sElectra, x, false);
    for (const c of copies.slice(1)) (c.attention.out.kernel as tf.Variable).assign(changed);
    const all = fwd(stacked, sElectra, x, false);
    expect(maxDiff(a2.flat(2), a.flat(2))).toBeGreaterThan(1e-3);
    expect(maxDiff(a2.flat(2), all.flat(2))).toBeLessThan(1e-6);
    expect(maxDiff(a2.flat(2), firstOnly.flat(2))).toBeGreaterThan(1e-3);
  });
});

describe("electra and roberta against bert", () => {
  it("electra with embeddingSize = dModel is bert: same weights from the same seed, same outputs", () => {
    const sb = settings("bert"), se = settings("electra", { embeddingSize: undefined });
    const pb = build(sb, 4), pe = build(se, 4);
    expect([...pe.made.keys()]).toEqual([...pb.made.keys()]);
    const x = input(10);
    for (const causal of [false, true]) expect(maxDiff(fwd(pb.params, sb, x, causal).flat(2), fwd(pe.params, se, x, causal).flat(2))).toBe(0);
  });

  it("roberta is bert reading its position table from row 1 (RoBERTa's padding_idx + 1 offset)", () => {
    const sb = settings("bert"), sr = settings("roberta");
    const pb = build(sb, 4), pr = build(sr, 4);
    expect(pr.params.positions!.shape).toEqual([L + 2, D]);
    const x = input(11);
    const bertOut = fwd(pb.params, sb, x, false);
    // same table: outputs differ (roberta reads rows 1..L, bert rows 0..L-1)
    expect(maxDiff(bertOut.flat(2), fwd(pr.params, sr, x, false).flat(2))).toBeGreaterThan(1e-4);
    // shift the table by one row: identical computation
    pr.params.positions!.assign(tf.concat([tf.zeros([1, D]), tf.slice(pb.params.positions!, [0, 0], [L + 1, D])], 0));
    expect(maxDiff(bertOut.flat(2), fwd(pr.params, sr, x, false).flat(2))).toBe(0);
    expect(maxInputLength(sr)).toBe(L + 1);
    expect(maxInputLength(sb)).toBe(L + 2);
  });
});

describe("llama: RMSNorm, rotary positions, SwiGLU", () => {
  it("RMSNorm: x / sqrt(mean(x^2) + eps) * gain, hand-computed", () => {
    const p = createRmsNorm(variableFactory(new Rng(1)), "n", 4);
    p.gamma.assign(tf.tensor1d([1, 1, 2, 0.5]));
    const out = Array.from(rmsNorm(tf.tensor2d([[1, 2, 3, 4], [0, 0, 0, 2]]), p, 1e-6).dataSync());
    const r1 = Math.sqrt(30 / 4 + 1e-6), r2 = Math.sqrt(4 / 4 + 1e-6);
    const want = [1 / r1, 2 / r1, 6 / r1, 2 / r1, 0, 0, 0, 1 / r2];
    expect(maxDiff(out, want)).toBeLessThan(1e-6);
  });

  it("RoPE rotates the pair (i, i + dHead/2) by position * theta^(-2i/dHead), hand-computed", () => {
    // dHead 2: one pair rotated by the angle t (invFreq 1)
    const { cos, sin } = ropeTableValues(4, 2, 10000);
    expect(maxDiff(Array.from(cos), [1, 1, Math.cos(1), Math.cos(1), Math.cos(2), Math.cos(2), Math.cos(3), Math.cos(3)])).toBeLessThan(1e-7);
    const x = tf.tensor4d([1, 0, 1, 0, 1, 0, 0.6, 0.8], [1, 1, 4, 2]);
    const r = Array.from(applyRope(x, ropeTables(4, 2, 10000)).dataSync());
    const rot = (a: number, b: number, t: number) => [a * Math.cos(t) - b * Math.sin(t), b * Math.cos(t) + a * Math.sin(t)];
    expect(maxDiff(r, [...rot(1, 0, 0), ...rot(1, 0, 1), ...rot(1, 0, 2), ...rot(0.6, 0.8, 3)])).toBeLessThan(1e-6);
    // dHead 4, theta 100: pairs (0, 2) at angle t and (1, 3) at angle t / 100^(2/4) = t / 10
    const v = [0.3, -1.2, 0.7, 2.0];
    const y = Array.from(applyRope(tf.tensor4d([...v, ...v, ...v, ...v], [1, 1, 4, 4]), ropeTables(4, 4, 100)).dataSync()).slice(12);
    const [a0, a2] = rot(v[0]!, v[2]!, 3), [a1, a3] = rot(v[1]!, v[3]!, 0.3);
    expect(maxDiff(y, [a0!, a1!, a2!, a3!])).toBeLessThan(1e-6);
  });

  it("RoPE: q_m · k_n depends only on the offset m - n", () => {
    const dh = 8, n = 12;
    const q = [0.5, -1, 2, 0.1, 0.3, -0.7, 1.1, 0.9], k = [-0.2, 0.4, 1.5, -1.3, 0.8, 0.05, -0.6, 1.0];
    const tables = ropeTables(n, dh, 10000);
    const rq = applyRope(tf.tensor4d(Array(n).fill(q).flat(), [1, 1, n, dh]), tables).arraySync() as number[][][][];
    const rk = applyRope(tf.tensor4d(Array(n).fill(k).flat(), [1, 1, n, dh]), tables).arraySync() as number[][][][];
    const dot = (m: number, j: number) => rq[0]![0]![m]!.reduce((acc, v, i) => acc + v * rk[0]![0]![j]![i]!, 0);
    for (const offset of [0, 1, 3, -2]) {
      const ref = dot(Math.max(offset, 0), Math.max(-offset, 0));
      for (let m = 0; m < n; m++) {
        const j = m - offset;
        if (j < 0 || j >= n) continue;
        expect(Math.abs(dot(m, j) - ref)).toBeLessThan(1e-5);
      }
    }
    expect(Math.abs(dot(3, 0) - dot(1, 0))).toBeGreaterThan(1e-3);
  });

  it("relative positions: a left-padded row gives the outputs of the same row right-padded", () => {
    const s = settings("llama");
    const { params } = build(s);
    const lengths = [6, 4, 2];
    const x = rows(input(12));
    const left = x.map((row, b) => row.map((_, t) => row[t - (L - lengths[b]!)] ?? row[t]!));
    const r = fwd(params, s, tf.tensor3d(x), true, { kind: "host", valid: validFromLengths(lengths, L, "right") });
    const l = fwd(params, s, tf.tensor3d(left), true, { kind: "host", valid: validFromLengths(lengths, L, "left") });
    for (let b = 0; b < B; b++) for (let t = 0; t < lengths[b]!; t++) expect(maxDiff(r[b]![t]!, l[b]![t + L - lengths[b]!]!)).toBeLessThan(1e-5);
  });

  it("SwiGLU: W_down (silu(x W_gate) * (x W_up)), hand-computed", () => {
    const silu = (z: number) => z / (1 + Math.exp(-z));
    // D = 2, F = 2; gateUp columns: gate0 gate1 | up0 up1
    const gateUp = { kernel: tf.tensor2d([[1, 0.5, 2, -1], [-1, 0.25, 0.5, 1]]) };
    const down = { kernel: tf.tensor2d([[1, -2], [0.5, 3]]) };
    const x = [0.6, -0.4];
    const g = [0.6 + 0.4, 0.3 - 0.1], u = [1.2 - 0.2, -0.6 - 0.4];
    const h = [silu(g[0]!) * u[0]!, silu(g[1]!) * u[1]!];
    const want = [h[0]! * 1 + h[1]! * 0.5, h[0]! * -2 + h[1]! * 3];
    expect(maxDiff(Array.from(swiGlu(tf.tensor2d([x]), gateUp, down).dataSync()), want)).toBeLessThan(1e-6);
  });

  it("weights: no biases, RMS norm gains only, SwiGLU hidden size 8/3 dModel rounded up to a multiple of 8", () => {
    expect([defaultFeedForwardSize("llama", 64), defaultFeedForwardSize("llama", 48), defaultFeedForwardSize("llama", 8), defaultFeedForwardSize("bert", 8)]).toEqual([176, 128, 24, 32]);
    const { made } = build(settings("llama"));
    expect([...made.keys()].some((k) => k.endsWith("/bias") || k.endsWith("/beta"))).toBe(false);
    expect(made.get("layer_0/feed_forward/gate_up/kernel")!.shape).toEqual([D, 48]);
    expect(made.get("layer_0/feed_forward/down/kernel")!.shape).toEqual([24, D]);
    const perLayer = D + D * 3 * D + D * D + D + D * 48 + 24 * D;
    expect(count(made)).toBe(2 * perLayer + D);
  });
});

describe("preset configuration errors", () => {
  const spec = (config: Record<string, unknown>, dim: number, masking?: { type: string }) => {
    const ctx = new BlockContext({ rng: mulberry32(1), path: "/model/body/0" });
    if (masking) ctx.set("masking", masking);
    return new TransformerBlock({ dModel: 8, numHeads: 2, ...config }).computeOutputSpec({ shape: [null, 6, dim], dtype: "float32" }, ctx);
  };
  const err = (f: () => unknown): BlockError => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(BlockError);
      return e as BlockError;
    }
    throw new Error("expected a BlockError");
  };

  it("albert/electra take an input of embeddingSize and output dModel", () => {
    expect(spec({ architecture: "albert", embeddingSize: 4 }, 4).shape).toEqual([null, 6, 8]);
    expect(spec({ architecture: "electra", embeddingSize: 4 }, 4).shape).toEqual([null, 6, 8]);
    const e = err(() => spec({ architecture: "albert", embeddingSize: 4 }, 8));
    expect([e.code, e.path]).toEqual(["incompatible_input", "/model/body/0/embeddingSize"]);
    expect(e.issues[0]!.hint).toMatch(/dOutput: 4/);
    const e2 = err(() => spec({ architecture: "gpt2", embeddingSize: 4 }, 4));
    expect([e2.code, e2.path]).toEqual(["incompatible_config", "/model/body/0/embeddingSize"]);
    const e3 = err(() => spec({ architecture: "albert", numLayers: 3, numHiddenGroups: 2 }, 8));
    expect([e3.code, e3.path]).toEqual(["incompatible_config", "/model/body/0/numHiddenGroups"]);
  });

  it("llama is a causal decoder: causal false and masked LM are refused; odd head sizes too", () => {
    const e = err(() => spec({ architecture: "llama", causal: false }, 8));
    expect([e.code, e.path]).toEqual(["incompatible_config", "/model/body/0/causal"]);
    const e2 = err(() => spec({ architecture: "llama" }, 8, { type: "masked" }));
    expect([e2.code, e2.path]).toEqual(["incompatible_masking", "/model/body/0/architecture"]);
    const e3 = err(() => spec({ architecture: "llama", dModel: 6, numHeads: 2 }, 6));
    expect([e3.code, e3.path]).toEqual(["incompatible_config", "/model/body/0/numHeads"]);
    // no position table: any length
    expect(spec({ architecture: "llama", maxSequenceLength: 2 }, 8).shape).toEqual([null, 6, 8]);
  });

  it("transfo-xl is a causal decoder; its memory options belong to it only", () => {
    expect(spec({ architecture: "transfo-xl", maxSequenceLength: 2 }, 8, { type: "causal" }).shape).toEqual([null, 6, 8]);
    const e = err(() => spec({ architecture: "transfo-xl" }, 8, { type: "masked" }));
    expect([e.code, e.path]).toEqual(["incompatible_masking", "/model/body/0/architecture"]);
    const e2 = err(() => spec({ architecture: "xlnet", segmentLength: 2 }, 8));
    expect([e2.code, e2.path]).toEqual(["incompatible_config", "/model/body/0/segmentLength"]);
  });
});

describe("transfo-xl: relative positions and segment-recurrence memory", () => {
  it("the memory slots take part in attention (memLength 0 vs 1, same weights)", () => {
    const s1 = settings("transfo-xl"), s0 = settings("transfo-xl", { memLength: 0 });
    const { params } = build(s1);
    const x = input(13);
    expect(maxDiff(fwd(params, s1, x, true).flat(2), fwd(params, s0, x, true).flat(2))).toBeGreaterThan(1e-4);
  });

  it("one layer, segments of 3 with a memory of 3: the second segment sees exactly steps 0..5 at their true distances", () => {
    const seg = settings("transfo-xl", { numLayers: 1, segmentLength: 3, memLength: 3 });
    const whole = settings("transfo-xl", { numLayers: 1, memLength: 0 });
    const { params } = build(seg);
    const x = input(14);
    const a = fwd(params, seg, x, true), b = fwd(params, whole, x, true);
    for (let r = 0; r < B; r++) {
      for (let t = 3; t < L; t++) expect(maxDiff(a[r]![t]!, b[r]![t]!)).toBeLessThan(1e-5);
      // the first segment attends the three zero memory slots instead
      expect(maxDiff(a[r]![1]!, b[r]![1]!)).toBeGreaterThan(1e-5);
    }
  });

  it("segment recurrence carries information across segments only through the memory", () => {
    const x = input(15);
    const xp = perturbFrom(x, 0);
    // only step 0 changed
    const x0 = tf.tensor3d(rows(x).map((row, b) => row.map((step, t) => (t === 0 ? rows(xp)[b]![0]! : step))));
    for (const memLength of [0, 2]) {
      const s = settings("transfo-xl", { segmentLength: 2, memLength });
      const { params } = build(s);
      const a = fwd(params, s, x, true), b = fwd(params, s, x0, true);
      const moved = maxDiff(a[0]![4]!, b[0]![4]!);
      if (memLength === 0) expect(moved).toBeLessThan(1e-6);
      else expect(moved).toBeGreaterThan(1e-4); // step 0 -> memory of segment 1 (layer 0) -> memory of segment 2 (layer 1) -> step 4
    }
  });

  it("padding with segments and memory: real outputs do not depend on padding contents, right or left", () => {
    const s = settings("transfo-xl", { segmentLength: 2, memLength: 2, numLayers: 2 });
    const { params } = build(s);
    for (const side of ["right", "left"] as const) {
      const valid = validFromLengths([6, 3, 1], L, side);
      const x = input(16);
      const xPad = tf.tensor3d(rows(x).map((row, b) => row.map((step, t) => (valid[b * L + t] ? step : step.map((z) => -5 * z + 2)))));
      const a = fwd(params, s, x, true, { kind: "host", valid }), p = fwd(params, s, xPad, true, { kind: "tensor", valid: tf.tensor2d(Array.from(valid), [B, L]) });
      for (let r = 0; r < B; r++) for (let t = 0; t < L; t++) if (valid[r * L + t]) expect(maxDiff(a[r]![t]!, p[r]![t]!)).toBeLessThan(1e-5);
    }
  });

  it("has XLNet's weights per layer and no position table", () => {
    const { params, made } = build(settings("transfo-xl"));
    expect(params.positions).toBeUndefined();
    expect(made.size).toBe(2 * (2 + 3 + 4 + 4));
    expect(maxInputLength(settings("transfo-xl"))).toBe(Infinity);
  });
});

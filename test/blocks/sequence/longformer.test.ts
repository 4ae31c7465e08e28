/**
 * The longformer preset (Transformers4Rec's "longformer"): RoBERTa's layers with Longformer's sliding
 * window attention. Checked: the attention bias by hand (window, causal, padding; host and tensor masks
 * agree), a step's output does not depend on steps outside its window (one layer) and does on steps
 * inside it, with a window covering the whole sequence it is exactly roberta with the same weights, its
 * option errors, its maskings, and recipes/longformer-mlm.yaml trains one short epoch.
 */
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import "../../../blocks/index.js";
import { attentionBias, MASKED_SCORE, validFromLengths } from "../../../blocks/attention/masks.js";
import { variableFactory } from "../../../blocks/attention/ops.js";
import { TransformerBlock } from "../../../blocks/sequence/transformer.js";
import { createTransformerParams, defaultFeedForwardSize, transformerForward, type TransformerSettings } from "../../../blocks/sequence/transformer-layers.js";
import { BlockContext, BlockError } from "../../../src/core/index.js";
import { Rng } from "../../../src/engine/random.js";
import { maskingMismatch, mulberry32 } from "../../../src/masking/index.js";
import { trainOneShortEpoch } from "../recipe-epoch.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const B = 2, L = 7, D = 8;
const settings = (architecture: "longformer" | "roberta", over: Partial<TransformerSettings> = {}): TransformerSettings => ({
  architecture, dModel: D, numHeads: 2, numLayers: 1, maxSequenceLength: L, dropout: 0.1, activation: "gelu",
  feedForwardSize: defaultFeedForwardSize(architecture, D), layerNormEps: 1e-5, initializerRange: 0.3, ...over,
});
const params = (s: TransformerSettings) => createTransformerParams(s, variableFactory(new Rng(7), new Map()));
const x0 = () => tf.randomNormal([B, L, D], 0, 1, "float32", 11) as tf.Tensor3D;
const run = (s: TransformerSettings, p: ReturnType<typeof params>, x: tf.Tensor3D, causal = false) =>
  tf.tidy(() => transformerForward(p, s, x, { padding: { kind: "none" }, causal }, { training: false }).output.arraySync() as number[][][]);
/** x with step t of every row replaced. */
const perturb = (x: tf.Tensor3D, t: number) =>
  tf.tidy(() => tf.tensor3d((x.arraySync() as number[][][]).map((row) => row.map((v, u) => (u === t ? v.map((z) => 2 - 3 * z) : v)))));
const diff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));

describe("sliding-window attention bias", () => {
  it("forbids |i - j| > window, by hand, with causal and padding rules on top; host and tensor masks agree", () => {
    const allowed = (bias: tf.Tensor, b = 0) => (bias.arraySync() as number[][][])[b]!.map((row) => row.map((v) => (v === 0 ? 1 : 0)));
    // no padding, L = 4, window 1: a band of width 3
    expect(allowed(attentionBias({ kind: "none" }, 1, 4, false, 1)!)).toEqual([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]]);
    // causal and window 1: the diagonal and the one before
    expect(allowed(attentionBias({ kind: "none" }, 1, 4, true, 1)!)).toEqual([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]);
    // a window as wide as the sequence changes nothing: no bias at all
    expect(attentionBias({ kind: "none" }, 1, 4, false, 3)).toBeNull();
    // padding (row 0 has 3 real steps) and window 1: step 3 is padding, it attends itself only
    const valid = validFromLengths([3, 4], 4);
    const host = attentionBias({ kind: "host", valid }, 2, 4, false, 1)!;
    expect(allowed(host, 0)).toEqual([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 1, 1]]);
    expect((host.arraySync() as number[][][])[0]![0]![2]).toBe(MASKED_SCORE);
    const tensor = attentionBias({ kind: "tensor", valid: tf.tensor2d(Array.from(valid), [2, 4], "int32") }, 2, 4, false, 1)!;
    expect(allowed(tensor, 0)).toEqual(allowed(host, 0));
    expect(allowed(tensor, 1)).toEqual(allowed(host, 1));
    const tensorCausal = attentionBias({ kind: "tensor", valid: tf.tensor2d(Array.from(valid), [2, 4], "int32") }, 2, 4, true, 1)!;
    const hostCausal = attentionBias({ kind: "host", valid }, 2, 4, true, 1)!;
    for (const b of [0, 1]) expect(allowed(tensorCausal, b)).toEqual(allowed(hostCausal, b));
  });
});

describe("longformer preset", () => {
  it("one layer, attentionWindow 4: step 3 sees steps 1..5 and nothing further", () => {
    const s = settings("longformer", { attentionWindow: 4 });
    const p = params(s);
    const x = x0();
    const base = run(s, p, x);
    for (let t = 0; t < L; t++) {
      const out = run(s, p, perturb(x, t));
      const d = diff(base[0]![3]!, out[0]![3]!);
      if (Math.abs(t - 3) <= 2) expect(d, `step ${t}`).toBeGreaterThan(1e-4);
      else expect(d, `step ${t}`).toBeLessThan(1e-6);
    }
  });

  it("with a window covering the sequence it is roberta with the same weights (same parameters, same outputs)", () => {
    const lf = settings("longformer", { attentionWindow: 2 * L, numLayers: 2 });
    const rb = settings("roberta", { numLayers: 2 });
    const made = [new Map<string, tf.Variable>(), new Map<string, tf.Variable>()];
    const p1 = createTransformerParams(lf, variableFactory(new Rng(3), made[0]!));
    const p2 = createTransformerParams(rb, variableFactory(new Rng(3), made[1]!));
    expect([...made[0]!.keys()]).toEqual([...made[1]!.keys()]);
    const x = x0();
    for (const causal of [false, true]) {
      const a = run(lf, p1, x, causal).flat(2);
      const b = run(rb, p2, x, causal).flat(2);
      expect(diff(a, b)).toBeLessThan(1e-6);
    }
    // Transformers4Rec's default window, maxSequenceLength + 2 (here 7 + 2 rounded up to 10: 5 steps each side), is NOT full attention
    const t4r = settings("longformer", { attentionWindow: 10 });
    const pt = params(t4r);
    const far = diff(run(t4r, pt, x)[0]![0]!, run(t4r, pt, perturb(x, 6))[0]![0]!);
    const near = diff(run(t4r, pt, x)[0]![0]!, run(t4r, pt, perturb(x, 5))[0]![0]!);
    expect(far).toBeLessThan(1e-6);
    expect(near).toBeGreaterThan(1e-4);
  });

  it("option errors are located: attentionWindow on another preset, an odd window", () => {
    const err = (config: Record<string, unknown>) => {
      const b = new TransformerBlock({ dModel: D, numHeads: 2, numLayers: 1, maxSequenceLength: L, ...config });
      try {
        b.build({ shape: [null, null, D], dtype: "float32" }, new BlockContext({ rng: mulberry32(1), path: "/model/body/0" }));
      } catch (e) {
        expect(e).toBeInstanceOf(BlockError);
        return e as BlockError;
      }
      throw new Error("expected a BlockError");
    };
    const a = err({ architecture: "bert", attentionWindow: 4 });
    expect([a.issues[0]!.code, a.issues[0]!.path]).toEqual(["incompatible_config", "/model/body/0/attentionWindow"]);
    const b = err({ architecture: "longformer", attentionWindow: 5 });
    expect(b.issues[0]!.message).toContain("even integer");
    // the default window is maxSequenceLength + 2, as Transformers4Rec's LongformerConfig.build, made even (L = 7: 10)
    const ok = new TransformerBlock({ architecture: "longformer", dModel: D, numHeads: 2, numLayers: 1, maxSequenceLength: L });
    ok.build({ shape: [null, null, D], dtype: "float32" }, new BlockContext({ rng: mulberry32(1), path: "/model/body/0" }));
    expect((ok as unknown as { settings: TransformerSettings }).settings.attentionWindow).toBe(10);
  });

  it("trains with causal, masked and rtd masking, not permutation (Transformers4Rec's table)", () => {
    for (const m of ["causal", "masked", "rtd"]) expect(maskingMismatch("longformer", m), m).toBeUndefined();
    expect(maskingMismatch("longformer", "permutation")!.expected).toEqual(["causal", "masked", "rtd"]);
  });

  it("recipes/longformer-mlm.yaml trains one short epoch", async () => {
    const { loss } = await trainOneShortEpoch("recipes/longformer-mlm.yaml");
    expect(loss).toBeLessThan(Math.log(41) + 1);
  }, 120_000);
});

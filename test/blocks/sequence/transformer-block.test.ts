import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import "../../../blocks/index.js";
import { TransformerBlock } from "../../../blocks/sequence/transformer.js";
import { BlockContext, BlockError, CallContext, createBlock, type SequenceBatchLike, type TensorSpec } from "../../../src/core/index.js";
import { loadModelDir, saveModelDir } from "../../../src/io/model-dir.js";
import { mulberry32 } from "../../../src/masking/index.js";
import { Model } from "../../../src/model/model.js";

let tmp: string;
beforeAll(async () => {
  await tf.setBackend("cpu");
  tmp = mkdtempSync(join(tmpdir(), "recblocks-transformer-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const B = 3, L = 5, D = 8;
const small = { dModel: D, numHeads: 2, numLayers: 2, maxSequenceLength: L, dropout: 0.2, initializerRange: 0.3 };

/** Builds a block at /model/body/0 (optionally with a masking scheme shared by the input block). */
function built(config: Record<string, unknown>, masking?: { type: string }, inputDim = D): TransformerBlock {
  const b = new TransformerBlock(config);
  const ctx = new BlockContext({ rng: mulberry32(5), path: "/model/body/0" });
  if (masking) ctx.set("masking", masking);
  b.build({ shape: [null, null, inputDim], dtype: "float32" }, ctx);
  return b;
}

/** One forward pass in eval mode (in a tidy), with an optional [B, L] padding mask. */
function run(b: TransformerBlock, x: tf.Tensor3D, valid?: number[][]): number[][][] {
  return tf.tidy(() => {
    const ctx = new CallContext({ mode: "eval", rng: mulberry32(1) });
    if (valid) ctx.set("padding-mask", tf.tensor2d(valid));
    return (b.call(x, ctx) as tf.Tensor).arraySync() as number[][][];
  });
}

const input = (seed: number) => tf.randomNormal([B, L, D], 0, 1, "float32", seed) as tf.Tensor3D;
/** x with steps t >= from replaced by other values. */
const perturbFrom = (x: tf.Tensor3D, from: number) =>
  tf.tidy(() => {
    const v = x.arraySync() as number[][][];
    return tf.tensor3d(v.map((row) => row.map((step, t) => (t >= from ? step.map((z) => 3 * z - 2) : step))));
  });
const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));

function blockError(f: () => unknown): BlockError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(BlockError);
    return e as BlockError;
  }
  throw new Error("expected a BlockError");
}

describe("transformer block: conformance", () => {
  it("schema defaults fill the config", () => {
    const b = new TransformerBlock();
    expect(b.config).toEqual({
      type: "transformer", name: "transformer", architecture: "xlnet", dModel: 64, numHeads: 4, numLayers: 2,
      maxSequenceLength: 20, dropout: 0.3, activation: "gelu", feedForwardSize: null, layerNormEps: 0.03,
      initializerRange: 0.01, causal: null, embeddingSize: null, numHiddenGroups: null, rmsNormEps: 1e-6, ropeTheta: 10000, memLength: null, segmentLength: null, attentionWindow: null,
    });
    // written values win over defaults
    expect(new TransformerBlock({ architecture: "gpt2", dModel: 16 }).config).toMatchObject({ architecture: "gpt2", dModel: 16, numHeads: 4 });
    expect(Object.isFrozen(b.config)).toBe(true);
  });

  it("getConfig round-trips through createBlock, and the same seed builds the same weights", () => {
    for (const architecture of ["xlnet", "gpt2", "bert"]) {
      const a = built({ ...small, architecture, name: "enc" });
      const cfg = a.getConfig();
      const b = createBlock(cfg as never) as TransformerBlock;
      expect(b).toBeInstanceOf(TransformerBlock);
      expect(b.getConfig()).toEqual(cfg);
      // getConfig is a copy: changing it does not change the block
      (cfg as { dModel: number }).dModel = 999;
      expect(a.config.dModel).toBe(D);
      const ctx = new BlockContext({ rng: mulberry32(5), path: "/model/body/0" });
      b.build({ shape: [null, null, D], dtype: "float32" }, ctx);
      const na = a.namedVariables(), nb = b.namedVariables();
      expect([...nb.keys()]).toEqual([...na.keys()]);
      expect([...na.keys()].every((k) => k.startsWith("enc/"))).toBe(true);
      const x = input(1);
      expect(maxDiff(run(a, x).flat(2), run(b, x).flat(2))).toBe(0);
      x.dispose();
      a.dispose();
      b.dispose();
    }
  });

  it("computeOutputSpec equals the real output shape; no tensor leaks", () => {
    for (const architecture of ["xlnet", "gpt2", "bert"]) {
      const b = built({ ...small, architecture });
      const spec = b.outputSpec as TensorSpec;
      expect(spec).toEqual({ shape: [null, null, D], dtype: "float32" });
      const fixed = b.computeOutputSpec({ shape: [B, L, D], dtype: "float32" }, new BlockContext({ rng: mulberry32(1) }));
      const x = input(2);
      const before = tf.memory().numTensors;
      for (const mode of ["train", "eval"] as const) {
        const out = tf.tidy(() => {
          const ctx = new CallContext({ mode, rng: mulberry32(3) });
          ctx.set("padding-mask", tf.tensor2d([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]]));
          return b.call(x, ctx) as tf.Tensor;
        });
        expect(out.shape).toEqual(fixed.shape);
        expect(out.dtype).toBe(fixed.dtype);
        expect(Array.from(out.dataSync()).every(Number.isFinite)).toBe(true);
        out.dispose();
      }
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      b.dispose();
    }
  });

  it("save / load of a model with a transformer body gives the same predictions", () => {
    const schema = { columns: [{ name: "item_id", tags: ["categorical", "item-id", "list"], cardinality: 12 }] };
    const model = Model.fromConfig(
      {
        inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: D }, masking: { type: "causal" } },
        body: [{ type: "transformer", ...small, architecture: "gpt2" }],
        head: { type: "next-item-prediction", weightTying: true },
      } as never,
      schema,
    ).build({ seed: 9 });
    const batch: SequenceBatchLike = {
      batchSize: 2, seqLen: L, itemIds: Int32Array.from([3, 5, 7, 0, 0, 11, 2, 4, 6, 8]), categorical: {}, continuous: {}, context: {}, lengths: Int32Array.from([3, 5]),
    };
    const dir = join(tmp, "gpt2-model");
    saveModelDir(dir, { model, recipe: { name: "t" }, featureSchema: schema as never, vocabularies: {}, itemColumn: "item_id", maxSequenceLength: L, metrics: {} });
    const loaded = loadModelDir(dir);
    // a fresh build with another seed must differ, so equality below means the weights were loaded
    const other = Model.fromConfig(model.toRecipe(), schema).build({ seed: 10 });
    const a = model.topK(batch, 11), b = loaded.model.topK(batch, 11), c = other.topK(batch, 11);
    expect(Array.from(b.itemIds)).toEqual(Array.from(a.itemIds));
    expect(maxDiff(Array.from(b.scores), Array.from(a.scores))).toBeLessThan(1e-6);
    expect(maxDiff(Array.from(c.scores), Array.from(a.scores))).toBeGreaterThan(1e-3);
    expect(loaded.model.toRecipe()).toEqual(model.toRecipe());
    for (const m of [model, loaded.model, other]) m.dispose();
  });
});

describe("transformer block: configuration errors", () => {
  const ctx = () => new BlockContext({ rng: mulberry32(1), path: "/model/body/0" });

  it("dModel different from the input size: incompatible_input at .../dModel", () => {
    const e = blockError(() => new TransformerBlock({ dModel: 16, numHeads: 2 }).computeOutputSpec({ shape: [null, null, 8], dtype: "float32" }, ctx()));
    expect(e.code).toBe("incompatible_input");
    expect(e.path).toBe("/model/body/0/dModel");
    expect(e.issues[0]!.message).toMatch(/dModel 16.*size 8/);
    expect(e.issues[0]!.hint).toMatch(/dOutput: 16/);
  });

  it("numHeads not dividing dModel: incompatible_config at .../numHeads", () => {
    const e = blockError(() => new TransformerBlock({ dModel: 8, numHeads: 3 }).computeOutputSpec({ shape: [null, null, 8], dtype: "float32" }, ctx()));
    expect(e.code).toBe("incompatible_config");
    expect(e.path).toBe("/model/body/0/numHeads");
  });

  it("the same errors come out of Model.build at the recipe path", () => {
    const schema = { columns: [{ name: "item_id", tags: ["categorical", "item-id", "list"], cardinality: 10 }] };
    const make = (body: Record<string, unknown>) =>
      Model.fromConfig(
        {
          inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: 8 }, masking: { type: "causal" } },
          body: [{ type: "transformer", ...body }],
          head: { type: "next-item-prediction", weightTying: true },
        } as never,
        schema,
      );
    const e1 = blockError(() => make({ dModel: 12, numHeads: 2 }).build());
    expect([e1.code, e1.path]).toEqual(["incompatible_input", "/model/body/0/dModel"]);
    const e2 = blockError(() => make({ dModel: 8, numHeads: 3 }).build());
    expect([e2.code, e2.path]).toEqual(["incompatible_config", "/model/body/0/numHeads"]);
    const e3 = blockError(() => make({ dModel: 8, numHeads: 2, architecture: "gpt2", causal: false }).build());
    expect([e3.code, e3.path]).toEqual(["incompatible_config", "/model/body/0/causal"]);
    const e4 = blockError(() => make({ dModel: 8, numHeads: 2, architecture: "bert", causal: false }).build());
    expect([e4.code, e4.path]).toEqual(["incompatible_masking", "/model/body/0/causal"]);
  });

  it("a sequence longer than the position table: sequence_too_long", () => {
    const e = blockError(() => new TransformerBlock({ architecture: "gpt2", dModel: 8, numHeads: 2, maxSequenceLength: 4 }).computeOutputSpec({ shape: [null, 6, 8], dtype: "float32" }, ctx()));
    expect([e.code, e.path]).toEqual(["sequence_too_long", "/model/body/0/maxSequenceLength"]);
    // xlnet has no position table: any length
    expect(new TransformerBlock({ architecture: "xlnet", dModel: 8, numHeads: 2, maxSequenceLength: 4 }).computeOutputSpec({ shape: [null, 6, 8], dtype: "float32" }, ctx()).shape).toEqual([null, 6, 8]);
  });

  it("a non-sequence input: incompatible_input at the block", () => {
    const e = blockError(() => new TransformerBlock({ dModel: 8, numHeads: 2 }).computeOutputSpec({ shape: [null, 8], dtype: "float32" }, ctx()));
    expect([e.code, e.path]).toEqual(["incompatible_input", "/model/body/0"]);
  });
});

describe("transformer block: causality and padding", () => {
  it("gpt2 is causal by default: perturbing future items does not change earlier outputs", () => {
    const b = built({ ...small, architecture: "gpt2" });
    expect(b.causal).toBe(true);
    const x = input(3);
    const a = run(b, x);
    for (const t of [1, 3]) {
      const xp = perturbFrom(x, t);
      const p = run(b, xp);
      for (let r = 0; r < B; r++) {
        for (let u = 0; u < t; u++) expect(maxDiff(a[r]![u]!, p[r]![u]!)).toBeLessThan(1e-5);
        expect(maxDiff(a[r]![t]!, p[r]![t]!)).toBeGreaterThan(1e-3);
      }
      xp.dispose();
    }
    x.dispose();
    b.dispose();
  });

  it("bert with causal: null and masked masking is bidirectional; with causal masking it is causal", () => {
    const bi = built({ ...small, architecture: "bert", causal: null }, { type: "masked" });
    expect(bi.causal).toBe(false);
    const x = input(4);
    const xp = perturbFrom(x, L - 1);
    const a = run(bi, x), p = run(bi, xp);
    // the first step sees the last one
    for (let r = 0; r < B; r++) expect(maxDiff(a[r]![0]!, p[r]![0]!)).toBeGreaterThan(1e-4);
    const causal = built({ ...small, architecture: "bert", causal: null }, { type: "causal" });
    expect(causal.causal).toBe(true);
    const c = run(causal, x), cp = run(causal, xp);
    for (let r = 0; r < B; r++) for (let u = 0; u < L - 1; u++) expect(maxDiff(c[r]![u]!, cp[r]![u]!)).toBeLessThan(1e-5);
    // causal: true forces it whatever the masking
    expect(built({ ...small, architecture: "bert", causal: true }, { type: "masked" }).causal).toBe(true);
    for (const t of [x, xp]) t.dispose();
    bi.dispose();
    causal.dispose();
  });

  it("the padding mask from the CallContext hides padded steps (bidirectional bert)", () => {
    const b = built({ ...small, architecture: "bert" }, { type: "masked" });
    const valid = [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]];
    const x = input(5);
    const xp = tf.tidy(() => {
      const v = x.arraySync() as number[][][];
      return tf.tensor3d(v.map((row, r) => row.map((step, t) => (valid[r]![t] ? step : step.map((z) => -4 * z + 3)))));
    });
    const a = run(b, x, valid), p = run(b, xp, valid);
    const noMaskA = run(b, x), noMaskP = run(b, xp);
    let changedWithoutMask = false;
    for (let r = 0; r < B; r++) {
      for (let t = 0; t < L; t++) {
        if (!valid[r]![t]) continue;
        expect(maxDiff(a[r]![t]!, p[r]![t]!)).toBeLessThan(1e-5);
        if (maxDiff(noMaskA[r]![t]!, noMaskP[r]![t]!) > 1e-4) changedWithoutMask = true;
      }
    }
    expect(changedWithoutMask).toBe(true);
    for (const t of [x, xp]) t.dispose();
    b.dispose();
  });
});

import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { clipByGlobalNorm, clipByNorm, disposeGradients, globalNorm } from "../../src/train/clipping.js";
import type { IndexedSlices } from "../../src/train/optimizers.js";

// g1 = [3, 4] (norm 5), g2 = [[0, 12]] (norm 12): global norm 13
const make = () => ({ a: tf.tensor1d([3, 4]), b: tf.tensor2d([[0, 12]]) });

describe("gradient clipping", () => {
  it("global norm", () => {
    const g = make();
    const n = globalNorm(g);
    expect(n.dataSync()[0]).toBeCloseTo(13, 5);
    tf.dispose([n, g.a, g.b]);
  });

  it("per tensor (tf.clip_by_norm): each gradient to norm <= c", () => {
    const g = make();
    const c = clipByNorm(g, 10) as Record<string, tf.Tensor>;
    expect(Array.from(c.a!.dataSync())).toEqual([3, 4]);
    const b = Array.from(c.b!.dataSync());
    expect(b[0]).toBe(0);
    expect(b[1]).toBeCloseTo(10, 5);
    disposeGradients(c);
    tf.dispose([g.a, g.b]);
  });

  it("global norm clipping scales all gradients by c / max(N, c)", () => {
    const g = make();
    const { grads, globalNorm: n } = clipByGlobalNorm(g, 6.5);
    const c = grads as Record<string, tf.Tensor>;
    expect(n.dataSync()[0]).toBeCloseTo(13, 5);
    Array.from(c.a!.dataSync()).forEach((x, i) => expect(x).toBeCloseTo([1.5, 2][i]!, 5));
    Array.from(c.b!.dataSync()).forEach((x, i) => expect(x).toBeCloseTo([0, 6][i]!, 5));
    disposeGradients(c);
    n.dispose();
    const big = clipByGlobalNorm(g, 20);
    expect(Array.from((big.grads as Record<string, tf.Tensor>).a!.dataSync())).toEqual([3, 4]);
    disposeGradients(big.grads);
    big.globalNorm.dispose();
    tf.dispose([g.a, g.b]);
  });

  it("IndexedSlices are measured through their values; Map keys are kept; no leaks", () => {
    const v = tf.variable(tf.zeros([5, 2]), true, "clip_test_table");
    const idx = tf.tensor1d([1, 3], "int32");
    const slices: IndexedSlices = { indices: idx, values: tf.tensor2d([[3, 4], [0, 0]]) };
    const before = tf.memory().numTensors;
    const out = clipByNorm(new Map([[v, slices]]), 1) as Map<tf.Variable, IndexedSlices>;
    const s = out.get(v)!;
    expect(s.indices).toBe(idx);
    Array.from(s.values.dataSync()).forEach((x, i) => expect(x).toBeCloseTo([0.6, 0.8, 0, 0][i]!, 5));
    disposeGradients(out, { keepIndices: true });
    expect(tf.memory().numTensors).toBe(before);
    const g = clipByGlobalNorm(new Map([[v, slices]]), 1);
    disposeGradients(g.grads, { keepIndices: true });
    g.globalNorm.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([v, idx, slices.values]);
  });

  it("rejects a non-positive clip norm", () => {
    expect(() => clipByNorm({}, 0)).toThrow(/> 0/);
  });
});

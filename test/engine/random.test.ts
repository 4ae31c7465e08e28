import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { getSeed, glorotUniform, initEngine, normalValues, randomNormal, Rng, rng, setSeed, sparseSoftmaxCrossEntropy } from "../../src/engine/index.js";

describe("seeded randomness", () => {
  it("one seed gives one sequence; another seed another", () => {
    const a = new Rng(7);
    const b = new Rng(7);
    const c = new Rng(8);
    const sa = Array.from({ length: 100 }, () => a.next());
    expect(Array.from({ length: 100 }, () => b.next())).toEqual(sa);
    expect(Array.from({ length: 100 }, () => c.next())).not.toEqual(sa);
    for (const v of sa) expect(v >= 0 && v < 1).toBe(true);
  });

  it("setSeed resets the process-wide generator; rng() satisfies RandomSource", () => {
    setSeed(123);
    expect(getSeed()).toBe(123);
    const first = [rng().next(), rng().next(), rng().next()];
    setSeed(123);
    expect([rng().next(), rng().next(), rng().next()]).toEqual(first);
  });

  it("uniform ints cover [0, n) evenly; normals have mean 0 and sd 1", () => {
    const r = new Rng(1);
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 100_000; i++) counts[r.int(10)]++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
    const z = normalValues(200_000, { rng: new Rng(2) });
    const mean = z.reduce((s, v) => s + v, 0) / z.length;
    const sd = Math.sqrt(z.reduce((s, v) => s + (v - mean) ** 2, 0) / z.length);
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(sd - 1)).toBeLessThan(0.01);
    const t = normalValues(10_000, { rng: new Rng(3), truncated: true, stddev: 0.5 });
    expect(Math.max(...t.map(Math.abs))).toBeLessThanOrEqual(1.0000001);
  });

  it("shuffle and permutation are seeded permutations", () => {
    const p = new Rng(5).permutation(1000);
    expect(Array.from(p).sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(Array.from(new Rng(5).permutation(1000))).toEqual(Array.from(p));
    expect(Array.from(p.slice(0, 20))).not.toEqual(Array.from({ length: 20 }, (_, i) => i));
    const arr = ["a", "b", "c", "d"];
    new Rng(9).shuffle(arr);
    expect([...arr].sort()).toEqual(["a", "b", "c", "d"]);
  });

  it("glorotUniform stays within ±sqrt(6/(fanIn+fanOut))", () => {
    setSeed(4);
    const w = glorotUniform([30, 20]);
    const lim = Math.sqrt(6 / 50);
    const v = w.dataSync();
    expect(Math.max(...v)).toBeLessThanOrEqual(lim);
    expect(Math.min(...v)).toBeGreaterThanOrEqual(-lim);
    w.dispose();
  });

  it("two training runs with the same seed give identical losses (init, shuffling and dropout all seeded)", async () => {
    await initEngine({ backend: "auto", quiet: true });
    const train = (seed: number): number[] => {
      setSeed(seed);
      const r = rng();
      const V = 40;
      const D = 8;
      const e = tf.variable(randomNormal([V, D], { stddev: 0.1 }));
      const opt = tf.train.adam(0.05);
      const losses: number[] = [];
      const ids = Int32Array.from({ length: 64 }, (_, i) => (i % (V - 1)) + 1);
      for (let epoch = 0; epoch < 3; epoch++) {
        r.shuffle(ids);
        for (let s = 0; s < 64; s += 16) {
          const batch = ids.slice(s, s + 16);
          const next = batch.map((x) => (x % (V - 1)) + 1);
          const dropSeed = r.seed();
          const loss = opt.minimize(() => {
            const h = tf.dropout(tf.gather(e, tf.tensor1d(batch, "int32")), 0.2, undefined, dropSeed);
            return tf.mean(sparseSoftmaxCrossEntropy(tf.matMul(h, e, false, true) as tf.Tensor2D, tf.tensor1d(next, "int32"))) as tf.Scalar;
          }, true)!;
          losses.push(loss.dataSync()[0]!);
          loss.dispose();
        }
      }
      opt.dispose();
      e.dispose();
      return losses;
    };
    const a = train(11);
    const b = train(11);
    const c = train(12);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    expect(a[a.length - 1]!).toBeLessThan(a[0]!);
  });
});

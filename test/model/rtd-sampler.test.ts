/**
 * The RTD generator's sampler (src/model/rtd.ts `sample`): on the native backend TensorFlow's
 * StatelessMultinomial replaces the TF.js inverse CDF. Both must draw from softmax(logits) without the
 * padding id: frequencies over 20,000 rows are checked against the hand-computed probabilities (1/4 and
 * 3/4 for logits [_, 0, ln 3]), a padding logit that holds most of the mass is never returned (those rows
 * draw again), the same RNG state gives the same draws, and `batch` draws only the batch's label items.
 */
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initEngine } from "../../src/engine/index.js";
import { hasNativeMultinomial } from "../../src/engine/ops.js";
import { mulberry32 } from "../../src/masking/index.js";
import { ReplacedItemDiscriminator } from "../../src/model/rtd.js";

const backends: string[] = [];
beforeAll(async () => {
  const info = await initEngine({ backend: "auto", quiet: true });
  if (info.backend === "tensorflow") backends.push("tensorflow");
  backends.push("cpu");
});
afterAll(async () => {
  await tf.setBackend("cpu");
});

const gen = new ReplacedItemDiscriminator({ discriminatorLossWeight: 1, sampleFrom: "generator" });
const N = 20000;
/** Draws for N identical rows [pad, 0, ln 3]. */
const draws = (padLogit: number, seed: number): Int32Array =>
  tf.tidy(() => gen.sample(tf.tile(tf.tensor2d([[padLogit, 0, Math.log(3)]]), [N, 1]) as tf.Tensor2D, new Int32Array(N), mulberry32(seed)));

describe.each(["tensorflow", "cpu"])("RTD sampler on %s", (backend) => {
  beforeAll(async () => {
    if (backends.includes(backend)) await tf.setBackend(backend);
  });

  it("draws from the softmax without the padding id (1/4 and 3/4), also when padding holds most of the mass", (ctx) => {
    if (!backends.includes(backend)) ctx.skip();
    expect(hasNativeMultinomial()).toBe(backend === "tensorflow");
    for (const padLogit of [-5, 4]) {
      const d = draws(padLogit, 11);
      const counts = [0, 0, 0];
      for (const v of d) counts[v]!++;
      expect(counts[0], `padding logit ${padLogit}`).toBe(0);
      // 4 standard deviations of a binomial(20000, 1/4): 4 * sqrt(20000 * 3/16) = 245
      expect(Math.abs(counts[1]! - N / 4), `padding logit ${padLogit}`).toBeLessThan(245);
    }
  });

  it("the same RNG state gives the same draws, another state other draws", (ctx) => {
    if (!backends.includes(backend)) ctx.skip();
    expect(Array.from(draws(-5, 3))).toEqual(Array.from(draws(-5, 3)));
    expect(Array.from(draws(-5, 3))).not.toEqual(Array.from(draws(-5, 4)));
  });

  it("sampleFrom batch draws only the batch's label items", (ctx) => {
    if (!backends.includes(backend)) ctx.skip();
    const b = new ReplacedItemDiscriminator({ discriminatorLossWeight: 1, sampleFrom: "batch" });
    const labels = Int32Array.from([2, 5, 5, 7]);
    const got = tf.tidy(() => b.sample(tf.randomNormal([4, 9], 0, 1, "float32", 1) as tf.Tensor2D, labels, mulberry32(2)));
    for (const v of got) expect([2, 5, 7]).toContain(v);
  });
});

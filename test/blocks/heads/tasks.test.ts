import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import "../../../blocks/index.js";
import { SequenceSummaryBlock } from "../../../blocks/heads/sequence-summary.js";
import { BlockContext, BlockError, CallContext, createBlock } from "../../../src/core/index.js";
import { mulberry32 } from "../../../src/masking/index.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const close = (got: number[], want: number[], tol = 1e-5) => {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `index ${i}: ${got[i]} vs ${want[i]}`).toBeLessThan(tol);
};

describe("sequence-summary", () => {
  /*
   * h [2, 3, 2]: row 0 = [[1, 2], [3, 4], [5, 6]] with 2 real steps (mask [1, 1, 0]),
   *              row 1 = [[7, 8], [9, 10], [11, 12]] with 3 real steps.
   */
  const H = [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 10], [11, 12]]];
  const MASK = [[1, 1, 0], [1, 1, 1]];
  const run = (cfg: ConstructorParameters<typeof SequenceSummaryBlock>[0], mask = true) => {
    const b = new SequenceSummaryBlock(cfg);
    const spec = b.computeOutputSpec({ shape: [null, 3, 2], dtype: "float32" }, new BlockContext({ rng: mulberry32(1), path: "/model/body/1" }));
    expect(spec).toEqual({ shape: [null, 2], dtype: "float32" });
    return tf.tidy(() => {
      const ctx = new CallContext({ mode: "eval", rng: mulberry32(1) });
      if (mask) ctx.set("padding-mask", tf.tensor2d(MASK));
      return (b.call(tf.tensor3d(H), ctx) as tf.Tensor2D).arraySync();
    });
  };

  it("last = each row's last real step (not the padding at L-1, as Hugging Face reads it)", () => {
    close(run({ summaryType: "last" }).flat(), [3, 4, 11, 12]);
    close(run({}).flat(), [3, 4, 11, 12]); // the default
    close(run({ summaryType: "last" }, false).flat(), [5, 6, 11, 12]); // no padding mask: every step is real
  });
  it("first = step 0", () => close(run({ summaryType: "first" }).flat(), [1, 2, 7, 8]));
  it("mean over the real steps only: row 0 (1+3)/2, (2+4)/2; row 1 (7+9+11)/3, (8+10+12)/3", () => close(run({ summaryType: "mean" }).flat(), [2, 3, 9, 10]));
  it("cls-index: >= 0 from the start, < 0 back from the last real step, clamped to the real steps", () => {
    close(run({ summaryType: "cls-index", clsIndex: 0 }).flat(), [1, 2, 7, 8]);
    close(run({ summaryType: "cls-index", clsIndex: -2 }).flat(), [1, 2, 9, 10]);
    close(run({ summaryType: "cls-index", clsIndex: 2 }).flat(), [3, 4, 11, 12]); // row 0 has only steps 0..1
    close(run({ summaryType: "cls-index", clsIndex: -5 }).flat(), [1, 2, 7, 8]);
  });
  it("gradients flow only to the step read", () => {
    const g = tf.tidy(() => {
      const b = new SequenceSummaryBlock({ summaryType: "last" });
      const ctx = new CallContext({ mode: "train", rng: mulberry32(1) });
      ctx.set("padding-mask", tf.tensor2d(MASK));
      return tf.grad((x: tf.Tensor) => tf.sum(b.call(x, ctx) as tf.Tensor))(tf.tensor3d(H)).arraySync();
    });
    expect(g).toEqual([[[0, 0], [1, 1], [0, 0]], [[0, 0], [0, 0], [1, 1]]]);
  });
  it("schema defaults, round trip, and a 2-D input is refused", () => {
    const b = createBlock({ type: "sequence-summary" } as never);
    expect(b.getConfig()).toEqual({ type: "sequence-summary", name: "sequence-summary", summaryType: "last", clsIndex: -1 });
    expect(() => new SequenceSummaryBlock().computeOutputSpec({ shape: [null, 4], dtype: "float32" }, new BlockContext({ rng: mulberry32(1), path: "/x" }))).toThrow(BlockError);
  });
});

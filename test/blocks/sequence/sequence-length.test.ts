/**
 * A batch longer than a transformer's position table is a located `sequence_too_long` BlockError at the
 * block's recipe path when the model runs (recipes leave the sequence length open at build time), never
 * TensorFlow's slice error from inside the kernel.
 */
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import "../../../blocks/index.js";
import { BlockError } from "../../../src/core/index.js";
import { batches, fullSequenceExamples } from "../../../src/data/index.js";
import { mulberry32 } from "../../../src/masking/index.js";
import { Model } from "../../../src/model/model.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

describe("transformer: input longer than maxSequenceLength", () => {
  for (const architecture of ["gpt2", "bert"]) {
    it(`${architecture}: sequence_too_long at /model/body/0/maxSequenceLength, in training and in topK`, () => {
      const schema = { columns: [{ name: "item_id", tags: ["categorical", "item-id", "list"], cardinality: 20 }] };
      const masking = architecture === "gpt2" ? { type: "causal" } : { type: "masked" };
      const m = Model.fromConfig({
        inputs: { type: "tabular-sequence-features", embeddingDims: { item_id: 8 }, masking },
        body: [{ type: "transformer", architecture, dModel: 8, numHeads: 2, numLayers: 1, maxSequenceLength: 4, dropout: 0 }],
        head: { type: "next-item-prediction", weightTying: true },
      } as never, schema as never).build({ seed: 1 });
      const sessions = [{ id: "a", items: Int32Array.from([2, 3, 4, 5, 6, 7, 8, 9, 10]), categorical: {}, continuous: {}, context: {} }];
      const batch = batches(fullSequenceExamples(sessions, 2), { batchSize: 4, maxSequenceLength: 8 }).next().value!;
      const caught = (f: () => unknown): BlockError => {
        try {
          f();
        } catch (e) {
          return e as BlockError;
        }
        throw new Error("expected an error");
      };
      caught(() => m.topK(batch, 3)); // builds and keeps the top-k catalogue of the item table
      const before = tf.memory().numTensors;
      const e = caught(() => tf.tidy(() => m.trainBatch(batch, mulberry32(1))!.loss()));
      expect(e).toBeInstanceOf(BlockError);
      expect(e.code).toBe("sequence_too_long");
      expect(e.path).toBe("/model/body/0/maxSequenceLength");
      expect(e.message).toMatch(/has (8|9) steps but the .* position table holds \d+/);
      expect(caught(() => m.topK(batch, 3)).code).toBe("sequence_too_long");
      expect(tf.memory().numTensors).toBe(before);
      m.dispose();
    });
  }
});

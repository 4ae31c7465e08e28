/**
 * Resource limits: a model that would need more memory than the machine has is refused before any
 * weight is allocated (model_too_large, with the estimate and the path of the key that makes it big).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import "../../blocks/index.js";
import { initEngine } from "../../src/engine/index.js";
import { RecblocksError } from "../../src/errors/issue.js";
import { Model, type ModelConfig } from "../../src/model/model.js";
import { trainRecipe } from "../../src/run/train.js";
import { checkTrainingMemory, estimateTrainingMemory, memoryLimit } from "../../src/train/limits.js";
import { thrown, tinyRecipe, writeRecipe } from "./helpers.js";

let tmp: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "rb-limits-"));
  await initEngine({ backend: "tensorflow", quiet: true });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MODEL = (d = 16, dim = 16): ModelConfig => ({
  inputs: { type: "tabular-sequence-features", excludeFeatures: ["user_id", "category", "price", "timestamp"], embeddingDims: { item_id: dim }, masking: { type: "causal" } },
  body: [{ type: "transformer", architecture: "gpt2", dModel: d, numHeads: 2, numLayers: 1, maxSequenceLength: 10 }],
  head: { type: "next-item-prediction", weightTying: true },
}) as never;

const schema = (items: number) => ({
  version: 1,
  columns: [
    { name: "session_id", dtype: "string", tags: ["session-id"] },
    { name: "item_id", dtype: "int64", tags: ["item-id", "categorical", "list"], cardinality: items },
    { name: "user_id", dtype: "int64", tags: ["user-id", "categorical"], cardinality: 100 },
    { name: "category", dtype: "int64", tags: ["categorical", "list"], cardinality: 10 },
    { name: "price", dtype: "float32", tags: ["continuous", "list"] },
    { name: "timestamp", dtype: "int64", tags: ["timestamp", "list"] },
  ],
});

describe("model_too_large", () => {
  it("an embedding dimension of 200 million is refused before allocation, located at embeddingDims/item_id", async () => {
    const recipe = writeRecipe(tmp, "huge-dim.yaml", tinyRecipe({ embeddingDim: 200_000_000 }));
    const t0 = performance.now();
    const e = await thrown(trainRecipe(recipe, { out: join(tmp, "huge"), stream: null }));
    expect(performance.now() - t0).toBeLessThan(15_000);
    const i = e.issues[0]!;
    expect(i.code).toBe("model_too_large");
    expect(i.path).toBe("/model/inputs/embeddingDims/item_id");
    expect(i.message).toMatch(/needs about [\d.]+ (GB|TB)/);
    expect(i.message).toContain('embedding table of "item_id" (52 rows × 200,000,000)');
    expect(existsSync(join(tmp, "huge", "model"))).toBe(false);
  });

  it("an embedding table of 10^9 rows (vocabulary from the data) is located at /data/train", () => {
    const m = Model.fromConfig(MODEL(), schema(1_000_000_000) as never);
    const est = estimateTrainingMemory(m, schema(1_000_000_000) as never, { optimizer: { type: "adam" }, batchSize: 32 }, 10);
    expect(est.parameters).toBeGreaterThanOrEqual(16e9);
    expect(est.copiesPerParameter).toBe(5); // weight, Adam m and v, gradient, host copy
    let err: RecblocksError | undefined;
    try {
      checkTrainingMemory(est, { bytes: 64 * 1024 ** 3, source: "test" });
    } catch (x) {
      err = x as RecblocksError;
    }
    expect(err?.issues[0]).toMatchObject({ code: "model_too_large" });
    // the logits of a batch over 10^9 items are the biggest part
    expect(err!.issues[0]!.path).toBe("/train/batchSize");
    expect(err!.issues[0]!.message).toContain("1,000,000,000 rows × 16");
  });

  it("a transformer with dModel 10^6 is located at its dModel", () => {
    const m = Model.fromConfig(MODEL(1_000_000, 1_000_000), schema(50) as never);
    const est = estimateTrainingMemory(m, schema(50) as never, { optimizer: { type: "sgd" } }, 10);
    expect(() => checkTrainingMemory(est, { bytes: 8 * 1024 ** 3, source: "test" })).toThrow(RecblocksError);
    try {
      checkTrainingMemory(est, { bytes: 8 * 1024 ** 3, source: "test" });
    } catch (x) {
      expect((x as RecblocksError).issues[0]!.path).toBe("/model/body/0/dModel");
    }
  });

  it("the estimate of a small model is close to its real parameter count, and fits", () => {
    for (const [d, items] of [[16, 50], [64, 1000], [128, 5000]] as const) {
      const m = Model.fromConfig(MODEL(d, d), schema(items) as never);
      const est = estimateTrainingMemory(m, schema(items) as never, {}, 10);
      m.build({ seed: 1 });
      const real = m.countParams();
      m.dispose();
      expect(est.parameters / real, `d=${d} items=${items}: estimate ${est.parameters}, real ${real}`).toBeGreaterThan(0.8);
      expect(est.parameters / real).toBeLessThan(1.25);
      expect(() => checkTrainingMemory(est)).not.toThrow();
    }
  });

  it("RECBLOCKS_MEMORY_LIMIT overrides the machine's memory", () => {
    const old = process.env.RECBLOCKS_MEMORY_LIMIT;
    try {
      process.env.RECBLOCKS_MEMORY_LIMIT = "1MB";
      expect(memoryLimit()).toEqual({ bytes: 1024 ** 2, source: "RECBLOCKS_MEMORY_LIMIT" });
      const m = Model.fromConfig(MODEL(64, 64), schema(5000) as never);
      let msg = "";
      try {
        checkTrainingMemory(estimateTrainingMemory(m, schema(5000) as never, {}, 10));
      } catch (x) {
        msg = (x as RecblocksError).issues[0]!.message;
      }
      expect(msg).toMatch(/more than RECBLOCKS_MEMORY_LIMIT \(1\.0 MB\)/);
    } finally {
      if (old === undefined) delete process.env.RECBLOCKS_MEMORY_LIMIT;
      else process.env.RECBLOCKS_MEMORY_LIMIT = old;
    }
  });
});
